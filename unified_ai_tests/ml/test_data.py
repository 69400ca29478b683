"""Reading training data: a CSV is taken as written or refused, never silently shifted."""

import pytest

from unified_ai.ml.data import DataSourceError, load_source, target_classes
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
