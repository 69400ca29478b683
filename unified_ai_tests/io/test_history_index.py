"""History read from the pointer back, entry by entry: no listing, whatever its length.

Each entry names the entry before it (`prev_entry_name`); the pointer holds the newest. These
tests cover the crash points of a move, stores written before entries named their predecessor,
and the rollback choice at long histories.
"""

import json
import os
from itertools import islice, pairwise
from types import SimpleNamespace

import pytest

from unified_ai.io import pointers
from unified_ai.io.formats import serialize
from unified_ai.io.reader import StoreReader
from unified_ai.io.store import CURRENT, IntegrityError, LineageStore
from unified_ai.names import DEPLOYED_MODEL
from unified_ai.queries import rollback_target

PROJECT = "p"
PATH = [PROJECT, DEPLOYED_MODEL]


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch):
    """Hundreds of moves per test: durability is not what these tests check."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def deployments(store: LineageStore, count: int, *, failed: frozenset[int] = frozenset()):
    """`count` deployment versions, each made current in turn; those in `failed` failed gates."""
    versions = []
    for index in range(count):
        payload = {
            "model_version": f"{index:016x}",
            "mlflow_model_version": "1",
            "model_uri": "models:/m",
            "gates": {"quality_floor": {"passed": index not in failed}},
            "n": index,
        }
        version = store.write_version(PATH, *serialize(payload)).version
        store.set_current(PATH, version, action="materialize")
        versions.append(version)
    return versions


def forbid_listing(store: LineageStore, monkeypatch) -> None:
    def listed(folder):
        raise AssertionError(f"listed {folder}")

    monkeypatch.setattr(store, "names", listed)


def count_reads(store: LineageStore, monkeypatch) -> list[str]:
    reads: list[str] = []
    original = store._read_optional

    def counted(path, **kwargs):
        reads.append(str(path))
        return original(path, **kwargs)

    monkeypatch.setattr(store, "_read_optional", counted)
    return reads


def history_dir(store: LineageStore):
    return store.asset_dir(PATH) / "history"


def test_the_newest_moves_and_the_next_move_read_the_same_entries_at_any_length(
    tmp_path, monkeypatch
):
    reads_at = {}
    for count in (5, 200):
        store = LineageStore(tmp_path / f"store{count}")
        versions = deployments(store, count)
        forbid_listing(store, monkeypatch)
        reads = count_reads(store, monkeypatch)
        newest = [m.version for m in islice(store.history_newest_first(PATH), 3)]
        assert newest == versions[::-1][:3]
        store.set_current(PATH, versions[-2], action="rollback")
        assert next(store.history_newest_first(PATH)).action == "rollback"
        reads_at[count] = len(reads)
        monkeypatch.undo()
        monkeypatch.setattr(os, "fsync", lambda fd: None)
    assert reads_at[5] == reads_at[200]


def test_every_entry_is_on_the_walk_and_names_the_one_before_it(tmp_path):
    store = LineageStore(tmp_path / "store")
    versions = deployments(store, 30)
    store.set_current(PATH, versions[0], action="rollback")
    walked = list(store.history_entries(PATH))
    assert [name for name, _ in walked] == sorted(os.listdir(history_dir(store).path))[::-1]
    assert [m.version for _, m in walked] == [versions[0], *versions[::-1]]
    for (_, newer), (older_name, _) in pairwise(walked):
        assert newer.prev_entry_name == older_name
    assert walked[-1][1].prev_entry_name is None and walked[-1][1].prev_entry == ""
    assert store.verify().problems == []


def test_a_move_interrupted_after_its_pointer_is_walked_from_the_pointer_and_restored(
    tmp_path, monkeypatch
):
    store = LineageStore(tmp_path / "store")
    versions = deployments(store, 6)
    extra = store.write_version(PATH, *serialize({"n": "extra"})).version

    def die(history, name, data):
        raise OSError("killed after the pointer was replaced")

    monkeypatch.setattr(store, "_write_entry", die)
    with pytest.raises(OSError):
        store.set_current(PATH, extra, action="materialize")
    monkeypatch.undo()
    assert len(os.listdir(history_dir(store).path)) == 6  # the copy was never written

    with monkeypatch.context() as patched:
        forbid_listing(store, patched)
        assert store.current_version(PATH) == extra
        assert [m.version for m in store.history_newest_first(PATH)] == [
            extra,
            *versions[::-1],
        ]
        [(name, _)] = list(islice(store.history_entries(PATH), 1))
        # The next page starts at an entry whose copy is missing: the pointer holds it.
        assert [m.version for _, m in store.history_entries(PATH, before=name)] == versions[::-1]

    # The next move restores the copy, and the walk needs no listing again.
    store.set_current(PATH, versions[0], action="rollback")
    assert len(os.listdir(history_dir(store).path)) == 8
    forbid_listing(store, monkeypatch)
    assert [m.version for m in store.history(PATH)] == [*versions, extra, versions[0]]
    monkeypatch.undo()
    assert store.verify().problems == []


def test_a_move_that_dies_before_its_pointer_changes_nothing(tmp_path, monkeypatch):
    store = LineageStore(tmp_path / "store")
    versions = deployments(store, 4)
    original = store._replace

    def die_at_pointer(path, data):
        if path.name == CURRENT:
            raise OSError("killed before the pointer was replaced")
        original(path, data)

    monkeypatch.setattr(store, "_replace", die_at_pointer)
    with pytest.raises(OSError):
        store.set_current(PATH, versions[0], action="rollback")
    monkeypatch.undo()
    assert store.current_version(PATH) == versions[-1]
    assert [m.version for m in store.history(PATH)] == versions
    store.set_current(PATH, versions[0], action="rollback")
    assert [m.version for m in store.history(PATH)] == [*versions, versions[0]]
    assert store.verify().problems == []


def test_a_replayed_pointer_makes_readers_list_the_whole_history(tmp_path):
    store = LineageStore(tmp_path / "store")
    versions = deployments(store, 3)
    pointer = store.asset_dir(PATH) / CURRENT
    saved = pointer.read_bytes()
    more = deployments(store, 2)
    pointer.write_bytes(saved)
    with pytest.raises(IntegrityError, match="replayed"):
        store.current_version(PATH)
    # The walk would start at the old pointer; readers list instead and see every move.
    assert [m.version for m in store.history_newest_first(PATH)] == [*versions, *more][::-1]
    # A move after it chains onto the newest entry, not the one the old pointer names.
    store.set_current(PATH, versions[0], action="rollback")
    moves = store.history(PATH)
    assert [m.version for m in moves] == [*versions, *more, versions[0]]
    assert "CURRENT was unreadable" in moves[-1].reason
    assert store.verify().problems == []


def test_stores_from_before_entries_named_their_predecessor_stay_readable(tmp_path, monkeypatch):
    store = LineageStore(tmp_path / "store")

    def unnamed(**fields):
        # The fields entries had then: no prev_entry_name at all.
        fields.pop("prev_entry_name")
        return SimpleNamespace(**fields)

    with monkeypatch.context() as patched:
        patched.setattr(pointers, "PointerMove", unnamed)
        old = deployments(store, 6)
    for name in os.listdir(history_dir(store).path):
        assert "prev_entry_name" not in json.loads((history_dir(store) / name).read_text())
    assert [m.version for m in store.history(PATH)] == old

    new = deployments(store, 3)
    everything = [*old, *new]
    assert [m.version for m in store.history(PATH)] == everything
    assert [m.version for m in store.history_newest_first(PATH)] == everything[::-1]
    with monkeypatch.context() as patched:
        # The new entries and the old one the first of them names are read without listing.
        forbid_listing(store, patched)
        newest = [m.version for m in islice(store.history_newest_first(PATH), 4)]
        assert newest == everything[::-1][:4]
    # Paging on from an old entry lists the history below it.
    names = [name for name, _ in store.history_entries(PATH)]
    below = [m.version for _, m in store.history_entries(PATH, before=names[5])]
    assert below == everything[::-1][6:]
    assert store.verify().problems == []


def test_a_deleted_middle_entry_or_a_forward_link_breaks_the_walk(tmp_path):
    store = LineageStore(tmp_path / "store")
    deployments(store, 5)
    names = sorted(os.listdir(history_dir(store).path))
    middle = history_dir(store) / names[2]
    saved = middle.read_bytes()
    middle.unlink()
    with pytest.raises(IntegrityError, match="history chain broken") as raised:
        store.history(PATH)
    assert names[2] in str(raised.value) and "\n" not in str(raised.value)
    middle.write_bytes(saved)
    assert len(store.history(PATH)) == 5


@pytest.mark.parametrize("rolled_back", [False, True])
def test_rollback_picks_the_previous_deployment_at_a_long_history(
    tmp_path, monkeypatch, rolled_back
):
    store = LineageStore(tmp_path / "store")
    count = 300
    # The one before the newest failed its gates: never a rollback target.
    versions = deployments(store, count, failed=frozenset({count - 2}))
    if rolled_back:
        # Rolled back once already: the next rollback goes further back, not forward again.
        store.set_current(PATH, versions[-3], action="rollback")
    current = store.current_version(PATH)
    expected = versions[-4] if rolled_back else versions[-3]
    forbid_listing(store, monkeypatch)
    reads = count_reads(store, monkeypatch)
    found = rollback_target(StoreReader(store), PROJECT, current)
    assert found is not None and found[0] == expected
    assert len(reads) < 30  # a handful of entries and manifests, not the history
