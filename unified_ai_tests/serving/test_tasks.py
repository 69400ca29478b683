"""Serving regression and multiclass models: answers, labels, the OpenAPI document, swaps.

A real server on a real lineage store (models fitted here, not by the loop); the answers must
be what the stored model predicts (`TrainedModel.predict`), labels are checked per task.
"""

import math
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from unified_ai.io.store import LineageStore
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.rows import RowProblem
from unified_ai.ml.training import predict as model_predict
from unified_ai.projects.loader import load_project_file
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION
from unified_ai.runtime import SERVE_TOKEN_ENV
from unified_ai.serving.app import ServeOptions, create_app
from unified_ai.serving.auth import TokenGuard
from unified_ai.serving.follower import DeploymentLoadError, load_deployment, probe_problem
from unified_ai.serving.service import label_problems
from unified_ai_tests.serving.helpers import (
    AUTH,
    TOKEN,
    call,
    free_port,
    running,
    served_version,
    wait_for,
)
from unified_ai_tests.serving.task_helpers import deploy_task, task_rows
from unified_ai_tests.tasks_fixtures import (
    CLASSES,
    write_multiclass_project,
    write_regression_project,
)

FAST = {"poll_seconds": 0.1, "retry_seconds": 0.5, "flush_seconds": 0.3}
WRITERS = {REGRESSION: write_regression_project, MULTICLASS: write_multiclass_project}
NAMES = {REGRESSION: "prices", MULTICLASS: "queues"}


@pytest.fixture
def store(tmp_path):
    return LineageStore(tmp_path / "store")


def project_of(task, folder):
    return load_project_file(WRITERS[task](folder))


def app_for(project, store, inbox, **options):
    options = ServeOptions(**{**FAST, **options})
    return create_app(project, store, str(inbox), options, TokenGuard(TOKEN))


def expected(store, project, model_version, sent):
    """What the stored model predicts for `sent` (the task's shape)."""
    model = store.read_value([project.name, "candidate_model"], model_version)
    features = FeatureColumns(**model.card["features"])
    return model, np.asarray(model_predict(model, pd.DataFrame(sent), features))


def predict(url, project, rows):
    return call(f"{url}/v1/projects/{project.name}/predict", "POST", {"rows": rows})


def post_labels(url, project, labels):
    return call(
        f"{url}/v1/projects/{project.name}/labels", "POST", {"labels": labels}, headers=AUTH
    )


def check_answers(task, body, model, predicted):
    answers = body["predictions"]
    if task == REGRESSION:
        assert all(
            set(a) == {"row_id", "prediction", "model_version", "deployment_version"}
            for a in answers
        )
        assert np.allclose([a["prediction"] for a in answers], predicted)
        assert "threshold" not in body
        return
    classes = [str(c) for c in model.classes]
    assert classes == CLASSES
    for answer, row in zip(answers, predicted, strict=True):
        assert set(answer) == {
            "row_id",
            "prediction",
            "probabilities",
            "model_version",
            "deployment_version",
        }
        assert list(answer["probabilities"]) == classes
        assert np.allclose(list(answer["probabilities"].values()), row)
        assert answer["prediction"] == classes[int(np.argmax(row))]
        assert math.isclose(sum(answer["probabilities"].values()), 1.0, rel_tol=1e-9)


@pytest.mark.parametrize("task", [REGRESSION, MULTICLASS])
def test_serves_the_task_answer_follows_a_swap_and_checks_labels(task, tmp_path, store):
    project = project_of(task, tmp_path / "projects")
    inbox = tmp_path / "inbox" / project.name
    first, first_model = deploy_task(store, project, seed=0)
    sent, truth = task_rows(task, count=4)
    with running(app_for(project, store, inbox)) as url:
        wait_for(lambda: served_version(url) == first)
        status, body, _ = predict(url, project, sent)
        assert status == 200, body
        assert (body["deployment_version"], body["model_version"]) == (first, first_model)
        model, predicted = expected(store, project, first_model, sent)
        check_answers(task, body, model, predicted)
        ids = [a["row_id"] for a in body["predictions"]]

        # A swap to a new deployment is followed; answers are the new model's.
        second, second_model = deploy_task(store, project, seed=1)
        wait_for(lambda: served_version(url) == second, timeout=5)
        status, body, _ = predict(url, project, sent)
        assert status == 200 and body["model_version"] == second_model
        model, predicted_again = expected(store, project, second_model, sent)
        check_answers(task, body, model, predicted_again)
        assert not np.allclose(predicted, predicted_again)

        # Labels: the task's kind of value, else one line naming the row and field.
        bad = {REGRESSION: ["cheap", None, "nan", True, [1]], MULTICLASS: ["refunds", None, 2]}
        for value in bad[task]:
            status, refused, _ = post_labels(url, project, [{"row_id": ids[0], "label": value}])
            assert status == 422, (value, refused)
            assert refused["detail"].startswith("row 0: field 'label': is "), refused
            assert "\n" not in refused["detail"]
        if task == MULTICLASS:
            assert "not one of the deployed model's classes" in refused["detail"]
        else:
            assert "not a finite number" in refused["detail"]
        good = [
            {"row_id": i, "label": float(y) if task == REGRESSION else str(y)}
            for i, y in zip(ids, truth, strict=True)
        ]
        status, body, _ = post_labels(url, project, good)
        assert status == 200 and body["accepted"] == 4, body

        # The OpenAPI document describes this task's answer and labels.
        docs = call(f"{url}/openapi.json")[1]
        post = docs["paths"]["/v1/projects/{project}/predict"]["post"]
        ref = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        response = docs["components"]["schemas"][ref.rsplit("/", 1)[1]]
        item = response["properties"]["predictions"]["items"]["$ref"].rsplit("/", 1)[1]
        fields = docs["components"]["schemas"][item]["properties"]
        assert "probability" not in fields and "decision" not in fields
        assert "threshold" not in response["properties"]
        if task == REGRESSION:
            assert fields["prediction"]["type"] == "number"
        else:
            assert fields["prediction"]["type"] == "string"
            assert fields["probabilities"]["type"] == "object"
        labels_post = docs["paths"]["/v1/projects/{project}/labels"]["post"]
        label = labels_post["requestBody"]["content"]["application/json"]["schema"]
        label = label["properties"]["labels"]["items"]["properties"]["label"]
        assert (
            ("number" in label["type"])
            if task == REGRESSION
            else ("billing" in label["description"])
        )

        # Metrics and readiness keep their shape.
        status, ready, _ = call(f"{url}/readyz")
        assert status == 200 and ready["deployment_version"] == second
        assert (
            f'unified_ai_serving_rows_total{{deployment_version="{second}"'
            in call(f"{url}/metrics")[1]
        )
    # Served rows reached the inbox as batches, one deployment each, with what was answered.
    batches = [pd.read_csv(p) for p in sorted(inbox.glob("serve-*.csv"))]
    assert [b["served_deployment_version"].unique().tolist() for b in batches] == [
        [first],
        [second],
    ]
    assert batches[0]["_row_id"].tolist() == ids
    assert {"x1", "x2", "colour", "region", "served_prediction"} <= set(batches[0])
    if task == REGRESSION:
        assert np.allclose(batches[0]["served_prediction"], predicted)
        assert "served_probability" not in batches[0]
    else:
        assert batches[0]["served_prediction"].tolist() == [
            CLASSES[i] for i in predicted.argmax(axis=1)
        ]
        assert np.allclose(batches[0]["served_probability"], predicted.max(axis=1))
    [label_file] = list((inbox / "labels").glob("serve-*.csv"))
    written = pd.read_csv(label_file)
    target = project.target
    if task == REGRESSION:
        assert np.allclose(written[target], truth)
    else:
        assert written[target].tolist() == truth.tolist()


def test_multiclass_label_spellings_are_one_class():
    classes = ("1", "2", "3")
    row = "serve-1.csv:0"
    for spelling in (2, 2.0, "2"):
        assert label_problems(0, {"row_id": row, "label": spelling}, classes, MULTICLASS) == []
    [wrong] = label_problems(0, {"row_id": row, "label": 4}, classes, MULTICLASS)
    assert wrong == RowProblem(
        0, "label", "is 4, not one of the deployed model's classes ['1', '2', '3']"
    )
    assert label_problems(0, {"row_id": row, "label": "12.5"}, (), REGRESSION) == []
    for value in (math.inf, "inf", False, {"a": 1}, 10**400):
        [wrong] = label_problems(0, {"row_id": row, "label": value}, (), REGRESSION)
        assert wrong.field == "label" and wrong.reason.endswith("not a finite number")
    # Binary keeps its check against the training classes.
    [wrong] = label_problems(0, {"row_id": row, "label": 7}, [0, 1], BINARY)
    assert wrong.reason == "is 7, not one of the training classes [0, 1]"


def test_probe_checks_the_task_shape():
    assert probe_problem(REGRESSION, np.array([3.5]), 0) is None
    assert probe_problem(REGRESSION, np.array([np.inf]), 0) == "one finite number"
    assert probe_problem(MULTICLASS, np.array([[0.2, 0.3, 0.5]]), 3) is None
    assert probe_problem(MULTICLASS, np.array([[0.2, 0.3, 0.4]]), 3) == (
        "3 probabilities summing to 1"
    )
    assert probe_problem(MULTICLASS, np.array([[0.5, 0.5]]), 3) is not None
    assert probe_problem(BINARY, np.array([0.7]), 0) is None
    assert probe_problem(BINARY, np.array([1.5]), 0) == "one probability"
    assert probe_problem(BINARY, np.array([0.1, 0.2]), 0, rows=2) is None


def test_a_model_of_another_task_is_not_served(tmp_path, store):
    project = project_of(MULTICLASS, tmp_path / "projects")
    deployment, model = deploy_task(store, project, card_extra={"task": REGRESSION})
    with pytest.raises(DeploymentLoadError) as refused:
        load_deployment(store, project, deployment)
    assert str(refused.value) == (
        f"queues/candidate_model@{model}: the model is a regression model but project queues "
        "is multiclass_classification; refusing to serve it"
    )
    deployment, model = deploy_task(store, project, card_extra={"classes": ["a", "a", "b"]})
    with pytest.raises(DeploymentLoadError, match="are not a list of distinct classes"):
        load_deployment(store, project, deployment)
    # A model of five classes whose card names three cannot score the probe row.
    deployment, model = deploy_task(store, project, card_extra={"classes": ["a", "b", "c"]})
    with pytest.raises(DeploymentLoadError, match="cannot score a row of missing values"):
        load_deployment(store, project, deployment)


@pytest.mark.slow
@pytest.mark.parametrize("task", [REGRESSION, MULTICLASS])
def test_unified_ai_serve_serves_the_task(task, home, projects_dir, monkeypatch, tmp_path):
    project = project_of(task, projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    lineage = LineageStore(home / "store")
    deployment, model_version = deploy_task(lineage, project)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-m", "unified_ai.cli", "serve", project.name, "--port", str(port)]
    command += ["--poll-seconds", "0.2", "--flush-seconds", "0.5"]
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, SERVE_TOKEN_ENV: TOKEN},
            cwd=tmp_path,
        )
        try:

            def ready():
                assert server.poll() is None, log_path.read_text()
                try:
                    status, body, _ = call(f"{url}/readyz")
                except OSError:
                    return None
                return status == 200 and body

            body, _ = wait_for(ready, timeout=60, interval=0.2)
            assert body["deployment_version"] == deployment
            sent, _ = task_rows(task, count=3)
            status, body, _ = predict(url, project, sent)
            assert status == 200, body
            model, predicted = expected(lineage, project, model_version, sent)
            check_answers(task, body, model, predicted)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                raise
    batches = list((home / "inbox" / project.name).glob("serve-*.csv"))
    assert len(batches) == 1 and len(pd.read_csv(batches[0])) == 3
