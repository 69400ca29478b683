"""Gate results read back from the instance, each target materialization read once."""

import dagster as dg

from unified_ai.names import VERSION_METADATA
from unified_ai.stages.gate_records import gate_records

KEY = dg.AssetKey(["p", "evaluation_report"])
GATES = ["quality_floor", "beats_champion", "fairness_within_policy"]


def _materialized_with_gates(instance: dg.DagsterInstance, version: str) -> None:
    @dg.asset(key=KEY)
    def evaluation_report() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={VERSION_METADATA: version})

    checks = [
        dg.asset_check(asset=KEY, name=name)(lambda: dg.AssetCheckResult(passed=True))
        for name in GATES
    ]
    dg.materialize([evaluation_report, *checks], instance=instance)


def test_the_gates_of_one_materialization_read_its_event_once(monkeypatch):
    with dg.instance_for_test() as instance:
        _materialized_with_gates(instance, "v1")
        _materialized_with_gates(instance, "v2")
        reads = []
        fetch = instance.fetch_materializations

        def counted(records_filter, *args, **kwargs):
            reads.append(records_filter)
            return fetch(records_filter, *args, **kwargs)

        monkeypatch.setattr(instance, "fetch_materializations", counted)
        records = gate_records(instance, KEY, GATES)
        assert {name: (r.passed, r.target_version) for name, r in records.items()} == {
            name: (True, "v2") for name in GATES
        }
        # One read of the event the three checks evaluated, not one per check.
        assert len(reads) == 1
