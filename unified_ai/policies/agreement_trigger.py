"""When too little agreement between the model and its reviewers asks for a retrain.

`live_performance` measures, over the deployed model's last reviewed batches, the share of
reviewed rows where the person's answer is the model's (`unified_ai.ml.agreement`), overall
and per value of each segment column. `policy.triggers.agreement` sets a floor: any of those
scopes holding at least `min_answers` answers and agreeing less than the floor asks for a
retrain, naming the scopes with their counts in the evidence. Pure: no Dagster import.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from unified_ai.policies.trigger_evidence import (
    Decision,
    LastRetrain,
    cooldown_hold,
    note_rearmed,
)
from unified_ai.projects.schema_policy import AgreementTrigger

#: The whole window's scope name (beside `column=value` for a segment value).
OVERALL = "all"
#: Longest evidence tag value (run tags are short).
_TAG_CHARS = 200


@dataclass(frozen=True)
class Scope:
    """Agreement over one set of reviewed rows: all of them, or one segment value's."""

    name: str
    answers: int
    agreed: int

    @property
    def share(self) -> float:
        return self.agreed / self.answers if self.answers else 0.0

    def words(self) -> str:
        return f"{self.name} {self.agreed}/{self.answers} ({self.share:.2f})"


@dataclass(frozen=True)
class AgreementEvidence:
    """What `live_performance` recorded about model-people agreement for a deployment."""

    deployment: str
    rule: str
    batches: list[str]
    overall: Scope
    segments: list[Scope] = field(default_factory=list)

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> "AgreementEvidence":
        """Read the `agreement` entry `unified_ai.ml.agreement.agreement_report` wrote."""
        segments = [
            Scope(f"{column}={value}", int(counts["answers"]), int(counts["agreed"]))
            for column, values in (report.get("segments") or {}).items()
            for value, counts in values.items()
        ]
        return cls(
            deployment=str(report.get("deployment") or ""),
            rule=str(report.get("rule") or ""),
            batches=[str(b) for b in report.get("batches") or []],
            overall=Scope(OVERALL, int(report.get("answers") or 0), int(report.get("agreed") or 0)),
            segments=segments,
        )

    def scopes(self) -> list[Scope]:
        return [self.overall, *self.segments]


def _short(text: str) -> str:
    return text if len(text) <= _TAG_CHARS else text[: _TAG_CHARS - 3] + "..."


def _evidence(rule: AgreementTrigger, found: AgreementEvidence, below: list[Scope]) -> dict:
    overall = found.overall
    return {
        "deployment": found.deployment,
        "floor": "none" if rule.floor is None else f"{rule.floor:.4f}",
        "min_answers": str(rule.min_answers),
        "answers": str(overall.answers),
        "agreed": str(overall.agreed),
        "agreement": f"{overall.share:.4f}" if overall.answers else "none",
        "agreement_rule": found.rule,
        "below_floor": _short("; ".join(s.words() for s in below)) or "none",
        "batches": _short(",".join(found.batches)) or "none",
    }


def agreement_decision(
    rule: AgreementTrigger,
    found: AgreementEvidence,
    *,
    last_trigger: datetime | None,
    now: datetime,
    last_retrain: LastRetrain | None = None,
) -> Decision:
    """Retrain when agreement over all reviewed rows, or a segment value's, is below the floor.

    A scope is judged once it holds `min_answers` answers; the ones below the floor are named
    in the reason and in the `below_floor` evidence tag with their counts.
    """
    judged = [s for s in found.scopes() if s.answers >= rule.min_answers]
    floor = rule.floor
    below = [s for s in judged if floor is not None and s.share < floor]
    evidence = _evidence(rule, found, below)
    if not rule.enabled:
        return Decision(False, "agreement trigger is switched off in policy", evidence)
    if floor is None:
        return Decision(False, "no agreement floor (policy.triggers.agreement.floor)", evidence)
    if not judged:
        return Decision(
            False,
            f"only {found.overall.answers} reviewed answers for deployment {found.deployment} "
            f"(need {rule.min_answers} overall or in a segment value)",
            evidence,
        )
    if not below:
        return Decision(
            False,
            f"model-people agreement is at or above {floor:.2f} "
            f"({', '.join(s.words() for s in judged[:3])})",
            evidence,
        )
    shown = "; ".join(s.words() for s in below)
    hold = cooldown_hold("agreement", rule.cooldown_minutes, last_trigger, now, last_retrain)
    if hold is not None:
        return Decision(
            False,
            f"model-people agreement below {floor:.2f} ({shown}), but a retrain was triggered "
            f"within the cooldown ({hold.minutes} min left); {hold.rule}",
            evidence,
        )
    note_rearmed(evidence, rule.cooldown_minutes, last_trigger, now, last_retrain)
    return Decision(
        True,
        f"model-people agreement is below the floor {floor:.2f} in {shown} "
        f"(deployment {found.deployment}; {found.rule})",
        evidence,
    )
