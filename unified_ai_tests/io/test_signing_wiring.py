"""UNIFIED_AI_SIGNING_KEY reaches the store through settings and a Dagster EnvVar, never as text."""

import json

import dagster as dg
import pytest

from unified_ai.definitions import build_resources
from unified_ai.io.store import MANIFEST, IntegrityError, LineageStore
from unified_ai.runtime import RuntimeConfigError, load_settings

KEY = "wiring-test-signing-key-0123456789"


def test_signing_key_is_bound_by_name_and_signs_what_runs_store(tmp_path, monkeypatch, instance):
    env = {"UNIFIED_AI_HOME": str(tmp_path / "home"), "UNIFIED_AI_SIGNING_KEY": KEY}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.signing_key == KEY and KEY not in repr(settings)
    resources = build_resources(settings)
    storage = resources["lineage"]
    assert isinstance(storage.signing_key, dg.EnvVar)
    assert storage.signing_key.env_var_name == "UNIFIED_AI_SIGNING_KEY"

    @dg.asset(key_prefix=["p"])
    def thing() -> dict:
        return {"n": 1}

    result = dg.materialize(
        [thing], resources={"io_manager": resources["io_manager"]}, instance=instance
    )
    assert result.success
    root = tmp_path / "home" / "store"
    signed = LineageStore(root, signing_key=KEY)
    version = signed.require_current(["p", "thing"])
    assert signed.read_value(["p", "thing"], version) == {"n": 1}
    manifest = root / "p" / "thing" / "versions" / version / MANIFEST
    assert json.loads(manifest.read_text())["signature"].startswith("hmac-sha256:")
    with pytest.raises(IntegrityError):
        LineageStore(root, signing_key="another-key-0123456789abcdef").read_manifest(
            ["p", "thing"], version
        )
    for path in root.rglob("*"):
        assert not path.is_file() or KEY.encode() not in path.read_bytes()


def test_without_a_key_the_store_is_unsigned(tmp_path):
    settings = load_settings({"UNIFIED_AI_HOME": str(tmp_path)})
    assert settings.signing_key == ""
    assert build_resources(settings)["lineage"].signing_key == ""


def test_a_short_key_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(RuntimeConfigError, match="UNIFIED_AI_SIGNING_KEY") as exc:
        load_settings({"UNIFIED_AI_HOME": str(tmp_path), "UNIFIED_AI_SIGNING_KEY": "s3cret"})
    assert "s3cret" not in str(exc.value)
