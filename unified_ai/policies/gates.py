"""Evaluation gates as pure decisions over an evaluation report and a policy.

Each gate returns a `GateResult` with a one-line reason and the evidence it used, so the same
decision can be shown in the UI, recorded in the audit trail and replayed under a new policy.
"""

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from unified_ai.projects.schema import Policy
from unified_ai.projects.tasks import LOWER_IS_BETTER


def _nan(value: Any) -> bool:
    """Whether `value` is a number that is not finite.

    NaN compares false with everything, so every gate checks for it first: otherwise
    `improvement < required` is false and a NaN passes.
    """
    return isinstance(value, (int, float)) and not math.isfinite(value)


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate."""

    gate: str
    passed: bool
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def quality_floor(report: Mapping[str, Any], policy: Policy) -> GateResult:
    """The candidate meets every metric floor the policy sets."""
    metrics = report["candidate"]["metrics"]
    thresholds = policy.quality_floor.thresholds()
    misses = []
    for metric, bound in sorted(thresholds.items()):
        value = metrics.get(metric)
        if value is None:
            note = (report.get("metric_notes") or {}).get(metric)
            misses.append(f"{metric} could not be computed" + (f" ({note})" if note else ""))
        elif _nan(value):
            misses.append(f"{metric} is not a number")
        elif metric in LOWER_IS_BETTER and value > bound:
            misses.append(f"{metric} {value:.4f} > max {bound:.4f}")
        elif metric not in LOWER_IS_BETTER and value < bound:
            misses.append(f"{metric} {value:.4f} < floor {bound:.4f}")
    evidence = {"thresholds": thresholds, "metrics": metrics}
    if misses:
        return GateResult("quality_floor", False, "; ".join(misses), evidence)
    summary = ", ".join(f"{m} {metrics[m]:.4f}" for m in sorted(thresholds)) or "no floor set"
    return GateResult("quality_floor", True, f"meets the floor: {summary}", evidence)


def beats_champion(report: Mapping[str, Any], policy: Policy) -> GateResult:
    """The candidate is at least as good as the champion by the policy's margin."""
    rule = policy.beats_champion
    if report.get("champion") is None:
        if report.get("champion_note"):
            # The champion predicts something else (the project changed its task or classes):
            # there is nothing to compare on the same rows, as for a first model.
            why = f"champion not comparable ({report['champion_note']}): judged alone"
            return GateResult(
                "beats_champion", True, why, {"champion_note": report["champion_note"]}
            )
        return GateResult(
            "beats_champion", True, "no champion deployed yet: first model passes", {}
        )
    comparison = (report.get("comparison") or {}).get("metrics", {}).get(rule.metric)
    if comparison is None:
        why = (report.get("metric_notes") or {}).get(rule.metric, "it could not be computed")
        return GateResult(
            "beats_champion",
            False,
            f"{rule.metric} of candidate and champion cannot be compared: {why}",
            {"metric": rule.metric},
        )
    sign = -1.0 if rule.metric in LOWER_IS_BETTER else 1.0
    # Work in "improvement" space, where larger is always better.
    improvement = sign * comparison["difference"]
    bounds = sorted([sign * comparison["ci_low"], sign * comparison["ci_high"]])
    required = rule.min_improvement - rule.tolerance
    evidence = {
        "metric": rule.metric,
        "improvement": improvement,
        "ci": bounds,
        "required": required,
        "candidate": report["candidate"]["metrics"][rule.metric],
        "champion": report["champion"]["metrics"][rule.metric],
    }
    broken = [
        name
        for name, bad in (
            ("improvement", _nan(improvement)),
            ("interval", any(_nan(b) for b in bounds)),
        )
        if bad
    ]
    if broken:
        return GateResult(
            "beats_champion",
            False,
            f"{rule.metric} {' and '.join(broken)} over champion is not a number",
            evidence,
        )
    if improvement < required:
        return GateResult(
            "beats_champion",
            False,
            f"{rule.metric} improvement {improvement:+.4f} over champion is below the required "
            f"{required:+.4f}",
            evidence,
        )
    if rule.require_significance and bounds[0] <= rule.min_improvement:
        return GateResult(
            "beats_champion",
            False,
            f"{rule.metric} improvement {improvement:+.4f} is not significant: interval "
            f"[{bounds[0]:+.4f}, {bounds[1]:+.4f}] includes {rule.min_improvement:+.4f}",
            evidence,
        )
    return GateResult(
        "beats_champion",
        True,
        f"{rule.metric} improvement {improvement:+.4f} (interval [{bounds[0]:+.4f}, "
        f"{bounds[1]:+.4f}]) meets the required {required:+.4f}",
        evidence,
    )


def fairness_within_policy(report: Mapping[str, Any], policy: Policy) -> GateResult:
    """The largest per-segment gap is within the policy bound (or no worse than the champion)."""
    rule = policy.fairness
    largest = report["candidate"]["fairness"]["largest"]
    gap = float(largest["gap"] or 0.0)
    champion = report.get("champion")
    champion_gap = float(champion["fairness"]["largest"]["gap"] or 0.0) if champion else None
    evidence = {
        "metric": rule.metric,
        "gap": gap,
        "column": largest["column"],
        "between": [largest["low"], largest["high"]],
        "max_gap": rule.max_gap,
        "champion_gap": champion_gap,
    }
    where = (
        f" ({largest['column']}: {largest['low']} vs {largest['high']})"
        if largest["column"]
        else ""
    )
    if _nan(gap) or _nan(champion_gap):
        whose = "the candidate's" if _nan(gap) else "the champion's"
        return GateResult(
            "fairness_within_policy",
            False,
            f"largest {rule.metric} gap is not a number ({whose}){where}",
            evidence,
        )
    if gap <= rule.max_gap:
        return GateResult(
            "fairness_within_policy",
            True,
            f"largest {rule.metric} gap {gap:.4f}{where} is within {rule.max_gap:.4f}",
            evidence,
        )
    if (
        rule.max_increase_vs_champion is not None
        and champion_gap is not None
        and gap <= champion_gap + rule.max_increase_vs_champion
    ):
        return GateResult(
            "fairness_within_policy",
            True,
            f"largest {rule.metric} gap {gap:.4f}{where} exceeds {rule.max_gap:.4f} but is no "
            f"worse than the champion's {champion_gap:.4f} by more than "
            f"{rule.max_increase_vs_champion:.4f}",
            evidence,
        )
    return GateResult(
        "fairness_within_policy",
        False,
        f"largest {rule.metric} gap {gap:.4f}{where} exceeds the policy maximum {rule.max_gap:.4f}",
        evidence,
    )


#: Gate name → decision function, in the order they are shown.
GATES: dict[str, Callable[[Mapping[str, Any], Policy], GateResult]] = {
    "quality_floor": quality_floor,
    "beats_champion": beats_champion,
    "fairness_within_policy": fairness_within_policy,
}


@dataclass(frozen=True)
class GateRecord:
    """What the orchestrator recorded for one gate (check) of one asset version."""

    gate: str
    passed: bool
    target_version: str | None
    description: str | None = None


@dataclass(frozen=True)
class GateDecision:
    """Whether a version may be used downstream, with one reason per unmet gate."""

    allowed: bool
    reasons: list[str]
    records: dict[str, GateRecord] = field(default_factory=dict)


def gate_decision(
    version: str, records: Mapping[str, GateRecord | None], required: Iterable[str]
) -> GateDecision:
    """Allow `version` only if every required gate was evaluated on exactly it and passed."""
    reasons = []
    for gate in required:
        record = records.get(gate)
        if record is None:
            reasons.append(f"gate {gate} has no recorded result")
        elif record.target_version != version:
            reasons.append(
                f"gate {gate} was last evaluated on version {record.target_version}, "
                f"not on {version}"
            )
        elif not record.passed:
            reasons.append(f"gate {gate} failed: {record.description or 'no reason recorded'}")
    found = {name: record for name, record in records.items() if record is not None}
    return GateDecision(allowed=not reasons, reasons=reasons, records=found)
