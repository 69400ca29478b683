"""The compiled scorer for every task: every built-in estimator, the fast columns path, the
stored formats (old binary scorers still load), tampering, and batches without sklearn."""

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
)
from unified_ai.ml.training import build_pipeline, model_inputs
from unified_ai.projects.schema import ESTIMATORS, REGRESSORS, EstimatorSpec
from unified_ai.projects.schema_training import ESTIMATOR_PARAMS
from unified_ai_tests.conftest import make_frame

FEATURES = FeatureColumns(numeric=["x1", "x2"], categorical=["colour"])
BINARY, MULTICLASS, REGRESSION = "binary_classification", "multiclass_classification", "regression"
#: The card's classes: index 2 ("c") never occurs in the training rows (a column of zeros).
CLASSES = ["a", "b", "c", "d"]
#: Few, shallow trees: the tests stay fast.
SMALL = {"n_estimators": 4, "max_iter": 8, "max_depth": 4, "random_state": 0, "max_leaf_nodes": 8}
CASES = [
    (name, task)
    for name in ESTIMATORS
    for task in ([REGRESSION] if name in REGRESSORS else [BINARY, MULTICLASS])
]


def target(frame: pd.DataFrame, task: str) -> np.ndarray:
    x1, x2 = frame["x1"].fillna(0).to_numpy(), frame["x2"].to_numpy()
    if task == REGRESSION:
        rng = np.random.default_rng(1)
        return (
            3 * x1
            - 2 * x2
            + np.where(frame["colour"] == "red", 4.0, 0.0)
            + rng.normal(size=len(x1))
        )
    if task == BINARY:
        return frame["label"].to_numpy()
    return np.where(x2 > 0.6, 3, np.where(x1 > 0, 1, 0))  # indices 0, 1, 3 of CLASSES


def fitted(class_name: str, task: str):
    frame = make_frame(rows=300)
    frame.loc[::17, "x1"] = np.nan
    frame.loc[::23, "colour"] = None
    params = {k: v for k, v in SMALL.items() if k in ESTIMATOR_PARAMS[class_name]}
    if class_name == "LogisticRegression":
        params["max_iter"] = 500
    spec = EstimatorSpec.model_validate({"class": class_name, "params": params})
    pipeline = build_pipeline(spec, FEATURES)
    return pipeline.fit(model_inputs(frame, FEATURES), target(frame, task))


def card(task: str) -> dict:
    features = {"numeric": FEATURES.numeric, "categorical": FEATURES.categorical}
    return {
        "task": task,
        "features": features,
        **({"classes": CLASSES} if task == MULTICLASS else {}),
    }


def expected(pipeline, task: str, inputs: pd.DataFrame) -> np.ndarray:
    if task == BINARY:
        return pipeline.predict_proba(inputs)[:, 1]
    if task == REGRESSION:
        return pipeline.predict(inputs)
    proba = np.zeros((len(inputs), len(CLASSES)))
    proba[:, pipeline.classes_] = pipeline.predict_proba(inputs)
    return proba


def unseen_rows(rows: int = 120) -> pd.DataFrame:
    frame = make_frame(rows=rows, seed=9)
    frame.loc[::7, "x2"] = np.nan
    frame.loc[::11, "colour"] = "purple"
    frame.loc[::13, "colour"] = None
    frame.loc[::19, "x1"] = 1e6
    return model_inputs(frame, FEATURES)


def stored(model: TrainedModel) -> tuple[str, dict[str, bytes], dict]:
    kind, files = serialize(model)
    encoded = {name: payload_bytes(payload) for name, payload in files.items()}
    return kind, encoded, describe(kind, files)


def as_columns(inputs: pd.DataFrame) -> dict[str, list]:
    """Rows as a request gives them: numbers or None, text or None."""
    return {
        column: [None if value is None or value != value else value for value in inputs[column]]
        for column in inputs.columns
    }


@pytest.mark.parametrize(("class_name", "task"), CASES)
def test_every_estimator_of_every_task_compiles_and_answers_as_its_pipeline(class_name, task):
    pipeline = fitted(class_name, task)
    kind, files, recorded = stored(TrainedModel(pipeline, card=card(task)))
    assert recorded["scorer"] == "compiled", recorded
    model = deserialize(kind, files, where="p/m@v", recorded=recorded)
    assert model.scorer is not None and model.scorer.task == task
    inputs = unseen_rows()
    want = expected(pipeline, task, inputs)
    got = model.predict(inputs)
    assert got.shape == ((len(inputs), len(CLASSES)) if task == MULTICLASS else (len(inputs),))
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)
    assert not model.pipeline_loaded  # the compiled scorer answered
    if task == MULTICLASS:
        assert (got[:, 2] == 0).all()  # the class the training rows lacked

    # Rows as columns (no DataFrame): exactly the same numbers, a few rows or many.
    columns = as_columns(inputs)
    for rows in (1, 5, len(inputs)):
        head = {name: values[:rows] for name, values in columns.items()}
        assert np.array_equal(model.scorer.predict_columns(head), got[:rows])
        assert np.array_equal(model.predict_columns(head), got[:rows])
    # One row alone scores as it does inside a batch.
    for row in (0, 7, 11, 19):
        one = {name: values[row : row + 1] for name, values in columns.items()}
        assert np.array_equal(model.predict_columns(one)[0], got[row])


@pytest.mark.parametrize("task", [MULTICLASS, REGRESSION])
def test_large_batches_use_the_fitted_model_on_the_compiled_matrix(task, monkeypatch):
    name = "RandomForestClassifier" if task == MULTICLASS else "RandomForestRegressor"
    pipeline = fitted(name, task)
    kind, files, recorded = stored(TrainedModel(pipeline, card=card(task)))
    model = deserialize(kind, files, where="p/m@v", recorded=recorded)
    inputs = unseen_rows()
    monkeypatch.setattr(artifacts, "COMPILED_MAX_ROWS", len(inputs) - 1)
    got = model.predict(inputs)
    assert model.pipeline_loaded
    np.testing.assert_allclose(got, expected(pipeline, task, inputs), rtol=0, atol=TOLERANCE)


def test_without_a_compiled_scorer_predict_columns_builds_model_inputs():
    pipeline = fitted("LogisticRegression", MULTICLASS)
    model = TrainedModel(pipeline, card=card(MULTICLASS))
    inputs = unseen_rows()
    columns = as_columns(inputs)
    np.testing.assert_array_equal(model.predict_columns(columns), model.predict(inputs))
    with pytest.raises(ValueError, match="input column 'x2' is missing"):
        model.predict_columns({"x1": [1.0], "colour": ["red"]})
    compiled = deserialize(*stored(model)[:2], where="p/m@v", recorded=stored(model)[2])
    with pytest.raises(ValueError, match="input column 'x2' is missing"):
        compiled.predict_columns({"x1": [1.0], "colour": ["red"]})
    with pytest.raises(ValueError, match="differ in length"):
        compiled.predict_columns({"x1": [1.0], "x2": [1.0, 2.0], "colour": ["red"]})


def test_a_pipeline_that_does_not_compile_keeps_its_reason_and_the_sklearn_path():
    frame = make_frame(rows=300)
    # A log link: the trees' sum is not the prediction, so the compiled form is refused.
    params = {"loss": "poisson", "max_iter": 5}
    spec = EstimatorSpec.model_validate(
        {"class": "HistGradientBoostingRegressor", "params": params}
    )
    inputs = model_inputs(frame, FEATURES)
    poisson = build_pipeline(spec, FEATURES).fit(inputs, np.exp(frame["x1"]))
    kind, files, recorded = stored(TrainedModel(poisson, card=card(REGRESSION)))
    assert SCORER_JSON not in files
    assert recorded["scorer"] == "sklearn: the ensemble's starting prediction is not a constant"
    model = deserialize(kind, files, where="p/m@v", recorded=recorded)
    assert model.scorer is None
    np.testing.assert_allclose(model.predict(inputs.head(20)), poisson.predict(inputs.head(20)))
    columns = as_columns(inputs.head(3))
    np.testing.assert_array_equal(model.predict_columns(columns), model.predict(inputs.head(3)))


def test_a_scorer_stored_in_the_binary_format_1_still_loads_and_is_verified():
    for name in ("LogisticRegression", "HistGradientBoostingClassifier", "RandomForestClassifier"):
        pipeline = fitted(name, BINARY)
        kind, files, recorded = stored(TrainedModel(pipeline, card={}))
        old = as_format_1(files)
        model = deserialize(kind, old, where="p/m@v", recorded=describe(kind, old))
        assert model.scorer is not None and model.scorer.spec["format"] == 1
        inputs = unseen_rows()
        want = pipeline.predict_proba(inputs)[:, 1]
        np.testing.assert_allclose(model.predict(inputs), want, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(model.predict_proba(inputs), want, rtol=0, atol=TOLERANCE)
        columns = as_columns(inputs)
        assert np.array_equal(model.predict_columns(columns), model.predict(inputs))
        # Forged in the old format: still refused against its stored probe outputs.
        spec = json.loads(old[SCORER_JSON])
        key = "coef" if spec["model"]["kind"] == "linear" else "value"
        arrays = arrays_of(old)
        arrays[key] = arrays[key] + 0.25
        with pytest.raises(UnsupportedValueError, match="differs from the probabilities"):
            deserialize(kind, with_arrays(old, **arrays), where="p/m@v", recorded=recorded)


def as_format_1(files: dict[str, bytes]) -> dict[str, bytes]:
    """A binary scorer's files as code before format 2 wrote them."""
    spec = json.loads(files[SCORER_JSON])
    model = spec["model"]
    if model["kind"] == "linear":
        old_model = {"kind": "linear"}
    else:
        old_model = {k: model[k] for k in ("kind", "float32", "scale", "depth")}
        if model["kind"] == "trees_sum":
            [old_model["baseline"]] = model["baseline"]
    old = {"format": 1, "blocks": spec["blocks"], "model": old_model}
    return {**files, SCORER_JSON: json.dumps(old, sort_keys=True).encode()}


def arrays_of(files: dict[str, bytes]) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(files[SCORER_ARRAYS])) as archive:
        return {name: archive[name].copy() for name in archive.files}


def with_arrays(files: dict[str, bytes], **arrays) -> dict[str, bytes]:
    buffer = io.BytesIO()
    np.savez(buffer, **{**arrays_of(files), **arrays})
    return {**files, SCORER_ARRAYS: buffer.getvalue()}


@pytest.mark.parametrize(
    ("class_name", "task"),
    [
        ("HistGradientBoostingClassifier", MULTICLASS),
        ("LogisticRegression", MULTICLASS),
        ("RandomForestClassifier", MULTICLASS),
        ("Ridge", REGRESSION),
        ("GradientBoostingRegressor", REGRESSION),
    ],
)
def test_a_tampered_scorer_of_another_task_is_refused_in_one_line(class_name, task):
    pipeline = fitted(class_name, task)
    _, files, recorded = stored(TrainedModel(pipeline, card=card(task)))
    spec = json.loads(files[SCORER_JSON])
    key = "coef" if spec["model"]["kind"] == "linear" else "value"
    arrays = arrays_of(files)
    changed = arrays[key].copy()
    changed[len(changed) // 2 :] += 0.5
    beyond = {**spec, "class_columns": [0, 1, 9]} if task == MULTICLASS else None
    short = arrays[key][:-1]
    forged = [
        (with_arrays(files, **{key: changed}), "differs from the probabilities"),
        (with_arrays(files, **{key: short}), f"array {key!r} has shape"),
        (
            {**files, SCORER_JSON: json.dumps({**spec, "task": BINARY}).encode()},
            "inconsistent",
        ),
    ]
    if beyond is not None:
        forged.append(({**files, SCORER_JSON: json.dumps(beyond).encode()}, "class_columns"))
    for bad, reason in forged:
        with pytest.raises(UnsupportedValueError) as raised:
            deserialize(MODEL, bad, where="p/m@v", recorded=recorded)
        message = str(raised.value)
        assert message.startswith("p/m@v: ") and reason in message, message
        assert "\n" not in message and message.endswith("refusing to load it")
    # A sound scorer under a model card of another task (or other classes) is refused too.
    other = {**card(task), "task": BINARY if task != BINARY else REGRESSION}
    with pytest.raises(UnsupportedValueError, match="model card says"):
        deserialize(
            MODEL,
            {**files, "card.json": json.dumps(other).encode()},
            where="p/m@v",
            recorded=recorded,
        )
    # The probe outputs of a multiclass scorer are a row of class probabilities per row.
    probe = json.loads(files[SCORER_PROBE])
    assert np.asarray(probe["expected"]).shape[1:] == (
        (len(CLASSES),) if task == MULTICLASS else ()
    )


@pytest.mark.parametrize("task", [MULTICLASS, REGRESSION])
def test_a_stored_model_of_any_task_scores_a_batch_without_sklearn(task, tmp_path):
    name = "HistGradientBoostingClassifier" if task == MULTICLASS else "Ridge"
    pipeline = fitted(name, task)
    store = LineageStore(tmp_path / "store")
    manifest = store.write_version(["p", "m"], *serialize(TrainedModel(pipeline, card=card(task))))
    assert manifest.metadata["scorer"] == "compiled"
    inputs = unseen_rows()
    # Pickled, not Parquet: a Parquet read can leave Arrow threads that abort the interpreter
    # as it exits (apache/arrow#34314), after the answer; the model's path is what is tested.
    inputs.to_pickle(tmp_path / "rows.pkl")
    script = f"""
import json, sys
import pandas as pd
from unified_ai.io.store import LineageStore
model = LineageStore({str(tmp_path / "store")!r}).read_value(["p", "m"], {manifest.version!r})
got = model.predict(pd.read_pickle({str(tmp_path / "rows.pkl")!r}))
one = model.predict_columns({{"x1": [0.5], "x2": [None], "colour": ["red"]}})
heavy = sorted(m for m in ("sklearn", "skops", "scipy") if m in sys.modules)
print(json.dumps({{"got": got.tolist(), "heavy": heavy, "loaded": model.pipeline_loaded}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["heavy"] == [] and seen["loaded"] is False
    want = expected(pipeline, task, inputs)
    np.testing.assert_allclose(seen["got"], want, rtol=0, atol=TOLERANCE)


def test_a_scorer_without_probe_outputs_of_another_task_is_scored_by_its_pipeline():
    pipeline = fitted("ExtraTreesRegressor", REGRESSION)
    kind, files, _ = stored(TrainedModel(pipeline, card=card(REGRESSION)))
    legacy = {name: data for name, data in files.items() if name != SCORER_PROBE}
    model = deserialize(kind, legacy, where="p/m@v", recorded=describe(kind, legacy))
    assert model.scorer is None and "no stored probe outputs" in model.scorer_note
    inputs = unseen_rows()
    np.testing.assert_allclose(model.predict(inputs), pipeline.predict(inputs))


def test_the_refusal_reason_is_recorded_for_a_multiclass_model_without_its_classes():
    pipeline = fitted("LogisticRegression", MULTICLASS)
    _, files, recorded = stored(TrainedModel(pipeline, card={"task": MULTICLASS}))
    assert SCORER_JSON not in files
    assert files[SCORER_REFUSED] == b"a multiclass model card without its classes"
    assert recorded["scorer"] == "sklearn: a multiclass model card without its classes"


def test_compiled_scorer_files_need_numpy_only_to_load():
    """`CompiledScorer.from_files` reads every task's scorer (the reader imports no sklearn)."""
    pipeline = fitted("GradientBoostingClassifier", MULTICLASS)
    _, files, _ = stored(TrainedModel(pipeline, card=card(MULTICLASS)))
    scorer = CompiledScorer.from_files(files, where="p/m@v")
    assert scorer.class_count == len(CLASSES) and scorer.spec["format"] == 2
