"""The compiled scorer: numpy-only scoring that must agree with the sklearn pipeline."""

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from unified_ai.io.formats import (
    MODEL,
    UnsupportedValueError,
    describe,
    deserialize,
    payload_bytes,
    serialize,
)
from unified_ai.io.store import LineageStore
from unified_ai.ml import artifacts
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.scorer import (
    SCORER_ARRAYS,
    SCORER_JSON,
    SCORER_PROBE,
    SCORER_REFUSED,
    TOLERANCE,
    CompiledScorer,
    ScorerError,
)
from unified_ai.ml.scorer_compile import compile_pipeline
from unified_ai.ml.training import build_pipeline, model_inputs
from unified_ai.projects.schema import ESTIMATORS, REGRESSORS, EstimatorSpec
from unified_ai_tests.conftest import make_frame

FEATURES = FeatureColumns(numeric=["x1", "x2"], categorical=["colour"])


def fitted(class_name: str, params: dict | None = None):
    frame = make_frame(rows=600)
    # Missing values in training too, so imputers learn real statistics.
    frame.loc[::17, "x1"] = np.nan
    frame.loc[::23, "colour"] = None
    spec = EstimatorSpec.model_validate({"class": class_name, "params": params or {}})
    pipeline = build_pipeline(spec, FEATURES)
    return pipeline.fit(model_inputs(frame, FEATURES), frame["label"])


def unseen_rows() -> pd.DataFrame:
    """Rows the model never saw: other draws, missing values, a category it does not know."""
    frame = make_frame(rows=300, seed=9)
    frame.loc[::7, "x2"] = np.nan
    frame.loc[::11, "colour"] = "purple"
    frame.loc[::13, "colour"] = None
    frame.loc[::19, "x1"] = 1e6
    return model_inputs(frame, FEATURES)


@pytest.mark.parametrize("class_name", [n for n in ESTIMATORS if n not in REGRESSORS])
def test_every_estimator_compiles_to_the_pipelines_probabilities(class_name):
    pipeline = fitted(class_name)
    stored = compile_pipeline(pipeline).to_files()
    scorer = CompiledScorer.from_files(stored, where="p/m@v")
    inputs = unseen_rows()
    expected = pipeline.predict_proba(inputs)[:, 1]
    np.testing.assert_allclose(scorer.predict_proba(inputs), expected, rtol=0, atol=TOLERANCE)
    assert scorer.columns == ["x1", "x2", "colour"]


def test_a_pipeline_without_a_compiled_form_is_stored_and_scored_by_sklearn():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import PolynomialFeatures

    pipeline = fitted("LogisticRegression")
    with pytest.raises(ScorerError, match="not a preprocess \\+ model pipeline"):
        compile_pipeline(Pipeline([("poly", PolynomialFeatures()), *pipeline.steps]))

    # Storable (every type is on the allow-list) but with options the compiler does not know.
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    frame = make_frame(rows=300)
    encoder = OneHotEncoder(handle_unknown="error", sparse_output=False)
    strict = Pipeline(
        [
            ("preprocess", ColumnTransformer([("c", encoder, ["colour"])])),
            ("model", LogisticRegression()),
        ]
    ).fit(frame[["colour"]], frame["label"])
    kind, files = serialize(TrainedModel(pipeline=strict, card={}))
    assert SCORER_JSON not in files and b"one-hot options" in files[SCORER_REFUSED]
    assert describe(kind, files)["scorer"].startswith("sklearn: block c: one-hot")
    encoded = {name: payload_bytes(payload) for name, payload in files.items()}
    back = deserialize(kind, encoded, where="p/m@v", recorded=describe(kind, files))
    assert back.scorer is None and back.pipeline_loaded
    inputs = make_frame(rows=50, seed=4)[["colour"]]
    np.testing.assert_allclose(back.predict_proba(inputs), strict.predict_proba(inputs)[:, 1])


def test_a_stored_model_scores_small_batches_without_sklearn_and_loads_it_on_demand(tmp_path):
    pipeline = fitted("HistGradientBoostingClassifier", {"max_iter": 20})
    store = LineageStore(tmp_path / "store")
    manifest = store.write_version(["p", "m"], *serialize(TrainedModel(pipeline, card={"a": 1})))
    assert manifest.metadata["scorer"] == "compiled"
    inputs = unseen_rows()
    inputs.to_pickle(tmp_path / "rows.pkl")  # not Parquet: see test_scorer_tasks (arrow#34314)
    script = f"""
import json, sys
import pandas as pd
from unified_ai.io.store import LineageStore
model = LineageStore({str(tmp_path / "store")!r}).read_value(["p", "m"], {manifest.version!r})
proba = model.predict_proba(pd.read_pickle({str(tmp_path / "rows.pkl")!r}))
heavy = sorted(m for m in ("sklearn", "skops", "scipy") if m in sys.modules)
print(json.dumps({{"proba": proba.tolist(), "heavy": heavy, "loaded": model.pipeline_loaded}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["heavy"] == [] and seen["loaded"] is False
    expected = pipeline.predict_proba(inputs)[:, 1]
    np.testing.assert_allclose(seen["proba"], expected, rtol=0, atol=TOLERANCE)

    model = store.read_value(["p", "m"], manifest.version)
    assert not model.pipeline_loaded
    assert type(model.pipeline).__name__ == "Pipeline" and model.pipeline_loaded


def test_large_batches_are_scored_by_the_fitted_model_on_the_compiled_inputs(monkeypatch):
    pipeline = fitted("RandomForestClassifier", {"n_estimators": 5, "random_state": 0})
    kind, files = serialize(TrainedModel(pipeline, card={}))
    encoded = {name: payload_bytes(payload) for name, payload in files.items()}
    model = deserialize(kind, encoded, where="p/m@v", recorded=describe(kind, files))
    inputs = unseen_rows()
    monkeypatch.setattr(artifacts, "COMPILED_MAX_ROWS", len(inputs) - 1)
    proba = model.predict_proba(inputs)
    assert model.pipeline_loaded
    np.testing.assert_allclose(proba, pipeline.predict_proba(inputs)[:, 1])


@pytest.mark.parametrize("class_name", ["HistGradientBoostingClassifier", "LogisticRegression"])
def test_many_rows_given_as_columns_score_as_their_frame_without_building_one(
    class_name, monkeypatch
):
    """Above the rows the compiled scorer takes once sklearn is loaded, rows given as columns
    (a served request) are scored by the fitted model on the scorer's matrix: exactly what the
    same rows as a frame get, with no DataFrame built for them."""
    kind, files = serialize(TrainedModel(fitted(class_name), card={}))
    encoded = {name: payload_bytes(payload) for name, payload in files.items()}
    model = deserialize(kind, encoded, where="p/m@v", recorded=describe(kind, files))
    model.load_pipeline()
    inputs = unseen_rows()
    assert len(inputs) > artifacts.COMPILED_FASTER_ROWS
    columns = {name: [None if pd.isna(v) else v for v in inputs[name]] for name in FEATURES.all}
    expected = model.predict(inputs)

    def no_frame(*_):
        raise AssertionError("a DataFrame was built")

    monkeypatch.setattr(TrainedModel, "_frame", no_frame)
    np.testing.assert_array_equal(model.predict_columns(columns), expected)


def _tampered(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    with np.load(io.BytesIO(files[SCORER_ARRAYS])) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays.update(changes)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return {**files, SCORER_ARRAYS: buffer.getvalue()}


def test_malformed_scorer_files_are_refused_in_one_line():
    pipeline = fitted("DecisionTreeClassifier", {"max_depth": 3})
    kind, files = serialize(TrainedModel(pipeline, card={}))
    files = {name: payload_bytes(payload) for name, payload in files.items()}
    recorded = describe(kind, files)
    left = np.load(io.BytesIO(files[SCORER_ARRAYS]))["left"]
    cycle = left.copy()
    cycle[0] = 0  # the root would be its own child: a walk that never ends
    beyond = left.copy()
    beyond[0] = 10**6
    objects = {**files, SCORER_ARRAYS: _object_npz(files)}
    other_format = {**files, SCORER_JSON: json.dumps({"format": 99}).encode()}
    for bad, reason in [
        (_tampered(files, left=cycle), "out of order or out of range"),
        (_tampered(files, left=beyond), "out of order or out of range"),
        (_tampered(files, feature=np.full_like(left, 50)), "names a column the inputs do not have"),
        (objects, "array 'left' is an object array"),
        (other_format, "format 99"),
    ]:
        with pytest.raises(UnsupportedValueError) as raised:
            deserialize(MODEL, bad, where="p/m@v", recorded=recorded)
        message = str(raised.value)
        assert message.startswith("p/m@v: compiled scorer") and reason in message
        assert "\n" not in message and message.endswith("refusing to load it")


def _object_npz(files: dict[str, bytes]) -> bytes:
    """The scorer's npz with one array that needs pickle to load: must never be unpickled."""
    with np.load(io.BytesIO(files[SCORER_ARRAYS])) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["left"] = np.array([{"x": 1}] * len(arrays["left"]), dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_scorer_stored_without_probe_outputs_is_scored_by_its_pipeline_and_says_why():
    """Versions stored before probe outputs were kept: their scorer cannot be checked."""
    pipeline = fitted("RandomForestClassifier", {"n_estimators": 5, "random_state": 0})
    kind, files = serialize(TrainedModel(pipeline, card={}))
    files = {name: payload_bytes(payload) for name, payload in files.items()}
    assert SCORER_PROBE in files
    legacy = {name: data for name, data in files.items() if name != SCORER_PROBE}
    model = deserialize(kind, legacy, where="p/m@v", recorded=describe(kind, legacy))
    assert model.scorer is None and "no stored probe outputs" in model.scorer_note
    assert model.scorer_note.startswith("p/m@v: ") and "\n" not in model.scorer_note
    inputs = unseen_rows()
    np.testing.assert_allclose(model.predict_proba(inputs), pipeline.predict_proba(inputs)[:, 1])
    # With its probe outputs, the compiled scorer is used and agrees with the pipeline.
    checked = deserialize(kind, files, where="p/m@v", recorded=describe(kind, files))
    assert checked.scorer is not None and checked.scorer_note is None
    np.testing.assert_allclose(
        checked.predict_proba(inputs), pipeline.predict_proba(inputs)[:, 1], rtol=0, atol=TOLERANCE
    )
    assert type(checked.load_pipeline()).__name__ == "Pipeline"


def test_a_scorer_too_large_to_store_is_refused_at_compile_time(monkeypatch):
    """A pipeline whose arrays exceed the caps keeps its sklearn path, with the reason."""
    from unified_ai.ml import scorer_checks

    monkeypatch.setattr(scorer_checks, "MAX_ARRAY_BYTES", 1024)
    pipeline = fitted("RandomForestClassifier", {"n_estimators": 5, "random_state": 0})
    _, files = serialize(TrainedModel(pipeline, card={}))
    assert SCORER_JSON not in files
    assert b"more than 1,024" in payload_bytes(files[SCORER_REFUSED])
