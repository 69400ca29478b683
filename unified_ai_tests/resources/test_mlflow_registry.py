import mlflow
import pytest
from sklearn.linear_model import LogisticRegression

from unified_ai.resources.mlflow_registry import MlflowRegistry


@pytest.fixture
def registry(tmp_path):
    return MlflowRegistry(
        tracking_uri=f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}",
        artifact_root=str(tmp_path / "artifacts"),
    )


def model():
    return LogisticRegression().fit([[0.0], [1.0]], [0, 1])


def register(registry, **overrides):
    arguments = dict(
        model_name="unified_ai.t",
        experiment="unified_ai/t",
        pipeline=model(),
        params={"C": 1.0},
        metrics={"train_roc_auc": 1.0},
        tags={"unified_ai.project": "t"},
    )
    return registry.log_and_register(**{**arguments, **overrides})


def test_registers_versions_and_moves_the_champion_alias(registry, tmp_path):
    first, second = register(registry), register(registry)
    assert (first["version"], second["version"]) == ("1", "2")
    assert first["model_uri"] == "models:/unified_ai.t/1"
    assert registry.champion_version("unified_ai.t") is None
    registry.set_champion("unified_ai.t", "2")
    assert registry.champion_version("unified_ai.t") == "2"
    run = registry.client().get_run(first["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params == {"C": "1.0"}
    assert run.info.artifact_uri.startswith(str(tmp_path / "artifacts"))
    loaded = mlflow.sklearn.load_model(first["model_uri"])
    assert list(loaded.predict([[0.0], [1.0]])) == [0, 1]


def test_a_failure_inside_a_run_still_ends_it(registry):
    with pytest.raises(ValueError):
        register(registry, metrics={"train_roc_auc": "not a number"})
    runs = registry.client().search_runs(
        [registry.client().get_experiment_by_name("unified_ai/t").experiment_id]
    )
    assert [r.info.status for r in runs] == ["FAILED"]


def test_unknown_model_has_no_champion(registry):
    assert registry.champion_version("unified_ai.nothing") is None
