"""When the live numbers ask for a retrain, and what a deployment's live numbers lead to.

The floor judges the whole window and, beside it, the most recent batches alone (the
`decided_by` evidence tag says which decided); `live_action` orders the rollback before it.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from unified_ai.policies.rollback_trigger import rollback_decision
from unified_ai.policies.trigger_evidence import (
    BAKE_WINDOW,
    RECENT_WINDOW,
    Decision,
    LastRetrain,
    LiveEvidence,
    broken_number,
    cooldown_hold,
    live_evidence_tags,
)
from unified_ai.projects.schema import PerformanceTrigger, RollbackTrigger


def _not_measured(
    rule: PerformanceTrigger, live: LiveEvidence, evidence: dict[str, str]
) -> Decision | None:
    """Why the live metric cannot be set against the floor, or None when it can."""
    if not rule.enabled:
        return Decision(False, "performance trigger is switched off in policy", evidence)
    if broken_number(live.value):
        return Decision(
            False, f"live {live.metric} of deployment {live.deployment} is not a number", evidence
        )
    if live.value is None or live.labeled_rows < rule.min_labels:
        return Decision(
            False,
            f"only {live.labeled_rows} labeled rows for deployment {live.deployment} "
            f"(need {rule.min_labels})",
            evidence,
        )
    return None


def _recent_value(rule: PerformanceTrigger, live: LiveEvidence) -> float | None:
    """The metric over the most recent batches when there are enough rows to judge it."""
    judged = (
        live.recent_rows >= rule.recent_rows
        and live.recent_value is not None
        and not broken_number(live.recent_value)
    )
    return live.recent_value if judged else None


def _past(rule: PerformanceTrigger, live: LiveEvidence, value: float) -> bool:
    """Whether `value` is on the wrong side of the floor (above it when lower is better)."""
    return value > rule.floor if live.lower_is_better else value < rule.floor


def _words(live: LiveEvidence) -> tuple[str, str, str]:
    """(what the floor is called, the wrong side, the right side) for the metric's direction."""
    if live.lower_is_better:
        return "ceiling", "above", "at or below"
    return "floor", "below", "at or above"


def _below_floor(rule: PerformanceTrigger, live: LiveEvidence) -> tuple[str, str] | None:
    """Which window is past the floor (`decided_by`) and the metric that is, in words.

    Past the floor means below it, or above it for a metric where lower is better (RMSE,
    MAE: the floor is then a ceiling). The whole window is asked first, then the recent
    window; None when neither is past it. (The live value is measured by now; the
    `is not None` test tells the type checker so.)
    """
    value = live.value
    recent = _recent_value(rule, live)
    if value is not None and _past(rule, live, value):
        return BAKE_WINDOW, f"live {live.metric} {value:.4f}"
    if recent is not None and _past(rule, live, recent):
        return RECENT_WINDOW, (
            f"live {live.metric} {recent:.4f} over the last {live.recent_batches} "
            f"batches ({live.recent_rows} rows; {value:.4f} over the window)"
        )
    return None


def _at_or_above(rule: PerformanceTrigger, live: LiveEvidence) -> str:
    """The live metric on the right side of the floor, in words (the recent window too)."""
    recent = _recent_value(rule, live)
    shown = (
        f", {recent:.4f} over the last {live.recent_batches} batches" if recent is not None else ""
    )
    right = _words(live)[2]
    return f"live {live.metric} {live.value:.4f}{shown} is {right} {rule.floor:.4f}"


def performance_decision(
    rule: PerformanceTrigger,
    live: LiveEvidence,
    *,
    last_trigger: datetime | None,
    now: datetime,
    last_retrain: LastRetrain | None = None,
) -> Decision:
    """Retrain when the deployed model's live metric is below the policy floor.

    For a metric where lower is better (RMSE, MAE) the floor is a ceiling: retrain above it.
    """
    evidence = {**live_evidence_tags(live), "floor": f"{rule.floor:.4f}"}
    early = _not_measured(rule, live, evidence)
    if early is not None:
        return early
    found = _below_floor(rule, live)
    if found is None:
        return Decision(False, _at_or_above(rule, live), {**evidence, "decided_by": "none"})
    decided_by, below = found
    name, wrong, _ = _words(live)
    sign = ">" if live.lower_is_better else "<"
    evidence = {**evidence, "decided_by": decided_by}
    hold = cooldown_hold("performance", rule.cooldown_minutes, last_trigger, now, last_retrain)
    if hold is not None:
        return Decision(
            False,
            f"{below} {sign} {rule.floor:.4f}, but a retrain was triggered within the cooldown "
            f"({hold.minutes} min left); {hold.rule}",
            evidence,
        )
    return Decision(True, f"{below} is {wrong} the {name} {rule.floor:.4f}", evidence)


@dataclass(frozen=True)
class LiveAction:
    """What the performance trigger does with new live evidence, and the decisions behind it."""

    action: Literal["rollback", "retrain", "wait"]
    reason: str
    rollback: Decision
    retrain: Decision | None


def live_action(
    rollback_rule: RollbackTrigger,
    performance_rule: PerformanceTrigger,
    live: LiveEvidence,
    *,
    last_rollback: datetime | None,
    last_retrain: datetime | None,
    now: datetime,
    retrain_outcome: LastRetrain | None = None,
) -> LiveAction:
    """The rule for a deployment's live numbers, in order.

    1. Clearly worse than its predecessor on the same labeled rows, inside the bake window:
       roll back (`rollback_decision`).
    2. Inside the bake window with too few paired rows (fewer than the policy's `min_labels`)
       to tell: wait, with the reason; a retrain now could be blaming the world for the model.
    3. Otherwise, below the live floor (`performance_decision`): retrain. This is what happens
       when both models degrade together: the world changed, and the loop learns it.
    """
    rollback = rollback_decision(
        rollback_rule,
        live,
        min_rows=performance_rule.min_labels,
        last_trigger=last_rollback,
        now=now,
    )
    if rollback.act:
        return LiveAction("rollback", rollback.reason, rollback, None)
    if rollback.pending:
        return LiveAction("wait", rollback.reason, rollback, None)
    retrain = performance_decision(
        performance_rule, live, last_trigger=last_retrain, now=now, last_retrain=retrain_outcome
    )
    if retrain.act:
        reason = f"{retrain.reason}; no rollback: {rollback.reason}"
        return LiveAction("retrain", reason, rollback, retrain)
    return LiveAction("wait", f"{rollback.reason}; {retrain.reason}", rollback, retrain)
