"""The `unified-ai` group and what every command shares: settings, projects, the store, errors.

Every command exits non-zero with a one-line reason on error.
"""

import click

from unified_ai.names import DECISION_ASSETS, LOOP_ASSETS, PROJECT_ASSETS

#: What `history` shows by default: the assets whose versions a person deploys or rolls back.
ASSETS = (*LOOP_ASSETS, *DECISION_ASSETS)
ALL_ASSETS = PROJECT_ASSETS


class Context:
    """Settings of this environment, its projects and its lineage store."""

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


def run(fn):
    """Turn expected failures into a one-line error and exit code 1."""
    from unified_ai.io.formats import UnsupportedValueError
    from unified_ai.io.store import LineageStoreError
    from unified_ai.launch import LaunchError
    from unified_ai.payloads import PayloadError
    from unified_ai.projects.loader import ProjectConfigError
    from unified_ai.runtime import RuntimeConfigError
    from unified_ai.stages.rollback.choose import RollbackError

    try:
        return fn()
    except (
        ProjectConfigError,
        RuntimeConfigError,
        LineageStoreError,
        LaunchError,
        RollbackError,
        UnsupportedValueError,
        PayloadError,
    ) as exc:
        raise click.ClickException(str(exc)) from None


def check_asset(asset: str) -> None:
    if asset not in ALL_ASSETS:
        raise click.ClickException(f"unknown asset {asset!r} (known: {', '.join(ALL_ASSETS)})")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """unified-ai: evaluation-gated, lineage-tracked ML on Dagster."""
