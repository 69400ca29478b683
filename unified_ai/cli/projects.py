"""Commands about the projects themselves: list them, their status, their policy files."""

import json
import sys
from pathlib import Path

import click

from unified_ai.cli.app import Context, main, run
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
        for row in rows:
            click.echo(
                f"{row['name']:<24} {row['estimator']:<32} {row['policy_version']:<32} "
                f"{row['source']}"
            )

    run(go)


@main.command("status")
@click.argument("project")
def status_cmd(project: str) -> None:
    """Show the current version of each asset of PROJECT and what is deployed."""

    def go():
        ctx = Context()
        config = ctx.project(project)
        store = ctx.store()
        for asset in LOOP_ASSETS:
            version = store.current_version([config.name, asset])
            click.echo(f"{asset:<20} {version or '(not materialized)'}")
        found = current_deployment(StoreReader(store), config.name)
        if found:
            _, live = found
            click.echo(
                f"champion: model {live.model_version} ({live.model_uri}), "
                f"deployed {live.deployed_at} by {live.deployed_by} under {live.policy_version}"
            )

    run(go)


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
        files = list(paths) or project_files(Context().settings.projects_dir)
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
