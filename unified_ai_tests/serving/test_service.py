"""The serving service without HTTP: refusals, readiness and label checks as plain calls."""

import pytest

from unified_ai.io.store import LineageStore
from unified_ai.ml.rows import RowProblem
from unified_ai.projects.loader import load_project_file
from unified_ai.serving.options import ServeOptions
from unified_ai.serving.refusal import Refusal
from unified_ai.serving.service import ServingService, invalid, label_problems
from unified_ai_tests.conftest import write_project


@pytest.fixture
def service(projects_dir, tmp_path):
    project = load_project_file(write_project(projects_dir))
    return ServingService(
        project, LineageStore(tmp_path / "store"), tmp_path / "inbox", ServeOptions()
    )


def test_another_project_is_refused_404(service):
    service.check_project("small")  # its own project passes
    with pytest.raises(Refusal) as refused:
        service.check_project("other")
    assert refused.value.status == 404
    assert "unknown project 'other': this service serves small" in refused.value.detail


def test_nothing_deployed_is_not_ready(service):
    with pytest.raises(Refusal) as refused:
        service.serving()
    assert (refused.value.status, refused.value.reason) == (503, "not_ready")
    assert "nothing is deployed for small yet" in refused.value.detail
    body, status = service.readiness()
    assert status == 503 and body["ready"] is False
    assert body["detail"] == "nothing is deployed for small yet"
    assert body["traffic"]["inbox_full"] is False


def test_labels_need_a_train_split(service):
    with pytest.raises(Refusal) as refused:
        service.accept_labels([{"row_id": "x", "label": 1}])
    assert (refused.value.status, refused.value.reason) == (503, "not_ready")
    assert "small/train_split has no version yet" in refused.value.detail


def test_label_problems_name_each_field():
    problems = label_problems(3, {"row_id": "nope", "extra": 1}, [0, 1])
    assert [(p.row, p.field) for p in problems] == [(3, "extra"), (3, "row_id"), (3, "label")]
    assert problems[-1].reason == "is missing"
    refusal = invalid(problems)
    assert refusal.status == 422 and refusal.detail.endswith("(and 2 more problem(s))")
    assert label_problems(0, {"row_id": "serve-1.csv:3", "label": 1}, [0, 1]) == []
    [wrong] = label_problems(0, {"row_id": "serve-1.csv:3", "label": 7}, [0, 1])
    assert wrong == RowProblem(0, "label", "is 7, not one of the training classes [0, 1]")
