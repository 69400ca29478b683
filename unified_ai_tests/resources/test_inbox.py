"""The inbox: which file names can be batches, and reading a file without silent shifts."""

import pytest
from upath import UPath

from unified_ai.resources.inbox import Inbox, InboxError, is_batch_name


@pytest.mark.parametrize(
    "name", ["batch-1.csv", "b_2.parquet", "2026-11-28T10.00.csv", "_x.csv", "a" * 121 + ".csv"]
)
def test_batch_names_that_can_become_partitions(name):
    assert is_batch_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "batch-1.csv\n",  # `$` alone would accept the trailing newline
        "batch-1.parquet\n",
        "batch-1.csv\nother.csv",
        ".batch-1.csv.tmp",  # a file still being written under a hidden name
        ".batch-1.csv",
        "bad name.csv",
        "batch-1.txt",
        "../up.csv",
        "a" * 122 + ".csv",
    ],
)
def test_names_that_are_not_batches(name):
    assert not is_batch_name(name)


@pytest.fixture
def folder(tmp_path):
    return UPath(tmp_path / "inbox")


def write(folder, name: str, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_rows_with_more_fields_than_the_header_are_refused_not_shifted(folder):
    inbox = Inbox(root=str(folder.parent))
    # A trailing comma on every row: pandas would take x1 as the index and shift every column.
    path = write(folder, "trailing.csv", "x1,x2,_row_id\n1.5,2.0,a,\n3.5,4.0,b,\n")
    with pytest.raises(InboxError) as caught:
        inbox.read(folder, "trailing.csv")
    assert str(caught.value) == f"{path}: line 2 has 4 fields, header has 3"

    # Only a later row is too long.
    path = write(folder, "late.csv", "x1,x2,_row_id\n1.5,2.0,a\n3.5,4.0,b\n5.5,6.0,c,9\n")
    with pytest.raises(InboxError) as caught:
        inbox.read(folder, "late.csv")
    assert str(caught.value) == f"{path}: line 4 has 4 fields, header has 3"


def test_a_regular_csv_reads_with_its_columns_in_place(folder):
    inbox = Inbox(root=str(folder.parent))
    write(folder, "ok.csv", 'x1,x2,_row_id\n1.5,2.0,a\n3.5,"4,0",b\n')
    frame = inbox.read(folder, "ok.csv")
    assert list(frame.columns) == ["x1", "x2", "_row_id"]
    assert frame["x1"].tolist() == [1.5, 3.5]
    assert frame["_row_id"].tolist() == ["a", "b"]
    assert list(frame.index) == [0, 1]


def test_files_lists_waiting_files_with_size_and_time(folder):
    write(folder, "b.csv", "x\n1\n")
    write(folder, "a.csv", "x\n1\n2\n")
    (folder / "processed").mkdir()
    write(folder / "processed", "old.csv", "x\n1\n")
    files = {f.name: f for f in Inbox.files(folder)}
    assert set(files) == {"a.csv", "b.csv"}
    assert files["a.csv"].size == len("x\n1\n2\n") and files["a.csv"].mtime > 0
    assert Inbox.files(folder / "missing") == []


def test_archiving_a_second_delivery_keeps_the_first(folder):
    inbox = Inbox(root=str(folder.parent))
    write(folder, "b.csv", "first\n")
    inbox.archive(folder, "b.csv", "quarantine")
    write(folder, "b.csv", "second\n")
    inbox.archive(folder, "b.csv", "quarantine")
    write(folder, "b.csv", "third\n")
    inbox.archive(folder, "b.csv", "quarantine")
    kept = folder / "quarantine"
    # The latest keeps the name (what a re-run reads); earlier deliveries are numbered.
    assert (kept / "b.csv").read_text() == "third\n"
    assert (kept / "b.csv.1").read_text() == "first\n"
    assert (kept / "b.csv.2").read_text() == "second\n"
    assert not (folder / "b.csv").exists()
