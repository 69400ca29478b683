"""Chunked reads of a stored frame work on every store, object stores included."""

import uuid

import pandas as pd
import pytest

from unified_ai.io.frame_chunks import FrameChunks, stored_frame_rows
from unified_ai.io.store import LineageStore


@pytest.fixture(params=["local", "memory", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LineageStore(tmp_path / "store")
    if request.param == "s3":
        options = request.getfixturevalue("s3_server")
        return LineageStore(f"s3://lineage/{uuid.uuid4().hex}", options)
    return LineageStore(f"memory://unified-ai-{uuid.uuid4().hex}")


def test_a_stored_frame_is_counted_and_read_in_chunks_on_every_store(store):
    frame = pd.DataFrame({"x": range(250), "colour": ["red", "blue"] * 125})
    chunks = (frame.iloc[start : start + 100] for start in range(0, len(frame), 100))
    manifest = store.write_frame_chunks(["p", "batch"], chunks, run_id="r1")

    # The row count comes from the Parquet footer, through a file handle: an object store's
    # path is not one pyarrow can open itself.
    assert stored_frame_rows(store, ["p", "batch"], manifest.version) == 250
    read = FrameChunks(store, ["p", "batch"], manifest.version, rows=64)
    assert read.rows == 250
    parts = list(read)
    assert [len(p) for p in parts] == [64, 64, 64, 58]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), frame)
