"""A real `score_batch` run on a batch larger than a chunk equals the same run read whole.

The chunk size is made small (and every file is streamed), so a batch of a few hundred rows
goes through the chunked path end to end: the IO manager streams the file into the store,
hands `predictions` and `drift_report` the stored batch chunk by chunk and stores their
frames as they are produced. The predictions, their metadata, the drift statistics and the
validation findings are those of the same rows run with chunking off; a failure in the middle
of the stream leaves no version behind.
"""

import pandas as pd
import pytest

from unified_ai.ml import chunked_batches
from unified_ai.stages.monitoring import chunked_scoring, production_batch
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import (
    check_results,
    current,
    project_defs,
    run_loop,
    step_failures,
    store,
)
from unified_ai_tests.flows.monitoring_helpers import SensorDriver, simulate

BATCHES = "small__batch_sensor"
CHUNK = 97  # rows per chunk: not a divisor of the batch's rows
ROWS = 700
#: Metadata that names the version written (its files' bytes differ: one row group per
#: chunk), not what it holds; a streamed frame shows no column schema.
_WHERE = ("lineage/", "dagster/column_schema")


@pytest.fixture
def driver(home, projects_dir, instance, monkeypatch):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    return SensorDriver(defs, instance)


def _chunked(monkeypatch) -> dict[str, int]:
    """Turn chunking on (every file streamed, small chunks); count the chunked steps."""
    monkeypatch.setattr(chunked_batches, "CHUNK_ROWS", CHUNK)
    monkeypatch.setattr(production_batch, "STREAM_FROM_BYTES", 0)
    calls = {"stored": 0, "scored": 0, "drift": 0}

    def spy(name, function):
        def counted(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return counted

    monkeypatch.setattr(
        chunked_scoring, "StreamedBatch", spy("stored", chunked_scoring.StreamedBatch)
    )
    monkeypatch.setattr(
        chunked_scoring, "stream_scores", spy("scored", chunked_scoring.stream_scores)
    )
    monkeypatch.setattr(
        chunked_scoring,
        "stream_drift",
        spy("drift", chunked_scoring.stream_drift),
    )
    return calls


def _deliver(home, name: str, content: bytes) -> None:
    (home / "inbox" / "small" / name).write_bytes(content)


def _run(driver, name: str):
    [request] = [r for r in driver.tick(BATCHES).requests if r.partition_key == name]
    return driver.launch(request, "small__score_batch")


def _metadata(result, asset: str) -> dict:
    [event] = [
        e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset
    ]
    found = event.materialization.metadata
    return {k: getattr(v, "value", v) for k, v in found.items() if not k.startswith(_WHERE)}


def _batch_file(home, *simulate_args: str) -> bytes:
    simulate("small", "--batches", "1", "--rows", str(ROWS), *simulate_args)
    [path] = [p for p in (home / "inbox" / "small").iterdir() if p.is_file()]
    content = path.read_bytes()
    path.unlink()
    return content


def _drift_body(home, batch: str) -> dict:
    _, report = current(home, "small", f"drift_report/partitions/{batch}")
    return {k: v for k, v in report.body.items() if k != "batch"}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunked_run_equals_the_whole_run(home, driver, monkeypatch, suffix):
    content = _batch_file(
        home, "--seed", "2", "--drift", "shift:x1=3,shift:x2=-3", "--drift", "mix:colour=blue"
    )
    if suffix == ".parquet":
        import io

        frame = pd.read_csv(io.BytesIO(content))
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        content = buffer.getvalue()
    whole, chunked = f"whole{suffix}", f"chunked{suffix}"
    _deliver(home, whole, content)
    plain = _run(driver, whole)
    assert plain.success, step_failures(plain)

    calls = _chunked(monkeypatch)
    _deliver(home, chunked, content)
    streamed = _run(driver, chunked)
    assert streamed.success, step_failures(streamed)
    assert calls == {"stored": 1, "scored": 1, "drift": 1}

    # The stored batch, its validation, the predictions and their metadata: identical.
    _, plain_batch = current(home, "small", f"production_batch/partitions/{whole}")
    _, chunked_batch = current(home, "small", f"production_batch/partitions/{chunked}")
    pd.testing.assert_frame_equal(plain_batch, chunked_batch)
    assert check_results(plain) == check_results(streamed)
    assert _metadata(plain, "production_batch") == _metadata(streamed, "production_batch")
    _, plain_scores = current(home, "small", f"predictions/partitions/{whole}")
    _, chunked_scores = current(home, "small", f"predictions/partitions/{chunked}")
    assert len(chunked_scores) == ROWS
    pd.testing.assert_frame_equal(plain_scores, chunked_scores)
    assert _metadata(plain, "predictions") == _metadata(streamed, "predictions")

    # The drift statistics, and the drift page was made for both (a drifted batch).
    assert _drift_body(home, whole) == _drift_body(home, chunked)
    assert _drift_body(home, chunked)["drifted_columns"]
    for batch in (whole, chunked):
        _, report = current(home, "small", f"drift_report/partitions/{batch}")
        assert "<html" in report.attachments["drift.html"].lower()


def test_chunked_validation_findings_equal_the_whole_run(home, driver, monkeypatch):
    content = _batch_file(home, "--seed", "3")
    lines = content.decode().splitlines(keepends=True)
    # A repeated row id, late in the file (past the first chunk): the batch is quarantined.
    broken = "".join([*lines, lines[1]]).encode()
    _deliver(home, "whole.csv", broken)
    plain = _run(driver, "whole.csv")
    calls = _chunked(monkeypatch)
    _deliver(home, "chunked.csv", broken)
    streamed = _run(driver, "chunked.csv")
    assert calls["stored"] == 1
    assert not plain.success and not streamed.success
    assert check_results(plain) == check_results(streamed)
    [(passed, description)] = check_results(streamed).values()
    assert not passed and "row" in description
    assert _metadata(plain, "production_batch") == _metadata(streamed, "production_batch")
    assert (home / "inbox" / "small" / "quarantine" / "chunked.csv").exists()


def test_empty_streamed_batch_is_refused_as_before(home, driver, monkeypatch):
    content = _batch_file(home, "--seed", "5")
    header = content.decode().splitlines(keepends=True)[0].encode()
    _chunked(monkeypatch)
    _deliver(home, "empty.csv", header)
    run = _run(driver, "empty.csv")
    assert not run.success
    [(passed, description)] = check_results(run).values()
    assert not passed and "has no rows" in description
    assert (
        store(home).current_version(["small", "production_batch", "partitions", "empty.csv"])
        is None
    )


def test_failure_mid_stream_leaves_no_version(home, driver, monkeypatch):
    content = _batch_file(home, "--seed", "6")
    _chunked(monkeypatch)
    real = chunked_batches.ChunkedValidation.add
    seen = {"chunks": 0}

    def failing(self, chunk):
        seen["chunks"] += 1
        if seen["chunks"] == 3:  # two chunks are in the staging file already
            raise RuntimeError("disk gone")
        return real(self, chunk)

    monkeypatch.setattr(chunked_batches.ChunkedValidation, "add", failing)
    _deliver(home, "broken.csv", content)
    run = _run(driver, "broken.csv")
    assert not run.success
    assert seen["chunks"] == 3
    lineage = store(home)
    for asset in ("production_batch", "predictions"):
        path = ["small", asset, "partitions", "broken.csv"]
        assert lineage.current_version(path) is None
        assert lineage.versions(path) == []
    # The file waits in the inbox still: nothing of it is in the store.
    assert (home / "inbox" / "small" / "broken.csv").exists()


def test_file_unreadable_past_its_first_chunk_is_quarantined(home, driver, monkeypatch):
    content = _batch_file(home, "--seed", "7")
    lines = content.decode().splitlines(keepends=True)
    # Row 400 has two fields too many: the first chunks read fine, a later one cannot.
    fields = lines[400].rstrip("\n")
    broken = "".join([*lines[:400], f"{fields},9,9\n", *lines[401:]]).encode()
    _deliver(home, "whole.csv", broken)
    plain = _run(driver, "whole.csv")
    _chunked(monkeypatch)
    _deliver(home, "late.csv", broken)
    run = _run(driver, "late.csv")
    assert not plain.success and not run.success
    [message] = step_failures(run).values()
    assert "late.csv: line 401 has 7 fields" in message and "\n" not in message.strip()
    for name in ("whole.csv", "late.csv"):
        assert (home / "inbox" / "small" / "quarantine" / name).exists()
        assert not (home / "inbox" / "small" / name).exists()
    path = ["small", "production_batch", "partitions", "late.csv"]
    assert store(home).versions(path) == []
