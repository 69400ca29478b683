"""The project schema's review policy: which predictions people look at, and who answers.

`policy.review` routes single production predictions to people: the ones the model is unsure
of, the ones whose inputs lie outside what it was trained on, and a seeded random audit share,
within a daily cap and per-segment quotas. Absent, nothing is routed. The routing itself is
`unified_ai.policies.review`; this module only says what a valid policy is. Fields that mean
nothing for the project's task are refused by `check_review` in one line naming the field and
the task.
"""

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, Strict, field_validator, model_validator

from unified_ai.projects.identity import normalize_identity
from unified_ai.projects.schema_base import MAX_HOURS, MAX_VALUE, _Strict
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION

#: A duration: a number and a unit, minutes, hours or days (`90m`, `24h`, `1.5d`). Anchored for
#: the Rust regex engine pydantic uses (pinned in `_Strict`); never use it with `re.match`.
_DURATION = r"^[0-9]{1,6}(\.[0-9]{1,3})?(m|h|d)$"
_UNIT_HOURS = {"m": 1 / 60, "h": 1.0, "d": 24.0}

#: Most items a project may route per day (a queue people cannot read is no review).
MAX_DAILY_CAP = 1_000_000

#: Which task each `unsure` rule belongs to.
UNSURE_TASKS: Mapping[str, str] = {
    "band": BINARY,
    "top_probability_below": MULTICLASS,
    "outside": REGRESSION,
    "shadow_disagreement_above": REGRESSION,
}

#: A per-value quota: a whole number is a count of items, a number with a point (0.25) a share.
Quota = Annotated[int, Strict()] | Annotated[float, Strict()]


def named_people(entries: Iterable[str], groups: Mapping[str, list[str]], where: str) -> set[str]:
    """The people `entries` name (names and `group:<name>`), normalised for comparing.

    Shared by approvers and reviewers, so both are written and checked the same way.

    Raises:
        ValueError: An entry names a group that is not in `groups`, or a name is empty or
            invisible.
    """
    people: set[str] = set()
    for entry in entries:
        if entry.startswith("group:"):
            group = entry.removeprefix("group:")
            if group not in groups:
                raise ValueError(f"{where}: {entry!r} names a group that is not in groups")
            names = groups[group]
        else:
            names = [entry]
        for name in names:
            if not normalize_identity(name):
                raise ValueError(f"{where}: {name!r} is not a name (empty or invisible)")
            people.add(normalize_identity(name))
    return people


class Unsure(_Strict):
    """When a prediction is too unsure to go out unseen; each rule belongs to one task.

    - binary: `band`: the probability is within `band` of the decision threshold
      (`evaluation.threshold`), on either side;
    - multiclass: `top_probability_below`: the most probable class has less than this;
    - regression: `outside: [low, high]`: the predicted value is below `low` or above `high`,
      and/or `shadow_disagreement_above`: a shadow model (the deployment a rollback would
      restore, or a waiting candidate) predicted a value further away than this.
    """

    band: float | None = Field(default=None, gt=0.0, le=0.5, description="binary")
    top_probability_below: float | None = Field(
        default=None, gt=0.0, le=1.0, description="multiclass"
    )
    outside: tuple[float, float] | None = Field(
        default=None, description="regression: [low, high], the values that go out unseen"
    )
    shadow_disagreement_above: float | None = Field(
        default=None, gt=0.0, le=MAX_VALUE, description="regression: in the target's units"
    )

    @field_validator("outside")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is None:
            return value
        low, high = value
        if not (abs(low) <= MAX_VALUE and abs(high) <= MAX_VALUE):
            raise ValueError(f"[{low}, {high}] is beyond ±{MAX_VALUE:g}")
        if low >= high:
            raise ValueError(f"[{low}, {high}]: low must be below high")
        return value

    def given(self) -> list[str]:
        """The rules this policy sets, in field order."""
        return [name for name in UNSURE_TASKS if getattr(self, name) is not None]


class ReviewPolicy(_Strict):
    """Which single predictions people review, how many, who answers and what happens meanwhile.

    A row is routed when it is `unsure`, when `out_of_range` is set and one of its inputs is
    beyond the training range or a category the model never saw, or by the seeded random
    `audit_share`. At most `daily_cap` items a day (UTC) are routed, and within a batch no
    value of a segment column takes more than its `segment_quotas` entry (a count, or a share
    of the batch's routed items). `hold_decision` makes a routed row's answer wait for a
    person; past `due_after`, the item takes `on_timeout`. `reviewers` lists names and
    `group:<name>` entries resolved through `groups` (as approvers do); empty means anyone.
    With `four_eyes`, an item needs two reviewers, and two who disagree escalate it.
    `notify_open_above` tells the project's channels when more items than this wait for a
    person (once each time the queue grows past it; items past their due time are told
    whether it is set or not).
    """

    unsure: Unsure = Unsure()
    out_of_range: bool = False
    audit_share: float = Field(default=0.0, ge=0.0, le=1.0)
    #: Seeds the audit draw (with the batch and the row id), so a rerun routes the same rows.
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    daily_cap: int | None = Field(default=None, ge=1, le=MAX_DAILY_CAP)
    segment_quotas: dict[str, Quota] = Field(default_factory=dict)
    hold_decision: bool = False
    on_timeout: Literal["keep_model_decision", "decline"] = "keep_model_decision"
    due_after: str = Field(default="24h", pattern=_DURATION)
    reviewers: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    four_eyes: bool = False
    #: Items waiting for a person (open or overdue) above which the channels are told.
    notify_open_above: int | None = Field(default=None, ge=0, le=MAX_DAILY_CAP)

    @field_validator("segment_quotas")
    @classmethod
    def _quotas(cls, value: dict[str, int | float]) -> dict[str, int | float]:
        for column, quota in value.items():
            if isinstance(quota, float) and not 0.0 < quota <= 1.0:
                raise ValueError(
                    f"{column}: {quota} is not a share (0 < share <= 1; a count is a whole "
                    "number such as 20)"
                )
            if isinstance(quota, int) and not 1 <= quota <= MAX_DAILY_CAP:
                raise ValueError(f"{column}: {quota} is not a count from 1 to {MAX_DAILY_CAP}")
        return value

    @field_validator("due_after")
    @classmethod
    def _bounded(cls, value: str) -> str:
        if not 0 < _hours(value) <= MAX_HOURS:
            raise ValueError(f"{value!r} is not a duration from 1m to a year")
        return value

    @model_validator(mode="after")
    def _reviewers(self) -> "ReviewPolicy":
        people = named_people(self.reviewers, self.groups, "reviewers")
        if self.four_eyes and self.reviewers and len(people) < 2:
            raise ValueError(
                f"four_eyes needs two reviewers per item but reviewers name only {len(people)} "
                "distinct people"
            )
        if not (self.unsure.given() or self.out_of_range or self.audit_share > 0):
            raise ValueError(
                "routes nothing: set unsure, out_of_range: true or an audit_share above 0 "
                "(or remove review)"
            )
        return self

    @property
    def due(self) -> timedelta:
        """How long an item waits for a person before `on_timeout` applies."""
        return timedelta(hours=_hours(self.due_after))


def _hours(duration: str) -> float:
    found = re.fullmatch(r"([0-9.]+)([mhd])", duration)
    if found is None:  # the field's pattern refused it already
        raise ValueError(f"{duration!r} is not a duration such as 90m, 24h or 2d")
    return float(found.group(1)) * _UNIT_HOURS[found.group(2)]


def check_review(review: ReviewPolicy | None, task: str, segments: Iterable[str]) -> None:
    """Refuse the review fields that do not fit the project's task or segments.

    Args:
        review: The project's `policy.review` (None: nothing is routed, nothing to check).
        task: The project's task.
        segments: The project's segment columns (the only columns a quota may name).

    Raises:
        ValueError: One line naming the field and the task (or the unknown segment column).
    """
    if review is None:
        return
    check_review_task(review, task)
    known = list(segments)
    for column in review.segment_quotas:
        if column not in known:
            raise ValueError(
                f"policy.review.segment_quotas.{column}: not a segment column of the project "
                f"(segments: {', '.join(known) or 'none'})"
            )


def check_review_task(review: ReviewPolicy, task: str) -> None:
    """Refuse an `unsure` rule of another task, in one line naming the field and the task."""
    for name in review.unsure.given():
        if UNSURE_TASKS[name] != task:
            fits = [n for n, t in UNSURE_TASKS.items() if t == task]
            raise ValueError(
                f"policy.review.unsure.{name}: a {UNSURE_TASKS[name]} rule, and the task is "
                f"{task} (its rules: {', '.join(fits)})"
            )
