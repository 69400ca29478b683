"""A corrupt CURRENT is repaired by a rollback or a re-materialization (real runs, real files)."""

import json

import dagster as dg
import pytest

from unified_ai.io.formats import serialize
from unified_ai.io.store import CURRENT, IntegrityError, LineageStore, StoreDamageError
from unified_ai.resources.io_manager import LineageIOManager
from unified_ai.resources.storage import LineageStorage

KEY = "repair-test-signing-key-0123456789"


@pytest.mark.parametrize("key", [None, KEY])
def test_rematerialization_repairs_a_garbage_pointer(tmp_path, instance, key, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("UNIFIED_AI_TEST_SIGNING_KEY", KEY)
    storage = LineageStorage(
        root=str(root), signing_key=dg.EnvVar("UNIFIED_AI_TEST_SIGNING_KEY") if key else ""
    )
    value = {"n": 1}

    @dg.asset(key_prefix=["p"])
    def thing() -> dict:
        return dict(value)

    def run() -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [thing], resources={"io_manager": LineageIOManager(storage=storage)}, instance=instance
        )

    assert run().success
    store = LineageStore(root, signing_key=key)
    first = store.current_version(["p", "thing"])
    (root / "p" / "thing" / CURRENT).write_bytes(b"\x00garbage")
    with pytest.raises(StoreDamageError):
        store.current_version(["p", "thing"])

    value["n"] = 2
    assert run().success
    second = store.current_version(["p", "thing"])
    assert second != first and store.read_value(["p", "thing"], second) == {"n": 2}
    history = store.history(["p", "thing"])
    assert [m.previous for m in history] == [None, first]
    assert "CURRENT was unreadable" in history[-1].reason
    assert store.verify().problems == []
    if key:
        assert KEY.encode() not in (root / "p" / "thing" / CURRENT).read_bytes()
        with pytest.raises(IntegrityError, match="signature does not match"):
            LineageStore(root, signing_key="wrong-key-0123456789abcdef").current_version(
                ["p", "thing"]
            )


def test_rollback_repairs_a_garbage_deployment_pointer(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from unified_ai.project_tree import load_projects
    from unified_ai.resources.mlflow_registry import MlflowRegistry
    from unified_ai.stages.rollback.perform import perform_rollback

    project = next(p for p in load_projects() if p.name == "mortgage_approval")
    registry = MlflowRegistry(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "art")
    )
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    store = LineageStore(tmp_path / "store")
    path = [project.name, "deployed_model"]
    versions = []
    for index in range(2):
        registered = registry.log_and_register(
            model_name=project.model_name,
            experiment="repair",
            pipeline=model,
            params={},
            metrics={},
            tags={},
        )
        payload = {
            "model_version": f"{index:016x}",
            "mlflow_model_version": registered["version"],
            "model_uri": registered["model_uri"],
            "gates": {"quality_floor": {"passed": True}},
        }
        version = store.write_version(path, *serialize(payload)).version
        store.set_current(path, version, action="materialize")
        registry.set_champion(project.model_name, registered["version"])
        versions.append(version)
    pointer = tmp_path / "store" / project.name / "deployed_model" / CURRENT
    pointer.write_text(json.dumps({"version": "not-a-version"}))

    outcome = perform_rollback(
        store=store,
        registry=registry,
        project=project,
        requested=None,
        reason="pointer damaged",
        actor="ann",
        run_id=None,
    )
    assert (outcome.rolled_back_from, outcome.rolled_back_to) == (versions[1], versions[0])
    assert store.current_version(path) == versions[0]
    assert registry.champion_version(project.model_name) == "1"
    last = store.history(path)[-1]
    assert (last.action, last.previous) == ("rollback", versions[1])
    assert last.reason.startswith("pointer damaged; CURRENT was unreadable")
    assert store.verify([project.name]).problems == []
