"""Every version a step reads from the lineage store is in the manifest of what it stores.

The store is observed, not replaced: a subclass of the real store notes each `read_value` and
then reads as usual. Each asset is materialized in its own run (as from the UI), so every read
of a run belongs to the asset(s) that run stores; reads of versions the run itself stored are
its checks reading them.
"""

import dagster as dg
import pytest

from unified_ai.io.store import LineageStore
from unified_ai.names import PARTITIONS, VERSION_METADATA, batches_partitions
from unified_ai.projects.loader import load_project_file
from unified_ai.resources.io_manager import LineageIOManager
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.approval.jobs import approval_run_config
from unified_ai.stages.rollback.jobs import rollback_run_config
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import new_source_rows, project_defs, step_failures
from unified_ai_tests.flows.monitoring_helpers import simulate

pytestmark = pytest.mark.slow

READS: list[tuple[str, str]] = []

APPROVAL = """\
  approval:
    mode: required
    approvers: [alice]
    four_eyes: true
"""


class ObservedStore(LineageStore):
    def read_value(self, asset_path, version):
        READS.append(("/".join(asset_path), version))
        return super().read_value(asset_path, version)


class ObservedStorage(LineageStorage):
    def store(self) -> LineageStore:
        return ObservedStore(self.root, self.storage_options)


def upstream_pairs(manifest) -> set[tuple[str, str]]:
    pairs = set()
    for label, versions in manifest.upstream.items():
        for version in versions if isinstance(versions, list) else [versions]:
            pairs.add((label, version))
    return pairs


class Runner:
    def __init__(self, defs, instance, home):
        self.defs, self.instance = defs, instance
        self.store = LineageStore(home / "store")
        storage = ObservedStorage(root=str(home / "store"))
        self.resources = {
            **defs.resources,
            "lineage": storage,
            "io_manager": LineageIOManager(storage=storage),
        }

    def run(self, *assets: str, partition=None, run_config=None, every_read_recorded=True):
        """Materialize `assets` in one run; return {asset: manifest} of what it stored."""
        READS.clear()
        result = dg.materialize(
            [*self.defs.assets, *self.defs.asset_checks],
            selection=dg.AssetSelection.assets(*(dg.AssetKey(["small", a]) for a in assets)),
            resources=self.resources,
            instance=self.instance,
            partition_key=partition,
            run_config=run_config or {},
            raise_on_error=False,
        )
        assert result.success, step_failures(result)
        stored = {}
        for event in result.get_asset_materialization_events():
            path = list(event.asset_key.path)
            if event.partition:
                path += [PARTITIONS, event.partition]
            version = event.materialization.metadata[VERSION_METADATA].value
            stored[path[1]] = self.store.read_manifest(path, version)
        written = {("/".join(m.asset_key), m.version) for m in stored.values()}
        reads = set(READS) - written  # a check reading what the run stored
        if every_read_recorded:
            for asset, manifest in stored.items():
                missing = reads - upstream_pairs(manifest)
                assert not missing, f"{asset} read {sorted(missing)} without recording it"
        return stored


def test_every_store_read_of_a_step_is_in_its_manifest(home, projects_dir, instance, monkeypatch):
    project = load_project_file(write_project(projects_dir, policy_extra=APPROVAL))
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    runner = Runner(project_defs(projects_dir), instance, home)

    def approve_and_deploy(model_version: str):
        config = approval_run_config(
            project, model_version=model_version, decision="approve", approver="alice", comment=""
        )
        approval = runner.run("deployment_approval", run_config=config)["deployment_approval"]
        deployment = runner.run("deployed_model")["deployed_model"]
        # The approvals the deployment was decided on are part of its lineage.
        assert ("small/deployment_approval", approval.version) in upstream_pairs(deployment)
        return deployment

    runner.run("training_data")
    splits = runner.run("train_split", "holdout_split")
    assert set(splits) == {"train_split", "holdout_split"}
    model = runner.run("candidate_model")["candidate_model"]
    first_report = runner.run("evaluation_report")["evaluation_report"]
    first = approve_and_deploy(model.version)
    # A second model from another draw of rows (the champion again is never deployed). With a
    # champion deployed, its report also reads the deployment and the champion's model.
    new_source_rows(projects_dir, seed=1)
    runner.run("training_data")
    runner.run("train_split", "holdout_split")
    model = runner.run("candidate_model")["candidate_model"]
    report = runner.run("evaluation_report")["evaluation_report"]
    assert ("small/deployed_model", first.version) in upstream_pairs(report)
    assert report.version != first_report.version
    second = approve_and_deploy(model.version)
    assert second.version != first.version

    simulate("small", "--batches", "1", "--rows", "80", "--seed", "2")
    [batch] = [p.name for p in (home / "inbox" / "small").glob("*.csv")]
    instance.add_dynamic_partitions(batches_partitions("small"), [batch])
    runner.run("production_batch", partition=batch)
    predictions = runner.run("predictions", partition=batch)["predictions"]
    assert ("small/deployed_model", second.version) in upstream_pairs(predictions)
    runner.run("drift_report", partition=batch)
    simulate("small", "--labels")
    truth = runner.run("ground_truth", partition=batch)["ground_truth"]
    live = runner.run("live_performance")["live_performance"]
    assert (f"small/ground_truth/{PARTITIONS}/{batch}", truth.version) in upstream_pairs(live)

    # A rollback stores no new deployment; its incident records both deployments and reports.
    stored = runner.run(
        "deployed_model",
        "incidents",
        run_config=rollback_run_config(project, reason="test", trigger="test"),
        every_read_recorded=False,
    )
    assert stored["deployed_model"].version == first.version  # restored, not stored anew
    recorded = upstream_pairs(stored["incidents"])
    assert {("small/deployed_model", first.version), ("small/deployed_model", second.version)} <= (
        recorded
    )
    assert ("small/evaluation_report", first_report.version) in recorded
    assert ("small/evaluation_report", report.version) in recorded
