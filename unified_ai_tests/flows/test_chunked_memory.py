"""The batch's steps in chunks keep less in memory and give the same results.

`at_least` knowing the row count holds no chunk back, the shadow sample is gathered with the
columns the shadow models read and scored in pieces, and freed memory is given back between
chunks: none of it changes a chunk, a score or a column.
"""

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from unified_ai.ml.artifacts import COMPILED_MAX_ROWS, TrainedModel
from unified_ai.ml.batch_scoring import primary_score
from unified_ai.ml.chunked_batches import (
    ChunkedScoring,
    Shadow,
    at_least,
    release_freed_memory,
)
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.training import fit, predict, task_card
from unified_ai.names import ROW_ID
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.flows.test_chunked_scoring import TASKS


def _frames(sizes: list[int]) -> list[pd.DataFrame]:
    start, chunks = 0, []
    for size in sizes:
        chunks.append(pd.DataFrame({"n": range(start, start + size)}))
        start += size
    return chunks


def _held_back(chunks, rows: int):
    """The joining `at_least` did before it knew the row count: one chunk held back to know."""
    ready = None
    held = None
    for chunk in chunks:
        if held is None:
            held = chunk
        elif len(held) < rows:
            held = pd.concat([held, chunk], ignore_index=True)
        else:
            if ready is not None:
                yield ready
            ready, held = held, chunk
    if held is not None and ready is not None and len(held) < rows:
        yield pd.concat([ready, held], ignore_index=True)
        return
    for chunk in (ready, held):
        if chunk is not None:
            yield chunk


@pytest.mark.parametrize(
    "sizes",
    [
        [97, 97, 3],
        [5, 5, 97, 2],
        [97],
        [3],
        [97, 97, 97],
        [50, 50, 49],
        [50, 10, 30, 10, 60],
        [20, 20, 20, 20, 20, 20, 5],
        [49, 1, 49, 1],
        [100, 49],
    ],
)
def test_chunks_joined_knowing_the_row_count_are_the_same(sizes):
    held = [c["n"].tolist() for c in _held_back(iter(_frames(sizes)), 50)]
    known = [c["n"].tolist() for c in at_least(iter(_frames(sizes)), 50, sum(sizes))]
    assert known == held


def test_knowing_the_row_count_no_chunk_is_held_back():
    read = []

    def chunks():
        for chunk in _frames([60, 60, 60]):
            read.append(len(chunk))
            yield chunk

    joined = at_least(chunks(), 50, 180)
    assert len(next(joined)) == 60
    assert len(read) == 1  # without the row count, the second would be read first
    assert [len(c) for c in joined] == [60, 60]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_large_shadow_sample_scored_in_pieces_scores_as_whole(tmp_path, task):
    write, make, target = TASKS[task]
    project = load_project_file(write(tmp_path / "project"))
    frame = make(rows=600, seed=1)
    pipeline, features = fit(project, frame.iloc[:400].reset_index(drop=True))
    card = {"features": asdict(features), **task_card(project, frame)}
    live = TrainedModel(pipeline=pipeline, card=card)
    other, _ = fit(project, frame.iloc[200:].reset_index(drop=True))
    shadow = TrainedModel(pipeline=other, card=card)
    rows = 2 * COMPILED_MAX_ROWS + 7  # two pieces, the second not small enough alone
    sample = make(rows=rows, seed=2).drop(columns=[target])
    sample.insert(0, ROW_ID, [f"r{i}" for i in range(rows)])
    scoring = ChunkedScoring(
        model=live,
        features=FeatureColumns(**card["features"]),
        segments=[],
        threshold=0.5,
        deployment="d1",
        model_version="m1",
        rows=rows,
        shadow_most=rows,
        batch="b",
        shadows=[Shadow("owner", "score", "previous", shadow)],
    )
    scoring.score_shadows(sample, rows=COMPILED_MAX_ROWS + 1)
    whole = primary_score(shadow.task, predict(shadow, sample, features))
    assert not scoring.shadow_failures
    np.testing.assert_array_equal(scoring._shadow["previous"], whole)


def test_the_shadow_sample_has_the_columns_the_shadow_models_read(tmp_path):
    write, make, target = TASKS["binary"]
    project = load_project_file(write(tmp_path / "project"))
    frame = make(rows=300, seed=1)
    pipeline, features = fit(project, frame)
    card = {"features": asdict(features), **task_card(project, frame)}
    model = TrainedModel(pipeline=pipeline, card=card)
    columns = [ROW_ID, *reversed(features.all), "unused", target]

    def scoring(shadows):
        return ChunkedScoring(
            model=model,
            features=features,
            segments=[],
            threshold=0.5,
            deployment="d1",
            model_version="m1",
            rows=10,
            shadow_most=10,
            batch="b",
            shadows=shadows,
        )

    shadow = Shadow("owner", "score", "previous", model)
    assert scoring([shadow]).shadow_columns(columns) == list(reversed(features.all))
    # A model whose card does not say its features: every column (its scoring says why).
    blind = TrainedModel(pipeline=pipeline, card={"task": "binary_classification"})
    unknown = Shadow("owner", "score", "other", blind)
    assert scoring([shadow, unknown]).shadow_columns(columns) == columns
    # The live model as its own shadow reads nothing more.
    assert scoring([Shadow("owner", "score", "live")]).shadow_columns(columns) == []


def test_freed_memory_is_given_back_without_error():
    release_freed_memory()
    release_freed_memory()
