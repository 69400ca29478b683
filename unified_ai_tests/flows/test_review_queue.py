"""Scored batches → `review_queue`: routed rows with reasons, answers, due time, lineage, cap."""

import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner

from unified_ai import names
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import current, project_defs, run_loop, step_failures, store
from unified_ai_tests.flows.monitoring_helpers import SensorDriver, simulate

REVIEW = """\
  review:
    unsure: {band: 0.1}
    out_of_range: true
    audit_share: 0.05
    daily_cap: 60
    segment_quotas: {region: 0.7}
    hold_decision: true
    due_after: 2h
    reviewers: [group:risk]
    groups: {risk: [ana, bo]}
"""


@pytest.fixture
def scored(home, projects_dir, instance, monkeypatch):
    """A reviewed project with two scored batches (one shifted beyond the training range)."""
    write_project(projects_dir, policy_extra=REVIEW)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    driver = SensorDriver(defs, instance)
    simulate("small", "--batches", "1", "--rows", "200", "--seed", "5")
    simulate("small", "--batches", "1", "--rows", "200", "--seed", "6", "--drift", "shift:x1=2")
    runs = [
        driver.launch(request, names.score_batch_job("small"))
        for request in driver.tick(names.sensor_names("small")[names.BATCHES]).requests
    ]
    assert len(runs) == 2 and all(run.success for run in runs), [step_failures(r) for r in runs]
    batches = sorted(run.dagster_run.tags["dagster/partition"] for run in runs)
    return defs, batches


def _route(defs, instance, batch: str) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(names.route_reviews_job("small"))
    return job.execute_in_process(instance=instance, partition_key=batch, raise_on_error=False)


def _materialization(result: dg.ExecuteInProcessResult) -> dg.AssetMaterialization:
    # The step that scores a batch routes it too: its node is `predictions`'.
    (event,) = [
        event
        for event in result.asset_materializations_for_node(
            names.op_name("small", names.PREDICTIONS)
        )
        if event.asset_key.path[-1] == names.REVIEW_QUEUE
    ]
    return event


def test_scored_batches_are_routed_with_reasons_answers_and_lineage(home, instance, scored):
    defs, (first, _) = scored
    routed = _route(defs, instance, first)
    assert routed.success, step_failures(routed)
    version, queue = current(home, "small", f"{names.REVIEW_QUEUE}/partitions/{first}")
    assert len(queue) > 0
    _, predictions = current(home, "small", f"predictions/partitions/{first}")
    assert set(queue[names.ROW_ID]) <= set(predictions[names.ROW_ID])
    reasons = {r for text in queue["reasons"] for r in text.split(",")}
    assert reasons <= {"unsure", "out_of_range", "unseen_category", "audit"}
    assert "unsure" in reasons
    assert queue[names.REVIEW_ID].is_unique
    unsure = queue[queue["reasons"].str.contains("unsure")]
    assert ((unsure["model_score"] - 0.5).abs() <= 0.1).all()
    by_row = predictions.set_index(names.ROW_ID)
    assert list(queue["model_answer"]) == [
        str(by_row.loc[row, "prediction"]) for row in queue[names.ROW_ID]
    ]
    assert (queue["due_at"] - queue["routed_at"] == pd.Timedelta(hours=2)).all()
    assert queue["region"].notna().all()

    metadata = _materialization(routed).metadata
    assert metadata[names.ROUTED_METADATA].value == len(queue)
    assert sum(metadata[f"routed_{r}"].value for r in reasons) >= len(queue)
    table = metadata["open_items"]
    assert isinstance(table, dg.TableMetadataValue)
    assert len(table.records) == len(queue)
    assert metadata["hold_decision"].value is True
    # A link to the launchpad of the job that answers (the table gives each item's id).
    assert metadata["answer_in_launchpad"].value.endswith(
        f"/locations/unified_ai/jobs/{names.review_job('small')}/playground"
    )

    # Lineage: the predictions, the batch's rows, the model and the exact train split it was
    # trained on (its card's), not whatever the split's pointer says now.
    manifest = store(home).read_manifest(
        ["small", names.REVIEW_QUEUE, "partitions", first], version
    )
    _, model = current(home, "small", names.CANDIDATE_MODEL)
    upstream = manifest.upstream
    assert upstream[f"small/{names.TRAIN_SPLIT}"] == model.card["train_split_version"]
    assert f"small/{names.PREDICTIONS}/partitions/{first}" in upstream
    assert f"small/{names.PRODUCTION_BATCH}/partitions/{first}" in upstream
    assert metadata["training_profile"].value.startswith(names.TRAIN_SPLIT)


def test_the_daily_cap_counts_earlier_batches_and_a_rerun_replaces_its_count(
    home, instance, scored
):
    defs, (first, second) = scored
    assert _route(defs, instance, first).success
    earlier = len(current(home, "small", f"{names.REVIEW_QUEUE}/partitions/{first}")[1])
    routed = _route(defs, instance, second)
    assert routed.success, step_failures(routed)
    _, queue = current(home, "small", f"{names.REVIEW_QUEUE}/partitions/{second}")
    metadata = _materialization(routed).metadata
    assert metadata["routed_earlier_today"].value == earlier
    assert earlier + len(queue) <= 60
    # The shifted batch has inputs beyond the training range: those come first.
    assert queue["reasons"].str.startswith("out_of_range").any()
    if metadata["left_by_cap"].value:
        assert earlier + len(queue) == 60
    # Routing the first batch again does not count its own earlier run.
    again = _route(defs, instance, first)
    assert _materialization(again).metadata["routed_earlier_today"].value == len(queue)


def test_the_days_count_is_one_record_not_a_read_of_every_queue_materialization(
    home, instance, scored, monkeypatch
):
    from datetime import datetime, timezone

    from unified_ai.io.review_days import routed_day

    defs, (first, second) = scored
    assert _route(defs, instance, first).success
    queried = []
    fetch = instance.fetch_materializations

    def counting(records_filter, *args, **kwargs):
        queried.append(records_filter.asset_key.path[-1])
        return fetch(records_filter, *args, **kwargs)

    monkeypatch.setattr(instance, "fetch_materializations", counting)
    routed = _route(defs, instance, second)
    assert routed.success, step_failures(routed)
    # However many batches the day has seen, the queue's materializations are not read.
    assert names.REVIEW_QUEUE not in queried
    counts = {
        batch: len(current(home, "small", f"{names.REVIEW_QUEUE}/partitions/{batch}")[1])
        for batch in (first, second)
    }
    day = datetime.now(timezone.utc).date().isoformat()
    assert routed_day(store(home), "small", day).counts == counts


def test_a_large_batch_is_routed_in_chunks_as_it_is_routed_whole(
    home, instance, scored, monkeypatch
):
    from unified_ai.ml import chunked_batches
    from unified_ai.stages.review import assets as review_assets

    defs, (_, shifted) = scored
    whole = _route(defs, instance, shifted)
    assert whole.success, step_failures(whole)
    _, expected = current(home, "small", f"{names.REVIEW_QUEUE}/partitions/{shifted}")
    # Chunks of 37 rows: the 200-row batch's predictions and inputs come in chunks.
    monkeypatch.setattr(chunked_batches, "CHUNK_ROWS", 37)
    calls = []
    real = review_assets.route_chunks
    monkeypatch.setattr(
        review_assets, "route_chunks", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    chunked = _route(defs, instance, shifted)
    assert chunked.success, step_failures(chunked)
    assert calls == [1]
    _, queue = current(home, "small", f"{names.REVIEW_QUEUE}/partitions/{shifted}")
    times = ["due_at", "routed_at"]
    pd.testing.assert_frame_equal(
        expected.drop(columns=times, errors="ignore"), queue.drop(columns=times, errors="ignore")
    )
    assert queue["reasons"].str.startswith("out_of_range").any()
    metadata = _materialization(chunked).metadata
    for field in ("routed", "left_by_cap", "left_by_quota", "flagged"):
        assert metadata[field].value == _materialization(whole).metadata[field].value

    # Scored again in chunks, and routed in the same step from the chunks as they were
    # scored: the stored predictions are not read again (`route_chunks` is not called).
    from unified_ai.stages.monitoring import chunked_scoring

    _, predictions = current(home, "small", f"{names.PREDICTIONS}/partitions/{shifted}")
    streamed = chunked_scoring.stream_scores
    monkeypatch.setattr(
        chunked_scoring, "stream_scores", lambda *a, **k: calls.append(2) or streamed(*a, **k)
    )
    rescored = defs.resolve_job_def(names.score_batch_job("small")).execute_in_process(
        instance=instance,
        partition_key=shifted,
        asset_selection=[
            dg.AssetKey(["small", names.PREDICTIONS]),
            dg.AssetKey(["small", names.REVIEW_QUEUE]),
        ],
        raise_on_error=False,
    )
    assert rescored.success, step_failures(rescored)
    assert calls == [1, 2]
    version, again = current(home, "small", f"{names.REVIEW_QUEUE}/partitions/{shifted}")
    pd.testing.assert_frame_equal(
        queue.drop(columns=times, errors="ignore"), again.drop(columns=times, errors="ignore")
    )
    manifest = store(home).read_manifest(
        ["small", names.REVIEW_QUEUE, "partitions", shifted], version
    )
    scored_version, _ = current(home, "small", f"{names.PREDICTIONS}/partitions/{shifted}")
    assert manifest.upstream[f"small/{names.PREDICTIONS}/partitions/{shifted}"] == scored_version
    # Its out_of_range ranges came from the scoring model's train split, in its lineage.
    assert f"small/{names.TRAIN_SPLIT}" in manifest.upstream
    again_metadata = _materialization(rescored).metadata
    for field in ("routed", "left_by_cap", "left_by_quota", "flagged", "training_profile"):
        assert again_metadata[field].value == metadata[field].value
    assert len(predictions) == 200


def test_no_review_policy_no_queue(home, projects_dir, monkeypatch):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    keys = {
        k.path[-1] for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "small"
    }
    assert names.REVIEW_QUEUE not in keys
    assert names.route_reviews_job("small") not in {job.name for job in defs.jobs}


def test_reviewers_answer_and_skip_through_the_cli(home, instance, scored):
    import unified_ai.cli.review  # noqa: F401  (registers `review` on the command line)
    from unified_ai.cli import main
    from unified_ai.io.review_answers import answers_of

    defs, (first, _) = scored
    assert _route(defs, instance, first).success
    _, queue = current(home, "small", f"{names.REVIEW_QUEUE}/partitions/{first}")
    answered, skipped = list(queue[names.REVIEW_ID][:2])
    runner = CliRunner()

    def review(*args: str):
        return runner.invoke(main, ["review", "small", *args])

    listed = review()
    assert listed.exit_code == 0, listed.output
    assert all(item in listed.output for item in queue[names.REVIEW_ID])
    outsider = review("answer", answered, "--answer", "1", "--by", "eve")
    assert outsider.exit_code == 1
    assert "eve may not review (allowed: ana, bo)" in outsider.output
    assert len(outsider.output.strip().splitlines()) == 1
    assert (
        "a binary answer is 0 or 1"
        in review("answer", answered, "--answer", "yes", "--by", "ana").output
    )
    ok = review("answer", answered, "--answer", "1", "--by", "Ana", "--comment", "clear case")
    assert ok.exit_code == 0, ok.output
    assert f"recorded answer 1 of small item {answered}" in ok.output
    assert "answered already" in review("answer", answered, "--answer", "0", "--by", "bo").output
    assert review("skip", skipped, "--by", "bo", "--comment", "not mine").exit_code == 0
    assert "no routed item nope" in review("answer", "nope", "--answer", "1", "--by", "ana").output

    still_open = review().output
    assert answered not in still_open and skipped in still_open
    every = review("list", "--all").output
    assert answered in every and "ANSWERED" in every

    records = answers_of(store(home), "small", first)
    assert [(r.review_id, r.reviewer, r.action, r.answer) for r in records] == [
        (answered, "Ana", "answer", "1"),
        (skipped, "bo", "skip", None),
    ]
    assert records[0].comment == "clear case"
    by_row = queue.set_index(names.REVIEW_ID)
    assert records[0].model_answer == by_row.loc[answered, "model_answer"]
    # Each answer is its own stored version, in the lineage of the queue it answered.
    path = ["small", names.REVIEWS, "partitions", first]
    queue_version = store(home).require_current(["small", names.REVIEW_QUEUE, "partitions", first])
    manifests = store(home).versions(path)
    assert len(manifests) == 2
    assert {m.upstream[f"small/{names.REVIEW_QUEUE}/partitions/{first}"] for m in manifests} == {
        queue_version
    }


def test_a_rule_of_another_task_stops_the_definitions_from_loading(home, projects_dir):
    # The project file is refused when it loads, naming the file and the field.
    write_project(projects_dir, policy_extra="  review: {unsure: {outside: [0, 1]}}\n")
    with pytest.raises(Exception, match=r"small\.yaml.*policy\.review\.unsure\.outside: a regr"):
        project_defs(projects_dir)
