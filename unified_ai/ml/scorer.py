"""A fitted pipeline compiled to plain arrays, so scoring a batch needs numpy and nothing else.

Loading a skops model imports skops and scikit-learn (about 1.5 s in a fresh process), which is
most of the cost of scoring a small production batch. The pipelines `unified_ai.ml.training`
builds are simple enough to evaluate with numpy: imputation, scaling and one-hot encoding,
then a linear model (logistic or multinomial regression, ridge or least squares) or a tree
ensemble (boosted, a forest, one tree), for every task: binary (P(positive)), multiclass (one
probability per class of the model card) and regression (the value). `compile_pipeline` (in
`scorer_compile`, the only part that imports scikit-learn) turns one into a `CompiledScorer`
and keeps it only if it reproduces the pipeline's predictions on probe rows (to `TOLERANCE`);
anything it does not recognise (a custom training script's pipeline, a native categorical
split, a boosted regressor with a log link) is refused with the reason, and that model is
scored by sklearn.

A compiled scorer is stored as files beside the skops file: `scorer.json` (the format version,
the task, the structure, names and categories), `scorer.npz` (numeric arrays) and
`scorer-probe.json` (the probe rows and the predictions the *pipeline* gave them when the model
was stored). None can run code. Format 2 (every task) records the exact size of every array;
format 1 (binary classifiers, written by earlier versions) is still read and verified.
`CompiledScorer.from_files` refuses, in one line naming the version and the array:
an npz member that is not an expected array (extra, missing, another dtype or shape than
`scorer.json` implies), one whose decompressed size exceeds `MAX_ARRAY_BYTES` (or all of them
`MAX_SCORER_BYTES`; read from each member's header before anything is decompressed), a
non-finite statistic, coefficient, threshold or leaf, a zero scale, an out-of-range index, a
task, class list or output count that do not fit together, and a scorer that does not
reproduce the stored probe predictions (to `TOLERANCE`): a scorer edited apart from its
pipeline is refused even in an unsigned store. A scorer stored before probe outputs were kept
raises `ScorerUnverified`; its model is then scored by the pipeline.

The stored form (file names, caps, `ScorerError`, `read_arrays`) is in `scorer_files`, the
checks in `scorer_checks`, the evaluation (precomputed when a scorer is loaded) in
`scorer_plan`; this module holds `CompiledScorer` (load, check, score) and needs numpy only.
Rows are scored from a DataFrame (`predict`) or, for a request of a few rows, from plain
columns by name (`predict_columns`, no pandas), with the same answers.
"""

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from unified_ai.ml.scorer_checks import check_scorer
from unified_ai.ml.scorer_files import (
    CHUNK_CELLS,
    MAX_ARRAY_BYTES,
    MAX_PROBE_BYTES,
    MAX_SCORER_BYTES,
    PROBE_ROWS,
    SCORER_ARRAYS,
    SCORER_FORMAT,
    SCORER_JSON,
    SCORER_PROBE,
    SCORER_REFUSED,
    TOLERANCE,
    ScorerError,
    ScorerUnverified,
    agree_on_probe,
    array_layout,
    json_safe,
    read_arrays,
)
from unified_ai.ml.scorer_plan import BINARY, MULTICLASS, REGRESSION, ScorerPlan, task_of

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CHUNK_CELLS",
    "MAX_ARRAY_BYTES",
    "MAX_PROBE_BYTES",
    "MAX_SCORER_BYTES",
    "PROBE_ROWS",
    "SCORER_ARRAYS",
    "SCORER_FORMAT",
    "SCORER_JSON",
    "SCORER_PROBE",
    "SCORER_REFUSED",
    "TOLERANCE",
    "CompiledScorer",
    "ScorerError",
    "ScorerUnverified",
    "check_scorer",
    "read_arrays",
]


@dataclass(frozen=True)
class CompiledScorer:
    """Preprocessing blocks and a model as arrays; `predict` needs numpy only.

    Attributes:
        spec: JSON-safe structure: the format, the task (format 2; multiclass: the number of
            classes and the class column of each class the model knows), the input blocks
            (columns, imputation, scaling, one-hot categories) and the model kind with its
            outputs, link and aggregation.
        arrays: Numeric arrays by name (scaler statistics, coefficients, tree nodes).
        probe: `{"rows": {column: [values]}, "expected": [predictions]}`: rows and what the
            pipeline gave them when it was compiled, in the task's shape (None for a scorer
            stored without them).
    """

    spec: dict[str, Any]
    arrays: dict[str, "np.ndarray"]
    probe: dict[str, Any] | None = None

    @property
    def categories(self) -> dict[str, list[str]]:
        """Per one-hot encoded input column, the categories the encoder knows (as text)."""
        return {
            column: list(known)
            for block in self.spec["blocks"]
            if block["kind"] == "onehot"
            for column, known in zip(block["columns"], block["categories"], strict=True)
        }

    @property
    def columns(self) -> list[str]:
        """The input columns the scorer reads, in block order."""
        return [column for block in self.spec["blocks"] for column in block["columns"]]

    @property
    def task(self) -> str:
        """The task the scorer answers for (a scorer stored in format 1: binary)."""
        return task_of(self.spec)

    @property
    def class_count(self) -> int | None:
        """A multiclass scorer's number of answer columns (the model card's classes)."""
        return self.plan.classes if self.task == MULTICLASS else None

    @cached_property
    def plan(self) -> ScorerPlan:
        """Everything precomputed for scoring (built when a stored scorer is loaded)."""
        return ScorerPlan(self.spec, self.arrays)

    def predict(self, inputs: "pd.DataFrame") -> "np.ndarray":
        """Predictions in the task's shape for each row of `inputs` (model inputs).

        Binary: P(positive) per row; multiclass: (rows, classes) in the model card's class
        order; regression: the predicted value per row.
        """
        return self.plan.score(self.plan.design_from_frame(inputs))

    def predict_columns(self, columns: "Mapping[str, Sequence[Any] | np.ndarray]") -> "np.ndarray":
        """`predict` for rows given as columns by name, without pandas (small requests).

        Args:
            columns: Every input column (`columns`) by name, all of one length: numeric values
                as numbers or None (missing), categorical values as text or None.

        Returns:
            Exactly what `predict` gives a DataFrame of the same rows, in the task's shape.

        Raises:
            ValueError: an input column is missing, or the columns differ in length.
        """
        return self.plan.score(self.plan.design_from_columns(columns))

    def predict_proba(self, inputs: "pd.DataFrame") -> "np.ndarray":
        """Probability of the positive class for each row of `inputs` (binary scorers)."""
        if self.task != BINARY:
            raise ScorerError(f"a {self.task} scorer has no positive-class probability")
        return self.predict(inputs)

    def raw_score(self, matrix: "np.ndarray") -> "np.ndarray":
        """Raw scores (log-odds, class scores or values) before the link, from the matrix."""
        return self.plan.raw(matrix)

    def design_matrix(self, inputs: "pd.DataFrame") -> "np.ndarray":
        """The model's input matrix: what the pipeline's preprocessing step produces."""
        return self.plan.design_from_frame(inputs)

    def design_columns(self, columns: "Mapping[str, Sequence[Any] | np.ndarray]") -> "np.ndarray":
        """`design_matrix` of rows given as columns by name (as `predict_columns` takes them)."""
        return self.plan.design_from_columns(columns)

    def estimator_output(self, estimator: Any, inputs: Any) -> "np.ndarray":
        """What a fitted sklearn estimator answers for `inputs`, in the scorer's task shape.

        `estimator` is the pipeline (given model inputs) or its final model (given the design
        matrix); a multiclass model's columns are placed as the model card orders its classes.
        """
        import numpy as np

        task = self.task
        if task == BINARY:
            return np.asarray(estimator.predict_proba(inputs)[:, 1], dtype="float64")
        if task == REGRESSION:
            return np.asarray(estimator.predict(inputs), dtype="float64")
        known = estimator.predict_proba(inputs)
        answer = np.zeros((len(known), self.plan.classes), dtype="float64")
        answer[:, self.plan.class_columns] = known
        return answer

    def to_files(self) -> dict[str, bytes]:
        """The stored files."""
        import numpy as np

        buffer = io.BytesIO()
        # The arrays are numeric; the reader never unpickles (`read_arrays`).
        np.savez(buffer, allow_pickle=False, **self.arrays)
        spec = json.dumps(self.spec, sort_keys=True, allow_nan=False).encode()
        files = {SCORER_JSON: spec, SCORER_ARRAYS: buffer.getvalue()}
        if self.probe is not None:
            # NaN (a missing probe value) is written as null: the file is strict JSON.
            files[SCORER_PROBE] = json.dumps(json_safe(self.probe), sort_keys=True).encode()
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes], *, where: str) -> "CompiledScorer":
        """Read and check stored scorer files (see the module docstring for what is refused).

        Raises:
            ScorerUnverified: the files are sound but carry no probe outputs.
            ScorerError: the files are malformed, of another format, inconsistent, or disagree
                with the stored probe outputs.
        """
        try:
            spec = json.loads(files[SCORER_JSON])
        except Exception as exc:  # not JSON, missing
            raise ScorerError(f"{where}: compiled scorer is unreadable ({exc!r})") from None
        if SCORER_ARRAYS not in files:
            raise ScorerError(f"{where}: compiled scorer is unreadable ({SCORER_ARRAYS} missing)")
        layout = array_layout(spec, where)
        arrays = read_arrays(files[SCORER_ARRAYS], layout, where=where)
        probe = None
        if SCORER_PROBE in files:
            data = files[SCORER_PROBE]
            if len(data) > MAX_PROBE_BYTES:
                raise ScorerError(f"{where}: compiled scorer probe file is larger than allowed")
            try:
                probe = json.loads(data)
            except ValueError as exc:
                raise ScorerError(f"{where}: compiled scorer probe is unreadable ({exc})") from None
        scorer = cls(spec=spec, arrays=arrays, probe=probe)
        check_scorer(scorer, where)
        if probe is None:
            raise ScorerUnverified(
                f"{where}: compiled scorer has no stored probe outputs (stored before they were "
                "kept), so it cannot be checked against its pipeline; scored by the pipeline"
            )
        scorer.check_probe(where)
        _ = scorer.plan  # precomputed now: the first request pays nothing for it
        return scorer

    def probe_inputs(self, where: str = "compiled scorer") -> "pd.DataFrame":
        """The stored probe rows as a frame of model inputs (missing values as NaN)."""
        import numpy as np
        import pandas as pd

        probe = self.probe
        bad = ScorerError(f"{where}: compiled scorer probe is malformed")
        if not isinstance(probe, dict) or not isinstance(probe.get("rows"), dict):
            raise bad
        rows, expected = probe["rows"], probe.get("expected")
        if (
            sorted(rows) != sorted(self.columns)
            or not isinstance(expected, list)
            or not expected
            or any(not isinstance(v, list) or len(v) != len(expected) for v in rows.values())
        ):
            raise bad
        numeric = {c for b in self.spec["blocks"] if b["kind"] == "numeric" for c in b["columns"]}
        data: dict[str, Any] = {}
        try:
            for column in self.columns:
                values = rows[column]
                if column in numeric:
                    data[column] = np.array(
                        [np.nan if v is None else float(v) for v in values], dtype="float64"
                    )
                elif all(v is None or isinstance(v, str) for v in values):
                    data[column] = np.array(
                        [np.nan if v is None else v for v in values], dtype=object
                    )
                else:
                    raise bad
        except (TypeError, ValueError):
            raise bad from None
        return pd.DataFrame(data, columns=self.columns)

    def probe_expected(self, where: str = "compiled scorer") -> "np.ndarray":
        """What the pipeline gave the probe rows when the model was stored (the task's shape)."""
        import numpy as np

        try:
            expected = np.asarray(self.probe["expected"], dtype="float64")  # type: ignore[index]
        except (TypeError, ValueError, KeyError):
            raise ScorerError(f"{where}: compiled scorer probe is malformed") from None
        shape_ok = (
            expected.ndim == 2 and expected.shape[1] == self.plan.classes
            if self.task == MULTICLASS
            else expected.ndim == 1
        )
        if not shape_ok:
            raise ScorerError(f"{where}: compiled scorer probe is malformed")
        if not np.isfinite(expected).all():
            raise ScorerError(f"{where}: compiled scorer probe holds non-finite probabilities")
        return expected

    def check_probe(self, where: str) -> None:
        """Refuse a scorer that does not reproduce the pipeline's stored probe probabilities."""
        inputs, expected = self.probe_inputs(where), self.probe_expected(where)
        if len(inputs) != len(expected):
            raise ScorerError(f"{where}: compiled scorer probe is malformed")
        agree_on_probe(self.predict(inputs), expected, where, "compiled scorer")

    def check_pipeline(self, pipeline: Any, where: str) -> None:
        """Refuse a pipeline that does not give the stored probe rows their stored predictions.

        With `check_probe`, the scorer and the pipeline of one stored model agree on the probe
        rows: neither can be edited apart from the other.
        """
        if self.probe is None:
            return
        inputs, expected = self.probe_inputs(where), self.probe_expected(where)
        got = self.estimator_output(pipeline, inputs)
        agree_on_probe(got, expected, where, "model pipeline")
