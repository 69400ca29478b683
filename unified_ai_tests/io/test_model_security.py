"""Crafted skops files never run code on load.

skops rebuilds a node by calling the type it names with arguments from the file, so a file that
names `builtins.exec` or a numpy helper that executes a string runs that string while it is
decoded. Each payload here is a real skops archive (a `schema.json` written the way skops writes
its own), aimed at a marker file under `tmp_path`: the loader must refuse it with one line that
names the asset and version, and the marker must never appear.
"""

import contextlib
import io
import json
import zipfile
from pathlib import Path

import pytest
import skops
import skops.io as sio

from unified_ai.io.formats import MODEL, UnsupportedValueError, deserialize
from unified_ai.io.store import LineageStore

#: The skops protocol this installation writes (read from a real file, not from skops' privates).
PROTOCOL = json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps([]))).read("schema.json"))["protocol"]
WHERE = "p/candidate_model@0123456789abcdef"


def skops_file(root: dict) -> bytes:
    """A skops archive whose schema is `root`."""
    schema = {**root, "protocol": PROTOCOL, "_skops_version": skops.__version__}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return buffer.getvalue()


def json_node(value) -> dict:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
    }


def tuple_node(*items: dict) -> dict:
    return {
        "__class__": "tuple",
        "__module__": "builtins",
        "__loader__": "TupleNode",
        "content": list(items),
    }


def dict_node(content: dict[str, dict], key_types: list[dict]) -> dict:
    """A dict; skops rebuilds each key by calling the matching `key_types` node on it."""
    return {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": content,
        "key_types": {
            "__class__": "list",
            "__module__": "builtins",
            "__loader__": "ListNode",
            "content": key_types,
        },
    }


def call(module: str, name: str, *args: dict) -> dict:
    """A node skops rebuilds as `module.name(*args)`."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": tuple_node(*args),
    }


def function(module: str, name: str) -> dict:
    return {"__class__": name, "__module__": module, "__loader__": "FunctionNode"}


def operator_node(name: str, *args: str) -> dict:
    return {
        "__class__": name,
        "__module__": "operator",
        "__loader__": "OperatorFuncNode",
        "attrs": tuple_node(*(json_node(arg) for arg in args)),
    }


class Tripwire:
    """A class outside the model's world: skops would rebuild it and call its `__setstate__`."""

    def __setstate__(self, state: dict) -> None:
        Path(state["path"]).write_text("unknown class was instantiated")


def code_for(marker: Path) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('payload ran')"


def payloads(marker: Path) -> dict[str, tuple[bytes, str]]:
    """Name → (crafted file, a type the refusal must name)."""
    code = code_for(marker)
    return {
        "exec": (skops_file(call("builtins", "exec", json_node(code))), "builtins.exec"),
        "eval": (skops_file(call("builtins", "eval", json_node(code))), "builtins.eval"),
        # DictNode calls its key-type node on each key: a function node becomes a call site.
        "exec_as_key_type": (
            skops_file(dict_node({code: json_node(1)}, [function("builtins", "exec")])),
            "builtins.exec",
        ),
        # numpy's own `runstring(astr, dict)` is `exec(astr, dict)`.
        "numpy_runstring": (
            skops_file(
                call(
                    "numpy.testing._private.utils",
                    "runstring",
                    json_node(code),
                    dict_node({}, []),
                )
            ),
            "numpy.testing._private.utils.runstring",
        ),
        # getattr(__import__('builtins'), 'exec') built by nested calls, then called on a key.
        "getattr_chain": (
            skops_file(
                dict_node(
                    {code: json_node(1)},
                    [
                        call(
                            "builtins",
                            "getattr",
                            call("builtins", "__import__", json_node("builtins")),
                            json_node("exec"),
                        )
                    ],
                )
            ),
            "builtins.getattr",
        ),
        "attrgetter_chain": (
            skops_file(
                dict_node(
                    {code: json_node(1)},
                    [
                        operator_node("attrgetter", "__class__.__base__.__subclasses__"),
                        operator_node("methodcaller", "format", "x"),
                    ],
                )
            ),
            "operator.attrgetter",
        ),
        "unknown_class": (
            skops_file(
                {
                    "__class__": "Tripwire",
                    "__module__": __name__,
                    "__loader__": "ObjectNode",
                    "content": dict_node(
                        {"path": json_node(str(marker))},
                        [{"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}],
                    ),
                }
            ),
            f"{__name__}.Tripwire",
        ),
    }


PAYLOADS = list(payloads(Path("unused")))
#: Payloads that really run code when skops is told to trust what they name (a broken payload
#: would make its refusal test vacuous). The operator chain reaches no call site on skops 0.16.
LIVE = [name for name in PAYLOADS if name != "attrgetter_chain"]


def assert_refused(raised: pytest.ExceptionInfo, where: str, type_name: str) -> None:
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{where}: model file would instantiate "), message
    assert type_name in message
    assert message.endswith("which are not allowed; refusing to load it"), message


@pytest.mark.parametrize("name", LIVE)
def test_the_payloads_are_live_when_trusted(tmp_path, name):
    marker = tmp_path / "marker"
    data, _ = payloads(marker)[name]
    # Some payloads fail after their code ran (e.g. on the None their call returned).
    with contextlib.suppress(Exception):
        sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert marker.exists(), f"{name}: payload did not run; its refusal test proves nothing"


@pytest.mark.parametrize("name", PAYLOADS)
def test_crafted_model_files_are_refused_before_decoding(tmp_path, name):
    marker = tmp_path / "marker"
    data, type_name = payloads(marker)[name]
    with pytest.raises(UnsupportedValueError) as raised:
        deserialize(MODEL, {"model.skops": data, "card.json": b"{}"}, where=WHERE)
    assert_refused(raised, WHERE, type_name)
    assert not marker.exists()


@pytest.mark.parametrize("name", PAYLOADS)
def test_crafted_model_versions_in_the_store_are_refused_on_read(tmp_path, name):
    marker = tmp_path / "marker"
    data, type_name = payloads(marker)[name]
    store = LineageStore(tmp_path / "store")
    path = ["p", "candidate_model"]
    version = store.write_version(path, MODEL, {"model.skops": data, "card.json": b"{}"}).version
    store.set_current(path, version, action="materialize")
    with pytest.raises(UnsupportedValueError) as raised:
        store.read_value(path, store.require_current(path))
    assert_refused(raised, f"p/candidate_model@{version}", type_name)
    assert not marker.exists()


def test_a_known_sklearn_class_outside_the_pipelines_is_refused(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    data = sio.dumps(KNeighborsClassifier().fit([[0.0], [1.0]], [0, 1]))
    with pytest.raises(UnsupportedValueError) as raised:
        deserialize(MODEL, {"model.skops": data, "card.json": b"{}"}, where=WHERE)
    assert_refused(raised, WHERE, "sklearn.neighbors._classification.KNeighborsClassifier")


def test_an_older_skops_protocol_is_refused(tmp_path):
    # Protocol 0 function nodes name their target inside `content`, not in __module__/__class__.
    node = {
        "__class__": "function",
        "__module__": "builtins",
        "__loader__": "FunctionNode",
        "content": {"module_path": "builtins", "function": "exec"},
    }
    schema = {**node, "protocol": 0, "_skops_version": "0.6.0"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    with pytest.raises(UnsupportedValueError, match=rf"^{WHERE}: model file uses skops protocol 0"):
        deserialize(MODEL, {"model.skops": buffer.getvalue(), "card.json": b"{}"}, where=WHERE)


@pytest.mark.parametrize(
    "data",
    [b"not a zip", skops_file({"__loader__": "DictNode"}), b"PK\x03\x04truncated"],
    ids=["not_a_zip", "node_without_type", "truncated_zip"],
)
def test_unreadable_model_files_are_refused_in_one_line(data):
    with pytest.raises(UnsupportedValueError) as raised:
        deserialize(MODEL, {"model.skops": data, "card.json": b"{}"}, where=WHERE)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{WHERE}: ") and message.endswith("refusing to load it"), message


def test_a_listed_type_reached_through_a_call_site_is_refused():
    # `Pipeline` is on the allow-list, but a model never rebuilds it by calling it with
    # arguments from the file: only the loaders real pipelines use are accepted.
    data = skops_file(call("sklearn.pipeline", "Pipeline", json_node([])))
    with pytest.raises(UnsupportedValueError) as raised:
        deserialize(MODEL, {"model.skops": data, "card.json": b"{}"}, where=WHERE)
    assert_refused(raised, WHERE, "sklearn.pipeline.Pipeline (via ConstructorFromReduceNode)")
