"""Commands about the projects themselves: list them, their status, their policy files."""

import json
import sys
from pathlib import Path

import click

from unified_ai.cli.app import Context, main, print_table, run
from unified_ai.io.reader import StoreReader
from unified_ai.names import LOOP_ASSETS
from unified_ai.queries import current_deployment


@main.command("projects")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def projects_cmd(as_json: bool) -> None:
    """List the model projects the code location builds."""

    def go():
        rows = [
            {
                "name": p.name,
                "source": p.data.source,
                "estimator": p.estimator.class_name,
                "policy_version": p.policy_version,
            }
            for p in Context().projects().values()
        ]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        print_table(
            ["project", "estimator", "policy version", "source"],
            [[r["name"], r["estimator"], r["policy_version"], r["source"]] for r in rows],
        )

    run(go)


@main.command("status")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status_cmd(project: str, as_json: bool) -> None:
    """Show PROJECT's assets, what is deployed and its candidate: LIVE, WAITING or BLOCKED.

    The candidate's gate results are read from the Dagster instance in DAGSTER_HOME; without
    it the state of a candidate that is not deployed is UNKNOWN. With policy.review, the
    review queue too: items open, overdue, answered, escalated and timed out.
    """

    def go():
        ctx = Context()
        config = ctx.project(project)
        store = ctx.store()
        reader = StoreReader(store)
        assets = {asset: store.current_version([config.name, asset]) for asset in LOOP_ASSETS}
        found = current_deployment(reader, config.name)
        deployed = None
        if found:
            version, live = found
            deployed = {
                "version": version,
                "model_version": live.model_version,
                "model_uri": live.model_uri,
                "deployed_at": live.deployed_at,
                "deployed_by": live.deployed_by,
                "policy_version": live.policy_version,
            }
        candidate = _candidate(reader, config.name, found[1] if found else None)
        review = _review_queue(store, config)
        if as_json:
            status = {"project": config.name, "assets": assets, "deployed": deployed}
            click.echo(json.dumps({**status, "candidate": candidate, "review": review}, indent=2))
            return
        click.echo(f"{config.name} ({config.policy_version})")
        print_table(
            ["asset", "current version"],
            [[asset, version or "(not materialized)"] for asset, version in assets.items()],
        )
        if deployed:
            click.echo(
                f"deployed: model {deployed['model_version']} ({deployed['model_uri']}), "
                f"{deployed['deployed_at']} by {deployed['deployed_by']} under "
                f"{deployed['policy_version']}"
            )
        if candidate:
            print_table(
                ["candidate", "state", "why"],
                [
                    [
                        candidate["model_version"] or "?",
                        candidate["state"],
                        "; ".join(candidate["reasons"]),
                    ]
                ],
            )
            if candidate.get("metrics"):
                click.echo(f"candidate holdout metrics ({metrics_line(candidate)})")
        if review is not None:
            shown = ("open", "overdue", "answered", "escalated", "timed_out")
            print_table(
                ["review queue", *(state.replace("_", " ") for state in shown)],
                [["items", *(str(review[state]) for state in shown)]],
            )

    run(go)


def _review_queue(store, config) -> dict | None:
    """The review queue's items by state (None without `policy.review`).

    Queued and served items, each once. `overdue` items passed their due time and wait for
    the queue sensor to apply `on_timeout`; `timed_out` ones took it; `waiting` is open plus
    overdue.
    """
    if config.policy.review is None:
        return None
    from unified_ai.io.review_served import all_items
    from unified_ai.policies.review_watch import queue_counts

    items = all_items(store, config)
    return {**queue_counts(item.state for item in items), "items": len(items)}


def task_metrics_row(body: dict) -> dict:
    """The report's task and its candidate's metrics of that task, in report order.

    Reports stored before tasks are binary (`unified_ai.projects.tasks`).
    """
    from unified_ai.projects.tasks import BINARY, metrics_of

    task = body.get("task") or BINARY
    measured = (body.get("candidate") or {}).get("metrics") or {}
    return {"task": task, "metrics": {m: measured.get(m) for m in metrics_of(task)}}


def metrics_line(row: dict) -> str:
    """`task: metric value, ...` for a table (a metric not computed shows as n/a)."""

    def fmt(value) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    measured = ", ".join(f"{m} {fmt(v)}" for m, v in (row.get("metrics") or {}).items())
    return f"{row.get('task')}: {measured}"


def _candidate(reader: StoreReader, project: str, live) -> dict | None:
    """The current evaluation's candidate and its state, or None before any evaluation.

    LIVE: deployed now. BLOCKED: a gate failed (or a person rejected it). WAITING: its gates
    passed and it waits for an approval or a deployment. ROLLED BACK: deployed from this report
    once and rolled back from. UNKNOWN: no Dagster instance to read its gate results from.
    """
    import dagster as dg

    from unified_ai.names import EVALUATION_REPORT
    from unified_ai.policies.gates import GATES, gate_decision
    from unified_ai.queries import approvals, evaluation_report, waiting_candidate
    from unified_ai.stages.gate_records import gate_records

    report_version = reader.current_version([project, EVALUATION_REPORT])
    if report_version is None:
        return None
    stored = reader.read_value([project, EVALUATION_REPORT], report_version)
    if not hasattr(stored, "body"):
        where = f"{project}/{EVALUATION_REPORT}@{report_version}"
        reason = f"{where} is not an evaluation report ({type(stored).__name__})"
        row = {"model_version": None, "evaluation_report_version": report_version}
        return {**row, "state": "UNKNOWN", "reasons": [reason]}
    _, report = evaluation_report(reader, project, report_version)
    model = report.candidate.model_version
    row = {
        "model_version": model,
        "evaluation_report_version": report_version,
        **task_metrics_row(stored.body),
    }
    if live is not None and live.model_version == model:
        return {**row, "state": "LIVE", "reasons": [f"deployed {live.deployed_at}"]}
    try:
        instance = dg.DagsterInstance.get()
    except dg.DagsterError as exc:
        reason = f"gate results unknown: {str(exc).splitlines()[0]}"
        return {**row, "state": "UNKNOWN", "reasons": [reason]}
    with instance:
        records = gate_records(instance, dg.AssetKey([project, EVALUATION_REPORT]), GATES)
    decision = gate_decision(report_version, records, GATES)
    if not decision.allowed:
        return {**row, "state": "BLOCKED", "reasons": decision.reasons}
    rejections = [a for a in approvals(reader, project) if a.valid and a.decision == "reject"]
    rejected = [a for a in rejections if a.model_version == model]
    if rejected:
        reasons = [f"rejected by {a.approver}: {a.comment}" for a in rejected]
        return {**row, "state": "BLOCKED", "reasons": reasons}
    if live is None or waiting_candidate(reader, project, live, lambda _: True):
        return {**row, "state": "WAITING", "reasons": ["gates passed; waiting for approval"]}
    return {**row, "state": "ROLLED BACK", "reasons": ["deployed from this report, rolled back"]}


@main.group("policy")
def policy_group() -> None:
    """Validate project and policy files."""


@policy_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON record per file.")
def policy_check(paths: tuple[Path, ...], as_json: bool) -> None:
    """Validate project files (default: every project the code location loads).

    Prints `file: field: reason` for each invalid file and exits 1 if any is invalid.
    """
    from unified_ai.project_tree import each_source, file_projects
    from unified_ai.projects.loader import ProjectConfigError

    def checked(path: Path):
        try:
            return path, file_projects(path)
        except ProjectConfigError as exc:
            return path, exc

    def go():
        if paths:
            found = [checked(path) for path in paths]
        else:
            found = list(each_source(Context().settings.projects_dir))
        rows = []
        for path, sources in found:
            if isinstance(sources, ProjectConfigError):
                rows.append({"file": str(path), "ok": False, "error": str(sources)})
                continue
            for source in sources:
                rows.append(
                    {
                        "file": str(source.path),
                        "ok": True,
                        "project": source.project.name,
                        "policy_version": source.project.policy_version,
                    }
                )
        if as_json:
            click.echo(json.dumps(rows, indent=2))
        else:
            for row in rows:
                if row["ok"]:
                    click.echo(f"{row['file']}: ok ({row['project']}, {row['policy_version']})")
                else:
                    click.echo(row["error"], err=True)
        if not all(row["ok"] for row in rows):
            sys.exit(1)

    run(go)


@policy_group.command("dry-run")
@click.argument("project")
@click.option(
    "--policy",
    "policy_file",
    required=True,
    type=click.Path(path_type=Path),
    help="A project file, or a YAML mapping of policy fields.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def policy_dry_run(project: str, policy_file: Path, as_json: bool) -> None:
    """Replay PROJECT's recorded evaluations and approvals under a new policy."""
    from pydantic import ValidationError

    from unified_ai.policies.dry_run import replay
    from unified_ai.projects.loader import ProjectConfigError, format_validation_error, read_yaml
    from unified_ai.projects.schema import Policy
    from unified_ai.projects.schema_tasks import task_policy
    from unified_ai.queries import approval_records, evaluation_history

    def go():
        ctx = Context()
        config = ctx.project(project)
        raw = read_yaml(policy_file)  # one-line errors; duplicate keys refused
        raw = raw.get("policy", raw) if isinstance(raw, dict) else raw
        try:
            policy = Policy.model_validate(raw)
        except ValidationError as exc:
            raise ProjectConfigError(format_validation_error(policy_file, exc)) from None
        # The new policy is read as the project's task reads it: metrics left unset take the
        # task's defaults, and a metric of another task is refused in one line.
        try:
            policy = task_policy(config.model_copy(update={"policy": policy})) or policy
        except ValueError as exc:
            raise ProjectConfigError(f"{policy_file}: {exc}") from None
        reader = StoreReader(ctx.store())
        reports, promoted = evaluation_history(reader, config.name)
        results = replay(policy, reports, promoted, approval_records(reader, config.name))
        if as_json:
            click.echo(json.dumps([r.__dict__ for r in results], indent=2))
            return
        if not results:
            click.echo(f"{config.name}: no recorded evaluations to replay")
            return
        click.echo(
            f"replaying {len(results)} evaluation(s) of {config.name} under "
            f"{policy.version()} (recorded under {config.policy_version}):"
        )
        for r in results:
            then = "promoted" if r.promoted_then else "not promoted"
            now = "allowed" if r.allowed_now else "BLOCKED"
            mark = "  <- differs" if r.changed else ""
            click.echo(
                f"  report {r.report_version} model {r.model_version} ({r.evaluated_at}): "
                f"{then} then, {now} now{mark}"
            )
            for reason in r.reasons:
                click.echo(f"      {reason}")
        blocked = sum(r.promoted_then and not r.allowed_now for r in results)
        freed = sum(not r.promoted_then and r.allowed_now for r in results)
        click.echo(
            f"{blocked} past promotion(s) would have been blocked; {freed} evaluation(s) "
            "not promoted would have been allowed"
        )

    run(go)
