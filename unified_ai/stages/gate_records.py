"""Reading recorded check results back from the Dagster instance.

Dagster stops downstream steps after a failed blocking check only within the same run; a later
run that selects only downstream assets would happily use the failed version. Assets that
consume a gated asset therefore re-read the gate results here and refuse unless every gate
passed on exactly the version they are about to use.
"""

from collections.abc import Iterable

import dagster as dg

from unified_ai.ml.validation import FORMER_NAMES
from unified_ai.names import VERSION_METADATA
from unified_ai.policies.gates import GateDecision, GateRecord, gate_decision

#: Statuses of a check execution that has a result (a planned one has none yet).
_FINAL = {"SUCCEEDED", "FAILED"}


def materialization_version(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, storage_id: int | None = None
) -> str | None:
    """The lineage version recorded on a materialization (the latest one by default)."""
    records_filter = dg.AssetRecordsFilter(
        asset_key=asset_key, storage_ids=[storage_id] if storage_id is not None else None
    )
    records = instance.fetch_materializations(records_filter, limit=1).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    value = materialization.metadata.get(VERSION_METADATA) if materialization else None
    return None if value is None else str(value.value)


def _evaluated_with_latest(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, name: str
) -> dg.AssetCheckEvaluation | None:
    """Check `name`'s evaluation in the run that stored the asset's latest materialization."""
    latest = instance.fetch_materializations(asset_key, limit=1).records
    if not latest:
        return None
    found: dg.AssetCheckEvaluation | None = None
    events = instance.get_records_for_run(
        latest[0].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    for event in events:
        evaluation = event.event_log_entry.asset_check_evaluation
        if (
            evaluation is not None
            and evaluation.asset_key == asset_key
            and evaluation.check_name == name
        ):
            found = evaluation
    return found


def _latest_evaluation(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, name: str
) -> dg.AssetCheckEvaluation | None:
    """The latest finished evaluation of check `name` of `asset_key`, if any."""
    record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(asset_key, name))
    if record is not None and record.status.value in _FINAL and record.event is not None:
        return record.event.asset_check_evaluation
    if record is not None:
        # Planned by a run created later (queued behind this one, or not at the check
        # yet): its plan is the newest record, and hides what the checks decided.
        return _evaluated_with_latest(instance, asset_key, name)
    return None


def gate_records(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, gates: Iterable[str]
) -> dict[str, GateRecord | None]:
    """The latest finished result of each named check of `asset_key`, with its target version.

    The gates of one materialization share its event: each target is read once (an evaluation
    report's event carries its whole report metadata).
    """
    records: dict[str, GateRecord | None] = {}
    versions: dict[int, str | None] = {}

    def version_of(storage_id: int) -> str | None:
        if storage_id not in versions:
            versions[storage_id] = materialization_version(instance, asset_key, storage_id)
        return versions[storage_id]

    for name in gates:
        evaluation = _latest_evaluation(instance, asset_key, name)
        if evaluation is None and name in FORMER_NAMES:
            # Validated before the check was renamed: its result is recorded under the old name.
            evaluation = _latest_evaluation(instance, asset_key, FORMER_NAMES[name])
        if evaluation is None:
            records[name] = None
            continue
        target = evaluation.target_materialization_data
        records[name] = GateRecord(
            gate=name,
            passed=evaluation.passed,
            target_version=version_of(target.storage_id) if target else None,
            description=evaluation.description,
        )
    return records


def require_gates(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, version: str, gates: Iterable[str]
) -> GateDecision:
    """Raise a `dg.Failure` naming every unmet gate unless all passed on `version`."""
    gates = list(gates)
    records = gate_records(instance, asset_key, gates)
    decision = gate_decision(version, records, gates)
    if not decision.allowed:
        label = "/".join(asset_key.path)
        raise dg.Failure(
            description=f"refusing to use {label}@{version}: " + "; ".join(decision.reasons),
            metadata={
                "gates": dg.MetadataValue.json({k: v and v.__dict__ for k, v in records.items()})
            },
        )
    return decision
