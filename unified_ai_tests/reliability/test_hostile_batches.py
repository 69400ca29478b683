"""Hostile batch files: limits hold while the file streams in, and a row means the same served
and read back from its batch.

A 1 GB single line and a 100,000-column header are refused in one line, reading a bounded
prefix (peak memory measured in a separate process); a NUL byte and a repeated header column
are refused instead of becoming NaN or `loanamt.1`; the string `NA` is a category on both
paths, so a served row and the same row scored from the file the traffic writer wrote get the
same probability.
"""

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from upath import UPath

from unified_ai.io.store import LineageStore
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.training import predict_proba
from unified_ai.ml.validation import validate_batch
from unified_ai.projects.loader import load_project_file
from unified_ai.resources.inbox import Inbox, InboxError
from unified_ai.serving.app import ServeOptions, create_app
from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.flows.helpers import project_defs, step_failures
from unified_ai_tests.flows.monitoring_helpers import SensorDriver
from unified_ai_tests.serving.helpers import call, deploy, running, served_version, wait_for

GIB = 1024**3
#: A child process reading a batch prints what it got and its peak resident memory.
READER = textwrap.dedent(
    """
    import json, resource, sys
    from upath import UPath
    from unified_ai.resources.inbox import Inbox, InboxError

    # A reader that would take the whole file fails here instead of exhausting the machine.
    resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))
    folder = UPath(sys.argv[1])
    try:
        frame = Inbox(root=str(folder.parent)).read(folder, sys.argv[2])
        outcome = f"read {frame.shape}"
    except InboxError as exc:
        outcome = str(exc)
    status = open("/proc/self/status").read().split("\\n")
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"outcome": outcome, "peak_kib": peak}))
    """
)


def read_in_child(folder, name: str) -> tuple[str, int]:
    """(the reader's one-line outcome, its peak resident memory in bytes)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", READER, str(folder), name],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["outcome"], report["peak_kib"] * 1024


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox" / "small"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def project(projects_dir):
    return load_project_file(write_project(projects_dir))


def read(folder, name: str):
    return Inbox(root=str(folder.parent)).read(UPath(folder), name)


def refusal(folder, name: str) -> str:
    with pytest.raises(InboxError) as caught:
        read(folder, name)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def test_a_1_gb_single_line_batch_is_refused_in_bounded_memory(inbox):
    path = inbox / "batch_x.csv"
    block = b"a," * (4 * 1024**2)
    with path.open("wb") as handle:  # 1 GiB, one line of short cells, no line break anywhere
        for _ in range(GIB // len(block)):
            handle.write(block)
    try:
        outcome, peak = read_in_child(inbox, path.name)
    finally:
        path.unlink()
    assert outcome == f"{path}: line 1 is longer than 1,048,576 bytes"
    assert peak < 300 * 1024**2, f"peak resident memory {peak / 1024**2:.0f} MB"


def test_a_100_000_column_batch_is_refused_in_one_line(inbox):
    header = ",".join(f"c{i}" for i in range(100_000))
    (inbox / "wide.csv").write_text(f"{header}\n{','.join(['1'] * 100_000)}\n")
    assert refusal(inbox, "wide.csv") == (
        f"{inbox / 'wide.csv'}: has 100,000 columns, more than the limit of 1,000"
    )
    # Parquet: counted from the footer, before any column is read.
    pd.DataFrame({f"c{i}": [1.0] for i in range(1_500)}).to_parquet(inbox / "wide.parquet")
    assert refusal(inbox, "wide.parquet") == (
        f"{inbox / 'wide.parquet'}: has 1,500 columns, more than the limit of 1,000"
    )


def test_a_long_cell_is_refused_even_when_quoted_across_lines(inbox):
    rows = make_frame(3).drop(columns=["label"]).assign(_row_id=["a", "b", "c"])
    text = rows.to_csv(index=False)
    # 200 KB in one quoted cell, a line break every 100 bytes: no line is long.
    long_cell = '"' + ("x" * 99 + "\n") * 2_000 + '"'
    (inbox / "cell.csv").write_text(text + f"0.5,0.5,{long_cell},north,d\n")
    line = len(text.splitlines()) + 1
    assert refusal(inbox, "cell.csv") == (
        f"{inbox / 'cell.csv'}: line {line} has a cell longer than 65,536 bytes"
    )


def test_a_nul_byte_in_a_cell_is_refused_not_read_as_missing(inbox):
    (inbox / "nul.csv").write_bytes(
        b"x1,x2,colour,region,_row_id\n0.1,0.2,red,north,a\n0.3,\x00,blue,south,b\n"
    )
    assert refusal(inbox, "nul.csv") == (
        f"{inbox / 'nul.csv'}: line 3 holds a NUL byte, which no CSV cell may hold"
    )


def test_a_repeated_header_column_is_refused_not_renamed(inbox):
    (inbox / "dup.csv").write_text("loanamt,x2,loanamt,_row_id\n1,2,3,a\n")
    assert refusal(inbox, "dup.csv") == (
        f"{inbox / 'dup.csv'}: the header names column 'loanamt' more than once"
    )


def test_missing_words_are_text_and_a_numeric_column_stays_numeric(inbox, project):
    frame = make_frame(4).drop(columns=["label"]).assign(_row_id=list("abcd"))
    frame = frame.astype({"x2": object})
    frame.loc[1, "x2"] = "NA"  # a missing number written as a word
    frame.loc[2, "x2"] = None  # an empty cell: missing
    frame.to_csv(inbox / "words.csv", index=False)
    batch = read(inbox, "words.csv")
    assert batch["x2"].tolist()[1] == "NA" and pd.isna(batch["x2"].tolist()[2])
    outcome = validate_batch(project, batch)
    assert not outcome.passed
    assert outcome.failures == [
        "x2: 1 row(s), e.g. row 1: field 'x2': is text ('NA'), not a number"
    ]


def without_categories(projects_dir):
    """The small project, its `colour` free text (no category list), so `NA` is a category."""
    path = write_project(projects_dir)
    path.write_text(path.read_text().replace("  colour: {categories: [red, green, blue]}\n", ""))
    project = load_project_file(path)
    assert "colour" not in project.columns
    return project


def test_a_served_row_and_its_batch_row_score_the_same(projects_dir, tmp_path):
    project = without_categories(projects_dir)
    store = LineageStore(tmp_path / "store")
    inbox = tmp_path / "inbox" / "small"
    _, model_version = deploy(store, project)
    sent = [
        {"x1": 0.3, "x2": -0.2, "colour": "NA", "region": "north"},
        {"x1": -1.1, "x2": 0.4, "colour": "null", "region": "south"},
        {"x1": 0.7, "x2": 1.5, "colour": None, "region": "north"},
        {"x1": 0.1, "x2": 0.1, "colour": "red", "region": "south"},
        {"x1": "", "x2": 0.25, "colour": "", "region": "north"},  # an empty cell in the batch
    ]
    options = ServeOptions(poll_seconds=0.1, retry_seconds=0.5, flush_seconds=0.2)
    with running(create_app(project, store, str(inbox), options)) as url:
        wait_for(lambda: served_version(url))
        status, body, _ = call(f"{url}/v1/projects/small/predict", "POST", {"rows": sent})
        assert status == 200, body
        wait_for(lambda: list(inbox.glob("*.csv")))
    served = {a["row_id"]: a["probability"] for a in body["predictions"]}
    (batch_file,) = inbox.glob("*.csv")
    batch = read(inbox, batch_file.name)
    assert validate_batch(project, batch).passed
    # Scored as the predictions asset scores a batch: the same probabilities, to the bit.
    model = store.read_value(["small", "candidate_model"], model_version)
    scored = predict_proba(model, batch, FeatureColumns(**model.card["features"]))
    assert dict(zip(batch["_row_id"], scored.tolist(), strict=True)) == served
    # Only the empty cell (a JSON null) is missing; the words are categories, as served.
    assert batch["colour"].tolist()[:2] == ["NA", "null"] and pd.isna(batch["colour"][2])
    assert pd.isna(batch["colour"][4]) and pd.isna(batch["x1"][4])


def test_hostile_files_are_quarantined_by_the_batch_run_in_one_line(home, projects_dir, instance):
    """Through the real batch sensor and scoring job: refused, kept, the reason in one line."""
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    folder = home / "inbox" / "small"
    folder.mkdir(parents=True)
    (folder / "nul.csv").write_bytes(b"x1,x2,colour,region,_row_id\n0.1,\x00,red,north,a\n")
    (folder / "dup.csv").write_text("x1,x2,colour,x1,region,_row_id\n1,2,red,3,north,a\n")
    (folder / "long.csv").write_text("x1,x2,colour,region,_row_id\n" + "1," * 1_000_000 + "\n")
    driver = SensorDriver(defs, instance)
    requests = driver.tick("small__batch_sensor").requests
    assert sorted(r.partition_key for r in requests) == ["dup.csv", "long.csv", "nul.csv"]
    reasons = {}
    for request in requests:
        result = driver.launch(request, "small__score_batch")
        assert not result.success
        failures = step_failures(result)
        assert set(failures) == {"small__production_batch"}, failures
        reasons[request.partition_key] = failures["small__production_batch"]
    assert all("\n" not in reason for reason in reasons.values()), reasons
    assert "line 2 holds a NUL byte" in reasons["nul.csv"]
    assert "the header names column 'x1' more than once" in reasons["dup.csv"]
    assert "line 2 is longer than 1,048,576 bytes" in reasons["long.csv"]
    kept = sorted(p.name for p in (folder / "quarantine").iterdir())
    assert kept == ["dup.csv", "long.csv", "nul.csv"]
