import io
import pickle

import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from unified_ai.io.formats import (
    FRAME,
    MODEL,
    UnsupportedValueError,
    deserialize,
    payload_bytes,
    serialize,
)
from unified_ai.ml.artifacts import Report, TrainedModel


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
    with pytest.raises(UnsupportedValueError, match=r"p/m@x: .*untrusted types"):
        deserialize(MODEL, {"model.skops": data, "card.json": b"{}"}, where="p/m@x")


def test_unknown_kind_is_refused():
    with pytest.raises(UnsupportedValueError, match="unknown stored kind 'pickle'"):
        deserialize("pickle", {"x": io.BytesIO().getvalue()}, where="p/m@x")
