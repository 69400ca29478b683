"""A production batch in chunks: read, validated, scored and measured in bounded memory.

Each piece takes the batch one chunk at a time and gives what the whole-frame function gives
on the whole batch:

- `iter_batch_file`: the file's rows in chunks (Parquet record batches; CSV chunks of the same
  parser, the same checks), concatenated the frame `Inbox.read` returns;
- `ChunkedValidation`: `validation.validate_batch`'s outcome (the same failures, counts and
  examples, in the same order);
- `ChunkedScoring`: `batch_scoring.scored_frame` chunk by chunk, the shadow columns of the
  same sampled rows, and `scoring_metadata` and `prediction_drift` of every row;
- `chunked_drift.DriftScores`: `drift.drift_scores`.

What stays per row: one 64-bit hash per row id (the repeated-row-id rule; two ids of one hash
would count as a repeat, a chance of about n^2 / 2^65), and for regression one float per row
(the mean prediction is numpy's pairwise sum of all of them, kept to give the same number).
"""

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unified_ai.ml.batch_scoring import (
    empty_shadow_columns,
    prediction_columns,
    primary_score,
    shadow_rows,
)
from unified_ai.ml.chunked_drift import chunked_prediction_drift, prediction_accumulator
from unified_ai.ml.file_rules import BATCH_LIMITS, FileLimits
from unified_ai.names import DEPLOYMENT_COLUMN, ROW_ID
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, class_key

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from unified_ai.ml.data import FeatureColumns
    from unified_ai.ml.validation import ValidationOutcome
    from unified_ai.projects.schema import ProjectConfig

#: Rows per chunk read, scored and stored: a few tens of MB of a frame of twenty-odd columns,
#: and more than `artifacts.COMPILED_MAX_ROWS` (a chunk is scored the way a large batch is).
CHUNK_ROWS = 50_000
#: How many repeated row ids a validation failure shows (as `validate_batch`).
_EXAMPLES = 5


def release_freed_memory() -> None:
    """Give the memory freed chunk after chunk back to the operating system.

    A chunk's frames are freed when the next is read, but the allocators keep the pages:
    Arrow's memory pool (mimalloc) caches them, and glibc's heap keeps freed pages it may reuse,
    until they are asked to release them. Over a batch of many chunks that kept memory grows by
    tens of MB beside what one chunk needs (measured: about 50 MB over the 20 chunks of a
    1,000,000-row `score_batch` run). Asked once a chunk is done with; cheap next to a chunk's
    scoring or reading.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """The C library's `malloc_trim` (glibc), or None (another C library or platform)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    # The symbols the process has loaded; musl has no `malloc_trim`.
    return getattr(ctypes.CDLL(None), "malloc_trim", None)


def iter_batch_file(
    source: Any, name: str, rows: int = CHUNK_ROWS, limits: FileLimits = BATCH_LIMITS
) -> "Iterator[pd.DataFrame]":
    """The rows of a batch file (`.parquet`, else CSV) in chunks of at most `rows` rows.

    Raises:
        ChunkTypesDiffer: a CSV column is typed differently in two chunks (read it whole).
        FileRuleError: as `Inbox.read`'s readers.
    """
    from unified_ai.ml.csv_reader import iter_csv_checked
    from unified_ai.ml.parquet_reader import iter_parquet_checked

    if name.endswith(".parquet"):
        return iter_parquet_checked(source, rows, limits)
    return iter_csv_checked(source, rows, limits)


class ChunkedValidation:
    """`validate_batch` of a batch fed chunk by chunk, in order."""

    def __init__(self, project: "ProjectConfig"):
        self.project = project
        self.rows = 0
        self.columns: list[str] | None = None
        self.has_row_id = True
        self.repeated = 0
        self.repeated_examples: list[str] = []
        self._seen: Any = None  # sorted hashes of the row ids so far
        self.first: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add(self, chunk: "pd.DataFrame") -> None:
        from dataclasses import replace

        from unified_ai.ml.data import resolve_features
        from unified_ai.ml.rows import row_problems

        if self.columns is None:
            self.columns = [str(c) for c in chunk.columns]
            self.has_row_id = ROW_ID in chunk.columns
        if self.has_row_id:
            self._row_ids(chunk[ROW_ID])
        for problem in row_problems(self.project, resolve_features(self.project, chunk), chunk):
            # The first problem of each field is its example (a missing column: the same in
            # every chunk); rows are numbered in the whole batch.
            if problem.field not in self.first:
                row = None if problem.row is None else self.rows + problem.row
                self.first[problem.field] = replace(problem, row=row)
            if problem.row is not None:
                self.counts[problem.field] = self.counts.get(problem.field, 0) + 1
        self.rows += len(chunk)

    def _row_ids(self, ids: "pd.Series") -> None:
        """Count the row ids seen before (in this chunk or an earlier one), keep the least."""
        import numpy as np
        import pandas as pd

        hashes = pd.util.hash_pandas_object(ids, index=False).to_numpy()
        again = pd.Series(hashes).duplicated().to_numpy()
        if self._seen is not None and len(self._seen):
            at = np.searchsorted(self._seen, hashes).clip(max=len(self._seen) - 1)
            again |= self._seen[at] == hashes
        if again.any():
            self.repeated += int(again.sum())
            found = {str(v) for v in ids[again]} | set(self.repeated_examples)
            self.repeated_examples = sorted(found)[:_EXAMPLES]
        # Two sorted runs merged (a stable sort finds them): linear per chunk, not n log n.
        fresh = np.unique(hashes)
        if self._seen is None:
            self._seen = fresh
        else:
            self._seen = np.concatenate([self._seen, fresh])
            self._seen.sort(kind="stable")

    def outcome(self) -> "ValidationOutcome":
        from unified_ai.ml.validation import ValidationOutcome

        name = "batch_is_valid"
        if self.rows == 0:
            return ValidationOutcome(name=name, passed=False, failures=["no rows"])
        failures = []
        if not self.has_row_id:
            failures.append(f"column {ROW_ID!r} is missing")
        elif self.repeated:
            failures.append(
                f"{ROW_ID}: {self.repeated} repeated row ids, e.g. {self.repeated_examples}"
            )
        for field_name, first in self.first.items():
            count = self.counts.get(field_name, 0)
            shown = f"{count} row(s), e.g. " if count else ""
            failures.append(f"{field_name}: {shown}{first.describe()}")
        return ValidationOutcome(
            name=name,
            passed=not failures,
            failures=failures,
            expectations=2 + len(self.columns or []),
        )


@dataclass
class Shadow:
    """A model scoring the batch in the shadow: its columns and what fills them."""

    owner_column: str
    score_column: str
    owner: str
    model: Any = None  # None: the live model itself (its primary score is reused)


@dataclass
class ChunkedScoring:
    """The live model's predictions of a batch and its shadows', chunk by chunk.

    Attributes:
        model: The deployed `TrainedModel`.
        features: Its feature columns.
        segments: The project's segment columns.
        threshold: The binary decision threshold.
        deployment: The deployment version that scores the batch.
        model_version: Its model version.
        rows: The batch's row count (the shadow sample is drawn from all of them).
        shadow_most: `monitoring.shadow_rows`.
        batch: The batch name (seeds the shadow sample).
        reference: The model's primary scores on the reference (prediction drift).
        shadows: The shadow models, in column order.
    """

    model: Any
    features: "FeatureColumns"
    segments: list[str]
    threshold: float
    deployment: str
    model_version: str
    rows: int
    shadow_most: int
    batch: str
    reference: "np.ndarray | None" = None
    shadows: list[Shadow] = field(default_factory=list)
    scored_rows: int = 0
    non_finite: int = 0
    first_non_finite: Any = None
    positives: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    scores: list = field(default_factory=list)
    shadow_failures: dict[str, str] = field(default_factory=dict)
    _drift: Any = None
    _sample: Any = None
    _shadow: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sample = shadow_rows(self.rows, self.shadow_most, self.batch)
        if self.reference is not None:
            self._drift = prediction_accumulator(self.model.task, self.reference)

    def score(self, chunk: "pd.DataFrame") -> "pd.DataFrame":
        """The stored `predictions` rows of one chunk (the chunks come in order)."""
        import numpy as np

        from unified_ai.ml.batch_scoring import non_finite_scores
        from unified_ai.ml.training import predict

        task = self.model.task
        predicted = predict(self.model, chunk, self.features)
        bad = non_finite_scores(chunk, predicted)
        if bad is not None:
            self.non_finite += bad[0]
            if self.first_non_finite is None:
                self.first_non_finite = bad[1]
        keep = [ROW_ID, *[c for c in self.segments if c in chunk.columns]]
        scored = chunk[keep].copy()
        columns = prediction_columns(task, predicted, self.threshold, self.model.classes)
        for name, values in columns.items():
            scored[name] = values
        scored[DEPLOYMENT_COLUMN] = self.deployment
        scored["model_version"] = self.model_version
        live = primary_score(task, predicted)
        if task == REGRESSION:
            self.scores.append(live)  # its mean is numpy's sum of every value, in one array
        if self._drift is not None:
            self._drift.add(live)
        if task == BINARY:
            self.positives += int(np.asarray(columns["prediction"]).sum())
        elif task == MULTICLASS:
            counts = scored["prediction"].astype(str).value_counts()
            for label, count in counts.items():
                self.class_counts[str(label)] = self.class_counts.get(str(label), 0) + int(count)
        start, end = self.scored_rows, self.scored_rows + len(chunk)
        self.scored_rows = end
        scored = scored.assign(**empty_shadow_columns())
        for shadow in self.shadows:
            scored[shadow.owner_column] = shadow.owner
            scored[shadow.score_column] = self._shadow_scores(shadow, chunk, live, start)
        return scored

    def shadow_sample(self) -> "np.ndarray":
        """Positions of the rows the shadow models score (`batch_scoring.shadow_rows`)."""
        return self._sample

    def score_shadows(self, sample: "pd.DataFrame", rows: int = CHUNK_ROWS) -> None:
        """Score the shadow sample (its rows, in order) with every shadow model, once.

        A sample larger than `artifacts.COMPILED_MAX_ROWS` is scored in pieces of about `rows`
        rows, none of them that small (`at_least`), so each piece takes the path (the fitted
        pipeline) the whole sample takes, and gives the rows the same scores as the live
        model's chunks do; a smaller sample is scored whole (the compiled scorer, as the whole
        batch is). Only one piece's model inputs and intermediate arrays are in memory at once.
        """
        import numpy as np

        from unified_ai.ml.artifacts import COMPILED_MAX_ROWS
        from unified_ai.ml.training import predict

        for shadow in self.shadows:
            if shadow.model is None:
                continue
            try:
                features = type(self.features)(**shadow.model.card["features"])
                # A sample of at most COMPILED_MAX_ROWS rows is one piece: scored whole.
                pieces = (sample.iloc[at : at + rows] for at in range(0, len(sample), rows))
                predicted = np.concatenate(
                    [
                        predict(shadow.model, piece, features)
                        for piece in at_least(pieces, COMPILED_MAX_ROWS + 1, len(sample))
                    ]
                )
                self._shadow[shadow.owner] = primary_score(shadow.model.task, predicted)
            except Exception as exc:  # a shadow is evidence, not service (as the whole batch)
                self.shadow_failures[shadow.owner] = f"{shadow.owner}: not scored: {exc}"[:500]

    def shadow_columns(self, columns: Sequence[str]) -> list[str]:
        """The columns (of `columns`, in order) the shadow models read: all when one cannot say.

        The shadow sample is gathered from the batch with these columns only; a feature the
        batch lacks stays missing, so a shadow model fails on it as on the whole batch.
        """
        needed: set[str] = set()
        for shadow in self.shadows:
            if shadow.model is None:
                continue
            try:
                needed.update(type(self.features)(**shadow.model.card["features"]).all)
            except Exception:  # its scoring reports why (`score_shadows`)
                return list(columns)
        return [c for c in columns if c in needed]

    def _shadow_scores(self, shadow: Shadow, chunk, live, start: int) -> "np.ndarray":
        import numpy as np

        if shadow.model is None:
            return live
        scores = np.full(len(chunk), np.nan)
        done = self._shadow.get(shadow.owner)
        if done is None:
            return scores
        inside = (self._sample >= start) & (self._sample < start + len(chunk))
        scores[self._sample[inside] - start] = done[inside]
        return scores

    def metadata(self, classes: Sequence | None) -> dict[str, Any]:
        """`batch_scoring.scoring_metadata` of every row scored."""
        import numpy as np

        task = self.model.task
        if task == BINARY:
            return {"positive_rate": self.positives / self.scored_rows if self.scored_rows else 0.0}
        if task == REGRESSION:
            values = np.concatenate(self.scores) if self.scores else np.zeros(0)
            if not len(values):
                return {"mean_prediction": 0.0}
            return {
                "mean_prediction": float(np.mean(values)),
                "min_prediction": float(np.min(values)),
                "max_prediction": float(np.max(values)),
            }
        labels = [class_key(c) for c in classes or []]
        total = max(self.scored_rows, 1)
        return {
            "classes": labels,
            "class_shares": {
                label: float(self.class_counts.get(label, 0)) / total for label in labels
            },
        }

    def prediction_drift(self, psi_threshold: float) -> dict:
        """`drift.prediction_drift` of every row scored against the reference."""
        if self._drift is None or self.reference is None:
            raise ValueError("no reference predictions were given")
        return chunked_prediction_drift(self.model.task, self.reference, self._drift, psi_threshold)


def drift_sample_rows(rows: int, most: int, seed: int) -> "np.ndarray | None":
    """Positions `DataFrame.sample(n=most, random_state=seed)` takes of `rows` rows, in order.

    The Evidently page is drawn from this sample (`drift.drift_snapshot`); None when every row
    is used. Gathered from the chunks by `gather_rows`, the sample is the same rows in the
    same order as pandas takes from the whole frame.
    """
    import numpy as np

    if rows <= most:
        return None
    return np.random.RandomState(seed).choice(rows, size=most, replace=False)


class RowGatherer:
    """The rows at `positions` (in that order) of a frame fed chunk by chunk."""

    def __init__(self, positions: "np.ndarray", columns: list[str]):
        import numpy as np

        self.positions = np.asarray(positions)
        self.columns = columns
        self.parts: list = []
        self.seen = 0

    def add(self, chunk: "pd.DataFrame") -> None:
        import numpy as np

        inside = np.flatnonzero(
            (self.positions >= self.seen) & (self.positions < self.seen + len(chunk))
        )
        if len(inside):
            rows = chunk[self.columns].iloc[self.positions[inside] - self.seen]
            self.parts.append((inside, rows.reset_index(drop=True)))
        self.seen += len(chunk)

    def frame(self) -> "pd.DataFrame":
        import numpy as np
        import pandas as pd

        if not self.parts:
            return pd.DataFrame(columns=self.columns)
        order = np.concatenate([inside for inside, _ in self.parts])
        rows = pd.concat([r for _, r in self.parts], ignore_index=True)
        return rows.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def at_least(
    chunks: "Iterator[pd.DataFrame] | Any", rows: int, total: int
) -> "Iterator[pd.DataFrame]":
    """The same rows in chunks of at least `rows` rows (unless there are fewer in all).

    Small chunks are joined to the next; a small last chunk to the one before. Knowing the
    rows of all the chunks (`total`), a chunk goes as soon as it is large enough and the rows
    after it are none or enough for a chunk of their own: no chunk is held back to know.
    """
    import pandas as pd

    group: list = []
    size = seen = 0
    for chunk in chunks:
        group.append(chunk)
        size += len(chunk)
        seen += len(chunk)
        left = total - seen
        # A large enough group joins the rest only when the rest is too small to be one.
        if size >= rows and (left <= 0 or left >= rows):
            yield group[0] if len(group) == 1 else pd.concat(group, ignore_index=True)
            group, size = [], 0
    if group:
        yield group[0] if len(group) == 1 else pd.concat(group, ignore_index=True)
