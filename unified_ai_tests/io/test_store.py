import json
import uuid

import pytest

from unified_ai.io.store import (
    MANIFEST,
    IntegrityError,
    LineageStore,
    LineageStoreError,
    content_version,
)


@pytest.fixture(params=["local", "memory", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LineageStore(tmp_path / "store")
    if request.param == "s3":
        options = request.getfixturevalue("s3_server")
        return LineageStore(f"s3://lineage/{uuid.uuid4().hex}", options)
    return LineageStore(f"memory://unified-ai-{uuid.uuid4().hex}")


def test_write_read_and_pointer(store):
    manifest = store.write_version(
        ["p", "a"], "json", {"payload.json": b"{}"}, run_id="r1", upstream={"p/x": "0" * 16}
    )
    assert manifest.version == content_version({"payload.json": b"{}"})
    assert store.current_version(["p", "a"]) is None
    store.set_current(["p", "a"], manifest.version, action="materialize", run_id="r1")
    assert store.current_version(["p", "a"]) == manifest.version
    read_manifest = store.read_manifest(["p", "a"], manifest.version)
    assert store.read_value(["p", "a"], manifest.version) == {}
    assert read_manifest.upstream == {"p/x": "0" * 16}
    assert read_manifest.run_id == "r1"


def test_identical_content_is_one_version_and_never_rewritten(store):
    first = store.write_version(["p", "a"], "json", {"payload.json": b"1"}, run_id="r1")
    second = store.write_version(["p", "a"], "json", {"payload.json": b"1"}, run_id="r2")
    assert first.version == second.version
    assert second.run_id == "r1"
    assert len(store.versions(["p", "a"])) == 1


def test_history_records_every_move_in_order(store):
    v1 = store.write_version(["p", "a"], "json", {"payload.json": b"1"}).version
    v2 = store.write_version(["p", "a"], "json", {"payload.json": b"2"}).version
    for version in (v1, v2, v1):
        store.set_current(["p", "a"], version, action="materialize", actor="ann")
    moves = store.history(["p", "a"])
    assert [m.version for m in moves] == [v1, v2, v1]
    assert [m.previous for m in moves] == [None, v1, v2]
    assert all(m.actor == "ann" for m in moves)


def test_pointer_to_unknown_version_is_refused(store):
    with pytest.raises(LineageStoreError, match="does not exist"):
        store.set_current(["p", "a"], "0123456789abcdef", action="materialize")


def test_flipped_byte_is_refused_with_asset_and_version(tmp_path):
    store = LineageStore(tmp_path / "store")
    version = store.write_version(["p", "a"], "json", {"payload.json": b'{"a": 1}'}).version
    path = tmp_path / "store" / "p" / "a" / "versions" / version / "payload.json"
    path.write_bytes(b'{"a": 2}')
    with pytest.raises(IntegrityError, match=rf"p/a@{version}: .*does not match its checksum"):
        store.read_value(["p", "a"], version)


@pytest.mark.parametrize("path", [["..", "a"], ["/etc", "a"], [], ["p", "a/b"]])
def test_unsafe_asset_paths_are_refused(store, path):
    with pytest.raises(LineageStoreError):
        store.write_version(path, "json", {"payload.json": b"1"})


def test_unsafe_version_ids_are_refused(store):
    with pytest.raises(LineageStoreError, match="not a 16-digit hex"):
        store.read_manifest(["p", "a"], "../../etc")


def test_version_without_manifest_is_invisible(tmp_path):
    store = LineageStore(tmp_path / "store")
    half = tmp_path / "store" / "p" / "a" / "versions" / "0123456789abcdef"
    half.mkdir(parents=True)
    (half / "payload.json").write_bytes(b"{}")
    assert store.versions(["p", "a"]) == []
    assert not (half / MANIFEST).exists()
    good = store.write_version(["p", "a"], "json", {"payload.json": b"{}"})
    assert [m.version for m in store.versions(["p", "a"])] == [good.version]
    assert (
        json.loads(
            (tmp_path / "store" / "p" / "a" / "versions" / good.version / MANIFEST).read_text()
        )["kind"]
        == "json"
    )


def test_tampered_frame_is_refused_even_when_decoded_in_parallel(tmp_path):
    import pandas as pd

    from unified_ai.io.formats import serialize

    store = LineageStore(tmp_path / "store")
    frame = pd.DataFrame({"a": range(1000)})
    version = store.write_version(["p", "f"], *serialize(frame)).version
    pd.testing.assert_frame_equal(store.read_value(["p", "f"], version), frame)
    path = tmp_path / "store" / "p" / "f" / "versions" / version / "data.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=rf"p/f@{version}: .*data.parquet does not match"):
        store.read_value(["p", "f"], version)


def test_a_conditional_move_refuses_a_pointer_moved_since_it_was_read(store):
    from unified_ai.io.store import PointerConflict

    first = store.write_version(["p", "a"], "json", {"payload.json": b"1"})
    second = store.write_version(["p", "a"], "json", {"payload.json": b"2"})
    # Never set: only a writer that read "nothing yet" may set it.
    with pytest.raises(PointerConflict, match=r"p/a: moved to None since it was read at 0{16}"):
        store.set_current(["p", "a"], first.version, action="m", only_if_previous="0" * 16)
    store.set_current(["p", "a"], first.version, action="m", only_if_previous=None)
    # A writer that read nothing yet is now stale: nothing moves, nothing is recorded.
    with pytest.raises(PointerConflict, match=f"moved to {first.version}"):
        store.set_current(["p", "a"], second.version, action="m", only_if_previous=None)
    assert store.current_version(["p", "a"]) == first.version
    assert [move.version for move in store.history(["p", "a"])] == [first.version]
    store.set_current(["p", "a"], second.version, action="m", only_if_previous=first.version)
    assert store.current_version(["p", "a"]) == second.version
