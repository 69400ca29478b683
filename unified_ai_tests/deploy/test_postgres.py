"""The training loop with Dagster's run, event-log and schedule storage on a real PostgreSQL."""

import uuid

import dagster as dg
import pytest

from unified_ai_tests.conftest import write_project
from unified_ai_tests.deploy.postgres import fresh_database, postgres_server
from unified_ai_tests.flows.helpers import (
    current,
    materialize,
    project_defs,
    run_loop,
    step_failures,
)


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_instance(postgres_url):
    url = fresh_database(postgres_url, f"dagster_{uuid.uuid4().hex[:10]}")
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as inst:
        yield inst


def test_loop_runs_on_postgres_instance_storage(home, projects_dir, postgres_instance):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    assert isinstance(postgres_instance.run_storage, PostgresRunStorage)
    assert isinstance(postgres_instance.event_log_storage, PostgresEventLogStorage)
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    result = run_loop(defs, postgres_instance, "small")
    assert result.success, step_failures(result)
    runs = postgres_instance.get_runs(dg.RunsFilter(job_name="small__training_loop"))
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]
    _, deployment = current(home, "small", "deployed_model")
    assert deployment["gates"]["quality_floor"]["passed"] is True
    # The deployment's own gate re-check reads check results back from Postgres.
    again = materialize(
        defs, postgres_instance, dg.AssetSelection.assets(["small", "deployed_model"])
    )
    assert again.success, step_failures(again)
