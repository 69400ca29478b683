"""When automations act, as pure decisions over recorded evidence.

Drift → retrain; live metric below the floor → retrain; a fresh deployment doing clearly worse
than its predecessor → roll back.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from unified_ai.projects.schema import DriftTrigger, PerformanceTrigger, RollbackTrigger


@dataclass(frozen=True)
class Decision:
    """Act or not, with a one-line reason and the evidence (which goes into run tags)."""

    act: bool
    reason: str
    evidence: dict[str, str] = field(default_factory=dict)


def _nan(value: float | None) -> bool:
    # NaN evidence is a broken measurement: no automation acts on it (every comparison with
    # NaN is false, which would otherwise read as "above the threshold" or "below the floor").
    return value is not None and not math.isfinite(value)


def cooldown_left(last: datetime | None, now: datetime, minutes: float) -> timedelta | None:
    """Time left in the cooldown after the last trigger, or None if there is none."""
    if last is None:
        return None
    left = last + timedelta(minutes=minutes) - now
    return left if left > timedelta(0) else None


def drift_decision(
    rule: DriftTrigger,
    *,
    share: float,
    drifted: list[str],
    batch: str,
    last_trigger: datetime | None,
    now: datetime,
) -> Decision:
    evidence = {
        "drifted_share": f"{share:.3f}",
        "threshold": f"{rule.max_drifted_share:.3f}",
        "batch": batch,
        "drifted_columns": ",".join(drifted)[:200],
    }
    if not rule.enabled:
        return Decision(False, "drift trigger is switched off in policy", evidence)
    if _nan(share):
        return Decision(False, f"batch {batch}: drifted share is not a number", evidence)
    if share <= rule.max_drifted_share:
        return Decision(
            False,
            f"batch {batch}: drifted share {share:.2f} is within {rule.max_drifted_share:.2f}",
            evidence,
        )
    left = cooldown_left(last_trigger, now, rule.cooldown_minutes)
    if left is not None:
        return Decision(
            False,
            f"batch {batch}: drifted share {share:.2f} > {rule.max_drifted_share:.2f}, but the "
            f"last retrain was triggered {last_trigger:%H:%M:%S}; cooldown ends in "
            f"{int(left.total_seconds() // 60)} min",
            evidence,
        )
    return Decision(
        True,
        f"batch {batch}: drifted share {share:.2f} > {rule.max_drifted_share:.2f} "
        f"({', '.join(drifted)})",
        evidence,
    )


@dataclass(frozen=True)
class LiveEvidence:
    """What `live_performance` recorded for the deployed model."""

    metric: str
    deployment: str
    value: float | None
    ci_high: float | None
    labeled_rows: int
    deployed_at: datetime | None
    previous_deployment: str | None
    previous_value: float | None


def _evidence(live: LiveEvidence) -> dict[str, str]:
    return {
        "metric": live.metric,
        "deployment": live.deployment,
        "live_value": "none" if live.value is None else f"{live.value:.4f}",
        "labeled_rows": str(live.labeled_rows),
        "previous_deployment": live.previous_deployment or "none",
        "previous_value": "none" if live.previous_value is None else f"{live.previous_value:.4f}",
    }


def rollback_decision(
    rule: RollbackTrigger, live: LiveEvidence, *, last_trigger: datetime | None, now: datetime
) -> Decision:
    """Roll back inside the bake window when the new deployment is clearly worse live."""
    evidence = _evidence(live)
    if not rule.enabled:
        return Decision(False, "automatic rollback is switched off in policy", evidence)
    if live.value is None or live.previous_value is None or live.deployed_at is None:
        return Decision(False, "no live comparison with a previous deployment yet", evidence)
    broken = [
        name
        for name, value in (
            ("live value", live.value),
            ("previous value", live.previous_value),
            ("interval", live.ci_high),
        )
        if _nan(value)
    ]
    if broken:
        return Decision(
            False, f"live {live.metric}: {' and '.join(broken)} is not a number", evidence
        )
    if now - live.deployed_at > timedelta(hours=rule.bake_window_hours):
        return Decision(
            False,
            f"deployment {live.deployment} is past its {rule.bake_window_hours:g} h bake window",
            evidence,
        )
    gap = live.previous_value - live.value
    clearly = gap > rule.margin and (live.ci_high is None or live.ci_high < live.previous_value)
    if not clearly:
        return Decision(
            False,
            f"live {live.metric} {live.value:.4f} vs previous {live.previous_value:.4f}: "
            f"not worse by more than {rule.margin:.2f}",
            evidence,
        )
    left = cooldown_left(last_trigger, now, rule.cooldown_minutes)
    if left is not None:
        return Decision(False, "degradation seen, but a rollback ran within the cooldown", evidence)
    return Decision(
        True,
        f"live {live.metric} {live.value:.4f} of deployment {live.deployment} is "
        f"{gap:.4f} below the previous deployment's {live.previous_value:.4f} within the "
        "bake window",
        evidence,
    )


def performance_decision(
    rule: PerformanceTrigger, live: LiveEvidence, *, last_trigger: datetime | None, now: datetime
) -> Decision:
    """Retrain when the deployed model's live metric is below the policy floor."""
    evidence = {**_evidence(live), "floor": f"{rule.floor:.4f}"}
    if not rule.enabled:
        return Decision(False, "performance trigger is switched off in policy", evidence)
    if _nan(live.value):
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
    if live.value >= rule.floor:
        return Decision(
            False, f"live {live.metric} {live.value:.4f} is at or above {rule.floor:.4f}", evidence
        )
    left = cooldown_left(last_trigger, now, rule.cooldown_minutes)
    if left is not None:
        return Decision(
            False,
            f"live {live.metric} {live.value:.4f} < {rule.floor:.4f}, but a retrain was "
            f"triggered within the cooldown ({int(left.total_seconds() // 60)} min left)",
            evidence,
        )
    return Decision(
        True, f"live {live.metric} {live.value:.4f} is below the floor {rule.floor:.4f}", evidence
    )
