"""When a fresh deployment is rolled back: clearly worse than its predecessor on the same rows.

The rollback judges the whole bake window and, beside it, the most recent batches alone; the
`decided_by` evidence tag says which decided.
"""

from datetime import datetime, timedelta

from unified_ai.policies.trigger_evidence import (
    BAKE_WINDOW,
    RECENT_WINDOW,
    Decision,
    LiveEvidence,
    broken_number,
    cooldown_left,
    live_evidence_tags,
)
from unified_ai.projects.schema import RollbackTrigger


def _clearly_worse(
    difference: float | None,
    ci_high: float | None,
    margin: float,
    *,
    lower_is_better: bool = False,
    ci_low: float | None = None,
) -> bool:
    """The paired rule: worse by more than `margin` and the whole interval on the worse side.

    `difference` is live - previous in the metric's units. Where higher is better, worse is
    below zero (the interval's upper end below 0); where lower is better (RMSE, MAE), worse is
    above zero (the interval's lower end above 0).
    """
    edge = ci_low if lower_is_better else ci_high
    if difference is None or edge is None or broken_number(difference) or broken_number(edge):
        return False
    if lower_is_better:
        return difference > margin and edge > 0
    return -difference > margin and edge < 0


def _worse_by(live: LiveEvidence, difference: float) -> str:
    """How much worse live is than the previous deployment, in words for its direction."""
    if live.lower_is_better:
        return f"{difference:.4f} above the previous deployment"
    return f"{-difference:.4f} below the previous deployment"


def _not_yet_judged(
    rule: RollbackTrigger,
    live: LiveEvidence,
    evidence: dict[str, str],
    *,
    min_rows: int,
    now: datetime,
) -> Decision | None:
    """Why the paired evidence cannot be judged (yet), or None when it can.

    Too few paired rows is the one pending case: the evidence is on its way.
    """
    if not rule.enabled:
        return Decision(False, "automatic rollback is switched off in policy", evidence)
    if live.deployed_at is None:
        return Decision(False, f"deployment {live.deployment} records no deployment time", evidence)
    if now - live.deployed_at > timedelta(hours=rule.bake_window_hours):
        return Decision(
            False,
            f"deployment {live.deployment} is past its {rule.bake_window_hours:g} h bake window",
            evidence,
        )
    if live.paired_deployment is None:
        return Decision(
            False,
            f"no live comparison: no earlier deployment to roll back to scored deployment "
            f"{live.deployment}'s rows",
            evidence,
        )
    broken = [
        name
        for name, value in (
            ("live value", live.paired_value),
            ("previous value", live.paired_previous_value),
            ("difference", live.paired_difference),
            ("interval", live.paired_ci_high),
        )
        if broken_number(value)
    ]
    if broken:
        return Decision(
            False, f"live {live.metric}: {' and '.join(broken)} is not a number", evidence
        )
    pair = f"deployment {live.deployment} and its predecessor {live.paired_deployment}"
    if live.paired_rows < min_rows or live.paired_difference is None:
        return Decision(
            False,
            f"waiting for paired evidence: {live.paired_rows} labeled rows scored by both "
            f"{pair} (need {min_rows} with a measurable {live.metric})",
            evidence,
            pending=True,
        )
    return None


def _same_rows(live: LiveEvidence) -> str:
    """The whole window's paired comparison, in words."""
    return (
        f"on the same {live.paired_rows} labeled rows, live {live.metric} "
        f"{live.paired_value:.4f} of deployment {live.deployment} vs "
        f"{live.paired_previous_value:.4f} of {live.paired_deployment}"
    )


def _recent_judged(rule: RollbackTrigger, live: LiveEvidence) -> bool:
    """Whether the recent window has enough paired rows, both measured, to be judged."""
    return (
        live.recent_paired_rows >= rule.recent_rows
        and live.recent_paired_value is not None
        and live.recent_paired_previous_value is not None
    )


def _degradation(rule: RollbackTrigger, live: LiveEvidence) -> tuple[str, float | None, str] | None:
    """Which window shows the deployment clearly worse, the interval's upper end, and why.

    The whole bake window is asked first, then the recent window; None when neither does.
    (`_clearly_worse` is False for a missing number; the `is not None` tests tell the type
    checker so.)
    """
    lower = live.lower_is_better
    difference = live.paired_difference
    if difference is not None and _clearly_worse(
        difference,
        live.paired_ci_high,
        rule.margin,
        lower_is_better=lower,
        ci_low=live.paired_ci_low,
    ):
        why = f"{_same_rows(live)}: {_worse_by(live, difference)}"
        return BAKE_WINDOW, live.paired_ci_low if lower else live.paired_ci_high, why
    recent = live.recent_paired_difference
    if (
        _recent_judged(rule, live)
        and recent is not None
        and _clearly_worse(
            recent,
            live.recent_paired_ci_high,
            rule.margin,
            lower_is_better=lower,
            ci_low=live.recent_paired_ci_low,
        )
    ):
        why = (
            f"on the same {live.recent_paired_rows} labeled rows of the last "
            f"{live.recent_paired_batches} batches, live {live.metric} "
            f"{live.recent_paired_value:.4f} of deployment {live.deployment} vs "
            f"{live.recent_paired_previous_value:.4f} of {live.paired_deployment}: "
            f"{_worse_by(live, recent)} (whole window: "
            f"{live.paired_difference:+.4f} on {live.paired_rows} rows)"
        )
        return (
            RECENT_WINDOW,
            live.recent_paired_ci_low if lower else live.recent_paired_ci_high,
            why,
        )
    return None


def _not_clearly_worse(rule: RollbackTrigger, live: LiveEvidence) -> str:
    """Why neither window shows the deployment clearly worse, naming a world that changed."""
    side = "above" if live.lower_is_better else "below"
    why = (
        f"{_same_rows(live)}: not clearly worse (by more than {rule.margin:.2f}, interval {side} 0)"
    )
    if _recent_judged(rule, live):
        why += (
            f", nor on the last {live.recent_paired_batches} batches "
            f"({live.recent_paired_difference:+.4f} on {live.recent_paired_rows} rows)"
        )
    else:
        why += (
            f"; the recent window has {live.recent_paired_rows} paired rows "
            f"(judged from {rule.recent_rows})"
        )
    previous_on_pair = live.paired_previous_value
    if (
        live.previous_value is not None
        and previous_on_pair is not None  # always set once the pair is judged
        and (
            previous_on_pair > live.previous_value + rule.margin
            if live.lower_is_better
            else previous_on_pair < live.previous_value - rule.margin
        )
    ):
        why += (
            f"; the predecessor fell too (from {live.previous_value:.4f} on its own rows): "
            "both degrade together, the world changed, not the model"
        )
    return why


def rollback_decision(
    rule: RollbackTrigger,
    live: LiveEvidence,
    *,
    min_rows: int,
    last_trigger: datetime | None,
    now: datetime,
) -> Decision:
    """Roll back inside the bake window when the new deployment is clearly worse on the same rows.

    Only rows both models scored count: the live model's numbers on this week's rows are never
    set against its predecessor's on last week's, because when the world changes both get
    worse and that is no reason to blame the model. "Clearly worse" means live - previous is
    below `-rule.margin` and the whole paired bootstrap interval is below zero; for a metric
    where lower is better (RMSE, MAE), above `rule.margin` and the whole interval above zero.
    With fewer than `min_rows` such rows the decision is pending (`pending=True`): not yet,
    and nothing else should act on the deployment's numbers meanwhile.
    """
    evidence = live_evidence_tags(live)
    early = _not_yet_judged(rule, live, evidence, min_rows=min_rows, now=now)
    if early is not None:
        return early
    found = _degradation(rule, live)
    if found is None:
        return Decision(False, _not_clearly_worse(rule, live), {**evidence, "decided_by": "none"})
    decided_by, interval, why = found
    evidence = {**evidence, "decided_by": decided_by}
    left = cooldown_left(last_trigger, now, rule.cooldown_minutes)
    if left is not None:
        return Decision(False, "degradation seen, but a rollback ran within the cooldown", evidence)
    return Decision(
        True,
        f"{why} (interval of the difference {'from' if live.lower_is_better else 'up to'} "
        f"{interval:+.4f}; decided by the "
        f"{decided_by.replace('_', ' ')}) within the bake window",
        evidence,
    )
