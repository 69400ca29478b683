"""Which models score a batch in the shadow: the rollback target, and a waiting candidate."""

from unified_ai.io.formats import serialize
from unified_ai.io.reader import ReadLog, StoreReader
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import Report
from unified_ai.payloads import Approval, Deployment
from unified_ai.queries import read_deployment, rollback_target, waiting_candidate

DEPLOYED = ["p", "deployed_model"]
REPORT = ["p", "evaluation_report"]
PASSED = {"quality_floor": {"passed": True}}


def put(store: LineageStore, path, value) -> str:
    kind, files = serialize(value)
    return store.write_version(path, kind, files).version


def deploy(store, model: str, report: str = "r0", gates=PASSED, action="materialize") -> str:
    manifest = Deployment(model_version=model, evaluation_report_version=report, gates=gates)
    version = put(store, DEPLOYED, manifest.to_payload())
    store.set_current(DEPLOYED, version, action=action)
    return version


def report(store, candidate: str) -> str:
    body = {
        "project": "p",
        "policy_version": "p@1",
        "holdout_rows": 10,
        "positive_rate": 0.5,
        "threshold": 0.5,
        "candidate": {"model_version": candidate, "metrics": {}, "fairness": {}},
    }
    version = put(store, REPORT, Report(body=body, attachments={}))
    store.set_current(REPORT, version, action="materialize")
    return version


def test_the_shadow_previous_is_what_a_rollback_would_restore(tmp_path):
    store = LineageStore(tmp_path)
    reader = StoreReader(store)
    first = deploy(store, "m1")
    assert rollback_target(reader, "p", first) is None  # nothing earlier
    unchecked = deploy(store, "m2", gates={})  # never passed its gates: never a target
    third = deploy(store, "m3")
    version, manifest = rollback_target(reader, "p", third)
    assert (version, manifest.model_version) == (first, "m1")
    # Rolled back from m3 to m1: m3 is no target of m1 (nor is the ungated m2).
    store.set_current(DEPLOYED, first, action="rollback")
    assert rollback_target(reader, "p", first) is None
    assert unchecked != first


def test_a_waiting_candidate_passed_its_gates_and_was_neither_deployed_nor_rejected(tmp_path):
    store = LineageStore(tmp_path)
    log = ReadLog()
    reader = StoreReader(store, log)
    first_report = report(store, "m1")
    deployment = deploy(store, "m1", report=first_report)
    live = read_deployment(reader, "p", deployment)
    # The deployed candidate is not waiting; no instance lookup is needed to know it.
    asked: list[str] = []

    def gates(version: str) -> bool:
        asked.append(version)
        return True

    assert waiting_candidate(reader, "p", live, gates) is None and asked == []

    second_report = report(store, "m2")
    found = waiting_candidate(reader, "p", live, gates)
    assert found is not None and found[0] == second_report
    assert found[1].model_version == "m2" and asked == [second_report]
    # What decided it is in the lineage of whatever the step stores.
    assert log.upstream()["p/evaluation_report"] == second_report
    assert waiting_candidate(reader, "p", live, lambda _: False) is None  # a failed gate

    rejection = Approval(
        project="p",
        decision="reject",
        approver="alice",
        model_version="m2",
        evaluation_report_version=second_report,
        at="2026-11-28T10:00:00+00:00",
        valid=True,
    )
    put(store, ["p", "deployment_approval"], rejection.to_payload())
    assert waiting_candidate(reader, "p", live, gates) is None


def test_a_candidate_deployed_then_rolled_back_is_not_waiting(tmp_path):
    store = LineageStore(tmp_path)
    reader = StoreReader(store)
    first = deploy(store, "m1", report=report(store, "m1"))
    deploy(store, "m2", report=report(store, "m2"))
    store.set_current(DEPLOYED, first, action="rollback")
    live = read_deployment(reader, "p", first)
    assert waiting_candidate(reader, "p", live, lambda _: True) is None
