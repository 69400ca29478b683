"""A forger with write access to the lineage store, against a real store on disk.

Rows 4-7 of the hostile-client table: rewritten history (a replayed pointer, deleted or edited
entries), forged compiled scorers, scorer files with non-finite values or a decompression bomb,
and versions the reader refuses, which `store verify --deep` must report.
"""

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.io.formats import MODEL, UnsupportedValueError, serialize
from unified_ai.io.store import CURRENT, IntegrityError, LineageStore
from unified_ai.ml import scorer as scorer_lib
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.scorer import SCORER_ARRAYS, SCORER_JSON, CompiledScorer
from unified_ai.ml.training import build_pipeline, model_inputs
from unified_ai.projects.schema import EstimatorSpec
from unified_ai_tests.conftest import make_frame

KEY = "hostile-store-signing-key-0123456789"
PATH = ["p", "candidate_model"]
FEATURES = FeatureColumns(numeric=["x1", "x2"], categorical=["colour"])
#: Decompressed sizes of the bombs below: above the per-array cap (`MAX_ARRAY_BYTES`, 128 MiB).
BOMB_BYTES = 264 << 20
SMALL_BOMB_BYTES = 132 << 20


def fitted(class_name: str = "DecisionTreeClassifier", params: dict | None = None):
    frame = make_frame(rows=400)
    spec = EstimatorSpec.model_validate({"class": class_name, "params": params or {}})
    pipeline = build_pipeline(spec, FEATURES)
    return pipeline.fit(model_inputs(frame, FEATURES), frame["label"])


@pytest.fixture(scope="module")
def tree():
    return fitted("DecisionTreeClassifier", {"max_depth": 3, "random_state": 0})


def model_files(pipeline) -> dict[str, bytes]:
    _, files = serialize(TrainedModel(pipeline, card={"features": FEATURES.__dict__}))
    return {name: bytes(data) for name, data in files.items()}


def arrays_of(files: dict[str, bytes]) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(files[SCORER_ARRAYS])) as archive:
        return {name: archive[name].copy() for name in archive.files}


def with_arrays(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    arrays = {**arrays_of(files), **changes}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return {**files, SCORER_ARRAYS: buffer.getvalue()}


def store_files(store: LineageStore, files: dict[str, bytes]) -> str:
    """What a forger with write access does: files and a manifest whose checksums add up."""
    version = store.write_version(PATH, MODEL, files).version
    store.set_current(PATH, version, action="materialize")
    return version


def refused(store: LineageStore, version: str) -> str:
    with pytest.raises(UnsupportedValueError) as raised:
        store.read_value(PATH, version)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"p/candidate_model@{version}: ")
    return message


def leaf_of(files: dict[str, bytes], row) -> int:
    """The leaf of the stored single tree that `row` (model inputs) reaches."""
    scorer = CompiledScorer(json.loads(files[SCORER_JSON]), arrays_of(files))
    matrix = scorer.design_matrix(row).astype(np.float32).astype(np.float64)[0]
    a, node = scorer.arrays, int(scorer.arrays["roots"][0])
    while not a["is_leaf"][node]:
        node = int(
            a["left"][node]
            if matrix[a["feature"][node]] <= a["threshold"][node]
            else a["right"][node]
        )
    return node


# -- row 4: history that cannot be rewritten ---------------------------------------------------


def signed_history(tmp_path) -> tuple[LineageStore, list[str], bytes]:
    """Two materializations, the pointer saved, then a rollback (signing on)."""
    store = LineageStore(tmp_path / "store", signing_key=KEY)
    path = ["p", "deployed_model"]
    versions = []
    for n in (1, 2):
        version = store.write_version(path, *serialize({"n": n})).version
        store.set_current(path, version, action="materialize")
        versions.append(version)
    saved = (tmp_path / "store" / "p" / "deployed_model" / CURRENT).read_bytes()
    store.set_current(path, versions[0], action="rollback", reason="live metric below floor")
    return store, versions, saved


def test_a_replayed_signed_pointer_is_refused_in_reads_and_verify(tmp_path):
    store, versions, saved = signed_history(tmp_path)
    path = ["p", "deployed_model"]
    pointer = tmp_path / "store" / "p" / "deployed_model" / CURRENT
    assert store.current_version(path) == versions[0]

    pointer.write_bytes(saved)  # the pointer from before the rollback, validly signed
    with pytest.raises(IntegrityError) as raised:
        store.current_version(path)
    message = str(raised.value)
    assert "\n" not in message and "replayed" in message and str(pointer) in message
    problems = store.verify().problems
    assert [p.path for p in problems] == [str(pointer)] and "replayed" in problems[0].problem

    # A rollback repairs it, and the history says what it found.
    store.set_current(path, versions[0], action="rollback", actor="oncall")
    assert store.current_version(path) == versions[0]
    assert "CURRENT was unreadable" in store.history(path)[-1].reason
    assert store.verify().problems == []


def test_deleted_or_edited_history_entries_break_the_chain(tmp_path):
    store, versions, _ = signed_history(tmp_path)
    path = ["p", "deployed_model"]
    history = tmp_path / "store" / "p" / "deployed_model" / "history"
    entries = sorted(history.iterdir())
    assert len(entries) == 3

    # The newest entry's copy deleted: the pointer holds it, so nothing is lost; verify says so
    # and the next move restores it.
    newest = entries[-1].read_bytes()
    entries[-1].unlink()
    assert store.current_version(path) == versions[0]
    assert [m.action for m in store.history(path)] == ["materialize", "materialize", "rollback"]
    assert "not the newest entry" in store.verify().problems[0].problem
    entries[-1].write_bytes(newest)

    # An entry in the middle deleted: reading history and verify refuse the broken chain.
    middle = entries[1].read_bytes()
    entries[1].unlink()
    with pytest.raises(IntegrityError, match="history chain broken"):
        store.history(path)
    assert any("chain broken" in p.problem for p in store.verify().problems)
    entries[1].write_bytes(middle)
    assert store.verify().problems == []

    # An unsigned store cannot check signatures; the chain still catches an edited entry.
    plain = LineageStore(tmp_path / "plain")
    for n in (1, 2, 3):
        plain.set_current(path, plain.write_version(path, *serialize({"n": n})).version, action="m")
    first = sorted((tmp_path / "plain" / "p" / "deployed_model" / "history").iterdir())[0]
    record = json.loads(first.read_text())
    record["actor"] = "someone-else"
    first.write_text(json.dumps(record, sort_keys=True))
    with pytest.raises(IntegrityError, match="history chain broken"):
        plain.history(path)
    assert any("chain broken" in p.problem for p in plain.verify().problems)


# -- row 5: a forged compiled scorer in an unsigned store --------------------------------------


def test_a_forged_scorer_is_refused_against_its_stored_probe_outputs(tmp_path, tree):
    store = LineageStore(tmp_path / "store")  # unsigned: the forger rewrites checksums too
    files = model_files(tree)
    good = store_files(store, files)
    model = store.read_value(PATH, good)
    assert model.scorer is not None and getattr(model, "scorer_note", None) is None

    # One row the pipeline scores low is sent to a leaf forged to say 1.0.
    rows = model_inputs(make_frame(rows=150, seed=5), FEATURES)
    expected = tree.predict_proba(rows)[:, 1]
    target = int(np.argmin(expected))
    value = arrays_of(files)["value"]
    value[leaf_of(files, rows.iloc[[target]])] = 1.0
    forged = store_files(store, with_arrays(files, value=value))
    message = refused(store, forged)
    assert "differs from the probabilities stored for its probe rows" in message
    assert store.verify().problems == []  # checksums add up: only decoding finds it
    [problem] = store.verify(deep=True).problems
    assert problem.version == forged and "probe rows" in problem.problem

    # Scorer and probe outputs forged together: loading the pipeline finds the disagreement.
    probe = json.loads(files[scorer_lib.SCORER_PROBE])
    spec, arrays = json.loads(files[SCORER_JSON]), {**arrays_of(files), "value": value}
    scorer = CompiledScorer(spec, arrays, probe)
    probe["expected"] = scorer.predict_proba(scorer.probe_inputs()).tolist()
    both = with_arrays(files, value=value)
    both[scorer_lib.SCORER_PROBE] = json.dumps(probe, sort_keys=True).encode()
    version = store_files(store, both)
    model = store.read_value(PATH, version)
    with pytest.raises(UnsupportedValueError, match="model pipeline differs from the probabil"):
        model.load_pipeline()


def test_the_k8s_runtime_refuses_an_unsigned_store(tmp_path):
    env = {
        "UNIFIED_AI_RUNTIME": "k8s",
        "UNIFIED_AI_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": "http://mlflow.mlops:5000",
        "UNIFIED_AI_SIGNING_KEY": "",
        "UNIFIED_AI_ALLOW_UNSIGNED": "",
    }
    result = CliRunner().invoke(main, ["store", "verify"], env=env)
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert "UNIFIED_AI_SIGNING_KEY" in line and "UNIFIED_AI_ALLOW_UNSIGNED=1" in line
    allowed = CliRunner().invoke(
        main, ["store", "verify"], env={**env, "UNIFIED_AI_ALLOW_UNSIGNED": "1"}
    )
    assert allowed.exit_code == 0, allowed.output


# -- row 6: non-finite values, zero scales, extra arrays, a decompression bomb ------------------


@pytest.mark.parametrize(
    ("array", "change", "reason"),
    [
        ("value", "nan", "non-finite"),
        ("value", "inf", "non-finite"),
        ("threshold", "inf", "non-finite"),
        ("b0_scale", "zero", "zero scale"),
        ("b0_mean", "inf", "non-finite"),
        ("threshold", "float32", "dtype float32"),
        ("b0_fill", "longer", "shape (3,)"),
        ("evil", "extra", "not part of this scorer"),
        ("roots", "missing", "is missing"),
    ],
)
def test_unsound_scorer_arrays_are_refused_naming_version_and_array(
    tmp_path, tree, array, change, reason
):
    store = LineageStore(tmp_path / "store")
    files = model_files(tree)
    arrays = arrays_of(files)
    if change == "extra":
        arrays[array] = np.zeros(3)
    elif change == "missing":
        del arrays[array]
    elif change == "float32":
        arrays[array] = arrays[array].astype(np.float32)
    elif change == "longer":
        arrays[array] = np.append(arrays[array], 0.0)
    else:
        forged = arrays[array].copy()
        forged[-1] = {"nan": np.nan, "inf": np.inf, "zero": 0.0}[change]
        arrays[array] = forged
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    version = store_files(store, {**files, SCORER_ARRAYS: buffer.getvalue()})
    message = refused(store, version)
    assert f"array {array!r}" in message and reason in message


def test_non_finite_linear_coefficients_are_refused(tmp_path):
    store = LineageStore(tmp_path / "store")
    files = model_files(fitted("LogisticRegression", {"max_iter": 200}))
    coef = arrays_of(files)["coef"]
    coef[0] = np.nan
    version = store_files(store, with_arrays(files, coef=coef))
    assert "array 'coef' holds a non-finite value" in refused(store, version)


def bomb(files: dict[str, bytes], name: str, nbytes: int) -> bytes:
    """The scorer's npz with `name` replaced by `nbytes` of zeros, deflated (a zip bomb)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays_of(files).items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                if key != name:
                    np.lib.format.write_array(member, array)
                    continue
                header = {"descr": "<f8", "fortran_order": False, "shape": (nbytes // 8,)}
                np.lib.format.write_array_header_1_0(member, header)
                chunk = bytes(4 << 20)
                for _ in range(nbytes // len(chunk)):
                    member.write(chunk)
    return buffer.getvalue()


def test_a_decompression_bomb_is_refused_before_it_is_decompressed(tmp_path, tree):
    store = LineageStore(tmp_path / "store")
    files = model_files(tree)
    size = BOMB_BYTES  # of zeros, in well under 1 MiB
    data = bomb(files, "value", size)
    assert len(data) < 1 << 20
    version = store_files(store, {**files, SCORER_ARRAYS: data})
    tracemalloc.start()
    try:
        message = refused(store, version)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"peak {peak:,} bytes while refusing a {size:,}-byte array"
    assert "array 'value' would decompress to" in message
    assert size > scorer_lib.MAX_ARRAY_BYTES


# -- row 7: store verify --deep decodes every payload with the reader's rules -------------------


def test_store_verify_deep_reports_each_version_a_reader_refuses(home, tree):
    store = LineageStore(home / "store")
    files = model_files(tree)
    good = store_files(store, files)
    left = arrays_of(files)["left"]
    cycle = left.copy()
    cycle[0] = 0  # the root its own child
    objects = arrays_of(files)
    objects["left"] = np.array([{"x": 1}] * len(left), dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **objects)
    value = arrays_of(files)["value"]
    value[-1] = np.nan
    bad = {
        "child index": store_files(store, with_arrays(files, left=cycle)),
        "object array": store_files(store, {**files, SCORER_ARRAYS: buffer.getvalue()}),
        "scorer.npz missing": store_files(
            store, {k: v for k, v in files.items() if k != SCORER_ARRAYS}
        ),
        "non-finite": store_files(store, with_arrays(files, value=value)),
        "would decompress": store_files(
            store, {**files, SCORER_ARRAYS: bomb(files, "threshold", SMALL_BOMB_BYTES)}
        ),
    }
    store.set_current(PATH, good, action="rollback")

    shallow = CliRunner().invoke(main, ["store", "verify", "p"])
    assert shallow.exit_code == 0 and "no problems" in shallow.output, shallow.output

    result = CliRunner().invoke(main, ["store", "verify", "p", "--deep"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if "p/candidate_model@" in line]
    assert len(lines) == len(bad), result.output
    for reason, version in bad.items():
        [line] = [line for line in lines if f"p/candidate_model@{version}:" in line]
        assert reason in line, line
    assert f"@{good}" not in result.output
    assert f"{len(bad)} problem(s)" in result.output


# -- row 6: `predictions` never stores a non-finite score ---------------------------------------


def test_predictions_refuse_non_finite_scores_and_nothing_becomes_current(
    home, projects_dir, instance, monkeypatch
):
    import dagster as dg

    from unified_ai.names import ROW_ID, batches_partitions
    from unified_ai_tests.conftest import write_project
    from unified_ai_tests.flows.helpers import project_defs, step_failures

    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    store = LineageStore(home / "store")
    pipeline = fitted("LogisticRegression", {"max_iter": 200})
    card = {"features": {"numeric": FEATURES.numeric, "categorical": FEATURES.categorical}}
    model = store.write_version(
        ["small", "candidate_model"], *serialize(TrainedModel(pipeline, card))
    )
    deployment = store.write_version(
        ["small", "deployed_model"], *serialize({"model_version": model.version})
    )
    store.set_current(["small", "deployed_model"], deployment.version, action="materialize")

    # Infinite inputs whose terms cancel: the compiled scorer's sum is inf - inf = NaN.
    coef = pipeline.steps[-1][1].coef_[0]
    batch = make_frame(rows=40, seed=2)
    batch[ROW_ID] = [f"b1.csv:{i}" for i in range(len(batch))]
    batch.loc[3, "x1"] = np.inf
    batch.loc[3, "x2"] = -np.sign(coef[0] * coef[1]) * np.inf
    key = "b1.csv"
    batch_path = ["small", "production_batch", "partitions", key]
    stored = store.write_version(batch_path, *serialize(batch))
    store.set_current(batch_path, stored.version, action="materialize")
    instance.add_dynamic_partitions(batches_partitions("small"), [key])

    defs = project_defs(projects_dir)
    result = dg.materialize(
        [*defs.assets],
        selection=dg.AssetSelection.assets(dg.AssetKey(["small", "predictions"])),
        resources=defs.resources,
        instance=instance,
        partition_key=key,
        raise_on_error=False,
    )
    assert not result.success
    [message] = step_failures(result).values()
    assert "small/predictions" in message and "non-finite score" in message
    assert "row b1.csv:3" in message and "\n" not in message.strip()
    assert store.current_version(["small", "predictions", "partitions", key]) is None
