"""Pydantic schema of a model project file (one YAML per project).

A project declares its data, its features, the estimator to train and the policy that gates
promotion. Validation happens when the code location loads, so a typo never reaches a run.
"""

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from unified_ai.names import BUNDLED_DATASET_NAMES
from unified_ai.projects.identity import normalize_identity

#: Estimators a project may name, mapped to their import path. Names are checked when the
#: project loads; sklearn itself is imported only when a model is trained.
ESTIMATORS: dict[str, str] = {
    "HistGradientBoostingClassifier": "sklearn.ensemble.HistGradientBoostingClassifier",
    "GradientBoostingClassifier": "sklearn.ensemble.GradientBoostingClassifier",
    "RandomForestClassifier": "sklearn.ensemble.RandomForestClassifier",
    "ExtraTreesClassifier": "sklearn.ensemble.ExtraTreesClassifier",
    "LogisticRegression": "sklearn.linear_model.LogisticRegression",
    "DecisionTreeClassifier": "sklearn.tree.DecisionTreeClassifier",
}

#: Constructor parameter names of each estimator (scikit-learn 1.9), so `params` can be
#: checked when the project loads without importing sklearn (~2 s) into the code location.
#: `unified_ai_tests/projects/test_limits.py` compares this table with the installed classes.
_FOREST_PARAMS = frozenset(
    {
        "bootstrap", "ccp_alpha", "class_weight", "criterion", "max_depth", "max_features",
        "max_leaf_nodes", "max_samples", "min_impurity_decrease", "min_samples_leaf",
        "min_samples_split", "min_weight_fraction_leaf", "monotonic_cst", "n_estimators",
        "n_jobs", "oob_score", "random_state", "verbose", "warm_start",
    }
)  # fmt: skip
ESTIMATOR_PARAMS: dict[str, frozenset[str]] = {
    "HistGradientBoostingClassifier": frozenset(
        {
            "categorical_features", "class_weight", "early_stopping", "interaction_cst",
            "l2_regularization", "learning_rate", "loss", "max_bins", "max_depth",
            "max_features", "max_iter", "max_leaf_nodes", "min_samples_leaf", "monotonic_cst",
            "n_iter_no_change", "random_state", "scoring", "tol", "validation_fraction",
            "verbose", "warm_start",
        }
    ),
    "GradientBoostingClassifier": frozenset(
        {
            "ccp_alpha", "criterion", "init", "learning_rate", "loss", "max_depth",
            "max_features", "max_leaf_nodes", "min_impurity_decrease", "min_samples_leaf",
            "min_samples_split", "min_weight_fraction_leaf", "n_estimators", "n_iter_no_change",
            "random_state", "subsample", "tol", "validation_fraction", "verbose", "warm_start",
        }
    ),
    "RandomForestClassifier": _FOREST_PARAMS,
    "ExtraTreesClassifier": _FOREST_PARAMS,
    "LogisticRegression": frozenset(
        {
            "C", "class_weight", "dual", "fit_intercept", "intercept_scaling", "l1_ratio",
            "max_iter", "n_jobs", "penalty", "random_state", "solver", "tol", "verbose",
            "warm_start",
        }
    ),
    "DecisionTreeClassifier": frozenset(
        {
            "ccp_alpha", "class_weight", "criterion", "max_depth", "max_features",
            "max_leaf_nodes", "min_impurity_decrease", "min_samples_leaf", "min_samples_split",
            "min_weight_fraction_leaf", "monotonic_cst", "random_state", "splitter",
        }
    ),
}  # fmt: skip

#: Upper bounds that keep every duration representable as a `timedelta` and every count sane.
MAX_HOURS = 8760.0  # a year
MAX_MINUTES = 525_600.0  # a year
MAX_APPROVALS = 20

#: Metrics the evaluation computes; policies may only refer to these.
METRICS = ("roc_auc", "f1", "accuracy", "log_loss")
#: Metrics where a lower value is better.
LOWER_IS_BETTER = frozenset({"log_loss"})

Metric = Literal["roc_auc", "f1", "accuracy", "log_loss"]
SegmentMetric = Literal["roc_auc", "f1", "accuracy", "true_positive_rate", "positive_rate"]

#: Project names. Anchored for the Rust regex engine pydantic uses (pinned in `_Strict`), where
#: `$` is the very end of the text; never use it with Python's `re.match`.
_NAME = r"^[a-z][a-z0-9_]{0,62}$"
_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"  # same engine


class _Strict(BaseModel):
    # allow_inf_nan=False: a NaN makes every comparison false, so one `.nan` in a margin used to
    # open a gate; infinities overflow `timedelta`. regex_engine is pinned because with the Rust
    # engine `$` matches only at the very end (Python's `re` would accept a trailing newline).
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, regex_engine="rust-regex"
    )


def _finite_values(value: Any, where: str) -> None:
    """Refuse NaN/inf anywhere inside a YAML value, and types YAML has no business producing."""
    if isinstance(value, float):
        if not math.isfinite(value):
            shown = ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
            raise ValueError(f"{where}: {shown} is not a finite number")
    elif isinstance(value, dict):
        for name, item in value.items():
            _finite_values(item, f"{where}.{name}")
    elif isinstance(value, list):
        for item in value:
            _finite_values(item, where)
    elif value is not None and not isinstance(value, (bool, int, str)):
        raise ValueError(f"{where}: unsupported value of type {type(value).__name__}")


class DataSource(_Strict):
    """Where the training data comes from.

    `source` is either `bundled:<name>` (a real data set shipped inside an installed package)
    or a CSV/Parquet path or fsspec URL. A relative path is resolved against the project file.
    """

    source: str = Field(min_length=1)
    format: Literal["csv", "parquet"] | None = None
    allow_outside_paths: bool = Field(
        default=False,
        description="let data.source, monitoring.inbox and training.script name local paths "
        "outside the project file's folder (absolute paths, `~`, `..`, file:// URLs); "
        "without it they are refused",
    )

    @field_validator("source")
    @classmethod
    def _known_bundled(cls, value: str) -> str:
        if value.startswith("bundled:"):
            name = value.removeprefix("bundled:")
            if name not in BUNDLED_DATASET_NAMES:
                known = ", ".join(sorted(BUNDLED_DATASET_NAMES))
                raise ValueError(f"unknown bundled data set {name!r} (known: {known})")
        elif not (value.endswith((".csv", ".parquet", ".pq"))):
            raise ValueError("a path source must end in .csv or .parquet")
        return value


#: fsspec protocols that name the local disk (a chained URL's last part is where data lives).
_LOCAL_PROTOCOLS = ("file", "local")


def local_path(value: str) -> str | None:
    """The local path `value` names (a plain path or a file:// URL), None for a remote URL."""
    if value.startswith("bundled:"):
        return None
    target = value.split("::")[-1]  # `simplecache::file:///x.csv` reads /x.csv
    scheme, sep, rest = target.partition("://")
    if not sep:
        return target
    if scheme.lower() not in _LOCAL_PROTOCOLS:
        return None
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(target).path) if scheme.lower() == "file" else rest


def leaves_folder(value: str, folder: str | Path) -> str | None:
    """Where a project's path `value` leads when that is outside `folder`, else None.

    Relative paths are taken from `folder` (the project file's), `~` is expanded and links are
    followed, so `../../etc/passwd.csv`, `/etc/passwd.csv`, `~/x.csv` and `file:///etc/x.csv`
    all leave it; `data/x.csv` and remote URLs (s3://, gs://, https://…) do not.
    """
    path = local_path(value)
    if path is None:
        return None
    base = Path(folder).resolve()
    resolved = (base / Path(path).expanduser()).resolve()
    return None if resolved.is_relative_to(base) else str(resolved)


class Features(_Strict):
    """Which columns are model inputs.

    Either list `numeric` and `categorical` columns, or give `all_but` (every column except the
    target, the segments and these), in which case types are inferred from the data.
    """

    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    all_but: list[str] | None = None

    @model_validator(mode="after")
    def _one_style(self) -> "Features":
        listed = self.numeric or self.categorical
        if self.all_but is not None and listed:
            raise ValueError("give either numeric/categorical lists or all_but, not both")
        if self.all_but is None and not listed:
            raise ValueError("declare at least one numeric or categorical feature, or all_but")
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"columns listed as numeric and categorical: {sorted(both)}")
        return self


class ColumnRule(_Strict):
    """Validation of one column of the training data (becomes Great Expectations checks)."""

    min: float | None = None
    max: float | None = None
    categories: list[str | int] | None = None
    allow_null: bool = True

    @model_validator(mode="after")
    def _range(self) -> "ColumnRule":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class EstimatorSpec(_Strict):
    """An sklearn estimator by name, with its constructor parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # The enum makes `dg check yaml` (which checks the JSON schema) catch an unknown name too.
    class_name: str = Field(alias="class", json_schema_extra={"enum": list(ESTIMATORS)})
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("class_name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ESTIMATORS:
            raise ValueError(f"unknown estimator {value!r} (known: {', '.join(ESTIMATORS)})")
        return value

    @field_validator("params")
    @classmethod
    def _valid_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Names are checked here rather than when training starts, so a typo fails the code
        # location instead of a run an hour later. An unknown class was reported already.
        class_name = info.data.get("class_name")
        if class_name is not None:
            valid = ESTIMATOR_PARAMS[class_name]
            unknown = sorted(set(value) - valid)
            if unknown:
                names = ", ".join(repr(name) for name in unknown)
                noun = "parameter" if len(unknown) == 1 else "parameters"
                raise ValueError(
                    f"{class_name} has no {noun} {names} (valid: {', '.join(sorted(valid))})"
                )
        for name, item in value.items():
            _finite_values(item, name)
        return value


class SplitSpec(_Strict):
    """Deterministic, stratified train/holdout split."""

    holdout_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="numpy accepts 0..2**32-1")


class QualityFloor(_Strict):
    """Minimum quality of a candidate on the holdout; unset metrics are not gated."""

    roc_auc: float | None = Field(default=None, ge=0.0, le=1.0)
    f1: float | None = Field(default=None, ge=0.0, le=1.0)
    accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    log_loss: float | None = Field(default=None, ge=0.0, le=100.0, description="maximum allowed")

    def thresholds(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ChampionRule(_Strict):
    """How a candidate must compare with the current champion on the same holdout.

    The candidate passes when its `metric` is at least the champion's plus `min_improvement`
    minus `tolerance` (a negative-only slack that lets a statistically equal model through), and
    when `require_significance` is set, the bootstrap interval of the difference lies above it.
    """

    metric: Metric = "roc_auc"
    min_improvement: float = Field(default=0.0, ge=-1.0, le=1.0)
    tolerance: float = Field(default=0.0, ge=0.0, le=1.0)
    require_significance: bool = False
    #: Which holdout this gate and the fairness gate judge on: `recent` (the newest labeled
    #: production rows, never trained on), `static` (rows of the project's source), or `auto`:
    #: recent when it has at least `min_recent_rows` rows, else static.
    holdout: Literal["auto", "recent", "static"] = "auto"
    min_recent_rows: int = Field(default=300, ge=1, le=100_000_000)


class FairnessRule(_Strict):
    """Largest allowed gap of a per-segment metric between segments of each segment column."""

    metric: SegmentMetric = "true_positive_rate"
    max_gap: float = Field(default=0.2, ge=0.0, le=1.0)
    min_segment_size: int = Field(default=20, ge=1, le=10_000_000)
    #: A candidate whose gap exceeds max_gap still passes if it is no worse than the champion's
    #: by more than this; None means the absolute bound always applies.
    max_increase_vs_champion: float | None = Field(default=None, ge=0.0, le=1.0)


#: The batch window when a project sets neither `window_batches` nor `window_days`.
DEFAULT_WINDOW_BATCHES = 20


class ProductionData(_Strict):
    """Which labeled production rows join the project's source in `training_data`.

    A production row is a row of a stored `production_batch` joined by row id with its label
    from `ground_truth`. Quarantined batches never join; nor do batches excluded by a person
    (`unified-ai exclude`, or `unified-ai impact --pause` on a batch) or whose columns no longer
    match the project: each is named, with why, in the asset's metadata. The window is the
    newest `window_batches` labeled batches, or those stored in the last `window_days` days
    (give one, not both); of their rows at most `max_rows`, the newest, are kept.
    """

    include: bool = True
    recent_holdout_fraction: float = Field(
        default=0.3,
        ge=0.0,
        lt=1.0,
        description="the newest share of the production rows, held out (never trained on) as "
        "the recent holdout; 0: none",
    )
    window_batches: int | None = Field(default=None, ge=1, le=100_000)
    window_days: float | None = Field(default=None, gt=0.0, le=3650.0)
    max_rows: int = Field(default=100_000, ge=1, le=100_000_000)

    @model_validator(mode="after")
    def _one_window(self) -> "ProductionData":
        if self.window_batches is not None and self.window_days is not None:
            raise ValueError("give window_batches or window_days, not both")
        return self

    @property
    def batches(self) -> int | None:
        """The batch window in effect: `window_batches`, else 20 when no day window is set."""
        if self.window_batches is not None:
            return self.window_batches
        return None if self.window_days is not None else DEFAULT_WINDOW_BATCHES


class TrainingSpec(_Strict):
    """Where training runs, and which production rows it learns from.

    `in_process` fits inside the Dagster step. `pipes` runs a training script as an external
    process through Dagster Pipes: a subprocess locally, its own pod (with the `training`
    stage's resources) on Kubernetes. The default script,
    `unified_ai.stages.training.external_train`, trains the project's estimator; `script` names
    another one (relative to the project file).
    """

    runner: Literal["in_process", "pipes"] = "in_process"
    script: str | None = None
    image: str | None = Field(default=None, description="pod image (k8s); default: the code's")
    production_data: ProductionData = ProductionData()


class EvaluationSpec(_Strict):
    """How evaluation is computed."""

    bootstrap_samples: int = Field(default=300, ge=50, le=10_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)


class DriftTrigger(_Strict):
    """Retrain when too many feature columns drift away from the training reference."""

    enabled: bool = True
    psi_threshold: float = Field(
        default=0.2, gt=0.0, le=100.0, description="a column drifts above this"
    )
    max_drifted_share: float = Field(default=0.3, ge=0.0, le=1.0)
    cooldown_minutes: float = Field(default=60.0, ge=0.0, le=MAX_MINUTES)


class PerformanceTrigger(_Strict):
    """Retrain when the live metric of the deployed model falls below the floor."""

    enabled: bool = True
    metric: Literal["roc_auc", "f1", "accuracy"] = "roc_auc"
    floor: float = Field(default=0.65, ge=0.0, le=1.0)
    window_batches: int = Field(default=5, ge=1, le=10_000)
    min_labels: int = Field(default=50, ge=1, le=100_000_000)
    recent_batches: int = Field(
        default=2, ge=1, le=10_000, description="the recent window: the last labeled batches"
    )
    recent_rows: int = Field(
        default=100, ge=1, le=100_000_000, description="labeled rows the recent window needs"
    )
    cooldown_minutes: float = Field(default=60.0, ge=0.0, le=MAX_MINUTES)


class RollbackTrigger(_Strict):
    """Roll back by itself when a fresh deployment does clearly worse live than its predecessor.

    Within `bake_window_hours` after a deployment, if the deployment's live metric is below the
    previous deployment's live metric by more than `margin`, and the upper end of its bootstrap
    interval is below the previous value too, the system rolls back and opens an incident.
    The same rule also judges the most recent rows alone (the last `recent_batches` labeled
    batches, once they hold `recent_rows` paired rows), so a change that ends is acted on
    without waiting for the whole window to turn.
    """

    enabled: bool = True
    bake_window_hours: float = Field(default=24.0, gt=0.0, le=MAX_HOURS)
    margin: float = Field(default=0.05, ge=0.0, le=1.0)
    recent_batches: int = Field(
        default=2, ge=1, le=10_000, description="the recent window: the last labeled batches"
    )
    recent_rows: int = Field(
        default=100, ge=1, le=100_000_000, description="paired rows the recent window needs"
    )
    cooldown_minutes: float = Field(default=30.0, ge=0.0, le=MAX_MINUTES)


class GroundTruthTrigger(_Strict):
    """Retrain when enough new labeled production rows arrived since the last training.

    New rows are the labeled rows of batches that the deployed model's training data did not
    include (stored after it was cut, or outside its window).
    """

    enabled: bool = True
    min_new_labels: int = Field(default=500, ge=1, le=100_000_000)
    cooldown_minutes: float = Field(default=60.0, ge=0.0, le=MAX_MINUTES)


class Triggers(_Strict):
    drift: DriftTrigger = DriftTrigger()
    performance: PerformanceTrigger = PerformanceTrigger()
    rollback: RollbackTrigger = RollbackTrigger()
    ground_truth: GroundTruthTrigger = GroundTruthTrigger()


NotificationEvent = Literal["gate_failed", "retrain", "rollback", "quarantine", "run_failed"]


class Channel(_Strict):
    """Where notifications go: a Slack-compatible webhook, or Slack via a bot token."""

    type: Literal["webhook", "slack"]
    url: str | None = None
    slack_channel: str | None = None
    token_env: str | None = Field(default=None, description="env var holding the Slack token")
    events: list[NotificationEvent] = Field(
        default_factory=lambda: ["gate_failed", "retrain", "rollback", "quarantine", "run_failed"]
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        # The URL is never echoed: it carries the channel's token (Slack's do).
        if value is None:
            return value
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:
            raise ValueError("is not a URL") from None
        if parts.scheme.lower() not in ("http", "https"):
            shown = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
            raise ValueError(f"must be an http:// or https:// URL ({shown})")
        if not host:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @model_validator(mode="after")
    def _complete(self) -> "Channel":
        if self.type == "webhook" and not self.url:
            raise ValueError("a webhook channel needs a url")
        if self.type == "slack" and not (self.slack_channel and self.token_env):
            raise ValueError("a slack channel needs slack_channel and token_env")
        return self


class AutoApprove(_Strict):
    """When policy approves by itself (mode `auto`).

    The candidate's `metric` beats the champion's by at least `min_improvement` and no
    segment gap grows by more than `max_gap_increase`; the first model of a project is
    auto-approved only if `first_model` is set.
    """

    metric: Metric = "roc_auc"
    min_improvement: float = Field(default=0.0, ge=-1.0, le=1.0)
    max_gap_increase: float = Field(default=0.0, ge=0.0, le=1.0)
    first_model: bool = True


class DeploymentWindow(_Strict):
    """Deployments only from `start` to `end` (UTC, both minutes included) on these weekdays.

    A window whose `start` is later than its `end` runs overnight: `days: [fri]`, `22:00` to
    `02:00` is open from Friday 22:00 to Saturday 02:00 (the part after midnight belongs to the
    day the window starts). `start` equal to `end` is refused as ambiguous; a whole day is
    `00:00` to `23:59`.
    """

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1
    )
    start: str = Field(default="00:00", pattern=_CLOCK)
    end: str = Field(default="23:59", pattern=_CLOCK)

    @model_validator(mode="after")
    def _not_empty(self) -> "DeploymentWindow":
        if self.start == self.end:
            raise ValueError(
                f"start and end are both {self.start}: a window needs two different times "
                "(00:00 to 23:59 is the whole day; start later than end runs overnight)"
            )
        return self

    @property
    def overnight(self) -> bool:
        """Whether the window wraps past midnight into the next day."""
        return self.start > self.end


class ApprovalPolicy(_Strict):
    """Whether a person must approve a deployment, who may, and how.

    `mode`: `never` (gates alone decide), `required` (always a person), `auto` (policy
    approves when `auto_approve` holds, otherwise a person). `approvers` lists names and
    `group:<name>` entries resolved through `groups`; empty means anyone. With `four_eyes`,
    whoever triggered the training cannot approve its model.
    """

    mode: Literal["never", "required", "auto"] = "never"
    approvers: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    four_eyes: bool = True
    required_approvals: int = Field(default=1, ge=1, le=MAX_APPROVALS)
    expires_after_hours: float = Field(default=72.0, gt=0.0, le=MAX_HOURS)
    auto_approve: AutoApprove = AutoApprove()
    deployment_windows: list[DeploymentWindow] = Field(default_factory=list)

    @model_validator(mode="after")
    def _groups_exist(self) -> "ApprovalPolicy":
        if not self.approvers:
            return self  # anyone may approve
        people: set[str] = set()
        for entry in self.approvers:
            if entry.startswith("group:"):
                group = entry.removeprefix("group:")
                if group not in self.groups:
                    raise ValueError(f"approvers: {entry!r} names a group that is not in groups")
                names = self.groups[group]
            else:
                names = [entry]
            for name in names:
                if not normalize_identity(name):
                    raise ValueError(f"approvers: {name!r} is not a name (empty or invisible)")
                people.add(normalize_identity(name))
        # Spellings of one name are one person, so they cannot make up the count.
        if len(people) < self.required_approvals:
            raise ValueError(
                f"required_approvals is {self.required_approvals} but approvers name only "
                f"{len(people)} distinct people"
            )
        return self


class Policy(_Strict):
    """The rules that decide whether a candidate may be promoted, and what runs by itself."""

    name: str | None = None
    quality_floor: QualityFloor = QualityFloor(roc_auc=0.6)
    beats_champion: ChampionRule = ChampionRule()
    fairness: FairnessRule = FairnessRule()
    approval: ApprovalPolicy = ApprovalPolicy()
    triggers: Triggers = Triggers()
    notifications: list[Channel] = Field(default_factory=list)

    def version(self) -> str:
        """A stable identifier of this exact policy content: `<name>@<hash>`."""
        body = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return f"{self.name or 'policy'}@{hashlib.sha256(body).hexdigest()[:12]}"


class Monitoring(_Strict):
    """Where production batches and their labels arrive."""

    inbox: str | None = Field(
        default=None,
        description="folder or fsspec URL; default: $UNIFIED_AI_HOME/inbox/<project>",
    )
    drift_report_rows: int = Field(
        default=20_000,
        ge=100,
        le=10_000_000,
        description="rows sampled for the Evidently HTML page",
    )
    drift_page_every: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="also render the Evidently page for every Nth batch; 0: only for a batch "
        "in which a column drifts (the page costs seconds per batch)",
    )
    shadow_rows: int = Field(
        default=100_000,
        ge=100,
        le=100_000_000,
        description="rows of a batch the shadow models score: every row of a smaller batch, "
        "the same random sample for each shadow model of a larger one",
    )
    label_expiry_hours: float = Field(
        default=168,
        gt=0,
        le=24 * 366,
        description="hours a labels file may wait for its batch to be scored; then the labels "
        "sensor moves it into labels/expired/ with a reason file (never deleted)",
    )


_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?")


def _quantities(values: dict[str, str]) -> dict[str, str]:
    for resource, amount in values.items():
        # fullmatch: `re.match` with `$` would accept a trailing newline.
        if not _QUANTITY.fullmatch(str(amount)):
            raise ValueError(
                f"{resource}: {amount!r} is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)"
            )
    return values


class Toleration(_Strict):
    """A Kubernetes toleration (camelCase keys, as in a pod spec)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(
        default=None, ge=0, le=2**31 - 1, alias="tolerationSeconds"
    )


class StageResources(_Strict):
    """Container resources and placement for one stage when running on a cluster."""

    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)

    @field_validator("requests", "limits")
    @classmethod
    def _check_quantities(cls, value: dict[str, str]) -> dict[str, str]:
        return _quantities(value)


class ServingResources(StageResources):
    """Resources, placement and scaling of the serving endpoint (`unified-ai serve`) on a cluster.

    The `serving_config` asset renders them into a Deployment and a HorizontalPodAutoscaler.
    The autoscaler scales on CPU use relative to the CPU request, so one is required. The
    defaults are the code location's own pod resources (`helm/user-deployments-values.yaml`).
    """

    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "250m", "memory": "1Gi"})
    limits: dict[str, str] = Field(default_factory=lambda: {"memory": "2Gi"})
    min_replicas: int = Field(default=2, ge=1, le=1000, description="two survive a node drain")
    max_replicas: int = Field(default=4, ge=1, le=1000)
    target_cpu_utilization: int = Field(
        default=70, ge=1, le=100, description="percent of the CPU request the autoscaler keeps"
    )

    @model_validator(mode="after")
    def _scalable(self) -> "ServingResources":
        if "cpu" not in self.requests:
            raise ValueError(
                "requests.cpu is required: the autoscaler scales on CPU use relative to it"
            )
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        return self


Identifier = Annotated[str, Field(pattern=_NAME)]
#: An asset owner as Dagster accepts one: a team (`team:credit-risk`) or an e-mail address.
Owner = Annotated[
    str,
    Field(
        pattern=r"^(team:[A-Za-z0-9][A-Za-z0-9_.-]{0,62}|[^@\s]+@[^@\s]+\.[^@\s]+)$",
        description="`team:<name>` or an e-mail address",
    ),
]
Stage = Literal["data", "training", "evaluation", "deployment", "monitoring"]


class Resources(_Strict):
    """Cluster resources: each stage's step pods, and the serving endpoint's pods.

    A stage's settings become `dagster-k8s/config` op tags of its steps (a stage left out gets
    the cluster's defaults); `serving` is rendered by the `serving_config` asset.
    """

    data: StageResources | None = None
    training: StageResources | None = None
    evaluation: StageResources | None = None
    deployment: StageResources | None = None
    monitoring: StageResources | None = None
    serving: ServingResources = ServingResources()

    def get(self, stage: Stage) -> StageResources | None:
        """The resources of `stage`'s steps, None when the project sets none."""
        return getattr(self, stage)


class ProjectConfig(_Strict):
    """One model project: data, features, estimator, evaluation and policy."""

    name: Identifier
    description: str = Field(default="", description="shown on every asset of the project")
    owners: list[Owner] = Field(default_factory=list, description="owners of every asset")
    task: Literal["binary_classification"] = "binary_classification"
    data: DataSource
    target: str = Field(min_length=1)
    positive_label: str | int | bool = 1
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
