"""The records every trigger decides over: decisions, cooldowns, the last retrain, live numbers.

Shared by the drift and ground-truth triggers (`unified_ai.policies.triggers`), the rollback
(`unified_ai.policies.rollback_trigger`) and the live floor
(`unified_ai.policies.performance_trigger`).
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from unified_ai.projects.tasks import LOWER_IS_BETTER


@dataclass(frozen=True)
class Decision:
    """Act or not, with a one-line reason and the evidence (which goes into run tags)."""

    act: bool
    reason: str
    evidence: dict[str, str] = field(default_factory=dict)
    #: Not acting yet because the evidence is not in (a rollback waiting for paired rows):
    #: other automations wait for it rather than act on half the picture.
    pending: bool = False


def broken_number(value: float | None) -> bool:
    """Whether a measured number is NaN or infinite (None is missing, not broken)."""
    # NaN evidence is a broken measurement: no automation acts on it (every comparison with
    # NaN is false, which would otherwise read as "above the threshold" or "below the floor").
    return value is not None and not math.isfinite(value)


def cooldown_left(last: datetime | None, now: datetime, minutes: float) -> timedelta | None:
    """Time left in the cooldown after the last trigger, or None if there is none."""
    if last is None:
        return None
    left = last + timedelta(minutes=minutes) - now
    return left if left > timedelta(0) else None


@dataclass(frozen=True)
class LastRetrain:
    """The newest retrain as recorded, and whether evidence arrived beyond what it saw.

    Attributes:
        run_id: The training run that cut the newest training data.
        outcome: `deployed` (its model went live), `waiting` (its candidate waits for a
            person or is still running), or `no_deployment` (it ended without one: a gate
            failed, it was rejected, its approval expired).
        detail: Why, in a few words ("gate beats_champion failed", "rejected by alice").
        fresh: Evidence that arrived after its data was cut is enough to act on again
            (`min_new_labels` new labeled rows, or a drift report stored after the cut).
        fresh_detail: What that evidence is, in a few words.
    """

    run_id: str | None
    outcome: Literal["deployed", "waiting", "no_deployment"]
    detail: str
    fresh: bool = False
    fresh_detail: str = ""


@dataclass(frozen=True)
class Hold:
    """A cooldown that holds a trigger back: time left and the rule that holds it."""

    left: timedelta
    rule: str

    @property
    def minutes(self) -> int:
        return int(self.left.total_seconds() // 60)


def cooldown_hold(
    trigger: str,
    minutes: float,
    last_trigger: datetime | None,
    now: datetime,
    last_retrain: LastRetrain | None,
) -> Hold | None:
    """Whether the cooldown of `trigger` holds it back, naming the rule; None when free.

    A retrain that ended without a deployment holds nothing against evidence it never saw:
    once enough arrived after its data was cut, the trigger is re-armed.
    """
    left = cooldown_left(last_trigger, now, minutes)
    if left is None:
        return None
    rule = f"held by policy.triggers.{trigger}.cooldown_minutes"
    if last_retrain is None:
        return Hold(left, rule)
    run = f"the last retrain (run {(last_retrain.run_id or '?')[:8]})"
    if last_retrain.outcome == "no_deployment":
        if last_retrain.fresh:
            return None
        return Hold(
            left,
            f"{rule}: {run} deployed nothing ({last_retrain.detail}), but too little evidence "
            f"arrived after its data was cut to re-arm ({last_retrain.fresh_detail})",
        )
    return Hold(left, f"{rule}: {run} {last_retrain.detail}")


def note_rearmed(
    evidence: dict,
    minutes: float,
    last_trigger: datetime | None,
    now: datetime,
    last_retrain: LastRetrain | None,
) -> None:
    """Say in `evidence` why a trigger acts within its cooldown (`cooldown_hold` let it).

    Within the cooldown a trigger only acts once re-armed: the last retrain deployed nothing
    and enough evidence arrived after its data was cut.
    """
    if last_trigger is not None and cooldown_left(last_trigger, now, minutes):
        evidence["rearmed"] = last_retrain.fresh_detail if last_retrain else "yes"


@dataclass(frozen=True)
class LiveEvidence:
    """What `live_performance` recorded for the deployed model.

    `previous_*` is the predecessor measured on its own, earlier rows (context only: the world
    may have changed since). `paired_*` is the deployed model against `paired_deployment`, the
    deployment a rollback restores, on the same labeled rows (the predecessor scored them in
    the shadow): `paired_difference` is live - previous, `paired_ci_high` the upper end of its
    paired bootstrap interval.
    """

    metric: str
    deployment: str
    value: float | None
    ci_high: float | None
    labeled_rows: int
    deployed_at: datetime | None
    previous_deployment: str | None
    previous_value: float | None
    paired_deployment: str | None = None
    paired_rows: int = 0
    paired_value: float | None = None
    paired_previous_value: float | None = None
    paired_difference: float | None = None
    paired_ci_high: float | None = None
    #: The same paired comparison over the most recent labeled batches alone.
    recent_paired_batches: int = 0
    recent_paired_rows: int = 0
    recent_paired_value: float | None = None
    recent_paired_previous_value: float | None = None
    recent_paired_difference: float | None = None
    recent_paired_ci_high: float | None = None
    #: The deployed model's own metric over its most recent labeled batches.
    recent_batches: int = 0
    recent_rows: int = 0
    recent_value: float | None = None
    #: Lower ends of the paired intervals: a lower-is-better metric (RMSE) is clearly worse
    #: when the whole interval of live - previous is above zero.
    paired_ci_low: float | None = None
    recent_paired_ci_low: float | None = None

    @property
    def lower_is_better(self) -> bool:
        """Whether the live metric is better lower (RMSE, MAE): a floor is then a ceiling."""
        return self.metric in LOWER_IS_BETTER


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def live_evidence_tags(live: LiveEvidence) -> dict[str, str]:
    return {
        "metric": live.metric,
        "deployment": live.deployment,
        "live_value": _number(live.value),
        "labeled_rows": str(live.labeled_rows),
        "previous_deployment": live.previous_deployment or "none",
        "previous_value": _number(live.previous_value),
        "paired_deployment": live.paired_deployment or "none",
        "paired_rows": str(live.paired_rows),
        "paired_live_value": _number(live.paired_value),
        "paired_previous_value": _number(live.paired_previous_value),
        "paired_difference": _number(live.paired_difference),
        "paired_ci_high": _number(live.paired_ci_high),
        "paired_ci_low": _number(live.paired_ci_low),
        "recent_paired_batches": str(live.recent_paired_batches),
        "recent_paired_rows": str(live.recent_paired_rows),
        "recent_paired_difference": _number(live.recent_paired_difference),
        "recent_paired_ci_high": _number(live.recent_paired_ci_high),
        "recent_paired_ci_low": _number(live.recent_paired_ci_low),
        "recent_rows": str(live.recent_rows),
        "recent_value": _number(live.recent_value),
    }


#: Which evidence decided (the `decided_by` evidence tag).
BAKE_WINDOW = "bake_window"
RECENT_WINDOW = "recent_window"
