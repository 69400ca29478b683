"""The names others rely on: assets, jobs, sensors, run tags, metadata keys and columns.

Dashboards, alert rules, the Helm chart's concurrency limits, `unified-ai` commands and stored
metadata refer to these strings, so each is defined here once and everything else imports it.
Pure: no Dagster import (the Dagster-typed helpers, such as asset keys, are in
`unified_ai.stages.common`).
"""

from collections.abc import Mapping

# -- assets of a model project (each key is `[project, name]`) ----------------------------------
TRAINING_DATA = "training_data"
TRAIN_SPLIT = "train_split"
HOLDOUT_SPLIT = "holdout_split"
CANDIDATE_MODEL = "candidate_model"
EVALUATION_REPORT = "evaluation_report"
DEPLOYED_MODEL = "deployed_model"
DEPLOYMENT_APPROVAL = "deployment_approval"
INCIDENTS = "incidents"
PRODUCTION_BATCH = "production_batch"
PREDICTIONS = "predictions"
DRIFT_REPORT = "drift_report"
GROUND_TRUTH = "ground_truth"
LIVE_PERFORMANCE = "live_performance"
SERVING_CONFIG = "serving_config"
#: The predictions of a batch routed to people (only in projects with `policy.review`).
REVIEW_QUEUE = "review_queue"

#: The assets of the training loop, in order.
LOOP_ASSETS = (
    TRAINING_DATA,
    TRAIN_SPLIT,
    HOLDOUT_SPLIT,
    CANDIDATE_MODEL,
    EVALUATION_REPORT,
    DEPLOYED_MODEL,
)
#: Versions the training loop builds on the way to a deployment (a rollback restores none of
#: them: it names them when a version given to it is not a deployment).
BUILT_FOR_DEPLOYMENT = tuple(name for name in LOOP_ASSETS if name != DEPLOYED_MODEL)
#: Rendered again in every run that moves the deployment pointer (the training loop, the deploy
#: job, the rollback job), so they always describe what is deployed.
FOLLOWS_DEPLOYMENT = (SERVING_CONFIG,)
#: Records of decisions: a person's approval, a rollback's incident.
DECISION_ASSETS = (DEPLOYMENT_APPROVAL, INCIDENTS)
#: The monitoring loop: production batches (one partition each) to live performance.
MONITORING_ASSETS = (PRODUCTION_BATCH, PREDICTIONS, DRIFT_REPORT, GROUND_TRUTH, LIVE_PERFORMANCE)
#: Assets with one partition per production batch, stored under `<asset>/partitions/<batch>`.
BATCH_ASSETS = (PRODUCTION_BATCH, PREDICTIONS, DRIFT_REPORT, GROUND_TRUTH)
#: Every asset of a project (`unified_ai_tests/test_names.py` compares it with the graph).
PROJECT_ASSETS = (*LOOP_ASSETS, *FOLLOWS_DEPLOYMENT, *DECISION_ASSETS, *MONITORING_ASSETS)
#: The folder under an asset's store path that holds its partitions.
PARTITIONS = "partitions"
#: A store record beside the assets (not an asset): the production batches a person excluded
#: from training (`unified-ai exclude`, `unified-ai impact --pause` on a batch), with why.
BATCH_EXCLUSIONS = "batch_exclusions"

#: A store record beside the assets (not an asset): reviewers' answers to `review_queue` items,
#: one stored version per answer under `reviews/partitions/<batch>`.
REVIEWS = "reviews"

#: The `type:` of a model project in a `defs.yaml` of Dagster's defs folder.
MODEL_PROJECT_TYPE = "unified_ai.ModelProject"

# -- jobs, ops and partitions -----------------------------------------------------------------


def training_loop_job(project: str) -> str:
    return f"{project}__training_loop"


def approve_job(project: str) -> str:
    return f"{project}__approve"


def deploy_job(project: str) -> str:
    return f"{project}__deploy"


def rollback_job(project: str) -> str:
    return f"{project}__rollback"


def score_batch_job(project: str) -> str:
    return f"{project}__score_batch"


def ingest_labels_job(project: str) -> str:
    return f"{project}__ingest_labels"


def route_reviews_job(project: str) -> str:
    """Routes scored batches to people (projects with `policy.review`)."""
    return f"{project}__route_reviews"


def review_job(project: str) -> str:
    """Records one reviewer's answer to a routed prediction (launchpad config)."""
    return f"{project}__review"


def op_name(project: str, asset: str) -> str:
    """The op that materializes `asset` (the key of its config in run config)."""
    return f"{project}__{asset}"


def splits_op(project: str) -> str:
    """The one op that materializes both splits."""
    return f"{project}__splits"


def batches_partitions(project: str) -> str:
    """The dynamic partitions holding one key per production batch file."""
    return f"{project}__batches"


# -- sensors ----------------------------------------------------------------------------------
#: Roles of the monitoring sensors; `sensor_names` maps them to sensor names.
BATCHES = "batches"
LABELS = "labels"
DRIFT = "drift"
PERFORMANCE = "performance"
GROUND_TRUTH_ROLE = "ground_truth"


def sensor_names(project: str) -> dict[str, str]:
    """Name of each monitoring sensor of `project`, by role (see `CONSUMES`)."""
    return {
        BATCHES: f"{project}__batch_sensor",
        LABELS: f"{project}__labels_sensor",
        DRIFT: f"{project}__drift_trigger",
        PERFORMANCE: f"{project}__performance_trigger",
        GROUND_TRUTH_ROLE: f"{project}__ground_truth_trigger",
    }


def approval_sensor(project: str) -> str:
    return f"{project}__approval_sensor"


def gate_outcome_sensor(project: str) -> str:
    """Tells what the gates of the project's finished runs decided (people, MLflow tags)."""
    return f"{project}__gate_outcomes"


def run_failure_sensor(project: str) -> str:
    """Notifies the project's channels when one of its runs fails."""
    return f"{project}__run_failure_notifier"


def review_queue_sensor(project: str) -> str:
    """Applies `on_timeout` to overdue review items and tells the channels about the queue."""
    return f"{project}__review_queue"


#: The local code location's name (`workspace.yaml`, `[tool.dagster]`): the CLI loads it under
#: this name to change the same sensor state `dagster dev` shows.
CODE_LOCATION = "unified_ai"


#: Which stored assets each monitoring sensor's next run reads or acts on (`unified-ai impact`
#: pauses the sensors that would consume a suspect version).
CONSUMES: Mapping[str, frozenset[str]] = {
    BATCHES: frozenset({DEPLOYED_MODEL, CANDIDATE_MODEL, TRAIN_SPLIT}),
    LABELS: frozenset({PREDICTIONS, DEPLOYED_MODEL}),
    DRIFT: frozenset({DRIFT_REPORT, TRAIN_SPLIT, TRAINING_DATA}),
    PERFORMANCE: frozenset({LIVE_PERFORMANCE, DEPLOYED_MODEL, TRAINING_DATA, EVALUATION_REPORT}),
    GROUND_TRUTH_ROLE: frozenset({GROUND_TRUTH, PRODUCTION_BATCH, DEPLOYED_MODEL, TRAINING_DATA}),
}

# -- run tags ---------------------------------------------------------------------------------
#: Who or what started a run (a person, `cli:<user>`, a sensor).
ACTOR_TAG = "unified_ai/actor"
#: The user Dagster's UI records for runs it launches.
DAGSTER_USER_TAG = "dagster/user"
PROJECT_TAG = "unified_ai/project"
#: Set on training-loop runs only: `dagster.yaml` and the Helm values limit runs with this tag
#: to one per project.
TRAINING_LOOP_TAG = "unified_ai/training_loop"
ACTION_TAG = "unified_ai/action"
#: What made an automation launch the run (drift, live degradation, an approval, ...).
TRIGGER_TAG = "unified_ai/trigger"
POLICY_VERSION_TAG = "unified_ai/policy_version"
#: Prefix of the run tags that carry a trigger's evidence (`unified_ai/evidence.<name>`).
EVIDENCE_TAG_PREFIX = "unified_ai/evidence."
#: A run tag value Dagster accepts is short; longer evidence is cut to this length.
MAX_TAG_VALUE = 250


def actor_of(tags: Mapping[str, str]) -> str:
    """Who started a run: the actor tag, the UI user, or `dagster`."""
    return tags.get(ACTOR_TAG) or tags.get(DAGSTER_USER_TAG) or "dagster"


def evidence_tags(kind: str, policy_version: str, evidence: Mapping[str, object]) -> dict[str, str]:
    """What triggered a run, its evidence and the policy that decided, as run tags."""
    tags = {TRIGGER_TAG: kind, POLICY_VERSION_TAG: policy_version}
    tags.update({f"{EVIDENCE_TAG_PREFIX}{k}": str(v)[:MAX_TAG_VALUE] for k, v in evidence.items()})
    return tags


# -- metadata keys ----------------------------------------------------------------------------
#: Materialization metadata the lineage IO manager writes: the stored version, its folder, the
#: upstream versions it was built from and its files.
VERSION_METADATA = "lineage/version"
#: `evaluation_report` metadata: the candidate is the champion again (no deployment follows).
IDENTICAL_METADATA = "identical_to_champion"
#: `evaluation_report` metadata: the candidate's model version.
CANDIDATE_VERSION_METADATA = "candidate_version"
PATH_METADATA = "lineage/path"
UPSTREAM_METADATA = "lineage/upstream"
FILES_METADATA = "lineage/files"
#: Asset tag naming the stage that builds an asset (the asset's group is its project).
STAGE_TAG = "unified_ai/stage"
#: Output metadata of a table asset: its columns and their types (Dagster shows it in the UI).
COLUMN_SCHEMA_METADATA = "dagster/column_schema"
#: Definition metadata every project asset carries.
POLICY_VERSION_METADATA = "unified_ai/policy_version"
PROJECT_METADATA = "unified_ai/project"
#: `review_queue` metadata: how many items the batch routed (the daily cap sums it per day).
ROUTED_METADATA = "routed"
#: On a rollback's `deployed_model` materialization: who or what asked for it (incidents keep it).
TRIGGER_METADATA = "trigger"

# -- pointer moves ----------------------------------------------------------------------------
#: The `action` of a history entry: a run stored a new version, or a rollback moved the pointer
#: back (the store itself records `repair` entries).
MATERIALIZE_ACTION = "materialize"
ROLLBACK_ACTION = "rollback"
#: A move of the batch exclusions record: a person excluded (or re-included) batches.
EXCLUDE_ACTION = "exclude"
#: A move of the reviews record: a person answered (or skipped) a routed prediction.
REVIEW_ACTION = "review"

# -- columns ----------------------------------------------------------------------------------
#: Identifies a row from the training data or a production batch to its label.
ROW_ID = "_row_id"
#: Column of `predictions` naming the deployment that scored the row.
DEPLOYMENT_COLUMN = "deployment_version"
#: Columns of `predictions` with the shadow scores of the same rows: by the deployment a
#: rollback would restore (and its version), and by a candidate waiting for approval (and its
#: model version). Empty when there is none.
SHADOW_PREVIOUS_PROBA = "shadow_previous_proba"
SHADOW_PREVIOUS_DEPLOYMENT = "shadow_previous_deployment"
SHADOW_CANDIDATE_PROBA = "shadow_candidate_proba"
SHADOW_CANDIDATE_MODEL = "shadow_candidate_model"
#: `predictions` of a multiclass model: `proba_<i>` is the probability of class i (the index
#: in the model card's `classes`).
CLASS_PROBA_PREFIX = "proba_"
#: Column of `training_data` (and its splits) naming where each row came from: the project's
#: data source, or the production batch whose labeled rows it is. Never a model input.
ORIGIN = "_origin"
#: Column of `review_queue` identifying one routed prediction (stable across reruns).
REVIEW_ID = "review_id"
#: `_origin` of a `ground_truth` row: a label from the label inbox, or a reviewer's answer.
LABEL_ORIGIN = "label"
REVIEW_ORIGIN = "review"
#: Column of `ground_truth` naming who answered a row's review (empty for inbox labels).
REVIEWER_COLUMN = "_reviewed_by"
#: Columns the product adds to frames; never model inputs, whatever the project's features say.
INTERNAL_COLUMNS = (ROW_ID, ORIGIN)

# -- bundled data sets (`data.source: bundled:<name>`; the loaders are in `ml.datasets`) ---------
HMDA_BOSTON = "hmda_boston"
#: Hourly wages of young workers (NLS72; Kane & Rouse 1995): a regression data set.
NLS_WAGES = "nls_wages"
#: Employment status of General Social Survey respondents, 1994-2006: six classes.
GSS_WORK_STATUS = "gss_work_status"
#: The names a project may use after `bundled:`; the project schema checks them on load.
BUNDLED_DATASET_NAMES = (HMDA_BOSTON, NLS_WAGES, GSS_WORK_STATUS)
