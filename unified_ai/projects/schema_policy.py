"""The project schema's evaluation and policy models: gates, triggers, notifications, approval.

Everything under a project's `evaluation` and `policy` blocks: what a candidate must reach to
be promoted, what retrains or rolls back by itself, who is told, and who must approve. The
`review` block (which single predictions people look at) is in `schema_review`.
"""

import hashlib
import json
from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from unified_ai.projects.schema_base import (
    MAX_APPROVALS,
    MAX_HOURS,
    MAX_MINUTES,
    MAX_VALUE,
    LiveMetric,
    Metric,
    SegmentMetric,
    _Strict,
)
from unified_ai.projects.schema_review import ReviewPolicy, named_people

#: Clock times `HH:MM`. Anchored for the Rust regex engine pydantic uses (pinned in `_Strict`),
#: where `$` is the very end of the text; never use it with Python's `re.match`.
_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"  # same engine


class QualityFloor(_Strict):
    """Minimum quality of a candidate on the holdout; unset metrics are not gated.

    Each field is a metric of one task (`unified_ai.projects.tasks`); a project may set only
    its own task's. For a metric where lower is better (log loss, RMSE, MAE, MAPE) the value
    is the maximum allowed; `per_class_recall` and `per_class_precision` bound every class.
    """

    roc_auc: float | None = Field(default=None, ge=0.0, le=1.0)
    f1: float | None = Field(default=None, ge=0.0, le=1.0)
    accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    log_loss: float | None = Field(default=None, ge=0.0, le=100.0, description="maximum allowed")
    macro_f1: float | None = Field(default=None, ge=0.0, le=1.0, description="multiclass")
    roc_auc_ovr: float | None = Field(default=None, ge=0.0, le=1.0, description="multiclass")
    per_class_recall: float | None = Field(
        default=None, ge=0.0, le=1.0, description="multiclass: every class's recall"
    )
    per_class_precision: float | None = Field(
        default=None, ge=0.0, le=1.0, description="multiclass: every class's precision"
    )
    rmse: float | None = Field(
        default=None, ge=0.0, le=MAX_VALUE, description="regression: maximum allowed"
    )
    mae: float | None = Field(
        default=None, ge=0.0, le=MAX_VALUE, description="regression: maximum allowed"
    )
    r2: float | None = Field(default=None, ge=-MAX_VALUE, le=1.0, description="regression")
    mape: float | None = Field(
        default=None, ge=0.0, le=MAX_VALUE, description="regression: maximum allowed (0.1 = 10 %)"
    )

    def thresholds(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ChampionRule(_Strict):
    """How a candidate must compare with the current champion on the same holdout.

    The candidate passes when its `metric` is at least the champion's plus `min_improvement`
    minus `tolerance` (a negative-only slack that lets a statistically equal model through), and
    when `require_significance` is set, the bootstrap interval of the difference lies above it.
    """

    #: Default: the task's headline metric (binary ROC AUC, multiclass macro F1, regression RMSE).
    metric: Metric = "roc_auc"
    #: In the metric's units, in the direction of better (an RMSE improvement is a decrease).
    min_improvement: float = Field(default=0.0, ge=-MAX_VALUE, le=MAX_VALUE)
    tolerance: float = Field(default=0.0, ge=0.0, le=MAX_VALUE)
    require_significance: bool = False
    #: Which holdout this gate and the fairness gate judge on: `recent` (the newest labeled
    #: production rows, never trained on), `static` (rows of the project's source), or `auto`:
    #: recent when it has at least `min_recent_rows` rows, else static.
    holdout: Literal["auto", "recent", "static"] = "auto"
    min_recent_rows: int = Field(default=300, ge=1, le=100_000_000)


class FairnessRule(_Strict):
    """Largest allowed gap of a per-segment metric between segments of each segment column."""

    #: Default: binary true_positive_rate, multiclass macro_recall, regression mae.
    metric: SegmentMetric = "true_positive_rate"
    #: In the metric's units: a share for rates, the target's units for MAE and signed error.
    max_gap: float = Field(default=0.2, ge=0.0, le=MAX_VALUE)
    min_segment_size: int = Field(default=20, ge=1, le=10_000_000)
    #: A candidate whose gap exceeds max_gap still passes if it is no worse than the champion's
    #: by more than this; None means the absolute bound always applies.
    max_increase_vs_champion: float | None = Field(default=None, ge=0.0, le=MAX_VALUE)


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
    #: Default: the task's headline live metric (binary ROC AUC, multiclass macro F1, RMSE).
    metric: LiveMetric = "roc_auc"
    #: For a metric where lower is better (RMSE, MAE) the floor is a ceiling: retrain above it.
    floor: float = Field(default=0.65, ge=-MAX_VALUE, le=MAX_VALUE)
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
    #: In the live metric's units (for RMSE: the target's units).
    margin: float = Field(default=0.05, ge=0.0, le=MAX_VALUE)
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


class AgreementTrigger(_Strict):
    """Retrain when the people reviewing the deployed model's predictions agree with it too seldom.

    Agreement is the share of reviewed rows (ground truth with `_origin: review`) of the
    deployed model's last `window_batches` reviewed batches where the person's answer is the
    model's: the same label or class; for regression, within `tolerance` of the predicted
    value (unset: within 10 % of the person's value). It is judged over all those rows and
    per value of each segment column, each once it holds `min_answers` answers; any of them
    below `floor` asks for a retrain. `floor` None (the default) measures without acting.
    Needs `policy.review`.
    """

    enabled: bool = True
    floor: float | None = Field(default=None, ge=0.0, le=1.0, description="a share; None: off")
    min_answers: int = Field(
        default=20, ge=1, le=100_000_000, description="answers a scope needs to be judged"
    )
    window_batches: int = Field(
        default=5, ge=1, le=10_000, description="the deployed model's last reviewed batches"
    )
    tolerance: float | None = Field(
        default=None,
        gt=0.0,
        le=MAX_VALUE,
        description="regression: agree within this many target units (unset: 10 %)",
    )
    cooldown_minutes: float = Field(default=60.0, ge=0.0, le=MAX_MINUTES)


class Triggers(_Strict):
    drift: DriftTrigger = DriftTrigger()
    performance: PerformanceTrigger = PerformanceTrigger()
    rollback: RollbackTrigger = RollbackTrigger()
    ground_truth: GroundTruthTrigger = GroundTruthTrigger()
    #: Model-people agreement on reviewed predictions (needs `policy.review`).
    agreement: AgreementTrigger = AgreementTrigger()

    @model_serializer(mode="wrap")
    def _default_agreement(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Left out of the dump while it is the default, so the policy version (and every
        # project's code version) of a project that sets none is what it was before.
        data = handler(self)
        if self.agreement == AgreementTrigger() and isinstance(data, dict):
            data.pop("agreement", None)
        return data


NotificationEvent = Literal[
    "gate_failed", "retrain", "rollback", "quarantine", "run_failed", "review_queue"
]


def _every_event() -> list[NotificationEvent]:
    # A typed factory: a bare lambda's list literal is inferred as list[str].
    return ["gate_failed", "retrain", "rollback", "quarantine", "run_failed", "review_queue"]


class Channel(_Strict):
    """Where notifications go: a Slack-compatible webhook, or Slack via a bot token."""

    type: Literal["webhook", "slack"]
    url: str | None = None
    slack_channel: str | None = None
    token_env: str | None = Field(default=None, description="env var holding the Slack token")
    events: list[NotificationEvent] = Field(default_factory=_every_event)

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
    min_improvement: float = Field(default=0.0, ge=-MAX_VALUE, le=MAX_VALUE)
    max_gap_increase: float = Field(default=0.0, ge=0.0, le=MAX_VALUE)
    first_model: bool = True


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _working_days() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class DeploymentWindow(_Strict):
    """Deployments only from `start` to `end` (UTC, both minutes included) on these weekdays.

    A window whose `start` is later than its `end` runs overnight: `days: [fri]`, `22:00` to
    `02:00` is open from Friday 22:00 to Saturday 02:00 (the part after midnight belongs to the
    day the window starts). `start` equal to `end` is refused as ambiguous; a whole day is
    `00:00` to `23:59`.
    """

    days: list[Weekday] = Field(default_factory=_working_days, min_length=1)
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
        people = named_people(self.approvers, self.groups, "approvers")
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
    #: Which single predictions people review (`schema_review`); absent, none is routed.
    review: ReviewPolicy | None = None

    @model_validator(mode="after")
    def _agreement_needs_review(self) -> "Policy":
        if self.triggers.agreement.floor is not None and self.review is None:
            raise ValueError(
                "triggers.agreement.floor needs policy.review: agreement is measured on "
                "reviewed predictions, and without review none is routed"
            )
        return self

    @model_serializer(mode="wrap")
    def _absent_review(self, handler: SerializerFunctionWrapHandler) -> Any:
        # An absent review is left out of the dump, so the policy version (and every project's
        # code version) of a project without one is what it was before reviews existed.
        data = handler(self)
        if self.review is None and isinstance(data, dict):
            data.pop("review", None)
        return data

    def version(self) -> str:
        """A stable identifier of this exact policy content: `<name>@<hash>`."""
        body = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return f"{self.name or 'policy'}@{hashlib.sha256(body).hexdigest()[:12]}"
