"""Read models over the lineage store, shared by the assets and the CLI.

What is deployed, the champion to compare against, the approvals a deployment is decided on,
the labeled batches live metrics come from, what was live when. Each takes a `StoreReader`: an
asset passes the reader bound to its step, so every value read is in the lineage of what it
stores; the CLI passes `StoreReader(store)`. Pure: no Dagster import.
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from unified_ai.io.reader import StoreReader
from unified_ai.io.records import PointerMove
from unified_ai.ml.production import LabeledBatch
from unified_ai.names import (
    CANDIDATE_MODEL,
    DEPLOYED_MODEL,
    DEPLOYMENT_APPROVAL,
    EVALUATION_REPORT,
    GROUND_TRUTH,
    MATERIALIZE_ACTION,
    PARTITIONS,
    PRODUCTION_BATCH,
    training_loop_job,
)
from unified_ai.payloads import (
    Approval,
    ApprovalRecord,
    Deployment,
    EvaluationReport,
    ModelSummary,
)
from unified_ai.policies.rollback import DeploymentFacts, Move, RollbackError, choose_target

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


def rollback_target(
    reader: StoreReader, project: str, current: str
) -> tuple[str, Deployment] | None:
    """(version, manifest) of the deployment a rollback of `current` would restore, or None.

    The same choice a rollback without a named version makes (`policies.rollback`): the
    newest earlier deployment that passed its gates and was not itself rolled back from. The
    shadow scores and the automatic rollback therefore name the same deployment.
    """
    path = [project, DEPLOYED_MODEL]
    manifests: dict[str, Deployment] = {}

    def facts(version: str) -> DeploymentFacts | None:
        if not reader.has_version(path, version):
            return None
        manifest = manifests[version] = read_deployment(reader, project, version)
        return DeploymentFacts(version, manifest.model_version, manifest.gates_passed)

    try:
        target = choose_target(
            current=current,
            history_newest_first=(
                Move(m.version, m.previous, m.action) for m in reader.history_newest_first(path)
            ),
            deployment=facts,
            deployment_of_model=lambda _: None,
            owner_of=lambda _: None,
        )
    except RollbackError:
        return None
    return target.version, manifests[target.version]


def waiting_candidate(
    reader: StoreReader,
    project: str,
    deployment: Deployment,
    gates_passed: Callable[[str], bool],
) -> tuple[str, ModelSummary] | None:
    """(evaluation report version, candidate) of a candidate waiting for approval, or None.

    Waiting: the current evaluation report's candidate passed its gates (`gates_passed(report
    version)`, read from the instance by the caller), is not deployed now, was never deployed
    from that report (a candidate rolled back from is not waiting), and no valid rejection of
    it is recorded. Cheap checks first: most batches find the report already deployed.
    """
    report_path = [project, EVALUATION_REPORT]
    report_version = reader.current_version(report_path)
    if report_version is None or report_version == deployment.evaluation_report_version:
        return None
    created = datetime.fromisoformat(reader.read_manifest(report_path, report_version).created_at)
    for move in reader.history_newest_first([project, DEPLOYED_MODEL]):
        if datetime.fromisoformat(move.at) < created:
            break  # deployed before the report existed: cannot have deployed it
        if move.action == MATERIALIZE_ACTION and (
            read_deployment(reader, project, move.version).evaluation_report_version
            == report_version
        ):
            return None
    if not gates_passed(report_version):
        return None
    _, report = evaluation_report(reader, project, report_version)
    candidate = report.candidate
    if candidate.model_version in (None, deployment.model_version):
        return None
    rejected = any(
        a.valid and a.decision == "reject" and a.model_version == candidate.model_version
        for a in approvals(reader, project)
    )
    return None if rejected else (report_version, candidate)


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
    """The approvals as the approval policy weighs them (and when each was stored), oldest first."""
    path = [project, DEPLOYMENT_APPROVAL]
    found = [
        Approval.from_payload(
            reader.read_value(path, manifest.version),
            where=f"{project}/{DEPLOYMENT_APPROVAL}@{manifest.version}",
        ).record(recorded_at=manifest.created_at)
        for manifest in reader.versions(path)
    ]
    return sorted(found, key=lambda record: record.at)


def deployment_summary(reader: StoreReader, project: str, version: str) -> dict[str, Any]:
    """A deployment with its full evaluation report body, as it was when deployed.

    The report and its path are None for a (hand-made) manifest that names no report.
    """
    manifest = read_deployment(reader, project, version)
    report_version = manifest.evaluation_report_version
    if report_version is None:
        report_path, report_body = None, None
    else:
        report_body = evaluation_report(reader, project, report_version)[0].body
        report_path = str(reader.version_dir([project, EVALUATION_REPORT], report_version))
    return {
        "deployment_version": version,
        "model_version": manifest.model_version,
        "model_uri": manifest.model_uri,
        "deployed_at": manifest.deployed_at,
        "deployed_by": manifest.deployed_by,
        "evaluation_report_version": report_version,
        "evaluation_report_path": report_path,
        "evaluation_report": report_body,
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


def labeled_batch_refs(reader: StoreReader, project: str) -> list[LabeledBatch]:
    """Every stored production batch that has ground truth, oldest stored first.

    Only manifests are read (nothing enters the lineage): a caller reads the values it uses.
    """
    truth = [project, GROUND_TRUTH]
    folder = reader.asset_dir(truth) / PARTITIONS
    if not folder.exists():
        return []
    found = []
    for batch in reader.names(folder):
        if batch.startswith("."):
            continue  # the store's own bookkeeping
        truth_version = reader.current_version([*truth, PARTITIONS, batch])
        batch_path = [project, PRODUCTION_BATCH, PARTITIONS, batch]
        batch_version = reader.current_version(batch_path)
        if truth_version is None or batch_version is None:
            continue
        stored_at = reader.read_manifest(batch_path, batch_version).created_at
        found.append(LabeledBatch(batch, batch_version, stored_at, truth_version))
    return sorted(found, key=lambda ref: (ref.stored_at, ref.batch))


def labeled_batch_values(
    reader: StoreReader, project: str, ref: LabeledBatch
) -> "tuple[pd.DataFrame, pd.DataFrame]":
    """(stored inputs, ground truth) of a labeled batch, read without entering the lineage.

    The caller decides whether the rows are used and then names them with `record_reads`, so
    a batch that was read and left out is not in the lineage of what is stored.
    """
    untracked = StoreReader(reader.store)
    inputs = untracked.read_value(
        [project, PRODUCTION_BATCH, PARTITIONS, ref.batch], ref.batch_version
    )
    truth = untracked.read_value([project, GROUND_TRUTH, PARTITIONS, ref.batch], ref.truth_version)
    return inputs, truth


def labeled_batch_reads(project: str, ref: LabeledBatch) -> list[tuple[list[str], str]]:
    """The (store path, version) pairs a labeled batch's rows come from."""
    return [
        ([project, PRODUCTION_BATCH, PARTITIONS, ref.batch], ref.batch_version),
        ([project, GROUND_TRUTH, PARTITIONS, ref.batch], ref.truth_version),
    ]


def record_reads(reader: StoreReader, reads: Iterable[tuple[Sequence[str], str]]) -> None:
    """Put versions read with `labeled_batch_values` and used into the step's lineage."""
    for path, version in reads:
        reader.record(path, version)


def deployment_ledger(reader: StoreReader, project: str) -> list[dict[str, Any]]:
    """What was live when: one row per move of the deployment pointer, oldest first."""
    return ledger_rows(reader, project, reader.history([project, DEPLOYED_MODEL]), None)


def ledger_rows(
    reader: StoreReader,
    project: str,
    moves: Sequence[PointerMove],
    newer: PointerMove | None,
) -> list[dict[str, Any]]:
    """Ledger rows of consecutive deployment pointer `moves` (oldest first).

    Args:
        reader: Reads each move's deployment manifest (its model version).
        project: The project.
        moves: Consecutive moves of the deployment pointer, oldest first (a page of them).
        newer: The move after the last of them (its time ends that row); None if it is live.
    """
    rows = []
    for index, move in enumerate(moves):
        following = moves[index + 1] if index + 1 < len(moves) else newer
        rows.append(
            {
                "from": move.at,
                "until": following.at if following is not None else None,
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
            deployment = read_deployment(reader, project, move.version)
            report_version = deployment.evaluation_report_version
            if report_version is not None:  # a hand-made manifest may name no report
                promoted.setdefault(report_version, datetime.fromisoformat(move.at))
    return reports, promoted
