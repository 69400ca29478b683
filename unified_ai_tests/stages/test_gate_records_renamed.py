"""A check's result recorded under its former name still counts after the rename."""

import dagster as dg

from unified_ai.names import VERSION_METADATA
from unified_ai.stages.gate_records import gate_records

KEY = dg.AssetKey(["p", "training_data"])


def _validated_before_the_rename(instance: dg.DagsterInstance, *, passed: bool) -> None:
    """A run from before the rename: the data and its check under the former name."""

    @dg.asset(key=KEY)
    def training_data() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={VERSION_METADATA: "v1"})

    @dg.asset_check(asset=KEY, name="target_is_binary")
    def target_is_binary() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=passed)

    dg.materialize([training_data, target_is_binary], instance=instance)


def test_a_result_recorded_as_target_is_binary_counts_for_target_matches_task():
    with dg.instance_for_test() as instance:
        _validated_before_the_rename(instance, passed=True)
        record = gate_records(instance, KEY, ["target_matches_task"])["target_matches_task"]
        assert record is not None
        assert record.gate == "target_matches_task" and record.passed
        assert record.target_version == "v1"


def test_a_failed_result_under_the_former_name_still_blocks():
    with dg.instance_for_test() as instance:
        _validated_before_the_rename(instance, passed=False)
        record = gate_records(instance, KEY, ["target_matches_task"])["target_matches_task"]
        assert record is not None and not record.passed


def test_no_result_under_either_name_is_none():
    with dg.instance_for_test() as instance:
        assert gate_records(instance, KEY, ["target_matches_task"]) == {"target_matches_task": None}
