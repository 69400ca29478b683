"""Rollback end to end: real instance, MLflow, lineage store; and refusals that change nothing."""

import dagster as dg
import mlflow
import pytest

from unified_ai.projects.loader import load_project_file
from unified_ai.stages.rollback.jobs import rollback_run_config
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import (
    current,
    materialize,
    new_source_rows,
    project_defs,
    run_loop,
    step_failures,
    store,
)

DEPLOYED = ["small", "deployed_model"]


def champion_alias(home) -> str:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    return str(client.get_model_version_by_alias("unified_ai.small", "champion").version)


def rollback(defs, instance, project, **config):
    return defs.resolve_job_def("small__rollback").execute_in_process(
        run_config=rollback_run_config(project, **config), instance=instance, raise_on_error=False
    )


@pytest.fixture
def deployed_twice(home, projects_dir, instance):
    project = load_project_file(write_project(projects_dir))
    defs = project_defs(projects_dir)
    versions = []
    for seed in range(2):
        if seed:
            new_source_rows(projects_dir, seed=seed)  # a new model, not the champion again
        assert run_loop(defs, instance, "small").success
        deployment, payload = current(home, "small", "deployed_model")
        versions.append((deployment, payload))
    return defs, project, versions


def test_rollback_restores_pointer_alias_loads_and_ui(home, instance, deployed_twice):
    defs, project, [(v1, first), (v2, second)] = deployed_twice
    assert champion_alias(home) == second["mlflow_model_version"] == "2"

    result = rollback(defs, instance, project, reason="latency spike", trigger="oncall")
    assert result.success, step_failures(result)
    assert store(home).current_version(DEPLOYED) == v1
    assert champion_alias(home) == first["mlflow_model_version"] == "1"
    assert len(store(home).versions(DEPLOYED)) == 2  # nothing recomputed or rewritten

    event = instance.get_latest_materialization_event(dg.AssetKey(DEPLOYED))
    metadata = event.asset_materialization.metadata
    assert metadata["lineage/version"].value == v1
    assert metadata["rolled_back_from"].value == v2
    assert metadata["rolled_back_to"].value == v1
    assert event.run_id == result.run_id

    _, incident = current(home, "small", "incidents")
    assert incident["reason"] == "latency spike"
    assert incident["trigger"] == "oncall"
    assert incident["rolled_back_from"]["deployment_version"] == v2
    assert incident["rolled_back_to"]["deployment_version"] == v1
    assert incident["rolled_back_from"]["evaluation_report"]["candidate"]["metrics"]
    assert incident["rolled_back_to"]["model_version"] == first["model_version"]

    # Downstream loads honour the pointer: the next evaluation compares against v1's model.
    report = dg.AssetKey(["small", "evaluation_report"])
    assert materialize(defs, instance, dg.AssetSelection.assets(report)).success
    _, body = current(home, "small", "evaluation_report")
    assert body.body["champion"]["model_version"] == first["model_version"]

    # Roll forward again to v2 by id; history shows every move in order.
    again = rollback(defs, instance, project, reason="false alarm", to_version=v2)
    assert again.success, step_failures(again)
    assert store(home).current_version(DEPLOYED) == v2
    assert champion_alias(home) == "2"
    moves = store(home).history(DEPLOYED)
    assert [(m.action, m.version) for m in moves] == [
        ("materialize", v1),
        ("materialize", v2),
        ("rollback", v1),
        ("rollback", v2),
    ]
    assert moves[2].reason == "latency spike" and moves[2].previous == v2
    assert len(store(home).history(["small", "incidents"])) == 2


def test_rollback_by_model_version(home, instance, deployed_twice):
    defs, project, [(v1, first), _] = deployed_twice
    result = rollback(defs, instance, project, reason="r", to_version=first["model_version"])
    assert result.success, step_failures(result)
    assert store(home).current_version(DEPLOYED) == v1


def _state(home):
    lineage = store(home)
    return (
        lineage.current_version(DEPLOYED),
        champion_alias(home),
        len(lineage.history(DEPLOYED)),
        lineage.current_version(["small", "incidents"]),
    )


@pytest.mark.parametrize(
    ("to_version", "reason", "message"),
    [
        ("0123456789abcdef", "r", "version 0123456789abcdef does not exist in the store"),
        ("../../etc/passwd", "r", "does not exist in the store"),
        ("TRAIN_SPLIT", "r", "belongs to small/train_split, and was never deployed"),
        ("CURRENT", "r", "is already the deployed version"),
        ("", "  ", "a rollback needs a reason"),
    ],
)
def test_refused_rollbacks_change_nothing(
    home, instance, deployed_twice, to_version, reason, message
):
    defs, project, _ = deployed_twice
    if to_version == "TRAIN_SPLIT":
        to_version = store(home).current_version(["small", "train_split"])
    if to_version == "CURRENT":
        to_version = store(home).current_version(DEPLOYED)
    before = _state(home)
    result = rollback(defs, instance, project, reason=reason, to_version=to_version)
    assert not result.success
    failure = step_failures(result)["small__deployed_model"]
    assert failure.startswith("small/deployed_model: rollback refused: ")
    assert message in failure
    assert _state(home) == before


def test_nothing_to_roll_back_to(home, projects_dir, instance):
    project = load_project_file(write_project(projects_dir))
    defs = project_defs(projects_dir)
    result = rollback(defs, instance, project, reason="r")
    assert "nothing is deployed yet" in step_failures(result)["small__deployed_model"]
    assert run_loop(defs, instance, "small").success
    result = rollback(defs, instance, project, reason="r")
    assert (
        "no earlier deployment that passed its gates"
        in step_failures(result)["small__deployed_model"]
    )


def test_default_target_skips_deployments_that_were_rolled_back(home, instance, deployed_twice):
    defs, project, [(v1, _), (v2, _)] = deployed_twice
    assert rollback(defs, instance, project, reason="bad v2").success
    assert store(home).current_version(DEPLOYED) == v1
    # v2 was rolled back from, so the default does not bounce back to it.
    result = rollback(defs, instance, project, reason="again")
    assert "no earlier deployment" in step_failures(result)["small__deployed_model"]
    assert store(home).current_version(DEPLOYED) == v1
    assert v2 != v1


def test_rollback_to_the_recorded_version_repairs_a_garbage_pointer(home, instance, deployed_twice):
    """`unified-ai rollback --to <the version CURRENT should name>` repairs a damaged pointer."""
    from unified_ai.io.store import CURRENT, StoreDamageError

    defs, project, [_, (v2, second)] = deployed_twice
    pointer = home / "store" / "small" / "deployed_model" / CURRENT
    pointer.write_bytes(b"\x00garbage")
    with pytest.raises(StoreDamageError):
        store(home).current_version(DEPLOYED)

    result = rollback(defs, instance, project, reason="pointer damaged", to_version=v2)
    assert result.success, step_failures(result)
    assert store(home).current_version(DEPLOYED) == v2
    assert champion_alias(home) == second["mlflow_model_version"]
    last = store(home).history(DEPLOYED)[-1]
    assert (last.action, last.version, last.previous) == ("rollback", v2, v2)
    assert last.reason.startswith("pointer damaged; CURRENT was unreadable")
    assert store(home).verify(["small"]).problems == []


def _choose(requested: str, *, pointer_damaged: bool):
    from unified_ai.policies.rollback import DeploymentFacts, Move, choose_target

    facts = {v: DeploymentFacts(version=v, model_version=f"m{v}", gates_passed=True) for v in "ab"}
    return choose_target(
        current="b",
        history_newest_first=[Move("b", "a", "materialize"), Move("a", None, "materialize")],
        deployment=facts.get,
        deployment_of_model=lambda _: None,
        owner_of=lambda _: None,
        requested=requested,
        pointer_damaged=pointer_damaged,
    )


def test_asking_for_the_recorded_version_is_a_repair_only_when_the_pointer_is_damaged():
    from unified_ai.policies.rollback import RollbackError

    with pytest.raises(RollbackError, match="version b is already the deployed version"):
        _choose("b", pointer_damaged=False)
    assert _choose("b", pointer_damaged=True).version == "b"
    assert _choose("a", pointer_damaged=True).version == "a"
