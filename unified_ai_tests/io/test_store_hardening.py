"""Tampering, signing, identifiers and damage: the store refuses, explains and recovers."""

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

import pytest

from unified_ai.io.store import (
    CURRENT,
    MANIFEST,
    IntegrityError,
    LineageStore,
    LineageStoreError,
    StoreDamageError,
    version_of_checksums,
)

PATH = ["p", "a"]
KEY = "k3y-for-tests-only-0123456789"


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def stored(tmp_path: Path, key: str | None = None) -> tuple[LineageStore, Path]:
    root = tmp_path / "store"
    return LineageStore(root, signing_key=key), root / "p" / "a"


def write(store: LineageStore, body: bytes, path=PATH, current: bool = True) -> str:
    version = store.write_version(path, "json", {"payload.json": body}).version
    if current:
        store.set_current(path, version, action="materialize", actor="ann")
    return version


# -- item 2: the version id is recomputed on every read --------------------------------------
def test_manifest_edited_together_with_its_payload_is_refused(tmp_path):
    store, folder = stored(tmp_path)
    version = write(store, b'{"approved": false}')
    forged = b'{"approved": true}'
    (folder / "versions" / version / "payload.json").write_bytes(forged)
    manifest_path = folder / "versions" / version / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["payload.json"] = hashlib.sha256(forged).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError) as exc:
        store.read_value(PATH, version)
    message = one_line(exc)
    assert f"p/a@{version}" in message and str(manifest_path) in message
    # Only what disagrees is named: the checksums, not the (untouched) recorded version.
    computed = version_of_checksums(manifest["files"])
    assert f"its checksums hash to {computed}, not {version}:" in message
    assert "records version" not in message


def test_manifest_claiming_another_version_or_asset_is_refused(tmp_path):
    store, folder = stored(tmp_path)
    version = write(store, b"1")
    manifest_path = folder / "versions" / version / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["asset_key"] = ["p", "other"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match=r"p/a@[0-9a-f]{16}: .*records asset p/other"):
        store.read_manifest(PATH, version)


def test_manifest_file_names_cannot_leave_the_version_folder(tmp_path):
    store, folder = stored(tmp_path)
    version = write(store, b"1")
    (tmp_path / "secret").write_bytes(b"s")
    manifest_path = folder / "versions" / version / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["files"] = {"../../../../../secret": manifest["files"]["payload.json"]}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="file name"):
        store.read_value(PATH, version)


# -- item 2: HMAC signing --------------------------------------------------------------------
def test_signed_store_round_trips_and_never_stores_the_key(tmp_path):
    store, folder = stored(tmp_path, KEY)
    version = write(store, b'{"a": 1}')
    assert store.read_value(PATH, version) == {"a": 1}
    assert store.current_version(PATH) == version
    assert [m.version for m in store.history(PATH)] == [version]
    assert json.loads((folder / "versions" / version / MANIFEST).read_text())["signature"]
    assert json.loads((folder / CURRENT).read_text())["signature"]
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_signed_manifest_forged_with_a_consistent_version_is_refused(tmp_path):
    """With a key, even a self-consistent forged version (new id, new pointer) is refused."""
    store, folder = stored(tmp_path, KEY)
    write(store, b'{"approved": false}')
    forger = LineageStore(tmp_path / "store")  # write access, but no key
    forged = write(forger, b'{"approved": true}')
    with pytest.raises(IntegrityError) as exc:
        store.current_version(PATH)
    assert "not signed" in one_line(exc) and str(folder / CURRENT) in str(exc.value)
    with pytest.raises(IntegrityError) as exc:
        store.read_value(PATH, forged)
    assert f"p/a@{forged}" in one_line(exc) and "not signed" in str(exc.value)
    with pytest.raises(IntegrityError, match=r"history entry .* not signed"):
        store.history(PATH)


def test_wrong_key_or_edited_signed_manifest_is_refused(tmp_path):
    store, folder = stored(tmp_path, KEY)
    version = write(store, b"1")
    other = LineageStore(tmp_path / "store", signing_key="a-different-key-0123456789")
    with pytest.raises(IntegrityError, match="signature does not match"):
        other.read_manifest(PATH, version)
    with pytest.raises(IntegrityError, match="signature does not match"):
        other.current_version(PATH)
    manifest_path = folder / "versions" / version / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["upstream"] = {"p/x": "0123456789abcdef"}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match=rf"p/a@{version}: .*signature does not match"):
        store.read_manifest(PATH, version)


def test_unsigned_store_still_reads_without_a_key(tmp_path):
    signed, _ = stored(tmp_path, KEY)
    version = write(signed, b"1")
    plain = LineageStore(tmp_path / "store")
    assert plain.read_value(PATH, version) == 1
    assert plain.current_version(PATH) == version


# -- item 5: identifiers are matched whole ---------------------------------------------------
@pytest.mark.parametrize("segment", ["a\n", "a\r", "a\x00"])
def test_asset_path_segment_with_trailing_newline_is_refused(tmp_path, segment):
    store, _ = stored(tmp_path)
    with pytest.raises(LineageStoreError, match="asset path segment"):
        store.write_version(["p", segment], "json", {"payload.json": b"1"})


def test_version_with_trailing_newline_is_refused(tmp_path):
    store, _ = stored(tmp_path)
    version = write(store, b"1")
    with pytest.raises(LineageStoreError, match="not a 16-digit hex"):
        store.read_manifest(PATH, version + "\n")
    with pytest.raises(LineageStoreError, match="not a 16-digit hex"):
        store.set_current(PATH, version + "\n", action="rollback")


def test_payload_file_name_with_trailing_newline_is_refused(tmp_path):
    store, _ = stored(tmp_path)
    with pytest.raises(LineageStoreError, match="payload file name"):
        store.write_version(PATH, "json", {"payload.json\n": b"1"})


# -- item 8: a damaged store gives one-line errors and recovers ------------------------------
@pytest.mark.parametrize("garbage", [b"", b"not json", b'{"version": "zz"}', b"[1]"])
def test_garbage_current_is_a_one_line_error_and_a_move_repairs_it(tmp_path, garbage):
    store, folder = stored(tmp_path)
    first = write(store, b"1")
    second = write(store, b"2", current=False)
    (folder / CURRENT).write_bytes(garbage)
    with pytest.raises(StoreDamageError) as exc:
        store.current_version(PATH)
    message = one_line(exc)
    assert "p/a" in message and str(folder / CURRENT) in message
    # A rollback or re-materialization repairs the pointer; history says what happened.
    move = store.set_current(PATH, second, action="rollback", actor="ann", reason="fix")
    assert store.current_version(PATH) == second
    assert move.previous == first
    assert "CURRENT was unreadable" in move.reason and move.reason.startswith("fix")
    assert [m.version for m in store.history(PATH)] == [first, second]
    assert store.verify().problems == []


def test_missing_or_garbage_manifest_names_asset_version_and_path(tmp_path):
    store, folder = stored(tmp_path)
    version = write(store, b"1")
    manifest_path = folder / "versions" / version / MANIFEST
    manifest_path.write_bytes(b"{garbage")
    with pytest.raises(StoreDamageError) as exc:
        store.read_value(PATH, version)
    message = one_line(exc)
    assert f"p/a@{version}" in message and str(manifest_path) in message
    manifest_path.unlink()
    with pytest.raises(LineageStoreError) as exc:
        store.read_value(PATH, version)
    assert f"p/a@{version}" in one_line(exc)


def test_missing_payload_file_names_asset_version_and_path(tmp_path):
    store, folder = stored(tmp_path)
    version = write(store, b"1")
    payload = folder / "versions" / version / "payload.json"
    payload.unlink()
    with pytest.raises(StoreDamageError) as exc:
        store.read_value(PATH, version)
    message = one_line(exc)
    assert f"p/a@{version}" in message and str(payload) in message and "missing" in message


def test_bad_history_entry_names_asset_and_path(tmp_path):
    store, folder = stored(tmp_path)
    write(store, b"1")
    [entry] = (folder / "history").iterdir()
    entry.write_bytes(b"{truncated")
    with pytest.raises(StoreDamageError) as exc:
        store.history(PATH)
    message = one_line(exc)
    assert "p/a" in message and str(entry) in message


def test_truncated_parquet_is_reported_as_an_integrity_error(tmp_path):
    import pandas as pd

    from unified_ai.io.formats import serialize

    store = LineageStore(tmp_path / "store")
    version = store.write_version(["p", "f"], *serialize(pd.DataFrame({"a": range(1000)}))).version
    path = tmp_path / "store" / "p" / "f" / "versions" / version / "data.parquet"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IntegrityError) as exc:
        store.read_value(["p", "f"], version)
    message = one_line(exc)
    assert f"p/f@{version}" in message and str(path) in message and "checksum" in message


def test_undecodable_payload_with_matching_checksum_is_a_one_line_damage_error(tmp_path):
    store = LineageStore(tmp_path / "store")
    version = store.write_version(["p", "f"], "frame/parquet", {"data.parquet": b"PAR1junk"})
    with pytest.raises(StoreDamageError) as exc:
        store.read_value(["p", "f"], version.version)
    message = one_line(exc)
    assert f"p/f@{version.version}" in message and "data.parquet" in message


def test_deleted_manifest_does_not_block_storing_the_same_content(tmp_path):
    store, folder = stored(tmp_path)
    version = write(store, b"1")
    (folder / "versions" / version / MANIFEST).unlink()
    (folder / "versions" / version / "payload.json").write_bytes(b"junk")
    again = store.write_version(PATH, "json", {"payload.json": b"1"})
    assert again.version == version
    assert store.read_value(PATH, version) == 1


def test_garbage_manifest_is_replaced_when_the_same_content_is_stored(tmp_path):
    store, folder = stored(tmp_path)
    version = write(store, b"1")
    (folder / "versions" / version / MANIFEST).write_bytes(b"\x00")
    assert store.write_version(PATH, "json", {"payload.json": b"1"}).version == version
    assert store.read_value(PATH, version) == 1


def test_stale_staging_folders_are_cleaned_up_on_write(tmp_path):
    store, folder = stored(tmp_path)
    write(store, b"1")
    versions = folder / "versions"
    stale, fresh = versions / ".staging-old", versions / ".staging-new"
    for staging in (stale, fresh):
        staging.mkdir()
        (staging / "payload.json").write_bytes(b"partial")
    old = time.time() - 2 * 3600
    for path in (stale / "payload.json", stale):
        os.utime(path, (old, old))
    write(store, b"2")
    assert not stale.exists()
    assert fresh.exists(), "a staging folder still being written is left alone"


# -- item 8: store verify --------------------------------------------------------------------
def test_verify_reports_every_kind_of_damage(tmp_path):
    store, folder = stored(tmp_path)
    good = write(store, b"1")
    write(store, b"2")
    assert store.verify().problems == []
    assert store.verify().versions == 2

    (folder / "versions" / good / "payload.json").write_bytes(b"9")
    other = write(store, b"3", path=["p", "b"])
    (tmp_path / "store" / "p" / "b" / CURRENT).write_bytes(b"junk")
    broken = write(store, b"4", path=["p", "c"], current=False)
    (tmp_path / "store" / "p" / "c" / "versions" / broken / MANIFEST).unlink()
    history = store.history(PATH)
    # A history entry whose `previous` names the wrong version breaks the chain.
    entry = sorted((folder / "history").iterdir())[-1]
    record = json.loads(entry.read_text())
    record["previous"] = other
    entry.write_text(json.dumps(record))
    assert len(history) == 2

    report = store.verify()
    problems = {(p.asset, p.version, p.path): p.problem for p in report.problems}
    assert any(
        asset == "p/a" and version == good and path.endswith("payload.json") and "checksum" in text
        for (asset, version, path), text in problems.items()
    ), problems
    assert any(a == "p/b" and path.endswith(CURRENT) for (a, _, path) in problems), problems
    assert any(a == "p/c" and v == broken for (a, v, _) in problems), problems
    assert any(
        a == "p/a" and "previous" in text and path == str(entry)
        for (a, _, path), text in problems.items()
    ), problems
    assert all("\n" not in text for text in problems.values())
    # Scoped to one project prefix.
    assert {p.asset for p in store.verify(["p"]).problems} == {"p/a", "p/b", "p/c"}
    assert store.verify(["q"]).problems == []


def test_verify_reports_pointer_that_differs_from_newest_history_entry(tmp_path):
    store, folder = stored(tmp_path)
    first = write(store, b"1")
    write(store, b"2")
    pointer = json.loads((folder / CURRENT).read_text())
    pointer["version"] = first
    (folder / CURRENT).write_text(json.dumps(pointer))
    problems = store.verify().problems
    assert [p.path for p in problems] == [str(folder / CURRENT)]
    # The pointer holds its history entry (the chain's head), which moved elsewhere.
    assert "history entry" in problems[0].problem and "moved to" in problems[0].problem


def test_verify_cleans_stale_staging_and_reports_unsigned_items_with_a_key(tmp_path):
    plain, folder = stored(tmp_path)
    version = write(plain, b"1")
    stale = folder / "versions" / f".staging-{uuid.uuid4().hex}"
    stale.mkdir()
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    report = LineageStore(tmp_path / "store", signing_key=KEY).verify()
    assert not stale.exists() and report.cleaned == [str(stale)]
    texts = [p.problem for p in report.problems]
    assert any("not signed" in t for t in texts) and {p.version for p in report.problems} >= {
        version
    }


@pytest.fixture(params=["local", "memory", "s3"])
def any_store(request, tmp_path):
    if request.param == "local":
        return LineageStore(tmp_path / "store", signing_key=KEY)
    if request.param == "s3":
        options = request.getfixturevalue("s3_server")
        return LineageStore(f"s3://lineage/{uuid.uuid4().hex}", options, signing_key=KEY)
    return LineageStore(f"memory://unified-ai-{uuid.uuid4().hex}", signing_key=KEY)


def test_verify_walks_every_backend_and_finds_a_changed_payload(any_store):
    first = write(any_store, b"1")
    write(any_store, b"2")
    write(any_store, b"3", path=["p", "a", "partitions", "b1"])
    report = any_store.verify()
    assert (report.assets, report.versions, report.problems) == (2, 3, [])
    assert any_store.asset_paths() == [("p", "a"), ("p", "a", "partitions", "b1")]
    (any_store.version_dir(PATH, first) / "payload.json").write_bytes(b"7")
    [problem] = any_store.verify(["p"]).problems
    assert (problem.asset, problem.version) == ("p/a", first)
    assert problem.path.endswith(f"{first}/payload.json") and "checksum" in problem.problem
    with pytest.raises(IntegrityError):
        any_store.read_value(PATH, first)
