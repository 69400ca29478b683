"""`policy.review` is validated like every policy field: typed, bounded, one-line refusals."""

from datetime import timedelta

import pytest

from unified_ai.projects.loader import ProjectConfigError, load_project_file
from unified_ai.projects.schema import Policy
from unified_ai.projects.schema_review import ReviewPolicy, check_review
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION
from unified_ai_tests.conftest import write_project

REVIEW = """\
  review:
    unsure: {band: 0.1}
    out_of_range: true
    audit_share: 0.02
    daily_cap: 200
    segment_quotas: {region: 0.5}
    hold_decision: true
    on_timeout: decline
    due_after: 36h
    reviewers: [group:credit_risk, Dana]
    groups: {credit_risk: [ana, bo]}
    four_eyes: true
"""


def test_a_full_review_policy_loads_from_a_project_file(projects_dir):
    project = load_project_file(write_project(projects_dir, policy_extra=REVIEW))
    review = project.policy.review
    assert review is not None
    assert review.unsure.band == 0.1 and review.out_of_range and review.hold_decision
    assert review.on_timeout == "decline" and review.due == timedelta(hours=36)
    assert review.segment_quotas == {"region": 0.5}
    check_review(review, project.task, project.segments)


def test_no_review_routes_nothing_and_leaves_the_policy_version_alone(projects_dir):
    project = load_project_file(write_project(projects_dir))
    assert project.policy.review is None
    # An absent review is not in the dump: policy and code versions are what they were.
    assert "review" not in project.policy.model_dump()
    assert "review" not in project.model_dump()["policy"]
    reviewed = load_project_file(write_project(projects_dir, name="other", policy_extra=REVIEW))
    assert reviewed.policy.version() != project.policy.model_copy(update={"name": None}).version()


def _refusal(review: dict) -> str:
    with pytest.raises(ValueError) as caught:
        Policy.model_validate({"review": review})
    return str(caught.value)


@pytest.mark.parametrize(
    ("review", "expected"),
    [
        ({}, "routes nothing"),
        ({"audit_share": 0.0}, "routes nothing"),
        ({"audit_share": 1.5}, "audit_share"),
        ({"audit_share": 0.1, "daily_cap": 0}, "daily_cap"),
        ({"unsure": {"band": 0.7}}, "band"),
        ({"unsure": {"top_probability_below": 0}}, "top_probability_below"),
        ({"unsure": {"outside": [5, 1]}}, "low must be below high"),
        ({"unsure": {"outside": [1]}}, "outside"),
        ({"unsure": {"shadow_disagreement_above": -1}}, "shadow_disagreement_above"),
        ({"unsure": {"bnad": 0.1}}, "bnad"),
        ({"audit_share": 0.1, "segment_quotas": {"region": 1.5}}, "is not a share"),
        ({"audit_share": 0.1, "segment_quotas": {"region": 0}}, "is not a count"),
        ({"audit_share": 0.1, "segment_quotas": {"region": True}}, "segment_quotas"),
        ({"audit_share": 0.1, "on_timeout": "approve"}, "on_timeout"),
        ({"audit_share": 0.1, "due_after": "24"}, "due_after"),
        ({"audit_share": 0.1, "due_after": "0h"}, "not a duration"),
        ({"audit_share": 0.1, "due_after": "400d"}, "not a duration"),
        ({"audit_share": 0.1, "reviewers": ["group:risk"]}, "names a group that is not in groups"),
        ({"audit_share": 0.1, "reviewers": ["\u200b"]}, "is not a name"),
        (
            {"audit_share": 0.1, "four_eyes": True, "reviewers": ["ana", "\uff21\uff2e\uff21"]},
            "four_eyes needs two reviewers",
        ),
        ({"audit_share": 0.1, "hold_decision": "maybe"}, "hold_decision"),
    ],
)
def test_bad_review_fields_are_refused(review, expected):
    assert expected in _refusal(review)


def test_durations_and_quotas():
    assert ReviewPolicy(audit_share=0.1, due_after="90m").due == timedelta(minutes=90)
    assert ReviewPolicy(audit_share=0.1, due_after="1.5d").due == timedelta(hours=36)
    quotas = ReviewPolicy(audit_share=0.1, segment_quotas={"a": 20, "b": 0.25}).segment_quotas
    assert quotas == {"a": 20, "b": 0.25} and isinstance(quotas["a"], int)
    # Four eyes with anyone allowed to review is valid: any two people.
    assert ReviewPolicy(audit_share=0.1, four_eyes=True).four_eyes


@pytest.mark.parametrize(
    ("unsure", "task", "expected"),
    [
        ({"band": 0.1}, MULTICLASS, r"unsure\.band: a binary_classification rule, .* multiclass"),
        ({"band": 0.1}, REGRESSION, r"unsure\.band: .* task is regression \(its rules: outside, "),
        ({"top_probability_below": 0.5}, BINARY, r"top_probability_below: .* \(its rules: band\)"),
        ({"outside": [0, 1]}, BINARY, r"unsure\.outside: a regression rule"),
        ({"shadow_disagreement_above": 2}, MULTICLASS, r"unsure\.shadow_disagreement_above"),
    ],
)  # fmt: skip
def test_a_rule_of_another_task_is_refused_in_one_line(unsure, task, expected):
    review = ReviewPolicy(unsure=unsure)
    with pytest.raises(ValueError, match=expected) as caught:
        check_review(review, task, [])
    assert "\n" not in str(caught.value)


def test_each_task_accepts_its_own_rules():
    check_review(ReviewPolicy(unsure={"band": 0.1}), BINARY, [])
    check_review(ReviewPolicy(unsure={"top_probability_below": 0.5}), MULTICLASS, [])
    both = {"outside": [0, 100], "shadow_disagreement_above": 5}
    check_review(ReviewPolicy(unsure=both), REGRESSION, [])
    check_review(None, REGRESSION, [])


def test_a_quota_must_name_a_segment_column():
    review = ReviewPolicy(audit_share=0.1, segment_quotas={"regoin": 3})
    with pytest.raises(ValueError, match=r"segment_quotas\.regoin: not a segment column.*region"):
        check_review(review, BINARY, ["region"])


def test_a_bad_review_names_the_file_and_field(projects_dir):
    path = write_project(projects_dir, policy_extra="  review: {audit_share: 2}\n")
    with pytest.raises(ProjectConfigError, match=r"small\.yaml.*policy\.review\.audit_share"):
        load_project_file(path)


def test_a_review_rule_of_another_task_is_refused_when_the_file_loads(projects_dir):
    # `small` is binary: the regression range rule is refused at load, naming file and field.
    path = write_project(projects_dir, policy_extra="  review: {unsure: {outside: [0, 1]}}\n")
    with pytest.raises(ProjectConfigError, match=r"small\.yaml.*policy\.review\.unsure\.outside"):
        load_project_file(path)


def test_a_quota_on_a_column_that_is_not_a_segment_is_refused_when_the_file_loads(projects_dir):
    extra = "  review: {audit_share: 0.1, segment_quotas: {nowhere: 3}}\n"
    with pytest.raises(ProjectConfigError, match=r"small\.yaml.*nowhere"):
        load_project_file(write_project(projects_dir, policy_extra=extra))
