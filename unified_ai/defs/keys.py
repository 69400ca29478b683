"""Asset keys and shared definition metadata of a model project (the names are the contract)."""

import dagster as dg

from unified_ai.io.manager import POLICY_VERSION_METADATA
from unified_ai.projects.schema import ProjectConfig

TRAINING_DATA = "training_data"
TRAIN_SPLIT = "train_split"
HOLDOUT_SPLIT = "holdout_split"
CANDIDATE_MODEL = "candidate_model"
EVALUATION_REPORT = "evaluation_report"
DEPLOYED_MODEL = "deployed_model"
INCIDENTS = "incidents"
DEPLOYMENT_APPROVAL = "deployment_approval"
PRODUCTION_BATCH = "production_batch"
PREDICTIONS = "predictions"
DRIFT_REPORT = "drift_report"
GROUND_TRUTH = "ground_truth"
LIVE_PERFORMANCE = "live_performance"

#: The assets of the training loop, in order.
LOOP_ASSETS = (
    TRAINING_DATA,
    TRAIN_SPLIT,
    HOLDOUT_SPLIT,
    CANDIDATE_MODEL,
    EVALUATION_REPORT,
    DEPLOYED_MODEL,
)


def key(project: ProjectConfig, name: str) -> dg.AssetKey:
    """`[project, name]`: every asset of a project is prefixed by the project name."""
    return dg.AssetKey([project.name, name])


def training_loop_job_name(project: ProjectConfig) -> str:
    return f"{project.name}__training_loop"


def approve_job_name(project: ProjectConfig) -> str:
    return f"{project.name}__approve"


def deploy_job_name(project: ProjectConfig) -> str:
    return f"{project.name}__deploy"


def batches_partitions(project: ProjectConfig) -> dg.DynamicPartitionsDefinition:
    """One partition per production batch file of the project."""
    return dg.DynamicPartitionsDefinition(name=f"{project.name}__batches")


def op_name(project: ProjectConfig, name: str) -> str:
    """The op that materializes asset `name` (used in run config)."""
    return f"{project.name}__{name}"


def asset_metadata(project: ProjectConfig) -> dict[str, str]:
    """Definition metadata every project asset carries (read by the lineage IO manager)."""
    return {POLICY_VERSION_METADATA: project.policy_version, "unified_ai/project": project.name}


def run_actor(context: dg.AssetExecutionContext) -> str:
    """Who triggered the run: the actor tag, the UI user, or `dagster`."""
    tags = context.run.tags
    return tags.get("unified_ai/actor") or tags.get("dagster/user") or "dagster"
