"""Read models over the lineage store, shared by the assets and the CLI.

What is deployed, the champion to compare against, the approvals a deployment is decided on,
the labeled batches live metrics come from, what was live when. Each takes a `StoreReader`: an
asset passes the reader bound to its step, so every value read is in the lineage of what it
stores; the CLI passes `StoreReader(store)`. Pure: no Dagster import.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from unified_ai.io.reader import StoreReader
from unified_ai.names import (
    CANDIDATE_MODEL,
    DEPLOYED_MODEL,
    DEPLOYMENT_APPROVAL,
    EVALUATION_REPORT,
    GROUND_TRUTH,
    MATERIALIZE_ACTION,
    PARTITIONS,
    training_loop_job,
)
from unified_ai.payloads import Approval, Deployment, EvaluationReport
from unified_ai.policies.approval import ApprovalRecord

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.ml.artifacts import Report, TrainedModel


class NothingDeployedError(LookupError):
    """The project has no deployment yet."""


def read_deployment(reader: StoreReader, project: str, version: str) -> Deployment:
    """The deployment manifest `project/deployed_model@version`."""
    path = [project, DEPLOYED_MODEL]
    return Deployment.from_payload(
        reader.read_value(path, version), where=f"{project}/{DEPLOYED_MODEL}@{version}"
    )


def current_deployment(reader: StoreReader, project: str) -> tuple[str, Deployment] | None:
    """(version, manifest) of what the deployment pointer names; None while nothing is deployed."""
    version = reader.current_version([project, DEPLOYED_MODEL])
    return None if version is None else (version, read_deployment(reader, project, version))


def deployed_model_of(reader: StoreReader, project: str) -> "tuple[str, Deployment, TrainedModel]":
    """(deployment version, its manifest, the deployed model), following the pointer.

    Raises:
        NothingDeployedError: nothing is deployed yet.
    """
    found = current_deployment(reader, project)
    if found is None:
        raise NothingDeployedError(
            f"no model is deployed yet; run the {training_loop_job(project)} job first"
        )
    version, manifest = found
    model = reader.read_value([project, CANDIDATE_MODEL], manifest.model_version)
    return version, manifest, model


def load_champion(reader: StoreReader, project: str) -> "tuple[TrainedModel | None, str | None]":
    """The model the current `deployed_model` pointer names, and that deployment's version.

    Returns `(None, None)` while nothing is deployed. Following the pointer (not MLflow's
    alias, not the newest file) means a rollback is honoured and the exact bytes that were
    evaluated and deployed are compared.
    """
    found = current_deployment(reader, project)
    if found is None:
        return None, None
    version, manifest = found
    champion = reader.read_value([project, CANDIDATE_MODEL], manifest.model_version)
    champion.card["lineage_version"] = manifest.model_version
    return champion, version


def evaluation_report(
    reader: StoreReader, project: str, version: str
) -> "tuple[Report, EvaluationReport]":
    """The stored report `project/evaluation_report@version` and its typed body."""
    report = reader.read_value([project, EVALUATION_REPORT], version)
    where = f"{project}/{EVALUATION_REPORT}@{version}"
    return report, EvaluationReport.from_body(report.body, where=where)


def approvals(reader: StoreReader, project: str) -> list[Approval]:
    """Every recorded approval and rejection of the project, valid or not, oldest first."""
    path = [project, DEPLOYMENT_APPROVAL]
    found = [
        Approval.from_payload(
            reader.read_value(path, manifest.version),
            where=f"{project}/{DEPLOYMENT_APPROVAL}@{manifest.version}",
        )
        for manifest in reader.versions(path)
    ]
    return sorted(found, key=lambda approval: datetime.fromisoformat(approval.at))


def approval_records(reader: StoreReader, project: str) -> list[ApprovalRecord]:
    """The approvals as the approval policy weighs them, oldest first."""
    return [approval.record() for approval in approvals(reader, project)]


def deployment_summary(reader: StoreReader, project: str, version: str) -> dict[str, Any]:
    """A deployment with its full evaluation report body, as it was when deployed."""
    manifest = read_deployment(reader, project, version)
    report_version = manifest.evaluation_report_version
    report, _ = evaluation_report(reader, project, report_version)
    return {
        "deployment_version": version,
        "model_version": manifest.model_version,
        "model_uri": manifest.model_uri,
        "deployed_at": manifest.deployed_at,
        "deployed_by": manifest.deployed_by,
        "evaluation_report_version": report_version,
        "evaluation_report_path": str(
            reader.version_dir([project, EVALUATION_REPORT], report_version)
        ),
        "evaluation_report": report.body,
        "gates": manifest.gates,
    }


def labeled_batches(reader: StoreReader, project: str) -> "list[tuple[str, pd.DataFrame]]":
    """(batch, labeled predictions) for every batch with ground truth, oldest first."""
    base = [project, GROUND_TRUTH]
    folder = reader.asset_dir(base) / PARTITIONS
    if not folder.exists():
        return []
    found = []
    for batch in reader.names(folder):
        version = reader.current_version([*base, PARTITIONS, batch])
        if version is not None:
            manifest = reader.read_manifest([*base, PARTITIONS, batch], version)
            found.append((manifest.created_at, batch, version))
    found.sort()
    return [(b, reader.read_value([*base, PARTITIONS, b], v)) for _, b, v in found]


def deployment_ledger(reader: StoreReader, project: str) -> list[dict[str, Any]]:
    """What was live when: one row per move of the deployment pointer, oldest first."""
    moves = reader.history([project, DEPLOYED_MODEL])
    rows = []
    for index, move in enumerate(moves):
        until = moves[index + 1].at if index + 1 < len(moves) else None
        rows.append(
            {
                "from": move.at,
                "until": until,
                "version": move.version,
                "model_version": read_deployment(reader, project, move.version).model_version,
                "action": move.action,
                "actor": move.actor,
            }
        )
    return rows


def evaluation_history(
    reader: StoreReader, project: str
) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, datetime]]:
    """Every recorded evaluation and which of them were promoted, for a policy dry run.

    Returns:
        (report version, created at, report body) oldest first, and report version → when its
        candidate was first deployed, for those that were.
    """
    path = [project, EVALUATION_REPORT]
    reports = [
        (m.version, m.created_at, reader.read_value(path, m.version).body)
        for m in reader.versions(path)
    ]
    promoted: dict[str, datetime] = {}
    for move in reader.history([project, DEPLOYED_MODEL]):
        if move.action == MATERIALIZE_ACTION:
            manifest = read_deployment(reader, project, move.version)
            promoted.setdefault(manifest.evaluation_report_version, datetime.fromisoformat(move.at))
    return reports, promoted
