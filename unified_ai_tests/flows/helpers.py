"""Running a project's loop in-process against a real instance, as the UI would."""

import dagster as dg

from unified_ai.cli.launch import step_failure_messages
from unified_ai.definitions import build_definitions
from unified_ai.io.store import LineageStore
from unified_ai.project_tree import load_projects
from unified_ai.runtime import load_settings


def project_defs(projects_dir=None) -> dg.Definitions:
    settings = load_settings()
    return build_definitions(settings, load_projects(str(projects_dir) if projects_dir else None))


def materialize(defs: dg.Definitions, instance, selection) -> dg.ExecuteInProcessResult:
    """Materialize `selection` (an AssetSelection) with the definitions' resources."""
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=selection,
        resources=defs.resources,
        instance=instance,
        raise_on_error=False,
    )


def run_loop(defs, instance, project: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(f"{project}__training_loop").execute_in_process(
        instance=instance, raise_on_error=False
    )


def new_source_rows(projects_dir, name: str = "small", seed: int = 1) -> None:
    """Give a small test project another draw of source rows, so a retrain learns a new model.

    A retrain on unchanged rows rebuilds the champion exactly, and the loop never deploys a
    model identical to the one it would replace.
    """
    from unified_ai_tests.conftest import make_frame

    make_frame(seed=seed).to_csv(projects_dir / f"{name}.csv", index=False)


def store(home) -> LineageStore:
    return LineageStore(home / "store")


def current(home, project: str, asset: str):
    """(version, value) of the asset's current pointer; `asset` may be `name/partitions/key`."""
    lineage = store(home)
    path = [project, *asset.split("/")]
    version = lineage.require_current(path)
    return version, lineage.read_value(path, version)


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    return {e.check_name: (e.passed, e.description) for e in result.get_asset_check_evaluations()}


def step_failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return step_failure_messages(result)
