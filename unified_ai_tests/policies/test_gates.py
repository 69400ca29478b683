import pytest

from unified_ai.policies.gates import (
    GateRecord,
    beats_champion,
    fairness_within_policy,
    gate_decision,
    quality_floor,
)
from unified_ai.projects.schema import Policy


def model(auc=0.8, acc=0.85, log_loss=0.4, gap=0.05):
    return {
        "metrics": {"roc_auc": auc, "f1": 0.8, "accuracy": acc, "log_loss": log_loss},
        "fairness": {
            "metric": "true_positive_rate",
            "largest": {"column": "race", "gap": gap, "low": "b", "high": "a"},
        },
    }


def report(candidate, champion=None, diff=0.0, low=0.0, high=0.0):
    body = {"candidate": candidate, "champion": champion, "comparison": None}
    if champion is not None:
        body["comparison"] = {
            "metrics": {
                m: {"difference": diff, "ci_low": low, "ci_high": high}
                for m in ("roc_auc", "f1", "accuracy", "log_loss")
            }
        }
    return body


def test_quality_floor_passes_and_fails_with_reasons():
    policy = Policy(quality_floor={"roc_auc": 0.75, "log_loss": 0.5})
    assert quality_floor(report(model()), policy).passed
    result = quality_floor(report(model(auc=0.7, log_loss=0.6)), policy)
    assert not result.passed
    assert "roc_auc 0.7000 < floor 0.7500" in result.reason
    assert "log_loss 0.6000 > max 0.5000" in result.reason


def test_first_model_passes_beats_champion_with_a_note():
    result = beats_champion(report(model()), Policy())
    assert result.passed and "first model" in result.reason


def test_beats_champion_uses_margin_and_tolerance():
    policy = Policy(beats_champion={"metric": "roc_auc", "min_improvement": 0.0, "tolerance": 0.01})
    assert beats_champion(
        report(model(), model(), diff=-0.005, low=-0.02, high=0.01), policy
    ).passed
    worse = beats_champion(report(model(), model(), diff=-0.03, low=-0.05, high=-0.01), policy)
    assert not worse.passed and "below the required -0.0100" in worse.reason


def test_beats_champion_can_require_significance():
    policy = Policy(beats_champion={"metric": "roc_auc", "require_significance": True})
    unsure = beats_champion(report(model(), model(), diff=0.01, low=-0.01, high=0.03), policy)
    assert not unsure.passed and "not significant" in unsure.reason
    assert beats_champion(report(model(), model(), diff=0.03, low=0.01, high=0.05), policy).passed


def test_log_loss_comparison_treats_lower_as_better():
    policy = Policy(beats_champion={"metric": "log_loss"})
    better = report(model(), model(), diff=-0.05, low=-0.08, high=-0.02)
    assert beats_champion(better, policy).passed
    assert not beats_champion(
        report(model(), model(), diff=0.05, low=0.02, high=0.08), policy
    ).passed


def test_fairness_gate_bound_and_champion_relative_allowance():
    strict = Policy(fairness={"max_gap": 0.1})
    assert fairness_within_policy(report(model(gap=0.05)), strict).passed
    failed = fairness_within_policy(report(model(gap=0.2)), strict)
    assert not failed.passed and "race: b vs a" in failed.reason
    relative = Policy(fairness={"max_gap": 0.1, "max_increase_vs_champion": 0.02})
    assert fairness_within_policy(report(model(gap=0.2), model(gap=0.19)), relative).passed
    assert not fairness_within_policy(report(model(gap=0.2), model(gap=0.1)), relative).passed


@pytest.mark.parametrize(
    ("records", "allowed", "reason"),
    [
        ({"a": GateRecord("a", True, "v1"), "b": GateRecord("b", True, "v1")}, True, None),
        ({"a": GateRecord("a", True, "v1"), "b": None}, False, "gate b has no recorded result"),
        (
            {"a": GateRecord("a", True, "v0"), "b": GateRecord("b", True, "v1")},
            False,
            "gate a was last evaluated on version v0, not on v1",
        ),
        (
            {"a": GateRecord("a", False, "v1", "too low"), "b": GateRecord("b", True, "v1")},
            False,
            "gate a failed: too low",
        ),
    ],
)
def test_gate_decision_requires_every_gate_passed_on_this_version(records, allowed, reason):
    decision = gate_decision("v1", records, ["a", "b"])
    assert decision.allowed is allowed
    if reason:
        assert reason in decision.reasons


NAN = float("nan")


def test_quality_floor_fails_on_a_nan_metric():
    result = quality_floor(report(model(auc=NAN)), Policy(quality_floor={"roc_auc": 0.75}))
    assert not result.passed and result.reason == "roc_auc is not a number"


@pytest.mark.parametrize(
    ("diff", "low", "high"), [(NAN, -0.3, -0.2), (-0.3, NAN, NAN), (NAN, NAN, NAN)]
)
def test_beats_champion_fails_on_nan_comparisons(diff, low, high):
    policy = Policy(beats_champion={"metric": "roc_auc", "require_significance": True})
    result = beats_champion(report(model(), model(), diff=diff, low=low, high=high), policy)
    assert not result.passed and "is not a number" in result.reason


def test_fairness_gate_fails_on_a_nan_gap():
    relative = Policy(fairness={"max_gap": 0.1, "max_increase_vs_champion": 0.5})
    result = fairness_within_policy(report(model(gap=NAN), model(gap=0.1)), relative)
    assert not result.passed and "gap is not a number" in result.reason
    champion_nan = fairness_within_policy(report(model(gap=0.2), model(gap=NAN)), relative)
    assert not champion_nan.passed
