"""Models from another framework through ONNX: checked, verified, stored, reloaded, refused."""

import numpy as np
import pytest

from unified_ai.io.formats import (
    MODEL_ONNX,
    UnsupportedValueError,
    describe,
    deserialize,
    payload_bytes,
    serialize,
)
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.onnx_model import (
    MAX_ONNX_BYTES,
    ONNX_FILE,
    ONNX_PROBE,
    OnnxError,
    OnnxModel,
    check_onnx_bytes,
    from_handback,
    probe_rows,
)
from unified_ai.ml.training import task_card
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.onnx.lgbm_train import lightgbm_predictions, train_lightgbm
from unified_ai_tests.tasks_fixtures import (
    make_multiclass_frame,
    make_regression_frame,
    write_multiclass_project,
    write_regression_project,
)

pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")

WHERE = "small/candidate_model@run-test (Pipes hand-off)"


def _handed_back(project, frame, *, tamper=1.0):
    classes = task_card(project, frame).get("classes")
    model, data, numeric = train_lightgbm(project, frame)
    probe = probe_rows(frame, numeric, [])
    reported = lightgbm_predictions(model, project.task, probe, numeric) * tamper
    onnx = from_handback(
        data,
        {"model_format": "onnx", "probe_predictions": reported.tolist()},
        frame,
        numeric=numeric,
        categorical=[],
        task=project.task,
        classes=classes,
        where=WHERE,
    )
    card = {"task": project.task, "features": {"numeric": numeric, "categorical": []}}
    if classes is not None:
        card["classes"] = classes
    return model, TrainedModel(card=card, onnx=onnx), numeric


def _round_trip(trained: TrainedModel) -> TrainedModel:
    kind, files = serialize(trained)
    assert kind == MODEL_ONNX
    assert describe(kind, files) == {"scorer": "onnx"}
    data = {name: payload_bytes(payload) for name, payload in files.items()}
    return deserialize(kind, data, where="small/candidate_model@v1")


def test_a_lightgbm_binary_model_is_stored_reloaded_and_predicts_like_lightgbm(tmp_path):
    project = load_project_file(write_project(tmp_path))
    frame = make_frame()
    lgbm, trained, numeric = _handed_back(project, frame)
    loaded = _round_trip(trained)
    assert loaded.onnx is not None and loaded.task == "binary_classification"
    fresh = make_frame(rows=300, seed=7)
    expected = lightgbm_predictions(lgbm, project.task, fresh, numeric)
    got = loaded.predict(fresh[numeric])
    assert got.shape == (300,)
    assert np.abs(got - expected).max() < 1e-4
    assert np.array_equal(loaded.predict_proba(fresh[numeric]), got)


def test_a_lightgbm_regressor_round_trips(tmp_path):
    project = load_project_file(write_regression_project(tmp_path))
    frame = make_regression_frame()
    lgbm, trained, numeric = _handed_back(project, frame)
    loaded = _round_trip(trained)
    fresh = make_regression_frame(rows=200, seed=5)
    got = loaded.predict(fresh[numeric])
    expected = lightgbm_predictions(lgbm, "regression", fresh, numeric)
    assert got.shape == (200,)
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_a_lightgbm_multiclass_model_round_trips(tmp_path):
    project = load_project_file(write_multiclass_project(tmp_path))
    frame = make_multiclass_frame()
    lgbm, trained, numeric = _handed_back(project, frame)
    loaded = _round_trip(trained)
    fresh = make_multiclass_frame(rows=120, seed=3)
    got = loaded.predict(fresh[numeric])
    expected = lightgbm_predictions(lgbm, project.task, fresh, numeric)
    assert got.shape == (120, len(loaded.classes)) == expected.shape
    assert np.abs(got - expected).max() < 1e-4


def test_an_onnx_model_that_disagrees_with_its_script_is_refused_in_one_line(tmp_path):
    project = load_project_file(write_project(tmp_path))
    with pytest.raises(OnnxError) as caught:
        _handed_back(project, make_frame(), tamper=0.5)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(WHERE)
    assert "the ONNX model disagrees with the predictions its training script reported" in message
    assert "largest |Δ| 0." in message and message.endswith("refusing it")


def test_a_stored_onnx_model_edited_apart_from_its_probe_is_refused_on_load(tmp_path):
    project = load_project_file(write_project(tmp_path))
    _, trained, _ = _handed_back(project, make_frame())
    other = load_project_file(write_project(tmp_path / "other"))
    _, replacement, _ = _handed_back(other, make_frame(seed=9))
    kind, files = serialize(trained)
    data = {name: payload_bytes(payload) for name, payload in files.items()}
    data[ONNX_FILE] = replacement.onnx.data  # a different model under the first one's probe
    with pytest.raises(UnsupportedValueError, match=r"largest \|Δ\|") as caught:
        deserialize(kind, data, where="small/candidate_model@v1")
    assert "\n" not in str(caught.value)
    data = {name: payload_bytes(payload) for name, payload in files.items()}
    data[ONNX_PROBE] = b"{not json"
    with pytest.raises(UnsupportedValueError, match="probe file is malformed"):
        deserialize(kind, data, where="small/candidate_model@v1")


def test_unsafe_onnx_files_are_refused_before_anything_runs():
    from onnx import TensorProto, helper

    with pytest.raises(OnnxError, match=r"over the .* byte cap"):
        check_onnx_bytes(b"\0" * (MAX_ONNX_BYTES + 1), where="w")
    with pytest.raises(OnnxError, match="not a readable ONNX model"):
        check_onnx_bytes(b"PK\x03\x04 a skops file", where="w")

    def model(node, initializers=(), domain="", opset_domain=""):
        graph = helper.make_graph(
            [node],
            "g",
            [helper.make_tensor_value_info("x1", TensorProto.FLOAT, [None, 1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
            initializer=list(initializers),
        )
        opsets = [helper.make_opsetid("", 15)]
        if opset_domain:
            opsets.append(helper.make_opsetid(opset_domain, 1))
        return helper.make_model(graph, opset_imports=opsets).SerializeToString()

    custom = helper.make_node("Evil", ["x1"], ["y"], domain="com.example")
    with pytest.raises(OnnxError, match=r"custom operator domains \['com.example'\]"):
        check_onnx_bytes(model(custom, opset_domain="com.example"), where="w")
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [2.0])
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("float_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    mul = helper.make_node("Mul", ["x1", "w"], ["y"])
    with pytest.raises(OnnxError, match="refers to an external data file"):
        check_onnx_bytes(model(mul, [weight]), where="w")
    # A sound graph whose input is neither a feature column nor a matrix of numeric features.
    plain = helper.make_node("Identity", ["x1"], ["y"])
    with pytest.raises(OnnxError, match="neither one per feature column"):
        OnnxModel(model(plain), numeric=["a", "b"], categorical=["c"], where="w")
    OnnxModel(model(plain), numeric=["x1"], categorical=[], where="w")  # one per column: fine
