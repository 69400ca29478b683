"""The agreement floor (`policy.triggers.agreement`) and when it asks for a retrain."""

from datetime import datetime, timedelta, timezone

import pytest

from unified_ai.policies.agreement_trigger import AgreementEvidence, agreement_decision
from unified_ai.policies.trigger_evidence import LastRetrain
from unified_ai.projects.errors import ProjectConfigError
from unified_ai.projects.loader import load_project_file
from unified_ai.projects.schema_policy import AgreementTrigger, Policy
from unified_ai_tests.conftest import write_project

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)


def _evidence(north=(2, 10), south=(10, 10)) -> AgreementEvidence:
    report = {
        "deployment": "d1",
        "rule": "same label",
        "batches": ["b1", "b2"],
        "answers": north[1] + south[1],
        "agreed": north[0] + south[0],
        "segments": {
            "region": {
                "north": {"answers": north[1], "agreed": north[0]},
                "south": {"answers": south[1], "agreed": south[0]},
            }
        },
    }
    return AgreementEvidence.from_report(report)


def _decide(rule, evidence, last=None, retrain=None):
    return agreement_decision(rule, evidence, last_trigger=last, now=NOW, last_retrain=retrain)


def test_a_segment_below_the_floor_asks_for_a_retrain_naming_it_with_counts():
    decision = _decide(AgreementTrigger(floor=0.5, min_answers=5), _evidence())
    assert decision.act
    assert "region=north 2/10 (0.20)" in decision.reason
    assert decision.evidence["below_floor"] == "region=north 2/10 (0.20)"
    assert (decision.evidence["answers"], decision.evidence["agreed"]) == ("20", "12")
    assert decision.evidence["deployment"] == "d1"


def test_the_whole_window_below_the_floor_is_named_too():
    decision = _decide(AgreementTrigger(floor=0.7, min_answers=5), _evidence())
    assert decision.act
    assert decision.evidence["below_floor"].startswith("all 12/20 (0.60); region=north")


def test_a_scope_with_too_few_answers_is_not_judged():
    rule = AgreementTrigger(floor=0.5, min_answers=11)
    decision = _decide(rule, _evidence())  # north holds 10 answers, all of them 20
    assert not decision.act
    assert "at or above 0.50" in decision.reason
    few = _decide(AgreementTrigger(floor=0.5, min_answers=50), _evidence())
    assert not few.act and "only 20 reviewed answers" in few.reason


def test_no_floor_or_switched_off_never_acts():
    assert "no agreement floor" in _decide(AgreementTrigger(), _evidence()).reason
    off = _decide(AgreementTrigger(enabled=False, floor=0.9, min_answers=1), _evidence())
    assert not off.act and "switched off" in off.reason


def test_the_cooldown_holds_unless_a_retrain_deployed_nothing_and_fresh_evidence_came():
    rule = AgreementTrigger(floor=0.5, min_answers=5, cooldown_minutes=60)
    last = NOW - timedelta(minutes=10)
    held = _decide(rule, _evidence(), last=last)
    assert not held.act and "policy.triggers.agreement.cooldown_minutes" in held.reason
    failed = LastRetrain("run1", "no_deployment", "gate failed", fresh=True, fresh_detail="new")
    rearmed = _decide(rule, _evidence(), last=last, retrain=failed)
    assert rearmed.act and rearmed.evidence["rearmed"] == "new"


def test_a_floor_without_review_is_refused_in_one_line(projects_dir):
    extra = "  triggers:\n    agreement: {floor: 0.7}\n"
    with pytest.raises(ProjectConfigError) as refused:
        load_project_file(write_project(projects_dir, policy_extra=extra))
    message = str(refused.value)
    assert "triggers.agreement.floor needs policy.review" in message
    assert len([line for line in message.splitlines() if "agreement" in line]) == 1


def test_a_floor_with_review_loads_and_an_unset_trigger_leaves_the_policy_version_alone():
    assert "agreement" not in Policy().model_dump()["triggers"]
    reviewed = {"review": {"audit_share": 0.1}}
    plain = Policy.model_validate(reviewed)
    floored = Policy.model_validate(
        {**reviewed, "triggers": {"agreement": {"floor": 0.7, "min_answers": 5}}}
    )
    assert floored.triggers.agreement.floor == 0.7
    assert floored.version() != plain.version()
    with pytest.raises(ValueError, match="less than or equal to 1"):
        AgreementTrigger(floor=1.5)
