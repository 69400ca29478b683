"""When automations act, as pure decisions over recorded evidence.

Drift → retrain; live metric below the floor → retrain; a fresh deployment doing clearly worse
than its predecessor on the same labeled rows → roll back (`live_action` orders the last two).
The rollback and the floor judge the most recent batches beside the whole window (the evidence
says which decided); a retrain that deployed nothing holds no cooldown against evidence it
never saw (`cooldown_hold`); a retrain that could only rebuild the champion is not asked for
(`reproduces_last_model`).

The drift and ground-truth triggers are decided here. The rollback (`rollback_trigger`), the
live floor with `live_action` (`performance_trigger`) and the records they all share
(`trigger_evidence`) live beside this module and are re-exported from it.
"""

from dataclasses import dataclass
from datetime import datetime

from unified_ai.policies.performance_trigger import LiveAction, live_action, performance_decision
from unified_ai.policies.rollback_trigger import rollback_decision
from unified_ai.policies.trigger_evidence import (
    BAKE_WINDOW,
    RECENT_WINDOW,
    Decision,
    Hold,
    LastRetrain,
    LiveEvidence,
    broken_number,
    cooldown_hold,
    cooldown_left,
    note_rearmed,
)
from unified_ai.projects.schema import DriftTrigger, GroundTruthTrigger

__all__ = [
    "BAKE_WINDOW",
    "RECENT_WINDOW",
    "Decision",
    "Hold",
    "LastRetrain",
    "LiveAction",
    "LiveEvidence",
    "NewLabels",
    "cooldown_hold",
    "cooldown_left",
    "drift_decision",
    "ground_truth_decision",
    "live_action",
    "performance_decision",
    "reproduces_last_model",
    "rollback_decision",
]


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
    if broken_number(share):
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
    note_rearmed(evidence, rule.cooldown_minutes, last_trigger, now, last_retrain)
    return Decision(
        True,
        f"batch {batch}: drifted share {share:.2f} > {rule.max_drifted_share:.2f} "
        f"({', '.join(drifted)})",
        evidence,
    )


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
    note_rearmed(evidence, rule.cooldown_minutes, last_trigger, now, last_retrain)
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
