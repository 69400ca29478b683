"""Large served batches are encoded in a helper process, byte for byte as the writer thread."""

import logging
import math

import numpy as np

from unified_ai.serving.csv_encoder import FLOAT, INFER, OBJECT, CsvEncoder, encode_csv
from unified_ai.serving.traffic import TrafficWriter
from unified_ai_tests.serving.test_traffic import SERVED, frame


def _columns(rows: int) -> dict:
    rng = np.random.default_rng(3)
    numbers = rng.normal(0, 1e6, rows)
    numbers[::7] = np.nan
    texts = ["north", 'say "hi"', "a,b", "line\nbreak", None, math.nan, "", "ü"]
    return {
        "_row_id": (OBJECT, [f"serve-x.csv:{i}" for i in range(rows)]),
        "x1": (FLOAT, numbers),
        "region": (OBJECT, [texts[i % len(texts)] for i in range(rows)]),
        "mixed": (OBJECT, [[1, 2.5, True, "t", None][i % 5] for i in range(rows)]),
        "served_decision": (INFER, [i % 2 for i in range(rows)]),
    }


def test_the_process_encodes_the_same_bytes_as_the_thread():
    encoder = CsvEncoder(process_rows=10)
    try:
        for rows in (3, 10, 2_000):  # below the threshold (thread), at it and above (process)
            columns = _columns(rows)
            assert encoder.encode(columns, rows) == encode_csv(columns), rows
        assert encoder._pool is not None  # the large batches did go to the process
    finally:
        encoder.close()
    assert encoder._pool is None


def test_a_dead_process_falls_back_to_the_thread_and_says_so_once(caplog):
    encoder = CsvEncoder(process_rows=1)
    columns = _columns(50)
    try:
        assert encoder.encode(columns, 50) == encode_csv(columns)
        [process] = encoder._pool._processes.values()
        process.kill()
        process.join()
        with caplog.at_level(logging.WARNING, logger="unified_ai.serving"):
            assert encoder.encode(columns, 50) == encode_csv(columns)
            assert encoder.encode(columns, 50) == encode_csv(columns)
        warned = [r for r in caplog.records if "encoded in the writer thread" in r.message]
        assert len(warned) == 1 and encoder._pool is None
    finally:
        encoder.close()


def test_the_writer_writes_a_large_batch_through_the_process(tmp_path):
    import pandas as pd

    writer = TrafficWriter(tmp_path / "inbox", flush_rows=600, flush_seconds=3600)
    ids = writer.record(frame(600), SERVED, [0.25] * 600, [0] * 600)
    assert writer.flush() is True
    assert writer._encoder._pool is not None
    writer.stop()
    [written] = list((tmp_path / "inbox").iterdir())
    batch = pd.read_csv(written)
    assert batch["_row_id"].tolist() == ids
    assert batch["x1"].tolist() == [float(i) for i in range(600)]
    assert writer._encoder._pool is None  # stopped with the writer
