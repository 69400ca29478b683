"""The `unified-ai` command line.

Every command exits non-zero with a one-line reason on error.
"""

import json
import sys
from pathlib import Path

import click

from unified_ai.defs.keys import (
    CANDIDATE_MODEL,
    DEPLOYED_MODEL,
    EVALUATION_REPORT,
    HOLDOUT_SPLIT,
    TRAIN_SPLIT,
    TRAINING_DATA,
)

ASSETS = (
    TRAINING_DATA,
    TRAIN_SPLIT,
    HOLDOUT_SPLIT,
    CANDIDATE_MODEL,
    EVALUATION_REPORT,
    DEPLOYED_MODEL,
)


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

        return LineageStore(f"{self.settings.home.rstrip('/')}/store")


def _run(fn):
    """Turn expected failures into a one-line error and exit code 1."""
    from unified_ai.io.store import LineageStoreError
    from unified_ai.projects.loader import ProjectConfigError
    from unified_ai.runtime import RuntimeConfigError

    try:
        return fn()
    except (ProjectConfigError, RuntimeConfigError, LineageStoreError) as exc:
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
        for asset in ASSETS:
            version = store.current_version([config.name, asset])
            click.echo(f"{asset:<20} {version or '(not materialized)'}")
        deployed = store.current_version([config.name, DEPLOYED_MODEL])
        if deployed:
            from unified_ai.io.formats import deserialize

            manifest, files = store.read_files([config.name, DEPLOYED_MODEL], deployed)
            payload = deserialize(manifest.kind, files, where=f"{config.name}/{DEPLOYED_MODEL}")
            click.echo(
                f"champion: model {payload['model_version']} ({payload['model_uri']}), "
                f"deployed {payload['deployed_at']} by {payload['deployed_by']} under "
                f"{payload['policy_version']}"
            )

    _run(go)


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


if __name__ == "__main__":
    main()
