import io
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from unified_ai.io.formats import (
    ALLOWED_MODEL_TYPES,
    FRAME,
    JSON,
    MODEL,
    UnsupportedValueError,
    describe,
    deserialize,
    model_types,
    payload_bytes,
    serialize,
)
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import Report, TrainedModel
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.training import build_pipeline, model_inputs
from unified_ai.projects.schema import ESTIMATORS, REGRESSORS, EstimatorSpec
from unified_ai_tests.conftest import make_frame


def roundtrip(value):
    kind, files = serialize(value)
    encoded = {name: payload_bytes(payload) for name, payload in files.items()}
    return kind, deserialize(kind, encoded, where="test")


def test_frames_are_parquet():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    kind, back = roundtrip(frame)
    assert kind == FRAME
    pd.testing.assert_frame_equal(back, frame)


def test_models_are_skops_with_their_card():
    fitted = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    kind, back = roundtrip(TrainedModel(pipeline=fitted, card={"estimator": "LogisticRegression"}))
    assert kind == MODEL
    assert back.card == {"estimator": "LogisticRegression"}
    assert list(back.pipeline.predict([[0.0], [1.0]])) == [0, 1]


def test_reports_keep_attachments_and_json_round_trips():
    _, back = roundtrip(Report(body={"x": 1}, attachments={"page.html": "<p>hi</p>"}))
    assert back.body == {"x": 1} and back.attachments == {"page.html": "<p>hi</p>"}
    assert roundtrip({"a": [1, 2]})[1] == {"a": [1, 2]}


def test_unsupported_values_are_refused_not_pickled():
    with pytest.raises(UnsupportedValueError, match="cannot store a set"):
        serialize({1, 2})


class Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle payload executed')",))


def test_a_pickle_in_place_of_a_model_never_runs():
    payload = pickle.dumps(Boom())
    with pytest.raises(Exception) as raised:  # skops refuses to parse it at all
        deserialize(MODEL, {"model.skops": payload, "card.json": b"{}"}, where="p/m@x")
    assert not isinstance(raised.value, SystemExit)


class Foreign:
    """A plain class: skops can store it, but it is not an sklearn/numpy type."""

    def __init__(self):
        self.value = 1


def test_untrusted_types_in_a_skops_file_are_refused():
    data = sio.dumps(Foreign())
    with pytest.raises(UnsupportedValueError, match=r"^p/m@x: model file would instantiate .*"):
        deserialize(MODEL, {"model.skops": data, "card.json": b"{}"}, where="p/m@x")


def test_unknown_kind_is_refused():
    with pytest.raises(UnsupportedValueError, match="unknown stored kind 'pickle'"):
        deserialize("pickle", {"x": io.BytesIO().getvalue()}, where="p/m@x")


FEATURES = FeatureColumns(numeric=["x1", "x2"], categorical=["colour"])
#: Parameters that change what a fitted estimator holds (class-weight dicts, early stopping,
#: out-of-bag scores, subsampling with its random state).
VARIANTS = [
    ("HistGradientBoostingClassifier", {"early_stopping": True, "n_iter_no_change": 2}),
    ("HistGradientBoostingClassifier", {"class_weight": "balanced", "random_state": 0}),
    ("GradientBoostingClassifier", {"subsample": 0.8, "n_iter_no_change": 3, "random_state": 1}),
    ("RandomForestClassifier", {"oob_score": True, "class_weight": "balanced_subsample"}),
    ("ExtraTreesClassifier", {"bootstrap": True, "oob_score": True}),
    ("LogisticRegression", {"class_weight": {0: 1.0, 1: 3.0}}),
    ("DecisionTreeClassifier", {"class_weight": {0: 1, 1: 2}, "max_features": 0.5}),
]


#: Regressors' losses, and classifiers on five classes (their losses differ from binary ones).
TASK_VARIANTS = [
    ("HistGradientBoostingRegressor", {"loss": "absolute_error"}),
    ("HistGradientBoostingRegressor", {"loss": "poisson"}),
    ("HistGradientBoostingRegressor", {"loss": "gamma"}),
    ("HistGradientBoostingRegressor", {"loss": "quantile", "quantile": 0.8}),
    ("HistGradientBoostingRegressor", {"early_stopping": True, "n_iter_no_change": 2}),
    ("GradientBoostingRegressor", {"loss": "huber", "subsample": 0.8, "random_state": 1}),
    ("GradientBoostingRegressor", {"loss": "quantile", "n_iter_no_change": 3}),
    ("RandomForestRegressor", {"oob_score": True}),
    ("ExtraTreesRegressor", {"bootstrap": True, "oob_score": True}),
]
MULTICLASS = "multiclass"


def fitted_project_pipeline(class_name: str, params: dict, target: str = "label"):
    """The pipeline `unified_ai.ml.training` builds, fitted as `fit` does.

    The target is the binary label, a positive value for regressors, or five classes when
    `target` is `MULTICLASS`.
    """
    frame = make_frame(rows=600)
    spec = EstimatorSpec.model_validate({"class": class_name, "params": params})
    pipeline = build_pipeline(spec, FEATURES)
    inputs = model_inputs(frame, FEATURES)
    if class_name in REGRESSORS:
        y = (frame["x1"].abs() * 3 + frame["label"] + 0.1).to_numpy()
    elif target == MULTICLASS:
        y = np.random.default_rng(0).integers(0, 5, len(frame))
    else:
        y = frame["label"]
    return pipeline.fit(inputs, y), inputs


def predictions(pipeline, inputs):
    return (
        pipeline.predict(inputs)
        if not hasattr(pipeline, "predict_proba")
        else (pipeline.predict_proba(inputs))
    )


_CLASSIFIERS = [name for name in ESTIMATORS if name not in REGRESSORS]
CASES = (
    [(name, {}, "label") for name in ESTIMATORS]
    + [(name, params, "label") for name, params in VARIANTS]
    + [(name, {}, MULTICLASS) for name in _CLASSIFIERS]
    + [(name, params, "value") for name, params in TASK_VARIANTS]
)


@pytest.mark.parametrize(
    ("class_name", "params", "target"),
    CASES,
    ids=[f"{name}-{target}-{i}" for i, (name, _, target) in enumerate(CASES)],
)
def test_every_supported_estimator_stays_on_the_allow_list_and_round_trips(
    class_name, params, target
):
    pipeline, inputs = fitted_project_pipeline(class_name, params, target)
    task = {MULTICLASS: "multiclass_classification", "value": "regression"}.get(
        target, "regression" if class_name in REGRESSORS else "binary_classification"
    )
    card = {"task": task, "classes": list(range(5)) if target == MULTICLASS else None}
    kind, files = serialize(TrainedModel(pipeline=pipeline, card=card))
    encoded = {name: payload_bytes(payload) for name, payload in files.items()}
    found = model_types(encoded["model.skops"])
    assert set(found) - ALLOWED_MODEL_TYPES == set(), "add these exact names to the allow-list"
    assert ESTIMATORS[class_name].rsplit(".", 1)[1] in {name.rsplit(".", 1)[1] for name in found}
    back = deserialize(kind, encoded, where="p/m@x", recorded=describe(kind, files))
    np.testing.assert_allclose(predictions(back.pipeline, inputs), predictions(pipeline, inputs))
    np.testing.assert_allclose(back.predict(inputs), TrainedModel(pipeline, card).predict(inputs))


def test_the_allow_list_names_exact_types_not_modules():
    assert all(not name.endswith(".") and "." in name for name in ALLOWED_MODEL_TYPES)
    for dangerous in ("builtins.exec", "builtins.eval", "builtins.getattr", "builtins.__import__"):
        assert dangerous not in ALLOWED_MODEL_TYPES


def test_models_record_their_sorted_type_list_in_the_manifest(tmp_path):
    pipeline, _ = fitted_project_pipeline("HistGradientBoostingClassifier", {})
    model = TrainedModel(pipeline=pipeline, card={"estimator": "HistGradientBoostingClassifier"})
    store = LineageStore(tmp_path / "store")
    manifest = store.write_version(["p", "m"], *serialize(model))
    recorded = manifest.metadata["model_types"]
    assert recorded == sorted(recorded) == model_types(sio.dumps(pipeline))
    assert "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in recorded
    assert store.read_manifest(["p", "m"], manifest.version).metadata == manifest.metadata
    assert store.read_value(["p", "m"], manifest.version).card == model.card
    assert describe(JSON, {"payload.json": b"{}"}) == {}


def test_a_model_whose_types_differ_from_its_record_is_refused():
    logistic, _ = fitted_project_pipeline("LogisticRegression", {})
    tree, _ = fitted_project_pipeline("DecisionTreeClassifier", {})
    recorded = describe(*serialize(TrainedModel(pipeline=logistic, card={})))
    swapped = {"model.skops": sio.dumps(tree), "card.json": b"{}"}
    with pytest.raises(UnsupportedValueError) as raised:
        deserialize(MODEL, swapped, where="p/m@0123456789abcdef", recorded=recorded)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("p/m@0123456789abcdef: model file ")
    assert "DecisionTreeClassifier" in message and message.endswith("refusing to load it")


def test_the_store_checks_a_model_against_the_types_its_manifest_records(tmp_path):
    logistic, _ = fitted_project_pipeline("LogisticRegression", {})
    store = LineageStore(tmp_path / "store")
    manifest = store.write_version(["p", "m"], *serialize(TrainedModel(logistic, card={})))
    # Record a different (allowed) type list: the file no longer matches what was saved.
    path = tmp_path / "store" / "p" / "m" / "versions" / manifest.version / "manifest.json"
    raw = json.loads(path.read_text())
    raw["metadata"]["model_types"] = sorted(
        {*raw["metadata"]["model_types"], "sklearn.tree._tree.Tree"}
    )
    path.write_text(json.dumps(raw))
    with pytest.raises(UnsupportedValueError, match=rf"^p/m@{manifest.version}: model file "):
        store.read_value(["p", "m"], manifest.version)


def test_a_model_that_could_not_be_loaded_back_is_not_stored(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    fitted = KNeighborsClassifier(n_neighbors=1).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(UnsupportedValueError, match=r"KNeighborsClassifier.*could never be loaded"):
        serialize(TrainedModel(pipeline=fitted, card={}))


def test_report_plots_round_trip_as_bytes_beside_text_pages():
    png = b"\x89PNG\r\n\x1a\n\x00\xff binary"
    _, back = roundtrip(
        Report(body={"x": 1}, attachments={"page.html": "<p>é</p>", "roc.png": png})
    )
    assert back.attachments == {"page.html": "<p>é</p>", "roc.png": png}
