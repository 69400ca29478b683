"""The step-bound reader and read log, and manifests that read several versions of one asset."""

import json

import pytest

from unified_ai.io import reader as reader_module
from unified_ai.io.lineage import downstream_of, lineage_tree
from unified_ai.io.reader import ReadLog, StoreReader, step_log, upstream_versions
from unified_ai.io.store import MANIFEST, LineageStore, StoreDamageError


def test_a_read_log_keeps_each_version_once_in_read_order():
    log = ReadLog()
    log.add(["p", "a"], "1" * 16)
    log.add(["p", "b"], "2" * 16)
    log.add(["p", "b"], "3" * 16)
    log.add(["p", "b"], "2" * 16)
    assert log.upstream() == {"p/a": "1" * 16, "p/b": ["2" * 16, "3" * 16]}


def test_a_step_has_one_log_and_old_logs_are_forgotten(monkeypatch):
    monkeypatch.setattr(reader_module, "MAX_STEP_LOGS", 2)
    first = step_log("run-a", "step")
    assert step_log("run-a", "step") is first
    second = step_log("run-b", "step")
    step_log("run-a", "step")  # used again: now the newest
    step_log("run-c", "step")  # the third: the oldest (run-b's) is forgotten
    assert step_log("run-a", "step") is first
    assert step_log("run-b", "step") is not second


def test_the_reader_records_values_not_listings(tmp_path):
    store = LineageStore(tmp_path / "store")
    version = store.write_version(["p", "a"], "json", {"payload.json": b"1"}).version
    store.set_current(["p", "a"], version, action="materialize")
    log = ReadLog()
    reader = StoreReader(store, log)
    assert reader.require_current(["p", "a"]) == version
    assert [m.version for m in reader.versions(["p", "a"])] == [version]
    assert log.upstream() == {}
    assert reader.read_value(["p", "a"], version) == 1
    assert log.upstream() == {"p/a": version}
    assert StoreReader(store).read_value(["p", "a"], version) == 1  # no log: records nothing


def test_lineage_follows_every_version_of_an_asset_read_twice(tmp_path):
    store = LineageStore(tmp_path / "store")
    old = store.write_version(["p", "model"], "json", {"payload.json": b"1"}).version
    new = store.write_version(["p", "model"], "json", {"payload.json": b"2"}).version
    report = store.write_version(
        ["p", "report"], "json", {"payload.json": b"3"}, upstream={"p/model": [new, old]}
    )
    assert list(upstream_versions(report)) == [("p/model", new), ("p/model", old)]
    tree = lineage_tree(store, ["p", "report"], report.version)
    assert [(n["asset"], n["version"]) for n in tree["upstream"]] == [
        ("p/model", new),
        ("p/model", old),
    ]
    paths = [["p", "model"], ["p", "report"]]
    for version in (old, new):
        [row] = downstream_of(store, paths, ["p", "model"], version)
        assert (row["asset"], row["version"]) == ("p/report", report.version)


@pytest.mark.parametrize("upstream", [{"p/model": 5}, {"p/model": ["a", 5]}])
def test_a_malformed_upstream_entry_is_refused_in_one_line(tmp_path, upstream):
    store = LineageStore(tmp_path / "store")
    version = store.write_version(["p", "a"], "json", {"payload.json": b"1"}).version
    path = tmp_path / "store" / "p" / "a" / "versions" / version / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["upstream"] = upstream
    path.write_text(json.dumps(manifest))
    with pytest.raises(StoreDamageError, match=r"malformed upstream entry for p/model$"):
        store.read_manifest(["p", "a"], version)
