"""The `unified-ai` command line.

Every command exits non-zero with a one-line reason on error.
"""

import json
import sys
from pathlib import Path

import click

from unified_ai.names import (
    ACTOR_TAG,
    DECISION_ASSETS,
    DEPLOYED_MODEL,
    LOOP_ASSETS,
    MATERIALIZE_ACTION,
    PROJECT_ASSETS,
    sensor_names,
)

#: What `history` shows by default: the assets whose versions a person deploys or rolls back.
ASSETS = (*LOOP_ASSETS, *DECISION_ASSETS)
ALL_ASSETS = PROJECT_ASSETS


class _Context:
    def __init__(self):
        from unified_ai.runtime import load_settings

        self.settings = load_settings()

    def projects(self):
        from unified_ai.projects.loader import load_projects

        return {p.name: p for p in load_projects(self.settings.projects_dir)}

    def project(self, name: str):
        projects = self.projects()
        if name not in projects:
            raise click.ClickException(
                f"unknown project {name!r} (known: {', '.join(sorted(projects))})"
            )
        return projects[name]

    def store(self):
        from unified_ai.io.store import LineageStore

        return LineageStore(self.settings.store_root, signing_key=self.settings.signing_key or None)


def _run(fn):
    """Turn expected failures into a one-line error and exit code 1."""
    from unified_ai.io.formats import UnsupportedValueError
    from unified_ai.io.store import LineageStoreError
    from unified_ai.launch import LaunchError
    from unified_ai.policies.rollback import RollbackError
    from unified_ai.projects.loader import ProjectConfigError
    from unified_ai.runtime import RuntimeConfigError

    try:
        return fn()
    except (
        ProjectConfigError,
        RuntimeConfigError,
        LineageStoreError,
        LaunchError,
        RollbackError,
        UnsupportedValueError,
    ) as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """unified-ai: evaluation-gated, lineage-tracked ML on Dagster."""


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
            for p in _Context().projects().values()
        ]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            click.echo(
                f"{row['name']:<24} {row['estimator']:<32} {row['policy_version']:<32} "
                f"{row['source']}"
            )

    _run(go)


@main.command("status")
@click.argument("project")
def status_cmd(project: str) -> None:
    """Show the current version of each asset of PROJECT and what is deployed."""

    def go():
        ctx = _Context()
        config = ctx.project(project)
        store = ctx.store()
        for asset in LOOP_ASSETS:
            version = store.current_version([config.name, asset])
            click.echo(f"{asset:<20} {version or '(not materialized)'}")
        deployed = store.current_version([config.name, DEPLOYED_MODEL])
        if deployed:
            payload = store.read_value([config.name, DEPLOYED_MODEL], deployed)
            click.echo(
                f"champion: model {payload['model_version']} ({payload['model_uri']}), "
                f"deployed {payload['deployed_at']} by {payload['deployed_by']} under "
                f"{payload['policy_version']}"
            )

    _run(go)


def _check_asset(asset: str) -> None:
    if asset not in ALL_ASSETS:
        raise click.ClickException(f"unknown asset {asset!r} (known: {', '.join(ALL_ASSETS)})")


@main.command("history")
@click.argument("project")
@click.argument("asset", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def history_cmd(project: str, asset: str | None, as_json: bool) -> None:
    """Every pointer move of PROJECT's assets (or one ASSET), newest first.

    Ends with the deployment ledger: which model was live from when until when.
    """

    def go():
        ctx = _Context()
        config = ctx.project(project)
        store = ctx.store()
        if asset:
            _check_asset(asset)
        assets = [asset] if asset else list(ASSETS)
        moves = []
        for name in assets:
            history = store.history([config.name, name])
            live = store.current_version([config.name, name])
            for index, move in enumerate(history):
                # The newest move made its version current; `store verify` reports a pointer
                # that disagrees, and no entry is marked live then.
                newest = index == len(history) - 1
                moves.append(
                    {**move.__dict__, "asset": name, "current": newest and move.version == live}
                )
        moves.sort(key=lambda m: m["at"], reverse=True)
        ledger = _ledger(store, config.name) if DEPLOYED_MODEL in assets else []
        if as_json:
            click.echo(json.dumps({"moves": moves, "deployments": ledger}, indent=2))
            return
        if not moves:
            click.echo(f"{config.name}: nothing materialized yet")
            return
        click.echo(
            f"{'time':<29} {'asset':<19} {'version':<18} {'action':<12} {'actor':<20} "
            f"{'run':<9} reason"
        )
        for m in moves:
            version = m["version"] + ("*" if m["current"] else " ")
            click.echo(
                f"{m['at']:<29} {m['asset']:<19} {version:<18} {m['action']:<12} "
                f"{(m['actor'] or '-'):<20} {(m['run_id'] or '-')[:8]:<9} {m['reason'] or ''}"
            )
        click.echo("(* = current version)")
        if ledger:
            click.echo("")
            click.echo("what was live when (deployed_model):")
            for row in ledger:
                until = row["until"] or "now"
                click.echo(
                    f"  {row['from']} → {until:<29} deployment {row['version']} "
                    f"model {row['model_version']} ({row['action']} by {row['actor'] or '-'})"
                )

    _run(go)


def _ledger(store, project: str) -> list[dict]:
    """Live intervals of deployments, oldest first."""
    moves = store.history([project, DEPLOYED_MODEL])
    rows = []
    for index, move in enumerate(moves):
        until = moves[index + 1].at if index + 1 < len(moves) else None
        payload = store.read_value([project, DEPLOYED_MODEL], move.version)
        rows.append(
            {
                "from": move.at,
                "until": until,
                "version": move.version,
                "model_version": payload["model_version"],
                "action": move.action,
                "actor": move.actor,
            }
        )
    return rows


@main.command("lineage")
@click.argument("project")
@click.argument("asset")
@click.option("--version", "version", default=None, help="A stored version (default: current).")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON.")
def lineage_cmd(project: str, asset: str, version: str | None, as_json: bool) -> None:
    """The upstream tree of ASSET's version: which data, split, model and report produced it."""
    from unified_ai.io.lineage import lineage_tree, render_tree

    def go():
        ctx = _Context()
        config = ctx.project(project)
        _check_asset(asset)
        store = ctx.store()
        chosen = version or store.require_current([config.name, asset])
        tree = lineage_tree(store, [config.name, asset], chosen)
        if as_json:
            click.echo(json.dumps(tree, indent=2))
        else:
            click.echo("\n".join(render_tree(tree)))

    _run(go)


@main.command("rollback")
@click.argument("project")
@click.option(
    "--to",
    "to_version",
    default="",
    help="Deployment or model version to restore "
    "(default: the previous deployment that passed its gates).",
)
@click.option("--reason", required=True, help="Why; kept in the incident record.")
@click.option("--by", "actor", default=None, help="Who is rolling back (default: $USER).")
@click.option("--url", default=None, help="Run on this Dagster webserver instead of locally.")
def rollback_cmd(
    project: str, to_version: str, reason: str, actor: str | None, url: str | None
) -> None:
    """Restore an earlier deployment of PROJECT: pointer, MLflow alias, incident record."""
    import os

    from unified_ai.launch import run_job
    from unified_ai.names import rollback_job
    from unified_ai.stages.rollback.jobs import rollback_run_config

    def go():
        config = _Context().project(project)
        who = actor or os.environ.get("USER") or "cli"
        result = run_job(
            rollback_job(config.name),
            rollback_run_config(config, reason=reason, trigger=f"cli:{who}", to_version=to_version),
            {ACTOR_TAG: who},
            url=url,
        )
        store = _Context().store() if not url else None
        now = store.current_version([config.name, DEPLOYED_MODEL]) if store else None
        click.echo(
            f"rolled back {config.name} in run {result.run_id}"
            + (f"; deployed version is now {now}" if now else "")
        )

    _run(go)


PENDING_LABELS = ".pending_labels"


def _write_atomic(frame, folder, name: str) -> None:
    """Write a CSV under a hidden temporary name, then rename: sensors never see half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"
    with temporary.open("w") as handle:
        frame.to_csv(handle, index=False)
    temporary.rename(folder / name)


@main.command("simulate")
@click.argument("project")
@click.option("--batches", default=0, show_default=True, help="How many batches to write.")
@click.option("--rows", default=200, show_default=True, help="Rows per batch.")
@click.option(
    "--drift",
    "drift",
    multiple=True,
    help="shift:COL=SIGMAS, scale:COL=FACTOR, mix:COL=VALUE, flip:SHARE (repeatable).",
)
@click.option(
    "--labels",
    is_flag=True,
    help="Deliver the ground truth of batches written earlier (as it arrives in life).",
)
@click.option("--seed", default=None, type=int, help="Random seed (default: time-based).")
def simulate_cmd(
    project: str, batches: int, rows: int, drift: tuple[str, ...], labels: bool, seed: int | None
) -> None:
    """Write production batches into PROJECT's inbox from rows the model never trained on."""
    import time

    from unified_ai.ml.simulate import DriftSpecError, make_batch, parse_drift
    from unified_ai.names import HOLDOUT_SPLIT, training_loop_job
    from unified_ai.resources.inbox import Inbox

    def go():
        if not batches and not labels:
            raise click.ClickException("nothing to do: give --batches N and/or --labels")
        ctx = _Context()
        config = ctx.project(project)
        inbox = Inbox(root=ctx.settings.inbox_root).folder(config)
        try:
            spec = parse_drift(list(drift), config)
        except DriftSpecError as exc:
            raise click.ClickException(str(exc)) from None
        written = []
        if batches:
            store = ctx.store()
            holdout = store.current_version([config.name, HOLDOUT_SPLIT])
            if holdout is None:
                raise click.ClickException(
                    f"{config.name} has no holdout split yet: run {training_loop_job(config.name)} "
                    "first (batches are drawn from rows the model never trained on)"
                )
            pool = store.read_value([config.name, HOLDOUT_SPLIT], holdout)
            base = seed if seed is not None else time.time_ns() % 2**31
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
            for index in range(batches):
                name = f"batch-{stamp}-{time.time_ns() % 10**9:09d}-{index:03d}.csv"
                features, truth = make_batch(config, pool, rows, spec, base + index, name)
                _write_atomic(truth, inbox / PENDING_LABELS, name)
                _write_atomic(features, inbox, name)
                written.append(name)
            click.echo(f"wrote {len(written)} batch(es) of {rows} rows to {inbox}")
        if labels:
            pending = inbox / PENDING_LABELS
            names = sorted(p.name for p in pending.iterdir()) if pending.exists() else []
            names = [n for n in names if n not in written and not n.startswith(".")]
            target = inbox / "labels"
            target.mkdir(parents=True, exist_ok=True)
            for name in names:
                (pending / name).rename(target / name)
            click.echo(f"delivered labels for {len(names)} earlier batch(es) to {target}")

    _run(go)


@main.command("impact")
@click.argument("project")
@click.argument("asset")
@click.option("--version", "version", required=True, help="The suspect version.")
@click.option("--pause", is_flag=True, help="Pause the automations that would consume it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def impact_cmd(project: str, asset: str, version: str, pause: bool, as_json: bool) -> None:
    """Blast radius of ASSET@VERSION: everything built from it, what is live, what acts next."""
    from unified_ai.io.lineage import downstream_of, stored_paths
    from unified_ai.names import CONSUMES
    from unified_ai.resources.automations import Automations

    def go():
        ctx = _Context()
        config = ctx.project(project)
        _check_asset(asset)
        store = ctx.store()
        paths = stored_paths(store, config.name, list(ALL_ASSETS))
        rows = downstream_of(store, paths, [config.name, asset], version)
        touched = {asset} | {row["asset"].split("/")[1] for row in rows}
        names = sensor_names(config.name)
        automations = sorted(names[role] for role, uses in CONSUMES.items() if uses & touched)
        switches = Automations(root=ctx.settings.paused_root)
        if pause:
            for sensor in automations:
                switches.pause(sensor, f"impact analysis of {config.name}/{asset}@{version}")
        if as_json:
            click.echo(
                json.dumps(
                    {"built_from_it": rows, "automations": automations, "paused": pause}, indent=2
                )
            )
            return
        click.echo(f"{config.name}/{asset}@{version} was used to build {len(rows)} version(s):")
        for row in rows:
            live = (
                "  <- LIVE"
                if row["current"] and row["asset"].endswith(DEPLOYED_MODEL)
                else ("  (current)" if row["current"] else "")
            )
            click.echo(f"  {row['asset']}@{row['version']}  from {row['built_from']}{live}")
        click.echo("automations that would consume it next: " + (", ".join(automations) or "none"))
        if pause and automations:
            click.echo(f"paused them; resume with: unified-ai resume {config.name}")

    _run(go)


@main.command("resume")
@click.argument("project")
@click.argument("sensors", nargs=-1)
def resume_cmd(project: str, sensors: tuple[str, ...]) -> None:
    """Resume PROJECT's paused automations (all, or the SENSORS named)."""
    from unified_ai.resources.automations import Automations

    def go():
        ctx = _Context()
        config = ctx.project(project)
        known = set(sensor_names(config.name).values())
        unknown = set(sensors) - known
        if unknown:
            raise click.ClickException(
                f"unknown sensor(s) {sorted(unknown)} (known: {', '.join(sorted(known))})"
            )
        switches = Automations(root=ctx.settings.paused_root)
        resumed = [s for s in (sensors or sorted(known)) if switches.resume(s)]
        click.echo(f"resumed: {', '.join(resumed) or 'nothing was paused'}")

    _run(go)


def _decide(
    project: str, version: str, decision: str, approver: str | None, comment: str, url: str | None
) -> None:
    import os

    from unified_ai.launch import run_job
    from unified_ai.names import approve_job, deploy_job
    from unified_ai.stages.approval.jobs import approval_run_config

    def go():
        config = _Context().project(project)
        who = approver or os.environ.get("USER") or ""
        result = run_job(
            approve_job(config.name),
            approval_run_config(
                config, model_version=version, decision=decision, approver=who, comment=comment
            ),
            {ACTOR_TAG: who},
            url=url,
        )
        verb = "approval" if decision == "approve" else "rejection"
        click.echo(
            f"recorded {verb} of {config.name} model {version} by {who} (run {result.run_id})"
        )
        if decision == "approve":
            click.echo(
                "it deploys once policy's approvals are met (approval sensor), or run "
                f"{deploy_job(config.name)}"
            )

    _run(go)


@main.command("approve")
@click.argument("project")
@click.option("--version", "version", required=True, help="The candidate_model version.")
@click.option("--by", "approver", default=None, help="Who approves (default: $USER).")
@click.option("--comment", default="", help="Why.")
@click.option("--url", default=None, help="Run on this Dagster webserver instead of locally.")
def approve_cmd(
    project: str, version: str, approver: str | None, comment: str, url: str | None
) -> None:
    """Approve PROJECT's evaluated candidate VERSION for deployment."""
    _decide(project, version, "approve", approver, comment, url)


@main.command("reject")
@click.argument("project")
@click.option("--version", "version", required=True, help="The candidate_model version.")
@click.option("--by", "approver", default=None, help="Who rejects (default: $USER).")
@click.option("--reason", required=True, help="Why; kept in the audit trail.")
@click.option("--url", default=None, help="Run on this Dagster webserver instead of locally.")
def reject_cmd(
    project: str, version: str, approver: str | None, reason: str, url: str | None
) -> None:
    """Reject PROJECT's candidate VERSION: it will not be deployed."""
    _decide(project, version, "reject", approver, reason, url)


@main.group("policy")
def policy_group() -> None:
    """Validate project and policy files."""


@policy_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def policy_check(paths: tuple[Path, ...]) -> None:
    """Validate project files (default: every project the code location loads).

    Prints `file: field: reason` for each invalid file and exits 1 if any is invalid.
    """
    from unified_ai.projects.loader import ProjectConfigError, load_project_file, project_files

    def go():
        files = list(paths) or project_files(_Context().settings.projects_dir)
        failures = 0
        for path in files:
            try:
                project = load_project_file(path)
            except ProjectConfigError as exc:
                failures += 1
                click.echo(str(exc), err=True)
            else:
                click.echo(f"{path}: ok ({project.name}, {project.policy_version})")
        if failures:
            sys.exit(1)

    _run(go)


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
    from datetime import datetime

    from pydantic import ValidationError

    from unified_ai.names import EVALUATION_REPORT
    from unified_ai.policies.dry_run import replay
    from unified_ai.projects.loader import ProjectConfigError, format_validation_error, read_yaml
    from unified_ai.projects.schema import Policy
    from unified_ai.stages.approval.assets import approval_records

    def go():
        ctx = _Context()
        config = ctx.project(project)
        raw = read_yaml(policy_file)  # one-line errors; duplicate keys refused
        raw = raw.get("policy", raw) if isinstance(raw, dict) else raw
        try:
            policy = Policy.model_validate(raw)
        except ValidationError as exc:
            raise ProjectConfigError(format_validation_error(policy_file, exc)) from None
        store = ctx.store()
        report_path = [config.name, EVALUATION_REPORT]
        reports = [
            (m.version, m.created_at, store.read_value(report_path, m.version).body)
            for m in store.versions(report_path)
        ]
        promoted = {}
        for move in store.history([config.name, DEPLOYED_MODEL]):
            if move.action == MATERIALIZE_ACTION:
                payload = store.read_value([config.name, DEPLOYED_MODEL], move.version)
                promoted.setdefault(
                    payload["evaluation_report_version"], datetime.fromisoformat(move.at)
                )
        results = replay(policy, reports, promoted, approval_records(store, config))
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

    _run(go)


@main.group("store")
def store_group() -> None:
    """Inspect the lineage store."""


@store_group.command("verify")
@click.argument("project", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def store_verify(project: str | None, as_json: bool) -> None:
    """Check every checksum, pointer and history chain (of PROJECT, or the whole store).

    Prints each problem on one line (asset@version, path, reason) and exits 1 if there is any.
    Staging folders left by writers that died are removed.
    """

    def go():
        ctx = _Context()
        store = ctx.store()
        prefix = [project] if project else []
        if project and not store.asset_paths(prefix) and project not in ctx.projects():
            ctx.project(project)  # raises: unknown project, with the known ones
        report = store.verify(prefix)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "assets": report.assets,
                        "versions": report.versions,
                        "problems": [p.__dict__ for p in report.problems],
                        "cleaned": report.cleaned,
                    },
                    indent=2,
                )
            )
        else:
            scope = project or "the store"
            for path in report.cleaned:
                click.echo(f"removed stale staging folder {path}")
            for p in report.problems:
                click.echo(p.problem, err=True)  # one line: asset@version, path and reason
            verdict = f"{len(report.problems)} problem(s)" if report.problems else "no problems"
            click.echo(
                f"checked {report.assets} asset(s) and {report.versions} version(s) of {scope}: "
                f"{verdict}"
            )
        if report.problems:
            sys.exit(1)

    _run(go)


@main.command("serve")
@click.argument("project")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--poll-seconds", default=0.5, show_default=True, help="How often the deployment is checked."
)
@click.option(
    "--flush-rows", default=1000, show_default=True, help="Served rows per inbox batch file."
)
@click.option(
    "--flush-seconds",
    default=30.0,
    show_default=True,
    help="Longest wait before served rows are written to the inbox.",
)
@click.option("--max-rows", default=1000, show_default=True, help="Rows per request (else 413).")
@click.option(
    "--max-body-bytes",
    default=4 * 1024 * 1024,
    show_default=True,
    help="Largest request body (else 413).",
)
@click.option(
    "--max-concurrent", default=4, show_default=True, help="Requests scored at the same time."
)
@click.option(
    "--queue-seconds",
    default=2.0,
    show_default=True,
    help="Wait for a scoring slot before answering 503.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve_cmd(
    project: str,
    host: str,
    port: int,
    poll_seconds: float,
    flush_rows: int,
    flush_seconds: float,
    max_rows: int,
    max_body_bytes: int,
    max_concurrent: int,
    queue_seconds: float,
    log_level: str,
) -> None:
    """Serve PROJECT's deployed model over HTTP, following deployments and rollbacks.

    POST /v1/projects/PROJECT/predict scores JSON rows; served rows reach the inbox as
    production batches. /healthz, /readyz, /metrics (Prometheus) and /docs (OpenAPI).
    """

    def go():
        # The web stack is imported here only: the code location never loads it.
        from unified_ai.resources.inbox import Inbox
        from unified_ai.serving.app import ServeConfigError, ServeOptions, run

        ctx = _Context()
        config = ctx.project(project)
        try:
            options = ServeOptions(
                poll_seconds=poll_seconds,
                flush_rows=flush_rows,
                flush_seconds=flush_seconds,
                max_rows=max_rows,
                max_body_bytes=max_body_bytes,
                max_concurrent=max_concurrent,
                queue_seconds=queue_seconds,
            )
        except ServeConfigError as exc:
            raise click.ClickException(str(exc)) from None
        inbox = Inbox(root=ctx.settings.inbox_root).folder(config)
        run(config, ctx.store(), inbox, options, host=host, port=port, log_level=log_level)

    _run(go)


if __name__ == "__main__":
    main()
