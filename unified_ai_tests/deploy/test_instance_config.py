"""The local instance settings in dagster.yaml load, with the limits docs/benchmarks.md promises."""

import shutil
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[2]


def test_local_dagster_yaml_loads_with_queue_and_pool_limits(tmp_path, monkeypatch):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert config.run_queue_config.max_concurrent_runs == 4
        [limit] = config.run_queue_config.tag_concurrency_limits
        assert limit["key"] == "unified_ai/training_loop" and limit["limit"] == 1
        assert instance.run_retries_enabled
        assert not instance.telemetry_enabled
        # A launch cut short leaves a STARTING run: run monitoring fails it, so it does not
        # hold a run slot for ever.
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_max_resume_run_attempts == 0
