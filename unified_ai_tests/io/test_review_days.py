"""The per-day count of routed items: read once, recorded with compare and set."""

from datetime import datetime, timezone

import pytest

from unified_ai.io.review_days import (
    ATTEMPTS,
    RoutedDay,
    day_path,
    record_routed,
    route_counted,
    routed_day,
)
from unified_ai.io.store import LineageStore, LineageStoreError, PointerConflict
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import write_project

NOW = datetime(2026, 3, 4, 23, 30, tzinfo=timezone.utc)


@pytest.fixture
def project(tmp_path):
    return load_project_file(write_project(tmp_path / "projects"))


@pytest.fixture
def store(tmp_path):
    return LineageStore(tmp_path / "store")


def _no_events():
    raise AssertionError("a day with a record does not count events")


def test_counts_per_batch_add_up_and_a_batch_routed_again_replaces_its_own(store, project):
    seen = []

    def route(earlier):
        seen.append(earlier)
        return earlier

    for batch, routed in [("b1", 3), ("b2", 4), ("b1", 5)]:
        first_of_day = (lambda: {}) if batch == "b1" and not seen else _no_events
        route_counted(
            store, project, batch, NOW, route, lambda _, n=routed: n, first_of_day=first_of_day
        )
    # b2 saw b1's 3; b1 routed again saw only b2's 4, not its own earlier 3.
    assert seen == [0, 3, 4]
    assert routed_day(store, project.name, "2026-03-04").counts == {"b1": 5, "b2": 4}
    # Each recording is a pointer move of the day's record, with the run and the batch.
    moves = store.history(day_path(project.name, "2026-03-04"))
    assert [move.reason for move in moves] == ["b1 routed 3", "b2 routed 4", "b1 routed 5"]


def test_a_new_day_starts_from_the_queue_materializations_made_before_records(store, project):
    routing, earlier = route_counted(
        store, project, "b3", NOW, lambda e: e, lambda _: 2, first_of_day=lambda: {"b1": 7, "b3": 1}
    )
    assert (routing, earlier) == (7, 7)  # b3's own earlier count left out
    assert routed_day(store, project.name, "2026-03-04").counts == {"b1": 7, "b3": 2}
    # The next UTC day starts again.
    tomorrow = datetime(2026, 3, 5, 0, 1, tzinfo=timezone.utc)
    assert route_counted(
        store, project, "b4", tomorrow, lambda e: e, lambda _: 1, first_of_day=dict
    ) == (0, 0)


def test_a_batch_that_loses_the_race_is_routed_again_with_the_winners_count(store, project):
    """Two runs read the same count; the one recorded second is routed again, not lost."""
    calls = []

    def route(earlier):
        calls.append(earlier)
        if len(calls) == 1:  # another run records its batch between this read and write
            stale = routed_day(store, project.name, "2026-03-04")
            record_routed(store, project, stale, "other", 6)
        return earlier

    routing, earlier = route_counted(
        store, project, "mine", NOW, route, lambda _: 2, first_of_day=dict
    )
    assert calls == [0, 6] and (routing, earlier) == (6, 6)
    assert routed_day(store, project.name, "2026-03-04").counts == {"other": 6, "mine": 2}


def test_a_stale_record_is_refused_and_changes_nothing(store, project):
    read = routed_day(store, project.name, "2026-03-04")
    record_routed(store, project, read, "b1", 1)
    with pytest.raises(PointerConflict):
        record_routed(store, project, read, "b2", 1)
    assert routed_day(store, project.name, "2026-03-04").counts == {"b1": 1}


def test_a_count_that_never_settles_fails_with_the_record_named(store, project, monkeypatch):
    from unified_ai.io import review_days

    def always_moved(*args, **kwargs):
        raise PointerConflict("moved")

    monkeypatch.setattr(review_days, "record_routed", always_moved)
    with pytest.raises(LineageStoreError, match=f"small/review_routed/2026-03-04: .*{ATTEMPTS}"):
        route_counted(store, project, "b1", NOW, lambda e: e, lambda _: 1, first_of_day=dict)


def test_a_damaged_record_is_refused_with_its_path(store, project):
    path = day_path(project.name, "2026-03-04")
    manifest = store.write_version(path, "json", {"payload.json": b'{"b1": "many"}'})
    store.set_current(path, manifest.version, action="m")
    with pytest.raises(LineageStoreError, match=r"review_routed/2026-03-04@.*not a count"):
        routed_day(store, project.name, "2026-03-04")
    assert RoutedDay("d", None).earlier("b") == 0
