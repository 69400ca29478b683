"""Pydantic schema of a model project file (one YAML per project).

A project declares its data, its features, the estimator to train and the policy that gates
promotion. Validation happens when the code location loads, so a typo never reaches a run.

This module defines `ProjectConfig`, the whole file, and its cross-field checks; the models of
its sections live in the `schema_*` modules beside it and are re-exported here, so
`unified_ai.projects.schema` is the one import path for every name of the schema.
"""

from typing import Annotated

from pydantic import Field, model_validator

from unified_ai.projects.schema_base import (
    LOWER_IS_BETTER,
    MAX_APPROVALS,
    MAX_HOURS,
    MAX_MINUTES,
    METRICS,
    Metric,
    SegmentMetric,
    _Strict,
)
from unified_ai.projects.schema_data import (
    ColumnRule,
    DataSource,
    Features,
    leaves_folder,
    local_path,
)
from unified_ai.projects.schema_operations import (
    Monitoring,
    Resources,
    ServingResources,
    Stage,
    StageResources,
    Toleration,
)
from unified_ai.projects.schema_policy import (
    ApprovalPolicy,
    AutoApprove,
    ChampionRule,
    Channel,
    DeploymentWindow,
    DriftTrigger,
    EvaluationSpec,
    FairnessRule,
    GroundTruthTrigger,
    NotificationEvent,
    PerformanceTrigger,
    Policy,
    QualityFloor,
    RollbackTrigger,
    Triggers,
)
from unified_ai.projects.schema_review import ReviewPolicy, Unsure
from unified_ai.projects.schema_tasks import task_policy
from unified_ai.projects.schema_training import (
    DEFAULT_WINDOW_BATCHES,
    ESTIMATOR_PARAMS,
    ESTIMATORS,
    REGRESSORS,
    EstimatorSpec,
    ProductionData,
    SplitSpec,
    TrainingSpec,
)
from unified_ai.projects.tasks import Task

__all__ = [
    "DEFAULT_WINDOW_BATCHES",
    "ESTIMATORS",
    "ESTIMATOR_PARAMS",
    "LOWER_IS_BETTER",
    "MAX_APPROVALS",
    "MAX_HOURS",
    "MAX_MINUTES",
    "METRICS",
    "REGRESSORS",
    "ApprovalPolicy",
    "AutoApprove",
    "ChampionRule",
    "Channel",
    "ColumnRule",
    "DataSource",
    "DeploymentWindow",
    "DriftTrigger",
    "EstimatorSpec",
    "EvaluationSpec",
    "FairnessRule",
    "Features",
    "GroundTruthTrigger",
    "Identifier",
    "Metric",
    "Monitoring",
    "NotificationEvent",
    "Owner",
    "PerformanceTrigger",
    "Policy",
    "ProductionData",
    "ProjectConfig",
    "QualityFloor",
    "Resources",
    "ReviewPolicy",
    "RollbackTrigger",
    "SegmentMetric",
    "ServingResources",
    "SplitSpec",
    "Stage",
    "StageResources",
    "Toleration",
    "TrainingSpec",
    "Triggers",
    "Unsure",
    "leaves_folder",
    "local_path",
]

#: Project names. Anchored for the Rust regex engine pydantic uses (pinned in `_Strict`), where
#: `$` is the very end of the text; never use it with Python's `re.match`.
_NAME = r"^[a-z][a-z0-9_]{0,62}$"

Identifier = Annotated[str, Field(pattern=_NAME)]
#: An asset owner as Dagster accepts one: a team (`team:credit-risk`) or an e-mail address.
Owner = Annotated[
    str,
    Field(
        pattern=r"^(team:[A-Za-z0-9][A-Za-z0-9_.-]{0,62}|[^@\s]+@[^@\s]+\.[^@\s]+)$",
        description="`team:<name>` or an e-mail address",
    ),
]


class ProjectConfig(_Strict):
    """One model project: data, features, estimator, evaluation and policy."""

    name: Identifier
    description: str = Field(default="", description="shown on every asset of the project")
    owners: list[Owner] = Field(default_factory=list, description="owners of every asset")
    #: What the model predicts: one of two classes (`positive_label` says which is 1), one of
    #: three or more `classes`, or a number. Decides the estimators, metrics and policy fields
    #: a project may use (`unified_ai.projects.tasks`).
    task: Task = "binary_classification"
    data: DataSource
    target: str = Field(min_length=1)
    positive_label: str | int | bool = Field(default=1, description="binary classification only")
    classes: list[str | int | bool] | None = Field(
        default=None,
        description="multiclass only: the classes in order; default: the training data's, sorted",
    )
    features: Features
    segments: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnRule] = Field(default_factory=dict)
    estimator: EstimatorSpec
    split: SplitSpec = SplitSpec()
    training: TrainingSpec = TrainingSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    policy: Policy = Policy()
    monitoring: Monitoring = Monitoring()
    resources: Resources = Resources()

    @model_validator(mode="after")
    def _consistent(self) -> "ProjectConfig":
        feature_cols = set(self.features.numeric) | set(self.features.categorical)
        if self.target in feature_cols:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        policy = task_policy(self)
        if policy is not None:
            # Frozen model: the task's defaults are filled in once, while it is validated.
            object.__setattr__(self, "policy", policy)
        return self

    @property
    def model_name(self) -> str:
        """Registered model name in MLflow."""
        return f"unified_ai.{self.name}"

    @property
    def policy_version(self) -> str:
        """Policy identifier recorded with every decision."""
        named = (
            self.policy if self.policy.name else self.policy.model_copy(update={"name": self.name})
        )
        return named.version()
