"""A damaged or tampered store gives one-line CLI errors, and `store verify` finds the damage."""

import json

import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.io.formats import serialize
from unified_ai.io.store import CURRENT, MANIFEST, LineageStore

PROJECT = "mortgage_approval"
KEY = "cli-test-signing-key-0123456789"


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    # A ClickException ends in SystemExit; any other exception would be a traceback.
    assert isinstance(result.exception, SystemExit), result.exception
    # Output printed before the failure may precede it; the error itself is the one last line.
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert errors == lines[-1:], result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def seed(home, key: str | None = None) -> tuple[LineageStore, dict[str, str]]:
    """A stored, current version of every loop asset (small JSON values) and a deployment."""
    store = LineageStore(home / "store", signing_key=key)
    versions = {}
    for asset in ("training_data", "train_split", "evaluation_report"):
        path = [PROJECT, asset]
        version = store.write_version(path, *serialize({"asset": asset})).version
        store.set_current(path, version, action="materialize", actor="ann")
        versions[asset] = version
    deployed = [PROJECT, "deployed_model"]
    for index in range(2):
        payload = {
            "model_version": f"m{index}",
            "model_uri": "models:/m",
            "deployed_at": "2026-01-01T00:00:00+00:00",
            "deployed_by": "ann",
            "policy_version": "p@1",
        }
        version = store.write_version(
            deployed,
            *serialize(payload),
            upstream={f"{PROJECT}/training_data": versions["training_data"]},
        ).version
        store.set_current(deployed, version, action="materialize", actor="ann")
        versions[f"deployed_model{index}"] = version
    return store, versions


def asset_dir(home, asset: str):
    return home / "store" / PROJECT / asset


@pytest.mark.parametrize("garbage", [b"", b"\x00\x01garbage"])
def test_status_with_a_garbage_pointer_is_a_one_line_error(home, garbage):
    seed(home)
    pointer = asset_dir(home, "train_split") / CURRENT
    pointer.write_bytes(garbage)
    assert_one_line_error(invoke("status", PROJECT), f"{PROJECT}/train_split", str(pointer))


def test_history_with_a_bad_history_entry_is_a_one_line_error(home):
    seed(home)
    entry = sorted((asset_dir(home, "deployed_model") / "history").iterdir())[0]
    entry.write_text('{"version": ')
    assert_one_line_error(invoke("history", PROJECT), str(entry))


def test_lineage_with_a_garbage_or_missing_manifest_is_a_one_line_error(home):
    _, versions = seed(home)
    version = versions["training_data"]
    manifest = asset_dir(home, "training_data") / "versions" / version / MANIFEST
    manifest.write_bytes(b"[")
    assert_one_line_error(
        invoke("lineage", PROJECT, "deployed_model"), f"training_data@{version}", str(manifest)
    )
    manifest.unlink()
    assert_one_line_error(
        invoke("lineage", PROJECT, "deployed_model"), f"training_data@{version}", "does not exist"
    )


def test_status_with_a_tampered_deployment_is_an_integrity_error(home):
    _, versions = seed(home)
    version = versions["deployed_model1"]
    payload = asset_dir(home, "deployed_model") / "versions" / version / "payload.json"
    payload.write_bytes(payload.read_bytes()[:10])
    assert_one_line_error(
        invoke("status", PROJECT), f"deployed_model@{version}", str(payload), "checksum"
    )


def test_history_marks_no_entry_live_when_the_pointer_disagrees(home):
    _, versions = seed(home)
    pointer = asset_dir(home, "deployed_model") / CURRENT
    record = json.loads(pointer.read_text())
    record["version"] = versions["deployed_model0"]
    pointer.write_text(json.dumps(record))
    result = invoke("history", PROJECT, "deployed_model", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    live = [m["version"] for m in body["moves"] if m["current"]]
    assert live == [], "the newest entry is not what CURRENT names, so it is not live"
    [refused] = body["refused_pointers"]
    assert f"{PROJECT}/deployed_model" in refused and "\n" not in refused


def test_history_warns_when_an_entry_was_edited(home):
    seed(home)
    history = asset_dir(home, "deployed_model") / "history"
    newest = sorted(history.iterdir())[-1]
    record = json.loads(newest.read_text())
    record["actor"] = "mallory"
    newest.write_text(json.dumps(record))
    result = invoke("history", PROJECT, "deployed_model")
    assert result.exit_code == 0, result.output
    assert f"warning: {PROJECT}/deployed_model" in result.output
    assert "edited" in result.output


def test_store_verify_clean_and_damaged(home):
    _, versions = seed(home)
    result = invoke("store", "verify", PROJECT)
    assert result.exit_code == 0, result.output
    assert "checked 4 asset(s) and 5 version(s) of mortgage_approval: no problems" in result.output

    payload = asset_dir(home, "train_split") / "versions" / versions["train_split"] / "payload.json"
    payload.write_bytes(b"{}")
    (asset_dir(home, "training_data") / CURRENT).write_bytes(b"")
    result = invoke("store", "verify", PROJECT, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    problems = {(p["asset"], p["version"], p["path"]) for p in report["problems"]}
    assert (f"{PROJECT}/train_split", versions["train_split"], str(payload)) in problems
    assert (
        f"{PROJECT}/training_data",
        None,
        str(asset_dir(home, "training_data") / CURRENT),
    ) in problems
    assert all(set(p) == {"asset", "version", "path", "problem"} for p in report["problems"])

    text = invoke("store", "verify")
    assert text.exit_code == 1
    assert isinstance(text.exception, SystemExit)
    # The damaged payload, the garbage pointer, and a pointer naming the damaged version.
    assert "3 problem(s)" in text.output and "Traceback" not in text.output


def test_store_verify_of_an_unknown_project_is_a_one_line_error(home):
    assert_one_line_error(invoke("store", "verify", "nope"), "unknown project 'nope'")


def test_signed_store_through_the_cli(home, monkeypatch):
    seed(home, key=KEY)
    monkeypatch.setenv("UNIFIED_AI_SIGNING_KEY", KEY)
    assert invoke("status", PROJECT).exit_code == 0
    assert invoke("store", "verify", PROJECT).exit_code == 0
    monkeypatch.setenv("UNIFIED_AI_SIGNING_KEY", "another-key-0123456789abcdef")
    message = assert_one_line_error(invoke("status", PROJECT), "signature does not match")
    assert KEY not in message and "another-key" not in message


def test_unsigned_store_is_refused_when_a_key_is_set(home, monkeypatch):
    seed(home)
    monkeypatch.setenv("UNIFIED_AI_SIGNING_KEY", KEY)
    assert_one_line_error(invoke("status", PROJECT), "not signed")
    result = invoke("store", "verify", PROJECT, "--json")
    assert result.exit_code == 1
    assert all("not signed" in p["problem"] for p in json.loads(result.output)["problems"])


def test_short_signing_key_is_refused_without_echoing_it(home, monkeypatch):
    monkeypatch.setenv("UNIFIED_AI_SIGNING_KEY", "hunter2")
    message = assert_one_line_error(invoke("status", PROJECT), "UNIFIED_AI_SIGNING_KEY")
    assert "hunter2" not in message
