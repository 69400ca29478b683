"""The code location's one entry point.

Nothing is built at import: Dagster calls `defs()` when it loads the code location. Resources
are bound here, once, for the selected runtime.
"""

import dagster as dg

from unified_ai.runtime import SIGNING_KEY_ENV, Runtime, Settings


def build_resources(settings: Settings) -> dict:
    """Resources for the selected runtime, bound in this one place."""
    from unified_ai.defs.approval.assets import Identity
    from unified_ai.io.manager import LineageIOManager
    from unified_ai.resources.automations import Automations
    from unified_ai.resources.inbox import Inbox
    from unified_ai.resources.mlflow_registry import MlflowRegistry
    from unified_ai.resources.notifications import Notifier
    from unified_ai.resources.storage import LineageStorage
    from unified_ai.resources.training_runner import TrainingRunner

    # The key was read and checked in `runtime`; binding the variable's name (not its value)
    # keeps the key out of the resource config Dagster shows in the UI and stores with runs.
    signing_key = dg.EnvVar(SIGNING_KEY_ENV) if settings.signing_key else ""
    storage = LineageStorage(root=settings.store_root, signing_key=signing_key)
    return {
        "lineage": storage,
        "inbox": Inbox(root=settings.inbox_root),
        "notifier": Notifier(outbox=settings.outbox_root),
        "automations": Automations(root=settings.paused_root),
        "identity": Identity(tag=settings.identity_tag),
        "training_runner": TrainingRunner(
            mode="k8s" if settings.runtime is Runtime.K8S else "subprocess"
        ),
        "io_manager": LineageIOManager(storage=storage),
        "mlflow": MlflowRegistry(
            tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifact_root
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
    """Definitions for `projects` under `settings` (the function tests call directly)."""
    from unified_ai.defs.project import build_project

    return dg.Definitions.merge(
        *[build_project(project) for project in projects],
        dg.Definitions(resources=build_resources(settings), executor=build_executor(settings)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    from unified_ai.projects.loader import load_projects
    from unified_ai.runtime import load_settings

    settings = load_settings()
    return build_definitions(settings, load_projects(settings.projects_dir))
