"""The default Pipes training script for every task: the metrics it reports are the task's."""

import pytest

from unified_ai_tests.flows.helpers import current, project_defs, run_loop, step_failures
from unified_ai_tests.tasks_fixtures import write_regression_project


@pytest.mark.slow
def test_the_default_pipes_script_trains_a_regressor(home, projects_dir, instance):
    path = write_regression_project(projects_dir)
    path.write_text(path.read_text() + "training: {runner: pipes}\n")
    name = path.stem
    result = run_loop(project_defs(projects_dir), instance, name)
    assert result.success, step_failures(result)
    _, model = current(home, name, "candidate_model")
    assert model.task == "regression"
    assert model.card["training_runner"] == "pipes"
    assert "train_rmse" in model.card["training_metrics"]
    assert "train_roc_auc" not in model.card["training_metrics"]
