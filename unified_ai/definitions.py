"""The code location's one entry point (`workspace.yaml`, the image and the Helm values name it).

Nothing is built at import: Dagster calls `defs()` when it loads the code location. Dagster's
component tree loads the defs folders (`unified_ai/defs/`: the `ModelProject` components and
anything scaffolded there; and each component folder of `UNIFIED_AI_PROJECTS`), the plain
project files of `UNIFIED_AI_PROJECTS` are added, and the resources are bound, once, for the
selected runtime (`unified_ai.project_tree`). Every project, wherever it is declared, is validated
by the same schema and built by the same function (`unified_ai.stages.project.build_project`).
"""

import dagster as dg

from unified_ai.lifetime import kept_for_the_process
from unified_ai.runtime import SIGNING_KEY_ENV, Runtime, Settings


def build_resources(settings: Settings) -> dict:
    """Resources for the selected runtime, bound in this one place."""
    from unified_ai.resources.identity import Identity
    from unified_ai.resources.inbox import Inbox
    from unified_ai.resources.io_manager import LineageIOManager
    from unified_ai.resources.mlflow_registry import MlflowRegistry
    from unified_ai.resources.notifications import Notifier
    from unified_ai.resources.serving_target import ServingTarget
    from unified_ai.resources.storage import LineageStorage
    from unified_ai.resources.training_runner import TrainingRunner

    # The key was read and checked in `runtime`; binding the variable's name (not its value)
    # keeps the key out of the resource config Dagster shows in the UI and stores with runs.
    signing_key = dg.EnvVar(SIGNING_KEY_ENV) if settings.signing_key else ""
    storage = LineageStorage(root=settings.store_root, signing_key=signing_key)
    return {
        "lineage": storage,
        "inbox": Inbox(root=settings.inbox_root),
        "notifier": Notifier(outbox=settings.outbox_root, webserver_url=settings.dagster_ui_url),
        "identity": Identity(tag=settings.identity_tag),
        "training_runner": TrainingRunner(
            mode="k8s" if settings.runtime is Runtime.K8S else "subprocess", image=settings.image
        ),
        "io_manager": LineageIOManager(storage=storage),
        "serving_target": ServingTarget.from_settings(settings),
        "mlflow": MlflowRegistry(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=settings.mlflow_artifact_root,
            ui_url=settings.mlflow_ui_url,
            dagster_ui_url=settings.dagster_ui_url,
            telemetry=settings.mlflow_telemetry,
        ),
    }


def build_executor(settings: Settings):
    if settings.runtime is Runtime.K8S:
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    # Each multiprocess step pays a process start and a code-location import; in-process is
    # several times faster for graphs of this size.
    return dg.in_process_executor


def build_definitions(settings: Settings, projects: list) -> dg.Definitions:
    """Definitions for `projects` under `settings`, with the resources and executor.

    Tests call it directly with the projects they need; `defs()` passes the projects of
    plain project files (Dagster builds the components when it builds their trees).
    """
    from unified_ai.stages.project import build_project

    return dg.Definitions.merge(
        *[build_project(project) for project in projects],
        dg.Definitions(resources=build_resources(settings), executor=build_executor(settings)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    # The code location lives as long as the process that loads it (`unified_ai.lifetime`).
    with kept_for_the_process("definitions"):
        return _load()


def _load() -> dg.Definitions:
    from unified_ai.project_tree import build_trees, component_trees, discover_projects
    from unified_ai.runtime import load_settings

    settings = load_settings()
    trees = component_trees(settings.projects_dir)
    # Every project is validated first (the trees load their components once), so a name used
    # twice is refused in one line naming both files.
    plain = [s.project for s in discover_projects(settings.projects_dir, trees) if s.tree is None]
    return dg.Definitions.merge(*build_trees(trees), build_definitions(settings, plain))
