"""The names of the contract are defined once, in `unified_ai.names`, and match the graph."""

import ast
from pathlib import Path

from unified_ai import names
from unified_ai.definitions import build_definitions
from unified_ai.project_tree import load_projects
from unified_ai.runtime import load_settings

PACKAGE = Path(names.__file__).parent


def _project_graph(tmp_path, project: str):
    settings = load_settings({"UNIFIED_AI_HOME": str(tmp_path)})
    projects = [p for p in load_projects() if p.name == project]
    defs = build_definitions(settings, projects)
    assets = {key.path[-1] for key in defs.resolve_asset_graph().get_all_asset_keys()}
    return defs, assets


def test_the_asset_lists_are_the_graph(tmp_path):
    defs, assets = _project_graph(tmp_path, "mortgage_approval")
    # The mortgage project reviews predictions (policy.review): its graph has the queue too.
    assert set(names.PROJECT_ASSETS) | {names.REVIEW_QUEUE} == assets
    assert len(names.PROJECT_ASSETS) + 1 == len(assets)  # no asset listed twice
    partitioned = {
        key.path[-1]
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if defs.resolve_assets_def(key).partitions_def is not None
    }
    assert set(names.BATCH_ASSETS) | {names.REVIEW_QUEUE} == partitioned
    assert set(names.BUILT_FOR_DEPLOYMENT) == set(names.LOOP_ASSETS) - {names.DEPLOYED_MODEL}
    for uses in names.CONSUMES.values():
        assert uses <= assets


def test_job_and_sensor_names_come_from_the_names_module(tmp_path):
    defs, _ = _project_graph(tmp_path, "mortgage_approval")
    project = "mortgage_approval"
    jobs = {job.name for job in defs.jobs}
    assert jobs == {
        names.training_loop_job(project),
        names.approve_job(project),
        names.deploy_job(project),
        names.rollback_job(project),
        names.score_batch_job(project),
        names.ingest_labels_job(project),
        names.route_reviews_job(project),
        names.review_job(project),
    }
    sensors = {sensor.name for sensor in defs.sensors}
    assert sensors == {
        names.approval_sensor(project),
        names.run_failure_sensor(project),
        names.gate_outcome_sensor(project),
        names.review_queue_sensor(project),
        *names.sensor_names(project).values(),
    }
    assert set(names.sensor_names(project)) == set(names.CONSUMES)


def _contract_values() -> set[str]:
    """Strings distinctive enough that a copy outside `names.py` can only be a second definition."""
    values = {
        value
        for name, value in vars(names).items()
        if name.isupper() and isinstance(value, str) and ("/" in value or value.startswith("_"))
    }
    # The suffixes of job, sensor and partition names (`f"{project}__training_loop"`).
    values |= {
        fn("x").removeprefix("x")
        for fn in (
            names.training_loop_job,
            names.approve_job,
            names.deploy_job,
            names.rollback_job,
            names.score_batch_job,
            names.ingest_labels_job,
            names.approval_sensor,
            names.batches_partitions,
            names.splits_op,
        )
    }
    values |= {name.removeprefix("x") for name in names.sensor_names("x").values()}
    return values


def test_no_module_spells_a_name_of_the_contract_itself():
    contract = _contract_values()
    assert {"lineage/version", "unified_ai/actor", "_row_id", "__training_loop"} <= contract
    copies = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "names.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and node.value in contract:
                copies.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}")
    assert copies == []


def test_actor_and_evidence_tags():
    assert names.actor_of({names.ACTOR_TAG: "alice", names.DAGSTER_USER_TAG: "bob"}) == "alice"
    assert names.actor_of({names.DAGSTER_USER_TAG: "bob"}) == "bob"
    assert names.actor_of({}) == "dagster"
    tags = names.evidence_tags("drift", "p@1", {"share": "x" * 400})
    assert tags[names.TRIGGER_TAG] == "drift"
    assert tags[names.POLICY_VERSION_TAG] == "p@1"
    assert len(tags[f"{names.EVIDENCE_TAG_PREFIX}share"]) == names.MAX_TAG_VALUE


def test_every_bundled_data_set_name_has_a_loader():
    """The schema checks `bundled:<name>` against the names; `ml.datasets` loads each one."""
    from unified_ai.ml.datasets import BUNDLED_DATASETS

    assert sorted(BUNDLED_DATASETS) == sorted(names.BUNDLED_DATASET_NAMES)
