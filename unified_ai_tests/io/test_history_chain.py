"""History as a hash chain: legacy stores, O(1) pointer reads, interrupted moves."""

import hashlib
import json

import pytest

from unified_ai.io.formats import serialize
from unified_ai.io.store import CURRENT, IntegrityError, LineageStore

PATH = ["p", "thing"]


def write(store: LineageStore, n: int) -> str:
    return store.write_version(PATH, *serialize({"n": n})).version


def legacy_store(tmp_path) -> tuple[LineageStore, list[str], dict]:
    """Two moves recorded as stores did before history was chained (no hashes, no head)."""
    store = LineageStore(tmp_path / "store")
    versions = [write(store, 1), write(store, 2)]
    history = tmp_path / "store" / "p" / "thing" / "history"
    history.mkdir(parents=True)
    previous = None
    for index, version in enumerate(versions):
        name = f"{1_700_000_000_000_000_000 + index:020d}-{index:08x}.json"
        move = {
            "asset_key": PATH,
            "version": version,
            "previous": previous,
            "action": "materialize",
            "at": f"2026-01-0{index + 1}T00:00:00.000+00:00",
        }
        (history / name).write_text(json.dumps(move, sort_keys=True))
        previous = version
    pointer = {"asset": "p/thing", "version": versions[1], "at": "x", "entry": name}
    (tmp_path / "store" / "p" / "thing" / CURRENT).write_text(json.dumps(pointer))
    return store, versions, pointer


def test_a_legacy_history_stays_readable_and_the_chain_starts_at_the_next_move(tmp_path):
    store, versions, legacy_pointer = legacy_store(tmp_path)
    assert store.current_version(PATH) == versions[1]
    assert [m.version for m in store.history(PATH)] == versions
    report = store.verify()
    assert report.problems == [] and "not hash-chained yet (2 entries)" in report.info[0]

    move = store.set_current(PATH, versions[0], action="rollback")
    history = sorted((tmp_path / "store" / "p" / "thing" / "history").iterdir())
    newest_legacy = history[1].read_bytes()
    assert move.prev_entry == hashlib.sha256(newest_legacy).hexdigest()
    assert store.current_version(PATH) == versions[0]
    report = store.verify()
    assert report.problems == []
    assert report.info == [
        f"p/thing: unchained history before {history[2]} (2 entries written "
        "before history was hash-chained)"
    ]

    # The legacy pointer put back is refused too: a chained entry follows the one it names.
    (tmp_path / "store" / "p" / "thing" / CURRENT).write_text(json.dumps(legacy_pointer))
    with pytest.raises(IntegrityError, match="replayed"):
        store.current_version(PATH)


def test_reading_the_pointer_never_lists_history(tmp_path, monkeypatch):
    store = LineageStore(tmp_path / "store")
    versions = [write(store, n) for n in range(5)]
    for version in versions:
        store.set_current(PATH, version, action="materialize")

    def no_listing(folder):
        raise AssertionError(f"listed {folder}")

    monkeypatch.setattr(store, "names", no_listing)
    assert store.current_version(PATH) == versions[-1]


def test_a_move_interrupted_after_its_pointer_is_complete_and_the_next_move_copies_it(
    tmp_path, monkeypatch
):
    store = LineageStore(tmp_path / "store")
    first, second, third = write(store, 1), write(store, 2), write(store, 3)
    store.set_current(PATH, first, action="materialize")

    def die(history, name, data):
        raise OSError("killed after the pointer was replaced")

    monkeypatch.setattr(store, "_write_entry", die)
    with pytest.raises(OSError):
        store.set_current(PATH, second, action="materialize")
    monkeypatch.undo()

    # The pointer (holding its entry) was the commit: the move happened.
    assert store.current_version(PATH) == second
    assert [m.version for m in store.history(PATH)] == [first, second]
    [problem] = store.verify().problems
    assert "the next move restores it" in problem.problem

    store.set_current(PATH, third, action="materialize")
    assert [m.version for m in store.history(PATH)] == [first, second, third]
    assert store.verify().problems == []
