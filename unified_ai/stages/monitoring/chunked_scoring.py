"""The three steps of a `score_batch` run on a batch in chunks, in bounded memory (no Dagster).

`store_batch_file` (the `production_batch` step), `score_stored_batch` (`predictions`) and
`drift_of_stored_batch` (`drift_report`) each stream their input: the inbox file, or the stored
batch version read back chunk by chunk (`unified_ai.io.frame_chunks`), and each writes its
frame as one Parquet file through the store's streaming writer (`write_frame_chunks`: one row
group per chunk, published whole or not at all). Their results are the whole-frame steps'
results on the same rows: the same validation findings, predictions and drift statistics
(`unified_ai.ml.chunked_batches`, `unified_ai.ml.chunked_drift`).
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unified_ai.io.frame_chunks import ChunkedOutput, FrameChunks
from unified_ai.ml.artifacts import COMPILED_MAX_ROWS
from unified_ai.ml.chunked_batches import (
    CHUNK_ROWS,
    ChunkedScoring,
    ChunkedValidation,
    RowGatherer,
    Shadow,
    at_least,
    drift_sample_rows,
    iter_batch_file,
)
from unified_ai.ml.chunked_drift import DriftScores
from unified_ai.names import PREDICTIONS, PRODUCTION_BATCH

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy as np
    import pandas as pd

    from unified_ai.io.store import LineageStore, Manifest
    from unified_ai.ml.validation import ValidationOutcome
    from unified_ai.projects.schema import ProjectConfig


class NonFiniteScores(ValueError):
    """The model gave some rows a NaN or infinite score: nothing is stored."""


@dataclass
class StoredBatch:
    """A batch file stored as a version, and its validation."""

    manifest: "Manifest"
    outcome: "ValidationOutcome"
    rows: int


def store_batch_file(
    project: "ProjectConfig",
    store: "LineageStore",
    source: Any,
    name: str,
    *,
    rows: int = CHUNK_ROWS,
    **write: Any,
) -> StoredBatch:
    """Read, validate and store a batch file in chunks (`production_batch`).

    Args:
        project: The project.
        store: The lineage store.
        source: The file (a path or UPath).
        name: Its name (`.parquet`, else CSV); the partition.
        rows: Rows per chunk.
        write: `write_frame_chunks` keywords (run id, lineage, ...).

    Raises:
        ChunkTypesDiffer: a CSV column is typed differently in two chunks (nothing is stored;
            read the file whole).
    """
    validation = ChunkedValidation(project)

    def chunks() -> "Any":
        for chunk in iter_batch_file(source, name, rows):
            validation.add(chunk)
            yield chunk

    manifest = store.write_frame_chunks([project.name, PRODUCTION_BATCH, name], chunks(), **write)
    return StoredBatch(manifest, validation.outcome(), validation.rows)


class StreamedBatch:
    """A batch file read, validated and stored in chunks by the IO manager (`production_batch`).

    Its first chunk is read at once, so an empty or unreadable file is refused before anything
    is stored. A CSV file whose columns are typed differently in two chunks is read whole
    instead (`read_whole`), and validated whole.

    Args:
        project: The project.
        source: The file.
        name: Its name (`.parquet`, else CSV).
        rows: Rows per chunk.
        read_whole: Reads the file whole (the fallback).
    """

    def __init__(
        self,
        project: "ProjectConfig",
        source: Any,
        name: str,
        rows: int,
        read_whole: "Callable[[], pd.DataFrame]",
    ):
        self._project = project
        self._source = source
        self._read_whole = read_whole
        self._chunks = iter(iter_batch_file(source, name, rows))
        self._first = next(self._chunks, None)
        self._outcome: ValidationOutcome | None = None
        self._validation: ChunkedValidation | None = None
        #: Rows stored.
        self.rows = 0

    @property
    def empty(self) -> bool:
        """Whether the file has no rows (nothing to store)."""
        return self._first is None or (len(self._first) == 0 and self._peek_empty())

    def _peek_empty(self) -> bool:
        following = next(self._chunks, None)
        if following is None:
            return True
        import itertools

        self._chunks = itertools.chain([following], self._chunks)
        return False

    def _streamed(self) -> "Iterator[pd.DataFrame]":
        validation = self._validation = ChunkedValidation(self._project)
        first, self._first = self._first, None
        if first is None:
            return
        import itertools

        from unified_ai.ml.csv_reader import ChunkTypesDiffer
        from unified_ai.ml.data import FileRuleError
        from unified_ai.resources.inbox import InboxError

        chunks = itertools.chain([first] if len(first) else [], self._chunks)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except ChunkTypesDiffer:
                raise  # the store reads the file whole instead
            except FileRuleError as exc:
                raise InboxError(f"{self._source}: {exc}") from None
            except Exception as exc:  # as `Inbox.read`: a decoding problem is the file's
                reason = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise InboxError(
                    f"{self._source} cannot be read after row {validation.rows}: {reason}"
                ) from None
            validation.add(chunk)
            yield chunk

    def _whole(self) -> "Iterator[pd.DataFrame]":
        from unified_ai.ml.validation import validate_batch

        self._validation = None
        frame = self._read_whole()
        self._outcome = validate_batch(self._project, frame)
        self.rows = len(frame)
        yield frame

    def outcome(self) -> "ValidationOutcome":
        """The batch's validation (once stored)."""
        if self._validation is not None:
            self.rows = self._validation.rows
            return self._validation.outcome()
        if self._outcome is None:
            raise RuntimeError("the batch was not stored")
        return self._outcome

    def metadata(self) -> dict[str, Any]:
        """`production_batch`'s output metadata (once stored)."""
        outcome = self.outcome()
        return {
            "dagster/row_count": self.rows,
            "quarantined": not outcome.passed,
            "reason": outcome.describe()[:1000],
        }

    def output(self, on_failure: "Callable[[Exception], None] | None" = None) -> "ChunkedOutput":
        """What the IO manager stores.

        Args:
            on_failure: Told why nothing was stored: an `InboxError` when the file turned out
                unreadable after its first chunk (see `ChunkedOutput.on_failure`).
        """
        from unified_ai.ml.csv_reader import ChunkTypesDiffer

        return ChunkedOutput(
            chunks=self._streamed,
            metadata=self.metadata,
            fallback=self._whole,
            fallback_on=(ChunkTypesDiffer,),
            on_failure=on_failure,
        )


@dataclass
class ScoredBatch:
    """The stored predictions of a batch and what their metadata says."""

    manifest: "Manifest"
    rows: int
    metadata: dict[str, Any] = field(default_factory=dict)


def score_stored_batch(
    project: "ProjectConfig",
    store: "LineageStore",
    batch: str,
    batch_version: str,
    *,
    model: Any,
    deployment: str,
    model_version: str,
    reference: "np.ndarray | None" = None,
    shadows: list[Shadow] | None = None,
    rows: int = CHUNK_ROWS,
    min_rows: int = COMPILED_MAX_ROWS + 1,
    **write: Any,
) -> ScoredBatch:
    """Score a stored batch in chunks and store its predictions (`predictions`).

    The live model scores chunks of more than `COMPILED_MAX_ROWS` rows (a small last chunk
    joins the one before): each takes the path (compiled scorer or pipeline) the whole batch
    takes, so the predictions are the whole batch's.

    Args:
        project: The project.
        store: The lineage store.
        batch: The batch (partition) name.
        batch_version: Its stored `production_batch` version.
        model: The deployed model.
        deployment: The deployment version.
        model_version: The model's version.
        reference: The model's primary scores on the reference (prediction drift), if any.
        shadows: The shadow models, in column order.
        rows: Rows per chunk read.
        min_rows: Rows per chunk scored, at least (see above).
        write: `write_frame_chunks` keywords.

    Raises:
        NonFiniteScores: a row got a NaN or infinite score (nothing is stored).
    """
    source = FrameChunks(store, [project.name, PRODUCTION_BATCH, batch], batch_version, rows)
    scoring, chunks, metadata = stream_scores(
        project,
        source,
        batch,
        model=model,
        deployment=deployment,
        model_version=model_version,
        reference=reference,
        shadows=shadows,
        min_rows=min_rows,
    )
    manifest = store.write_frame_chunks([project.name, PREDICTIONS, batch], chunks, **write)
    return ScoredBatch(manifest, scoring.scored_rows, metadata())


def stream_scores(
    project: "ProjectConfig",
    source: FrameChunks,
    batch: str,
    *,
    model: Any,
    deployment: str,
    model_version: str,
    reference: "np.ndarray | None" = None,
    shadows: list[Shadow] | None = None,
    min_rows: int = COMPILED_MAX_ROWS + 1,
    each: "Callable[[pd.DataFrame, pd.DataFrame], None] | None" = None,
) -> tuple[ChunkedScoring, "Iterator[pd.DataFrame]", "Callable[[], dict[str, Any]]"]:
    """The predictions of a stored batch as chunks to store, and their metadata once stored.

    The shadow sample is scored here, before the chunks (see `score_stored_batch`). `each`,
    if given, is called with every chunk's rows and predictions before the chunk is stored
    (what else needs them, such as review routing, without reading the batch again).

    Returns:
        The scoring (its counts once the chunks are consumed), the predictions' chunks (they
        raise `NonFiniteScores` after the last one if a row got a non-finite score, so a
        streaming writer stores nothing), and a function giving the metadata once they are.
    """
    from unified_ai.ml.data import FeatureColumns

    scoring = ChunkedScoring(
        model=model,
        features=FeatureColumns(**model.card["features"]),
        segments=project.segments,
        threshold=project.evaluation.threshold,
        deployment=deployment,
        model_version=model_version,
        rows=source.rows,
        shadow_most=project.monitoring.shadow_rows,
        batch=batch,
        reference=reference,
        shadows=list(shadows or []),
    )

    if any(shadow.model is not None for shadow in scoring.shadows):
        # The sampled rows first (one more read of the stored file), of the columns the
        # shadow models read, scored per model in pieces as large as the live model's chunks.
        gatherer = RowGatherer(scoring.shadow_sample(), scoring.shadow_columns(source.columns))
        for chunk in source.read(gatherer.columns):
            gatherer.add(chunk)
            del chunk  # the reader gives its memory back before the next (`FrameChunks.read`)
        sample = gatherer.frame()
        del gatherer  # its parts: the sample is all that is kept
        scoring.score_shadows(sample, source.rows_per_chunk)

    def chunks() -> "Iterator[pd.DataFrame]":
        # Knowing the row count, no chunk is held back to join a small last one.
        for chunk in at_least(source, min_rows, source.rows):
            scored = scoring.score(chunk)
            if each is not None:
                each(chunk, scored)
            yield scored
            del chunk, scored  # stored: the reader gives its memory back before the next is read
        if scoring.non_finite:
            # Raised inside the writer: its staging is discarded, no version is published.
            raise NonFiniteScores(
                f"{project.name}/predictions: model {model_version} gave {scoring.non_finite} "
                f"of {scoring.scored_rows} rows a non-finite score (first: row "
                f"{scoring.first_non_finite}); refusing to store them"
            )

    def metadata() -> dict[str, Any]:
        described = scoring.metadata(model.classes)
        if reference is not None:
            found = scoring.prediction_drift(project.policy.triggers.drift.psi_threshold)
            psi = found["psi"]
            described.update(
                {
                    "prediction_drift_of": found["of"],
                    "prediction_psi": "none" if psi is None else float(psi),
                    "prediction_drifted": bool(found["drifted"]),
                }
            )
        described.update({f"shadow_failed_{k}": v for k, v in scoring.shadow_failures.items()})
        return described

    return scoring, chunks(), metadata


def drift_of_stored_batch(
    project: "ProjectConfig",
    store: "LineageStore",
    batch: str,
    batch_version: str,
    reference: "pd.DataFrame",
    numeric: list[str],
    categorical: list[str],
    *,
    sample_rows: int | None = None,
    rows: int = CHUNK_ROWS,
) -> tuple[dict, "pd.DataFrame | None"]:
    """`drift_scores` of a stored batch read in chunks, and the Evidently page's sample.

    Returns:
        The drift body, and (when `sample_rows` is given) the rows of the batch
        `drift.drift_snapshot` samples (`DataFrame.sample(n, random_state=seed)`, the same
        rows in the same order), or the whole batch's columns when it is not larger.
    """
    source = FrameChunks(store, [project.name, PRODUCTION_BATCH, batch], batch_version, rows)
    return stream_drift(project, source, reference, numeric, categorical, sample_rows=sample_rows)


def stream_drift(
    project: "ProjectConfig",
    source: FrameChunks,
    reference: "pd.DataFrame",
    numeric: list[str],
    categorical: list[str],
    *,
    sample_rows: int | None = None,
) -> tuple[dict, "pd.DataFrame | None"]:
    """`drift_of_stored_batch` of a stored batch already opened as chunks."""
    scores = DriftScores(
        reference, numeric, categorical, project.policy.triggers.drift.psi_threshold
    )
    gatherer = None
    if sample_rows is not None:
        import numpy as np

        positions = drift_sample_rows(source.rows, sample_rows, project.split.seed)
        order = np.arange(source.rows) if positions is None else positions
        gatherer = RowGatherer(order, [*numeric, *categorical])
    # The features only: the batch's other columns (ids, segments) are not decoded.
    for chunk in source.read([*numeric, *categorical]):
        scores.add(chunk)
        if gatherer is not None:
            gatherer.add(chunk)
        del chunk  # the reader gives its memory back before the next (`FrameChunks.read`)
    return scores.result(), None if gatherer is None else gatherer.frame()
