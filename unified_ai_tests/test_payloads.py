"""The typed records assets hand each other: one writer and one reader each, stored as before."""

import json
from dataclasses import replace

import pytest

from unified_ai.io.formats import deserialize, serialize
from unified_ai.ml.artifacts import Report
from unified_ai.payloads import (
    Approval,
    Deployment,
    DriftSummary,
    EvaluationReport,
    Incident,
    LiveSummary,
    ModelSummary,
    PayloadError,
    Registration,
)

#: A deployment manifest exactly as earlier versions stored it.
STORED_DEPLOYMENT = {
    "project": "small",
    "model_version": "a" * 16,
    "model_uri": "models:/unified_ai.small/3",
    "mlflow_model_version": "3",
    "mlflow_run_id": "r" * 32,
    "mlflow_alias": "champion",
    "evaluation_report_version": "b" * 16,
    "gates": {"quality_floor": {"passed": True, "description": "ok"}},
    "approval": {"reason": "not required by policy", "approvers": []},
    "policy_version": "small@0123456789ab",
    "metrics": {"roc_auc": 0.9, "log_loss": None},
    "deployed_at": "2026-11-28T10:00:00.000+00:00",
    "deployed_by": "alice",
    "dagster_run_id": "run-1",
    "previous_mlflow_champion": None,
}

STORED_APPROVAL = {
    "project": "small",
    "decision": "approve",
    "approver": "alice",
    "authenticated": False,
    "model_version": "a" * 16,
    "evaluation_report_version": "b" * 16,
    "candidate_model_version": "a" * 16,
    "comment": "looks right",
    "valid": True,
    "invalid_reason": None,
    "at": "2026-11-28T10:00:00.000+00:00",
    "policy_version": "small@0123456789ab",
    "dagster_run_id": "run-2",
}


def stored(payload):
    """The payload after a trip through the store's JSON format."""
    kind, files = serialize(payload)
    return deserialize(kind, files, where="test")


def test_a_stored_deployment_reads_back_typed_and_writes_the_same_object():
    deployment = Deployment.from_payload(stored(STORED_DEPLOYMENT), where="small/deployed_model@x")
    assert deployment.model_version == "a" * 16
    assert deployment.gates_passed
    assert deployment.to_payload() == STORED_DEPLOYMENT
    assert json.dumps(deployment.to_payload(), sort_keys=True) == json.dumps(
        STORED_DEPLOYMENT, sort_keys=True
    )
    without_gates = {**STORED_DEPLOYMENT, "gates": {}}
    assert not Deployment.from_payload(without_gates, where="x").gates_passed


def test_a_payload_lacking_a_field_is_refused_in_one_line_naming_it():
    broken = {k: v for k, v in STORED_DEPLOYMENT.items() if k != "model_version"}
    with pytest.raises(PayloadError, match=r"^small/deployed_model@v1: lacks model_version$"):
        Deployment.from_payload(broken, where="small/deployed_model@v1")
    with pytest.raises(PayloadError, match="expected a JSON object, got list"):
        Approval.from_payload([], where="small/deployment_approval@v2")
    # Fields a reader does not know (from a later version) are ignored.
    assert Approval.from_payload({**STORED_APPROVAL, "new": 1}, where="x").approver == "alice"


def test_an_approval_reads_back_and_its_metadata_gives_the_same_decision():
    approval = Approval.from_payload(stored(STORED_APPROVAL), where="x")
    assert approval.to_payload() == STORED_APPROVAL
    metadata = json.loads(json.dumps(approval.metadata()))  # as Dagster records it
    assert Approval.record_from_metadata(metadata) == approval.record()
    assert approval.record().reason == "looks right"
    refused = Approval.from_payload(
        {**STORED_APPROVAL, "valid": False, "comment": "", "invalid_reason": "four-eyes"},
        where="x",
    )
    assert refused.metadata()["reason"] == "four-eyes"
    assert refused.record().reason == "four-eyes"


def test_an_evaluation_report_body_round_trips():
    candidate = ModelSummary(
        model_version="a" * 16,
        metrics={"roc_auc": 0.9},
        fairness={"largest": {"gap": 0.1}},
        mlflow=Registration(version="3", run_id="r", model_uri="models:/m/3"),
        trained_by="alice",
    )
    report = EvaluationReport(
        project="small",
        policy_version="small@1",
        holdout_rows=10,
        positive_rate=0.5,
        threshold=0.5,
        candidate=candidate,
    )
    body = stored(Report(body=report.to_body())).body
    assert body["candidate"]["mlflow"] == {
        "version": "3",
        "run_id": "r",
        "model_uri": "models:/m/3",
    }
    assert body["champion"] is None
    again = EvaluationReport.from_body(body, where="small/evaluation_report@x")
    assert again == report
    assert again.candidate.largest_gap == 0.1
    with pytest.raises(PayloadError, match=r"evaluation_report@x: candidate: lacks metrics"):
        EvaluationReport.from_body(
            {**body, "candidate": {"model_version": "a"}}, where="small/evaluation_report@x"
        )


def test_an_incident_round_trips():
    incident = Incident(
        project="small",
        kind="rollback",
        opened_at="2026-11-28T10:00:00.000+00:00",
        reason="worse live",
        trigger="performance_trigger",
        actor="performance_trigger",
        policy_version="small@1",
        rolled_back_from={"deployment_version": "c" * 16},
        rolled_back_to={"deployment_version": "d" * 16},
        dagster_run_id="run-3",
    )
    assert Incident.from_payload(stored(incident.to_payload()), where="x") == incident


def recorded(metadata: dict) -> dict:
    """Metadata as a sensor reads it back from a materialization."""
    import dagster as dg

    event = dg.AssetMaterialization(asset_key="x", metadata=metadata)
    return {name: entry.value for name, entry in event.metadata.items()}


def test_live_and_drift_summaries_read_back_what_the_assets_record():
    live = LiveSummary(
        metric="roc_auc",
        deployment_version="d" * 16,
        deployed_at="2026-11-28T10:00:00.000+00:00",
        value=0.71,
        ci_low=None,
        ci_high=0.8,
        labeled_rows=120,
        previous_deployment=None,
        previous_value=None,
    )
    assert LiveSummary.from_metadata(recorded(live.metadata())) == live
    paired = replace(
        live,
        paired_deployment="e" * 16,
        paired_rows=300,
        paired_value=0.61,
        paired_previous_value=0.83,
        paired_difference=-0.22,
        paired_ci_low=-0.3,
        paired_ci_high=-0.12,
        candidate_model="f" * 16,
        candidate_rows=300,
        candidate_value=0.9,
        candidate_champion_value=0.61,
        candidate_difference=0.29,
    )
    assert LiveSummary.from_metadata(recorded(paired.metadata())) == paired
    # Recorded before shadow scoring existed: no paired evidence, read with defaults.
    older = {k: v for k, v in recorded(live.metadata()).items() if not k.startswith("paired")}
    assert LiveSummary.from_metadata(older).paired_rows == 0
    drift = DriftSummary(drifted_share=0.5, drifted_columns=["x1", "x2"], batch="b.csv")
    assert DriftSummary.from_metadata(recorded(drift.metadata())) == drift
    calm = DriftSummary(drifted_share=0.0, drifted_columns=[], batch="c.csv")
    assert recorded(calm.metadata())["drifted_columns"] == "none"
    assert DriftSummary.from_metadata(recorded(calm.metadata())) == calm
