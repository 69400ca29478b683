"""When automations act, as pure decisions over recorded evidence.

Drift → retrain; live metric below the floor → retrain; a fresh deployment doing clearly worse
than its predecessor on the same labeled rows → roll back (`live_action` orders the last two).
The rollback and the floor judge the most recent batches beside the whole window (the evidence
says which decided); a retrain that deployed nothing holds no cooldown against evidence it
never saw (`cooldown_hold`); a retrain that could only rebuild the champion is not asked for
(`reproduces_last_model`).
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from unified_ai.projects.schema import (
    DriftTrigger,
    GroundTruthTrigger,
    PerformanceTrigger,
    RollbackTrigger,
)


@dataclass(frozen=True)
class Decision:
    """Act or not, with a one-line reason and the evidence (which goes into run tags)."""

    act: bool
    reason: str
    evidence: dict[str, str] = field(default_factory=dict)
    #: Not acting yet because the evidence is not in (a rollback waiting for paired rows):
    #: other automations wait for it rather than act on half the picture.
    pending: bool = False


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


def drift_decision(
    rule: DriftTrigger,
    *,
    share: float,
    drifted: list[str],
    batch: str,
    last_trigger: datetime | None,
    now: datetime,
    last_retrain: LastRetrain | None = None,
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
    hold = cooldown_hold("drift", rule.cooldown_minutes, last_trigger, now, last_retrain)
    if hold is not None:
        return Decision(
            False,
            f"batch {batch}: drifted share {share:.2f} > {rule.max_drifted_share:.2f}, but the "
            f"last retrain was triggered {last_trigger:%H:%M:%S}; cooldown ends in "
            f"{hold.minutes} min; {hold.rule}",
            evidence,
        )
    if last_trigger is not None and cooldown_left(last_trigger, now, rule.cooldown_minutes):
        evidence["rearmed"] = last_retrain.fresh_detail if last_retrain else "yes"
    return Decision(
        True,
        f"batch {batch}: drifted share {share:.2f} > {rule.max_drifted_share:.2f} "
        f"({', '.join(drifted)})",
        evidence,
    )


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


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def _evidence(live: LiveEvidence) -> dict[str, str]:
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
        "recent_paired_batches": str(live.recent_paired_batches),
        "recent_paired_rows": str(live.recent_paired_rows),
        "recent_paired_difference": _number(live.recent_paired_difference),
        "recent_paired_ci_high": _number(live.recent_paired_ci_high),
        "recent_rows": str(live.recent_rows),
        "recent_value": _number(live.recent_value),
    }


#: Which evidence decided (the `decided_by` evidence tag).
BAKE_WINDOW = "bake_window"
RECENT_WINDOW = "recent_window"


def _clearly_worse(difference: float | None, ci_high: float | None, margin: float) -> bool:
    """The paired rule: worse by more than `margin` and the whole interval below zero."""
    if difference is None or ci_high is None or _nan(difference) or _nan(ci_high):
        return False
    return -difference > margin and ci_high < 0


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
    below `-rule.margin` and the whole paired bootstrap interval is below zero. With fewer than
    `min_rows` such rows the decision is pending (`pending=True`): not yet, and nothing else
    should act on the deployment's numbers meanwhile.
    """
    evidence = _evidence(live)
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
        if _nan(value)
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
    difference = live.paired_difference
    same_rows = (
        f"on the same {live.paired_rows} labeled rows, live {live.metric} "
        f"{live.paired_value:.4f} of deployment {live.deployment} vs "
        f"{live.paired_previous_value:.4f} of {live.paired_deployment}"
    )
    recent_judged = (
        live.recent_paired_rows >= rule.recent_rows
        and live.recent_paired_value is not None
        and live.recent_paired_previous_value is not None
    )
    if _clearly_worse(difference, live.paired_ci_high, rule.margin):
        decided_by, interval = BAKE_WINDOW, live.paired_ci_high
        why = f"{same_rows}: {-difference:.4f} below the previous deployment"
    elif recent_judged and _clearly_worse(
        live.recent_paired_difference, live.recent_paired_ci_high, rule.margin
    ):
        decided_by, interval = RECENT_WINDOW, live.recent_paired_ci_high
        why = (
            f"on the same {live.recent_paired_rows} labeled rows of the last "
            f"{live.recent_paired_batches} batches, live {live.metric} "
            f"{live.recent_paired_value:.4f} of deployment {live.deployment} vs "
            f"{live.recent_paired_previous_value:.4f} of {live.paired_deployment}: "
            f"{-live.recent_paired_difference:.4f} below the previous deployment (whole window: "
            f"{difference:+.4f} on {live.paired_rows} rows)"
        )
    else:
        why = f"{same_rows}: not clearly worse (by more than {rule.margin:.2f}, interval below 0)"
        if recent_judged:
            why += (
                f", nor on the last {live.recent_paired_batches} batches "
                f"({live.recent_paired_difference:+.4f} on {live.recent_paired_rows} rows)"
            )
        else:
            why += (
                f"; the recent window has {live.recent_paired_rows} paired rows "
                f"(judged from {rule.recent_rows})"
            )
        if live.previous_value is not None and (
            live.paired_previous_value < live.previous_value - rule.margin
        ):
            why += (
                f"; the predecessor fell too (from {live.previous_value:.4f} on its own rows): "
                "both degrade together, the world changed, not the model"
            )
        return Decision(False, why, {**evidence, "decided_by": "none"})
    evidence = {**evidence, "decided_by": decided_by}
    left = cooldown_left(last_trigger, now, rule.cooldown_minutes)
    if left is not None:
        return Decision(False, "degradation seen, but a rollback ran within the cooldown", evidence)
    return Decision(
        True,
        f"{why} (interval of the difference up to {interval:+.4f}; decided by the "
        f"{decided_by.replace('_', ' ')}) within the bake window",
        evidence,
    )


def performance_decision(
    rule: PerformanceTrigger,
    live: LiveEvidence,
    *,
    last_trigger: datetime | None,
    now: datetime,
    last_retrain: LastRetrain | None = None,
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
    recent_judged = (
        live.recent_rows >= rule.recent_rows
        and live.recent_value is not None
        and not _nan(live.recent_value)
    )
    if live.value < rule.floor:
        decided_by = BAKE_WINDOW
        below = f"live {live.metric} {live.value:.4f}"
    elif recent_judged and live.recent_value < rule.floor:
        decided_by = RECENT_WINDOW
        below = (
            f"live {live.metric} {live.recent_value:.4f} over the last {live.recent_batches} "
            f"batches ({live.recent_rows} rows; {live.value:.4f} over the window)"
        )
    else:
        recent = (
            f", {live.recent_value:.4f} over the last {live.recent_batches} batches"
            if recent_judged
            else ""
        )
        return Decision(
            False,
            f"live {live.metric} {live.value:.4f}{recent} is at or above {rule.floor:.4f}",
            {**evidence, "decided_by": "none"},
        )
    evidence = {**evidence, "decided_by": decided_by}
    hold = cooldown_hold("performance", rule.cooldown_minutes, last_trigger, now, last_retrain)
    if hold is not None:
        return Decision(
            False,
            f"{below} < {rule.floor:.4f}, but a retrain was triggered within the cooldown "
            f"({hold.minutes} min left); {hold.rule}",
            evidence,
        )
    return Decision(True, f"{below} is below the floor {rule.floor:.4f}", evidence)


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


@dataclass(frozen=True)
class NewLabels:
    """Labeled production rows that arrived after the newest training data was cut.

    Attributes:
        rows: How many (the newest ground truth of each batch labeled since).
        batches: Those batches, oldest first.
        cut_version: The newest `training_data` version (None: never trained).
        cut_at: When it was stored.
        included: Whether the project's training uses production rows at all.
    """

    rows: int
    batches: list[str]
    cut_version: str | None
    cut_at: str | None
    included: bool


def ground_truth_decision(
    rule: GroundTruthTrigger,
    labels: NewLabels,
    *,
    last_trigger: datetime | None,
    now: datetime,
    last_retrain: LastRetrain | None = None,
) -> Decision:
    """Retrain when at least `min_new_labels` labeled rows arrived since the training data."""
    shown = ",".join(labels.batches)
    evidence = {
        "new_labels": str(labels.rows),
        "min_new_labels": str(rule.min_new_labels),
        "batches": shown if len(shown) <= 200 else shown[:197] + "...",
        "training_data": labels.cut_version or "none",
        "cut_at": labels.cut_at or "none",
    }
    if not rule.enabled:
        return Decision(False, "ground-truth trigger is switched off in policy", evidence)
    if not labels.included:
        return Decision(
            False,
            "training does not use production rows (training.production_data.include is "
            "false): new labels would not change the model",
            evidence,
        )
    if labels.cut_version is None:
        return Decision(False, "no training data yet: run the training loop first", evidence)
    if labels.rows < rule.min_new_labels:
        return Decision(
            False,
            f"{labels.rows} labeled rows from {len(labels.batches)} batches since training data "
            f"{labels.cut_version} (need {rule.min_new_labels})",
            evidence,
        )
    hold = cooldown_hold("ground_truth", rule.cooldown_minutes, last_trigger, now, last_retrain)
    if hold is not None:
        return Decision(
            False,
            f"{labels.rows} new labeled rows, but a retrain was triggered within the cooldown "
            f"({hold.minutes} min left); {hold.rule}",
            evidence,
        )
    if last_trigger is not None and cooldown_left(last_trigger, now, rule.cooldown_minutes):
        evidence["rearmed"] = last_retrain.fresh_detail if last_retrain else "yes"
    return Decision(
        True,
        f"{labels.rows} labeled rows from {len(labels.batches)} batches arrived since training "
        f"data {labels.cut_version} was cut (policy: at least {rule.min_new_labels})",
        evidence,
    )


def reproduces_last_model(labels: NewLabels, last_retrain: LastRetrain | None) -> str | None:
    """Why a retrain now would only reproduce the model of the newest training data, or None.

    Training is deterministic (fixed split and seed): on the same rows it builds the same
    model. When the project trains on labeled production rows and none arrived since the
    newest training data was cut, a retrain can only rebuild that model, the champion when
    it was deployed, and the evaluation would refuse it as identical. (A changed source file
    is not visible to a trigger: run the training loop to train on it.)
    """
    if not labels.included or labels.cut_version is None or labels.rows > 0:
        return None
    whose = (
        "the champion"
        if last_retrain is None or last_retrain.outcome == "deployed"
        else "the model last trained"
    )
    return (
        f"a retrain would only reproduce {whose}: no labeled rows arrived since its training "
        f"data {labels.cut_version} was cut"
    )
