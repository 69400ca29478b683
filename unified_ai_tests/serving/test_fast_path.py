"""The one-row path (plain values, typed arrays, no DataFrame) against the batch path (a pandas
frame through `unified_ai.ml.rows`): identical answers and identical refusals, row for row and
word for word, on a corpus of hostile requests for every task; and identical inbox files."""

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unified_ai.io.store import LineageStore
from unified_ai.projects.loader import load_project_file
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION
from unified_ai.serving.body import records_of
from unified_ai.serving.follower import load_deployment
from unified_ai.serving.options import ServeOptions
from unified_ai.serving.refusal import Refusal
from unified_ai.serving.service import ServingService
from unified_ai_tests.conftest import write_project
from unified_ai_tests.serving.helpers import deploy, rows
from unified_ai_tests.serving.task_helpers import deploy_task, task_rows
from unified_ai_tests.tasks_fixtures import write_multiclass_project, write_regression_project

#: Values a hostile client puts in a cell (the batch fuzzing's, and what JSON can carry).
CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [math.inf, -math.inf, math.nan, 1e308, 10**400, "", " ", "yes", "1,5", "nan", "NA"]
    ),
    st.sampled_from(
        ["null", "\0", "red", "green", "0", "1.0", 3, 3.0, -0.0, "x" * 300, 10, 10.0, -10.5]
    ),
    st.sampled_from([[], {}, [1], {"a": 1}]),
    st.text(max_size=8),
)
NAMES = st.one_of(st.sampled_from(["x1", "x2", "colour", "region", "label", "_row_id"]), st.text())


@st.composite
def requests(draw, good: list[dict]) -> list:
    """A request: valid rows broken the ways clients break them."""
    count = draw(st.integers(min_value=1, max_value=6))
    sent: list = [dict(good[i % len(good)]) for i in range(count)]
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        index = draw(st.integers(min_value=0, max_value=count - 1))
        row = sent[index]
        action = draw(st.sampled_from(["cell", "cell", "cell", "drop", "add", "replace"]))
        if not isinstance(row, dict):
            continue
        if action == "cell" and row:
            row[draw(st.sampled_from(sorted(row)))] = draw(CELLS)
        elif action == "drop" and row:
            del row[draw(st.sampled_from(sorted(row)))]
        elif action == "add":
            row[draw(NAMES)] = draw(CELLS)
        elif action == "replace":
            sent[index] = draw(CELLS)
    return sent


def outcome(service: ServingService, score, served, sent) -> tuple:
    """What a request gets: ("ok", answer without row ids) or ("refused", the refusal)."""
    try:
        answer = score(served, sent)
    except Refusal as refusal:
        problems = [p.as_dict() for p in refusal.problems]
        return ("refused", refusal.status, refusal.reason, refusal.detail, problems)
    for row in answer["predictions"]:
        row.pop("row_id")
    return ("ok", answer)


def same(a, b) -> bool:
    """Equal, NaN equal to NaN (answers never hold NaN; refusals may name it)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def services(project, store, tmp_path):
    """Two services of one deployment, each with its own inbox: fast path, batch path."""
    options = ServeOptions(flush_seconds=3600, flush_rows=100_000, max_pending_rows=100_000)
    fast = ServingService(project, store, tmp_path / "fast", options)
    batch = ServingService(project, store, tmp_path / "batch", options)
    served = load_deployment(
        store, project, store.current_version([project.name, "deployed_model"])
    )
    return fast, batch, served


def deployed(task: str, tmp_path):
    """(project, store, good rows) of a project of `task` with a deployment."""
    store = LineageStore(tmp_path / "store")
    folder = tmp_path / "projects"
    if task == BINARY:
        project = load_project_file(write_project(folder))
        deploy(store, project)
        return project, store, rows(4)
    writer = write_regression_project if task == REGRESSION else write_multiclass_project
    project = load_project_file(writer(folder))
    deploy_task(store, project)
    return project, store, task_rows(task, 4)[0]


@pytest.mark.parametrize("task", [BINARY, MULTICLASS, REGRESSION])
def test_fast_and_batch_paths_answer_and_refuse_identically(task, tmp_path):
    project, store, good = deployed(task, tmp_path)
    fast, batch, served = services(project, store, tmp_path)
    counts = {"ok": 0, "refused": 0}

    @settings(
        max_examples=250,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(sent=requests(good))
    def check(sent):
        quick = outcome(fast, fast.score, served, sent)
        framed = outcome(batch, batch.score_frame, served, sent)
        assert same(quick, framed), (sent, quick, framed)
        counts[quick[0]] += 1

    check()
    assert counts["ok"] > 20 and counts["refused"] > 100, counts

    # What reached each inbox is the same table (row ids aside: each writer names its batches).
    for service in (fast, batch):
        service.writer.flush(force=True)
    fast_files = sorted((tmp_path / "fast").glob("*.csv"))
    batch_files = sorted((tmp_path / "batch").glob("*.csv"))
    assert len(fast_files) == len(batch_files) == 1
    written = [
        pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=["_row_id"])
        for path in (fast_files[0], batch_files[0])
    ]
    assert fast_files[0].read_bytes().count(b"\n") == batch_files[0].read_bytes().count(b"\n")
    pd.testing.assert_frame_equal(*written)


def test_hand_written_hostile_requests_are_refused_identically(tmp_path):
    project, store, good = deployed(BINARY, tmp_path)
    fast, batch, served = services(project, store, tmp_path)
    row = good[0]
    cases = [
        [{**row, "x2": "12"}],
        [{**row, "colour": "purple"}],
        [{**row, "x1": 11}],
        [{**row, "x1": 10**400}],
        [{**row, "x1": 10**30}],
        [{k: v for k, v in row.items() if k != "region"}],
        [{**row, "label": 1}],
        [{**row, "x2": {"a": 1}}],
        [{**row, "x1": 99, "x2": "a"}, {**row, "colour": 1}],
        [{**row, "colour": None}],
        [{**row, "colour": ""}, {**row, "region": ""}, {**row, "x1": ""}],
        [{**row, "region": "a\x01b"}, {**row, "region": "r" * 300}],
        [{**row, "region": "é" * 9000}],
        [{**row, "region": "é" * 4000}, {**row, "region": "\ud800" * 9000}],
        [{**row, "region": "x" * 16_000}],
        [{**row, "x1": True, "x2": False}],
        [{**row, "colour": True}],
        [{**row, "colour": 2.0}],
        [{**row, "x1": math.nan}],
        [{**row, "x1": -math.inf}],
        ["text", 3, None, [row]],
        [row, {**row, "x1": 1e308}],
    ]
    for sent in cases:
        quick = outcome(fast, fast.score, served, sent)
        framed = outcome(batch, batch.score_frame, served, sent)
        assert same(quick, framed), (sent, quick, framed)


def test_bodies_parse_as_the_standard_library_parses_them():
    """orjson first, the standard library where it differs: the same records either way."""
    import json

    bodies = [
        b'{"rows": [{"x1": 1.5, "x2": -0.0, "colour": "red", "region": "north"}]}',
        b'[{"x1": 18446744073709551616, "x2": -9223372036854775809}]',
        b'[{"x1": 123456789012345678901234567890}]',
        b'[{"x1": Infinity, "x2": NaN, "colour": "\\ud800"}]',
        b'[{"x1": 1e400}]',
        b'\xef\xbb\xbf[{"x1": 1}]',
        '[{"colour": "\u00e9"}]'.encode("utf-16"),
        b'[{"x1": 0.1, "x1": 0.30000000000000004}]',
    ]
    for body in bodies:
        expected = json.loads(body)
        expected = expected["rows"] if isinstance(expected, dict) else expected
        assert same(records_of(body, "rows", 10), expected), body
    for bad in (b'{"rows": [', b"[1,]", b'"\xff"', b"[" * 5000 + b"]" * 5000):
        with pytest.raises(Refusal) as refused:
            records_of(bad, "rows", 10)
        assert refused.value.status == 400


def test_a_model_of_numeric_features_only_is_fed_by_the_fast_path(tmp_path):
    from unified_ai.ml.data import FeatureColumns
    from unified_ai.serving.plain_rows import check_rows, row_plan

    project = load_project_file(write_project(tmp_path / "projects"))
    plan = row_plan(project, FeatureColumns(numeric=["x1", "x2"], categorical=[]), {})
    sent = [{"x1": 1, "x2": None, "region": "north"}, {"x1": 2.5, "x2": 3.0, "region": None}]
    checked, problems = check_rows(sent, plan, lambda values: [])
    assert problems == [] and checked is not None
    assert list(checked.model) == ["x1", "x2"]
    assert checked.model["x1"].tolist() == [1.0, 2.5]
    assert math.isnan(checked.model["x2"][0]) and checked.model["x2"][1] == 3.0
    assert checked.written["region"] == ["north", None]
