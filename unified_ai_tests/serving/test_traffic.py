"""Served rows to inbox files: kept and retried while the inbox cannot be written, never lost
silently; labels merged per batch."""

import pandas as pd
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.ml.data import FeatureColumns
from unified_ai.resources.inbox import is_batch_name
from unified_ai.serving.follower import Served
from unified_ai.serving.metrics import ServingMetrics
from unified_ai.serving.traffic import TrafficWriter, parse_row_id
from unified_ai_tests.conftest import write_project

SERVED = Served(
    model=None,
    features=FeatureColumns(numeric=["x1"], categorical=[]),
    deployment_version="0123456789abcdef",
    model_version="fedcba9876543210",
)


def frame(count: int) -> pd.DataFrame:
    return pd.DataFrame({"x1": [float(i) for i in range(count)], "region": ["north"] * count})


def sample(metrics: ServingMetrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"project": "small"})


def record(writer, count):
    return writer.record(frame(count), SERVED, [0.5] * count, [1] * count)


def test_rows_wait_while_the_inbox_cannot_be_written_then_arrive(tmp_path):
    blocked = tmp_path / "inbox"
    blocked.write_text("a file where the inbox folder should be")
    metrics = ServingMetrics("small")
    writer = TrafficWriter(blocked, flush_rows=3, flush_seconds=60, metrics=metrics)
    ids = record(writer, 4)
    assert writer.flush() is False
    status = writer.status()
    assert status["buffered_rows"] == 4 and status["last_error"]
    assert sample(metrics, "unified_ai_serving_traffic_write_errors_total") == 1

    blocked.unlink()
    assert writer.flush() is True
    [written] = list(blocked.iterdir())
    assert is_batch_name(written.name)
    batch = pd.read_csv(written)
    assert batch["_row_id"].tolist() == ids
    assert batch["served_deployment_version"].tolist() == [SERVED.deployment_version] * 4
    assert writer.status()["buffered_rows"] == 0 and writer.status()["last_error"] is None


def test_beyond_the_pending_limit_the_oldest_rows_are_dropped_and_counted(tmp_path):
    blocked = tmp_path / "inbox"
    blocked.write_text("not a folder")
    metrics = ServingMetrics("small")
    writer = TrafficWriter(blocked, flush_rows=2, max_pending_rows=4, metrics=metrics)
    for _ in range(4):
        record(writer, 2)  # each fills a batch; the 3rd and 4th push the oldest out
    assert writer.status()["buffered_rows"] == 4
    assert sample(metrics, "unified_ai_serving_traffic_rows_dropped_total") == 4


def test_a_batch_being_written_is_never_dropped_and_drops_count_exactly(tmp_path, monkeypatch):
    """The seal/flush race: rows sealed while a batch is written push out only waiting ones."""
    import threading

    metrics = ServingMetrics("small")
    writer = TrafficWriter(tmp_path / "inbox", flush_rows=2, max_pending_rows=2, metrics=metrics)
    entered, release = threading.Event(), threading.Event()
    original = pd.DataFrame.to_csv

    def slow_to_csv(self, *args, **kwargs):
        if not release.is_set():  # the first write stalls (a slow disk or object store)
            entered.set()
            release.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", slow_to_csv)
    first = record(writer, 2)  # sealed: 2 rows
    flushing = threading.Thread(target=writer.flush)
    flushing.start()
    assert entered.wait(30)
    # Recorded while the first batch is being written: never waits for that write.
    second = record(writer, 2)
    third = record(writer, 2)  # 4 rows wait behind the one being written: the oldest goes
    assert not release.is_set()
    release.set()
    flushing.join(30)
    assert writer.flush() is True
    written = {p.name: pd.read_csv(p)["_row_id"].tolist() for p in (tmp_path / "inbox").iterdir()}
    names = [ids[0].rsplit(":", 1)[0] for ids in (first, second, third)]
    assert written == {names[0]: first, names[2]: third}  # the second was dropped, only it
    assert sample(metrics, "unified_ai_serving_traffic_rows_dropped_total") == 2
    assert writer.status()["rows_dropped"] == 2
    assert writer.served_rows(second[0].rsplit(":", 1)[0]) is None  # its rows cannot be labelled


def test_stop_writes_what_is_buffered(tmp_path):
    writer = TrafficWriter(tmp_path / "inbox", flush_rows=100, flush_seconds=3600)
    writer.start()
    ids = record(writer, 3)
    writer.stop()
    [written] = list((tmp_path / "inbox").iterdir())
    assert pd.read_csv(written)["_row_id"].tolist() == ids


def test_labels_merge_with_a_processed_label_file(tmp_path):
    writer = TrafficWriter(tmp_path / "inbox")
    ids = record(writer, 3)
    batch = ids[0].rsplit(":", 1)[0]
    assert parse_row_id(ids[2]) == (batch, 2)
    assert writer.write_labels([(ids[0], 1)], "label") == {batch: 1}
    processed = tmp_path / "inbox" / "labels" / "processed"
    processed.mkdir()
    (tmp_path / "inbox" / "labels" / batch).rename(processed / batch)  # the sensor took it in
    assert writer.write_labels([(ids[1], 0), (ids[0], 0)], "label") == {batch: 2}
    merged = pd.read_csv(tmp_path / "inbox" / "labels" / batch)
    assert merged.to_dict(orient="list") == {"_row_id": [ids[1], ids[0]], "label": [0, 0]}


def test_merging_labels_keeps_words_that_pandas_reads_as_missing(tmp_path):
    # Label files are read by the ground_truth asset with "only an empty cell is missing"; the
    # merge must read them the same way, or an earlier label "NA" is lost when it is rewritten.
    from unified_ai.ml.data import read_csv_checked

    writer = TrafficWriter(tmp_path / "inbox")
    ids = record(writer, 2)
    batch = ids[0].rsplit(":", 1)[0]
    writer.write_labels([(ids[0], "NA")], "label")
    writer.write_labels([(ids[1], "approved")], "label")
    merged = read_csv_checked(tmp_path / "inbox" / "labels" / batch)
    assert merged.to_dict(orient="list") == {"_row_id": ids, "label": ["NA", "approved"]}


def test_row_ids_that_are_not_batch_rows():
    assert parse_row_id("serve-1.csv:3") == ("serve-1.csv", 3)
    for bad in ("serve-1.csv", "../x.csv:1", "a.txt:1", "a.csv:-1", "a.csv:1e3", 3, None):
        assert parse_row_id(bad) is None, bad


def test_serve_command_refuses_bad_options_and_unknown_projects(home, projects_dir, monkeypatch):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    result = CliRunner().invoke(main, ["serve", "small", "--max-rows", "0"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --max-rows: 0 must be a positive number"
    result = CliRunner().invoke(main, ["serve", "nope"])
    assert result.exit_code == 1 and "unknown project 'nope'" in result.output


def test_without_traffic_logging_rows_are_answered_not_kept(tmp_path):
    metrics = ServingMetrics("small")
    writer = TrafficWriter(tmp_path / "inbox", flush_rows=2, metrics=metrics, enabled=False)
    ids = record(writer, 3) + record(writer, 2)
    assert len(set(ids)) == 5 and all(parse_row_id(i) is not None for i in ids)
    # No batch is kept or named: a label for these rows names nothing that exists.
    assert writer.status()["buffered_rows"] == 0
    assert writer.served_rows(parse_row_id(ids[0])[0]) is None
    assert writer.flush(force=True) is True
    assert not (tmp_path / "inbox").exists()
    assert sample(metrics, "unified_ai_serving_traffic_rows_dropped_total") == 0
