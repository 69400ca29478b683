"""Value types that flow between assets. Plain dataclasses: no framework, no heavy import."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Batches up to this many rows are scored by a model's compiled scorer when it has one
#: (numpy, no sklearn import); larger ones by the sklearn pipeline, whose ~1.5 s import is small
#: next to their scoring and which is faster per row (measured: 20,000 rows of the default
#: model take 0.7 s compiled).
COMPILED_MAX_ROWS = 20_000
#: Up to this many rows the compiled scorer is faster than sklearn's pipeline even when the
#: pipeline is in memory (a long-running server): sklearn's per-call overhead dominates.
COMPILED_FASTER_ROWS = 100


class TrainedModel:
    """A fitted sklearn pipeline (or an ONNX model), its model card and its compiled scorer.

    A model from another framework is ONNX-backed (`onnx`, a verified
    `unified_ai.ml.onnx_model.OnnxModel`): it has no sklearn pipeline and is scored by
    onnxruntime for every task; `pipeline` then is the `OnnxModel` itself.

    A model read from the lineage store with a compiled scorer loads its skops pipeline only
    when something asks for `pipeline`: scoring a production batch needs numpy alone.

    Attributes:
        card: JSON-safe facts about the model: estimator, params, features, training metrics,
            the MLflow run and registered version.
        scorer: The pipeline compiled to arrays (`unified_ai.ml.scorer`), or None.
        scorer_note: Why a stored model that has a compiled scorer is scored by its pipeline
            instead (its scorer was stored without probe outputs to check it), else None.
        onnx: The ONNX model that scores an ONNX-backed model, else None.
        probe_rows: The project's probe rows (model inputs), given by the training step: the
            store verifies the model's ONNX form on them. Not stored itself.
    """

    def __init__(
        self,
        pipeline: Any = None,
        card: dict[str, Any] | None = None,
        *,
        scorer: Any = None,
        load_pipeline: Callable[[], Any] | None = None,
        scorer_note: str | None = None,
        onnx: Any = None,
        probe_rows: Any = None,
    ):
        if onnx is None and getattr(pipeline, "is_onnx", False):
            onnx = pipeline  # a training script's verified ONNX hand-back, given as its pipeline
        if onnx is not None:
            # Nothing else scores an ONNX-backed model: it has no pipeline to load.
            pipeline, load_pipeline, scorer = onnx, None, None
        if pipeline is None and load_pipeline is None:
            raise ValueError("a TrainedModel needs a pipeline or a way to load it")
        self._pipeline = pipeline
        self._load_pipeline = load_pipeline
        self.card: dict[str, Any] = {} if card is None else card
        self.scorer = scorer
        self.scorer_note = scorer_note
        self.onnx = onnx
        self.probe_rows = probe_rows

    @property
    def pipeline(self) -> Any:
        """The fitted estimator (preprocessing + model), loaded on first use."""
        if self._pipeline is None:
            assert self._load_pipeline is not None
            self._pipeline = self._load_pipeline()
            self._load_pipeline = None
        return self._pipeline

    def load_pipeline(self) -> Any:
        """Load the sklearn pipeline now: a server does, so that no request waits for it."""
        return self.pipeline

    @property
    def pipeline_loaded(self) -> bool:
        """Whether the sklearn pipeline is in memory (scoring small batches does not need it)."""
        return self._pipeline is not None

    @property
    def task(self) -> str:
        """The model's task (`unified_ai.projects.tasks`); models stored before tasks: binary."""
        return str(self.card.get("task") or "binary_classification")

    @property
    def classes(self) -> list | None:
        """A multiclass model's classes, in the order of its probability columns."""
        classes = self.card.get("classes")
        return list(classes) if classes is not None else None

    def predict(self, inputs: Any) -> Any:
        """Predictions in the model's task shape (`unified_ai.ml.metrics`) for model inputs.

        Binary: P(positive) per row; multiclass: (rows, classes) in the model card's class
        order (a class missing from the training rows has probability 0); regression: the
        value. An ONNX-backed model is scored by onnxruntime. Small batches use the compiled
        scorer when there is one (it was checked against the pipeline when the model was
        stored): up to `COMPILED_MAX_ROWS` while the pipeline is not loaded (a batch run then
        never imports sklearn), up to `COMPILED_FASTER_ROWS` when it is. Larger ones use the
        fitted model, fed by the compiled preprocessing when there is one (the same matrix,
        built faster than by sklearn's column transformer).
        """
        task = self.task
        if self.onnx is not None:
            return self.onnx.predict(inputs, task, len(self.classes or []))
        scorer = self.scorer
        if scorer is not None:
            limit = COMPILED_FASTER_ROWS if self.pipeline_loaded else COMPILED_MAX_ROWS
            if len(inputs) <= limit:
                return scorer.predict(inputs)
            model = self.pipeline.steps[-1][1]
            return scorer.estimator_output(model, scorer.design_matrix(inputs))
        pipeline = self.pipeline
        if task == "binary_classification":
            return pipeline.predict_proba(inputs)[:, 1]
        if task == "regression":
            return pipeline.predict(inputs).astype("float64")
        import numpy as np

        classes = self.classes or []
        known = pipeline.predict_proba(inputs)
        # Classes missing from the training rows have no column of their own: probability 0.
        proba = np.zeros((len(inputs), len(classes)), dtype="float64")
        proba[:, np.asarray(pipeline.classes_, dtype=int)] = known
        return proba

    def predict_columns(self, columns: Mapping[str, Sequence[Any] | Any]) -> Any:
        """`predict` for rows given as columns by name (a request of a few rows).

        With a compiled scorer no DataFrame is built: `CompiledScorer.predict_columns` gives
        exactly what `predict` gives the same rows, and above the rows `predict` gives it the
        fitted model scores the matrix the scorer builds from the columns, as `predict` does
        from a frame. Otherwise the columns become a frame of model inputs (missing values as
        NaN) for `predict`.

        Args:
            columns: The model's input columns by name, all of one length: numeric values as
                numbers or None, categorical values as text or None.

        Returns:
            The predictions in the model's task shape (see `predict`).

        Raises:
            ValueError: an input column is missing, or the columns differ in length.
        """
        scorer = self.scorer
        if scorer is not None and self.onnx is None:
            limit = COMPILED_FASTER_ROWS if self.pipeline_loaded else COMPILED_MAX_ROWS
            if len(next(iter(columns.values()), ())) <= limit:
                return scorer.predict_columns(columns)
            if self.pipeline_loaded:
                # `predict`'s path for these rows (the fitted model fed the compiled
                # preprocessing's matrix), the matrix built from the columns: no DataFrame.
                model = self.pipeline.steps[-1][1]
                return scorer.estimator_output(model, scorer.design_columns(columns))
        return self.predict(self._frame(columns))

    def _frame(self, columns: Mapping[str, Sequence[Any] | Any]) -> Any:
        """Model inputs as `unified_ai.ml.training.model_inputs` makes them, from columns."""
        import numpy as np
        import pandas as pd

        features = self.card.get("features") or {}
        numeric = list(features.get("numeric") or [])
        categorical = list(features.get("categorical") or [])
        if self.scorer is not None and not numeric + categorical:
            numeric = [
                c
                for b in self.scorer.spec["blocks"]
                if b["kind"] == "numeric"
                for c in b["columns"]
            ]
            categorical = [c for c in self.scorer.columns if c not in numeric]
        names = numeric + categorical or list(columns)
        data: dict[str, Any] = {}
        for name in names:
            if name not in columns:
                raise ValueError(f"input column {name!r} is missing")
            values = columns[name]
            if name in categorical or (name not in numeric and not _numbers(values)):
                text = [
                    np.nan if _is_missing(v) else (v if isinstance(v, str) else str(v))
                    for v in values
                ]
                data[name] = np.array(text, dtype=object)
            else:
                data[name] = np.array(values, dtype="float64")
        lengths = {len(v) for v in data.values()}
        if len(lengths) > 1:
            raise ValueError(f"input columns differ in length ({sorted(lengths)})")
        return pd.DataFrame(data, columns=names)

    def predict_proba(self, inputs: Any) -> Any:
        """Probability of the positive class for each row of `inputs` (binary models).

        The binary case of `predict` (compiled scorer for small batches, see there).
        """
        if self.onnx is not None:
            return self.onnx.predict(inputs, "binary_classification")
        if self.scorer is None:
            return self.pipeline.predict_proba(inputs)[:, 1]
        return self.predict(inputs)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pandas.NA
        return True


def _numbers(values: Any) -> bool:
    return all(v is None or isinstance(v, (int, float)) for v in values)


@dataclass
class Report:
    """A JSON report with optional attachments (for example a self-contained HTML page).

    Attributes:
        body: The JSON-safe report.
        attachments: File name → content, stored beside the report: text (an HTML page) or
            bytes (a PNG plot); text names are those ending in `io.formats.TEXT_ATTACHMENTS`.
    """

    body: dict[str, Any]
    attachments: dict[str, str | bytes] = field(default_factory=dict)
