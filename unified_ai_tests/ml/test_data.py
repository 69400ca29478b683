"""Reading data files: taken as written or refused in one line, never silently shifted, and
never read whole before their limits are checked."""

import io
from dataclasses import replace

import pandas as pd
import pytest

from unified_ai.ml.data import (
    DataSourceError,
    FileLimitError,
    FileLimits,
    FileRuleError,
    load_source,
    read_csv_checked,
    read_parquet_checked,
    resolve_features,
    target_classes,
)
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import make_frame, write_project


def test_training_csv_with_a_trailing_comma_is_refused(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x1,x2,label\n1.0,2.0,1,\n3.0,4.0,0,\n")
    with pytest.raises(DataSourceError) as caught:
        load_source(str(path))
    assert str(caught.value) == f"data source {path}: line 2 has 4 fields, header has 3"


def test_training_csv_reads_unchanged(tmp_path):
    path = tmp_path / "data.csv"
    make_frame(20).to_csv(path, index=False)
    frame = load_source(str(path))
    assert list(frame.columns) == ["x1", "x2", "colour", "region", "label"]
    assert list(frame.index) == list(range(20))


def test_target_classes_are_the_distinct_training_values(projects_dir):
    project = load_project_file(write_project(projects_dir))
    assert target_classes(project, make_frame()) == [0, 1]


SMALL_LINES = FileLimits(max_line_bytes=100)
SMALL = FileLimits(max_file_bytes=10_000, max_line_bytes=100, max_cell_bytes=20, max_columns=5)


def refused(data: bytes, limits: FileLimits = SMALL) -> str:
    with pytest.raises(FileRuleError) as caught:
        read_csv_checked(data, limits)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_only_an_empty_cell_is_missing_in_a_csv():
    frame = read_csv_checked(b"x,colour\n1.5,NA\n,null\n2,None\n3,\n")
    assert frame["colour"].tolist()[:3] == ["NA", "null", "None"]
    assert pd.isna(frame["colour"][3]) and pd.isna(frame["x"][1])
    assert frame["x"].dtype == "float64"


def test_a_number_column_with_missing_words_keeps_its_numbers(projects_dir):
    frame = read_csv_checked(b"x,y\n1.5,a\nNA,b\n,c\n7,d\n")
    assert frame["x"].tolist()[:2] == [1.5, "NA"] and frame["x"].tolist()[3] == 7.0
    project = load_project_file(write_project(projects_dir))
    project = project.model_copy(
        update={"features": project.features.model_copy(update={"all_but": ["label"]})}
    )
    # Inferred as a number (validation then names the word), not silently as a category.
    assert resolve_features(project, frame.assign(label=0)).numeric == ["x"]
    # Words alone say nothing of the type: a column where every row is `NA` stays text.
    only_words = read_csv_checked(b"x,y\nNA,a\nNA,b\n")
    assert only_words["x"].tolist() == ["NA", "NA"]
    assert resolve_features(project, only_words.assign(label=0)).categorical == ["x", "y"]


def test_limits_are_checked_as_the_file_streams():
    assert refused(b"a,b\n1," + b"y" * 200 + b"\n", replace(SMALL, max_cell_bytes=None)) == (
        "line 2 is longer than 100 bytes"
    )
    assert refused(b"a,b\n1,2\n3," + b"y" * 30 + b"\n") == "line 3 has a cell longer than 20 bytes"
    # A quoted cell is measured across its line breaks.
    assert refused(b'a,b\n1,"' + b"x\n" * 15 + b'"\n') == "line 2 has a cell longer than 20 bytes"
    assert refused(b"a,b,c,d,e,f\n1,2,3,4,5,6\n") == "has 6 columns, more than the limit of 5"
    assert refused(b"a,b\n" + b"1,2\n" * 3000) == "is 12,004 bytes, more than the limit of 10,000"
    assert refused(b"a,b\n1,\x002\n") == "line 2 holds a NUL byte, which no CSV cell may hold"
    assert refused(b"a,b,a\n1,2,3\n") == "the header names column 'a' more than once"


class Unsized:
    """A source whose size is not known before it is read (as some object stores answer)."""

    def __init__(self, data: bytes):
        self.data = data

    def open(self, mode: str):
        return io.BytesIO(self.data)


def test_the_size_limit_holds_when_the_size_is_not_known_beforehand():
    with pytest.raises(FileLimitError) as caught:
        read_csv_checked(
            Unsized(b"a,b\n" + b"1,2\n" * 100_000), replace(SMALL, max_file_bytes=1000)
        )
    assert str(caught.value) == "is larger than the limit of 1,000 bytes"


def test_quotes_are_followed_across_chunks():
    # An escaped quote split between the parser's 256 KiB reads, then a cell under the limit.
    head = b"a,b\n" + b"1,2\n" * 65_530
    cell = b'"' + b"z" * (262_144 - len(head) - 4) + b'""' + b"q" * 500 + b'"'
    frame = read_csv_checked(head + b"1," + cell + b"\n3,4\n", FileLimits(max_cell_bytes=2048))
    assert len(frame) == 65_532 and frame["b"].iloc[-2].endswith('"' + "q" * 500)
    assert frame["b"].iloc[-1] == "4"


def test_quoted_text_and_stray_quotes_read_as_written():
    frame = read_csv_checked(b'\xef\xbb\xbf\n"a\nx",b\n1,"he said ""hi"", ok"\n2,5\'11"\n', SMALL)
    assert list(frame.columns) == ["a\nx", "b"]
    assert frame["b"].tolist() == ['he said "hi", ok', "5'11\""]
    # A stray quote in a header name is text: the header still ends at its line break.
    frame = read_csv_checked(b'size"in,b\n' + b"1,2\n" * 200_000, SMALL_LINES)
    assert list(frame.columns) == ['size"in', "b"] and len(frame) == 200_000


def test_parquet_limits_are_read_from_the_footer(tmp_path):
    path = tmp_path / "wide.parquet"
    pd.DataFrame({f"c{i}": [1.0] for i in range(6)}).to_parquet(path)
    with pytest.raises(FileLimitError, match=r"^has 6 columns, more than the limit of 5$"):
        read_parquet_checked(str(path), SMALL)
    pd.DataFrame({"a": [f"{i}" + "x" * 5_000 for i in range(20)]}).to_parquet(
        path, compression="zstd"
    )
    assert path.stat().st_size < 10_000
    with pytest.raises(FileLimitError, match=r"^holds [\d,]+ bytes of data once decompressed"):
        read_parquet_checked(str(path), SMALL)
    pd.DataFrame({"a": ["x", "y\0"]}).to_parquet(path)
    with pytest.raises(FileLimitError, match=r"^row 1: column 'a' holds a NUL character$"):
        read_parquet_checked(str(path))


def test_a_training_csv_naming_a_column_twice_is_refused(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x1,x2,x1,label\n1,2,3,1\n")
    with pytest.raises(DataSourceError) as caught:
        load_source(str(path))
    assert str(caught.value) == f"data source {path}: the header names column 'x1' more than once"
