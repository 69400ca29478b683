"""Fuzzing production batches: every generated file is scored or refused with one line.

Files start as a valid batch and are broken the ways production data breaks: a column dropped
or renamed, cells set to values of another type (text in numbers, infinities, huge integers,
booleans, odd unicode, blanks, `NA`, NUL), repeated row ids, no rows, a trailing comma, garbage
bytes, or Parquet instead of CSV. Hundreds go through the same reading and validation the batch
run uses; a sample goes through the real batch sensor and scoring job on a real instance.
"""

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unified_ai.ml.validation import validate_batch
from unified_ai.projects.loader import load_project_file
from unified_ai.resources.inbox import Inbox, InboxError
from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.flows.helpers import project_defs, run_loop, step_failures
from unified_ai_tests.flows.monitoring_helpers import SensorDriver

CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    # Words pandas used to read as missing are text now (only an empty cell is missing), and a
    # NUL byte is refused: both must still end scored or refused in one line.
    st.sampled_from(
        [math.inf, -math.inf, math.nan, 1e308, "", " ", "yes", "1,5", "nan", "NA", "null", "\0"]
    ),
    st.text(max_size=8),
)
COLUMNS = ["x1", "x2", "colour", "region", "_row_id"]


def valid_batch(rows: int, seed: int) -> pd.DataFrame:
    frame = make_frame(rows, seed=seed).drop(columns=["label"])
    frame["_row_id"] = [f"r{seed}-{i}" for i in range(rows)]
    return frame


@st.composite
def batch_files(draw) -> tuple[str, bytes]:
    """(file name, bytes) of a generated batch."""
    frame = valid_batch(draw(st.integers(min_value=0, max_value=40)), draw(st.integers(0, 99)))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        action = draw(st.sampled_from(["cell", "cell", "cell", "drop", "rename", "dup", "add"]))
        if action == "cell" and len(frame) and len(frame.columns):
            column = draw(st.integers(min_value=0, max_value=len(frame.columns) - 1))
            row = draw(st.integers(min_value=0, max_value=len(frame) - 1))
            frame.isetitem(column, frame.iloc[:, column].astype(object))
            frame.iat[row, column] = draw(CELLS)
        elif action == "drop" and len(frame.columns) > 1:
            column = draw(st.integers(min_value=0, max_value=len(frame.columns) - 1))
            frame = frame.iloc[:, [i for i in range(len(frame.columns)) if i != column]]
        elif action == "rename" and len(frame.columns):
            column = draw(st.integers(min_value=0, max_value=len(frame.columns) - 1))
            names = list(frame.columns)
            names[column] = draw(st.text(min_size=1, max_size=6))
            frame.columns = names
        elif action == "dup" and len(frame) > 1 and list(frame.columns).count("_row_id") == 1:
            frame.loc[frame.index[-1], "_row_id"] = frame["_row_id"].iloc[0]
        elif action == "add":
            frame[draw(st.text(min_size=1, max_size=6))] = draw(CELLS)
    form = draw(st.sampled_from(["csv", "csv", "parquet", "trailing_comma", "garbage"]))
    if form == "parquet":
        try:
            frame.columns = [str(c) for c in frame.columns]
            return "b.parquet", frame.to_parquet(index=False)
        except Exception:  # mixed types Parquet cannot hold: send it as CSV
            form = "csv"
    text = frame.to_csv(index=False)
    if form == "trailing_comma":
        lines = text.splitlines()
        text = "\n".join([lines[0], *(line + "," for line in lines[1:])]) + "\n"
    data = text.encode()
    if form == "garbage":
        data = data[: draw(st.integers(0, len(data)))] + draw(st.binary(max_size=40))
    return "b.csv", data


def read_and_validate(project, folder, name: str):
    """None when the batch is valid, else the one-line reason it is refused."""
    try:
        frame = Inbox(root=str(folder)).read(folder, name)
    except InboxError as exc:
        return str(exc)
    outcome = validate_batch(project, frame)
    if outcome.passed:
        return None
    return outcome.describe()


def test_generated_batches_are_valid_or_refused_in_one_line(tmp_path):
    project = load_project_file(write_project(tmp_path / "projects"))
    folder = tmp_path / "inbox"
    folder.mkdir()
    from upath import UPath

    inbox = UPath(folder)
    outcomes = {"valid": 0, "refused": 0}

    @settings(
        max_examples=400,
        deadline=None,
        derandomize=True,  # CI reruns the same examples: a failure is reproducible
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(batch=batch_files())
    def check(batch):
        name, data = batch
        (folder / name).write_bytes(data)
        reason = read_and_validate(project, inbox, name)
        if reason is None:
            outcomes["valid"] += 1
        else:
            assert "\n" not in reason and reason.strip(), repr(reason)
            outcomes["refused"] += 1
        (folder / name).unlink()

    check()
    assert outcomes["valid"] > 20 and outcomes["refused"] > 100, outcomes


@pytest.mark.slow
def test_generated_batches_through_the_sensor_and_the_scoring_run(
    home, projects_dir, instance, tmp_path
):
    """A sample end to end: each is scored, or quarantined and kept, with a one-line reason."""
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    driver = SensorDriver(defs, instance)
    inbox = home / "inbox" / "small"
    inbox.mkdir(parents=True, exist_ok=True)
    written = []

    @settings(max_examples=25, deadline=None, derandomize=True, database=None)
    @given(batch=batch_files())
    def collect(batch):
        written.append(batch)

    collect()
    for index, (name, data) in enumerate(written):
        suffix = name.rsplit(".", 1)[1]
        (inbox / f"fuzz-{index:03d}.{suffix}").write_bytes(data)

    tick = driver.tick("small__batch_sensor")
    assert len(tick.requests) == len(written)
    scored = quarantined = 0
    for request in tick.requests:
        result = driver.launch(request, "small__score_batch")
        failures = step_failures(result)
        for step, message in failures.items():
            assert "\n" not in message, (step, message)
            assert "Traceback" not in message and "Error:" not in message.split(":")[0], message
        if result.success:
            scored += 1
        else:
            assert set(failures) <= {"small__production_batch"}, failures
            quarantined += 1
    handled = {p.name for p in (inbox / "processed").glob("*")} | {
        p.name for p in (inbox / "quarantine").glob("*")
    }
    assert len(handled) == len(written), "every file is kept, processed or quarantined"
    assert [p.name for p in inbox.iterdir() if p.is_file()] == []
    assert scored > 0 and quarantined > 0, (scored, quarantined)
