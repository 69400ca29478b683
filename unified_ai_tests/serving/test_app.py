"""The serving endpoint on a real server and a real lineage store (models fitted, not trained
by the loop: the loop end to end is in test_serving_loop.py)."""

import concurrent.futures
import json

import numpy as np
import pandas as pd
import pytest

from unified_ai.io.store import LineageStore
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.rows import row_problems
from unified_ai.ml.training import predict_proba
from unified_ai.projects.loader import load_project_file
from unified_ai.resources.inbox import is_batch_name
from unified_ai.serving.app import ServeConfigError, ServeOptions, create_app
from unified_ai.serving.auth import TokenGuard
from unified_ai_tests.conftest import write_project
from unified_ai_tests.serving.helpers import (
    AUTH,
    TOKEN,
    call,
    deploy,
    rows,
    running,
    served_version,
    wait_for,
)

FAST = {"poll_seconds": 0.1, "retry_seconds": 0.5, "flush_seconds": 0.3}


@pytest.fixture
def project(projects_dir):
    return load_project_file(write_project(projects_dir))


@pytest.fixture
def store(tmp_path):
    return LineageStore(tmp_path / "store")


@pytest.fixture
def inbox(tmp_path):
    return tmp_path / "inbox" / "small"


def app_for(project, store, inbox, **options):
    options = ServeOptions(**{**FAST, **options})
    return create_app(project, store, str(inbox), options, TokenGuard(TOKEN))


def predict(url, payload, project="small"):
    return call(f"{url}/v1/projects/{project}/predict", "POST", payload)


def batch_files(inbox):
    return sorted(p for p in inbox.glob("*.csv")) if inbox.exists() else []


def test_serves_the_deployment_and_follows_deploys_and_rollbacks(project, store, inbox):
    first, first_model = deploy(store, project, seed=0)
    with running(app_for(project, store, inbox)) as url:
        wait_for(lambda: served_version(url) == first)
        sent = rows(4)
        status, body, _ = predict(url, {"rows": sent})
        assert status == 200, body
        assert (body["deployment_version"], body["model_version"]) == (first, first_model)
        answers = body["predictions"]
        assert [a["deployment_version"] for a in answers] == [first] * 4
        assert [a["model_version"] for a in answers] == [first_model] * 4
        # The probabilities are the deployed pipeline's, the decisions at the threshold.
        model = store.read_value(["small", "candidate_model"], first_model)
        expected = predict_proba(
            model.pipeline, pd.DataFrame(sent), FeatureColumns(**model.card["features"])
        )
        assert np.allclose([a["probability"] for a in answers], expected)
        assert [a["decision"] for a in answers] == [int(p >= 0.5) for p in expected]
        ids = [a["row_id"] for a in answers]
        assert len(set(ids)) == 4 and all(is_batch_name(i.rsplit(":", 1)[0]) for i in ids)

        # A bare list of records is accepted too.
        assert predict(url, sent[:1])[0] == 200

        second, second_model = deploy(store, project, seed=1)
        assert second_model != first_model
        _, swap = wait_for(lambda: served_version(url) == second, timeout=5)
        status, body, _ = predict(url, {"rows": sent})
        assert (body["deployment_version"], body["model_version"]) == (second, second_model)

        # A rollback moves the pointer back: the previous model is still loaded, so it is
        # served again at the next poll.
        store.set_current(["small", "deployed_model"], first, action="rollback", reason="test")
        _, back = wait_for(lambda: served_version(url) == first, timeout=5)
        assert swap < 5 and back < 5

        status, text, headers = call(f"{url}/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert (
            f'unified_ai_serving_model_info{{deployment_version="{first}",'
            f'model_version="{first_model}",project="small"}} 1.0' in text
        )
        assert 'unified_ai_serving_swaps_total{project="small"} 3.0' in text
        assert (
            'unified_ai_serving_requests_total{code="200",endpoint="predict",project="small"} 3.0'
            in text
        )
        assert 'unified_ai_serving_request_duration_seconds_bucket{endpoint="predict"' in text
        assert call(f"{url}/healthz")[0] == 200
        status, docs, _ = call(f"{url}/openapi.json")
        assert "/v1/projects/{project}/predict" in docs["paths"]
        schema = docs["paths"]["/v1/projects/{project}/predict"]["post"]["requestBody"]
        row = schema["content"]["application/json"]["schema"]["properties"]["rows"]["items"]
        assert row["properties"]["colour"]["enum"] == ["red", "green", "blue", None]
        [parameter] = docs["paths"]["/v1/projects/{project}/predict"]["post"]["parameters"]
        assert parameter["name"] == "project" and parameter["in"] == "path"


def test_not_ready_until_a_model_is_deployed(project, store, inbox):
    with running(app_for(project, store, inbox)) as url:
        status, body, _ = call(f"{url}/readyz")
        assert status == 503 and body["detail"] == "nothing is deployed for small yet"
        status, body, headers = predict(url, {"rows": rows(1)})
        assert status == 503 and headers["retry-after"] == "1"
        assert body["detail"] == "small: no model is ready (nothing is deployed for small yet)"
        assert call(f"{url}/healthz")[0] == 200  # alive, just not ready
        deployment, _ = deploy(store, project)
        wait_for(lambda: served_version(url) == deployment)
        assert predict(url, {"rows": rows(1)})[0] == 200


def test_a_damaged_deployment_never_replaces_the_served_one(project, store, inbox):
    good, _ = deploy(store, project, seed=0)
    with running(app_for(project, store, inbox)) as url:
        wait_for(lambda: served_version(url) == good)

        def damage(model_version):
            # The model's bytes change after it was stored (bit rot, or tampering). Done before
            # the pointer moves: otherwise the follower may load the model while it is intact.
            skops = store.version_dir(["small", "candidate_model"], model_version) / "model.skops"
            data = bytearray(skops.read_bytes())
            data[len(data) // 2] ^= 0xFF
            skops.write_bytes(bytes(data))

        bad, bad_model = deploy(store, project, seed=1, before_pointer=damage)

        def reported():
            status, body, _ = call(f"{url}/readyz")
            return status == 200 and body["last_error"] and body

        body, _ = wait_for(reported, timeout=15)
        assert body["deployment_version"] == good and body["pointer"] == bad
        assert body["last_error"].startswith(f"small/candidate_model@{bad_model}")
        status, answer, _ = predict(url, {"rows": rows(2)})
        assert status == 200 and answer["deployment_version"] == good
        text = call(f"{url}/metrics")[1]
        assert 'unified_ai_serving_load_failures_total{project="small"} 1.0' in text

        # Repaired by moving the pointer on (a rollback to the good one): the error clears.
        store.set_current(["small", "deployed_model"], good, action="rollback", reason="bad")
        body, _ = wait_for(lambda: call(f"{url}/readyz")[1]["last_error"] is None or None)


def test_bad_input_is_refused_with_the_field_and_reason(project, store, inbox):
    deploy(store, project)
    app = app_for(project, store, inbox, max_rows=10, max_body_bytes=20_000)
    good = rows(1)[0]
    with running(app) as url:
        wait_for(lambda: served_version(url))

        def refused(payload=None, *, raw=None, project="small", headers=None):
            return call(
                f"{url}/v1/projects/{project}/predict", "POST", payload, raw=raw, headers=headers
            )

        # Infinity is valid for Python's JSON parser: validation refuses it.
        raw = json.dumps({"rows": [good, {**good, "x1": float("inf")}]}).encode()
        status, body, _ = refused(raw=raw)
        assert status == 422
        assert body["detail"] == "row 1: field 'x1': is inf, not a finite number"
        assert [(p["row"], p["field"]) for p in body["problems"]] == [(1, "x1")]

        cases = [
            ({**good, "x2": "12"}, "row 0: field 'x2': is text ('12'), not a number"),
            ({**good, "colour": "purple"}, "row 0: field 'colour': is 'purple', not one of"),
            ({**good, "x1": 11}, "row 0: field 'x1': is 11, above the declared maximum 10.0"),
            ({**good, "x1": 10**400}, "row 0: field 'x1': is "),
            ({k: v for k, v in good.items() if k != "region"}, "row 0: field 'region': is missing"),
            ({**good, "label": 1}, "row 0: field 'label': is not an input of project small"),
            ({**good, "x2": {"a": 1}}, "row 0: field 'x2': is an object"),
        ]
        for row, detail in cases:
            status, body, _ = refused({"rows": [row]})
            assert status == 422 and body["detail"].startswith(detail), (row, body)

        status, body, _ = refused({"rows": [{**good, "x1": 99, "x2": "a"}, {**good, "colour": 1}]})
        assert status == 422 and body["problem_count"] == 3
        assert body["detail"].endswith("(and 2 more problem(s))")

        assert refused(raw=b'{"rows": [')[0] == 400
        assert refused(raw=b"[" * 10_000 + b"]" * 10_000)[0] in (400, 422)  # deep nesting
        assert refused({"rows": []})[:2] == (422, {**refused({"rows": []})[1]})
        assert refused({"rows": [good], "extra": 1})[0] == 422
        assert refused({"rows": "text"})[0] == 422
        assert refused({"rows": [good]}, project="other")[0] == 404

        status, body, _ = refused({"rows": [good] * 11})
        assert status == 413
        assert body["detail"] == (
            "11 rows in one request, more than the limit of 10; split the request"
        )
        status, body, _ = refused(raw=b" " * 20_001)
        assert status == 413 and "more than the limit of 20000" in body["detail"]

        # Nothing refused was served or written; the service is still up and serving.
        assert call(f"{url}/healthz")[0] == 200
        assert refused({"rows": [good]})[0] == 200
        text = call(f"{url}/metrics")[1]
        assert (
            'unified_ai_serving_errors_total{endpoint="predict",project="small",'
            'reason="invalid_rows"}' in text
        )
    written = pd.concat([pd.read_csv(p) for p in batch_files(inbox)])
    assert len(written) == 1


def test_a_chunked_body_over_the_limit_is_refused(project, store, inbox):
    import http.client
    from urllib.parse import urlparse

    deploy(store, project)
    with running(app_for(project, store, inbox, max_body_bytes=1000)) as url:
        wait_for(lambda: served_version(url))
        parts = urlparse(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        connection.request(
            "POST",
            "/v1/projects/small/predict",
            body=iter([b" " * 600, b" " * 600]),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        assert response.status == 413
        assert "more than the limit of 1000 bytes" in json.loads(response.read())["detail"]
        connection.close()


def test_served_rows_become_batch_files_one_deployment_each(project, store, inbox):
    first, _ = deploy(store, project, seed=0)
    with running(app_for(project, store, inbox, flush_rows=5, flush_seconds=0.5)) as url:
        wait_for(lambda: served_version(url) == first)
        ids = []
        for count in (3, 4):  # 7 rows: a file at 5 rows (after the second request), then 0.5 s
            ids += [a["row_id"] for a in predict(url, {"rows": rows(count)})[1]["predictions"]]
        second, _ = deploy(store, project, seed=1)
        wait_for(lambda: served_version(url) == second)
        ids += [a["row_id"] for a in predict(url, {"rows": rows(2)})[1]["predictions"]]
        wait_for(lambda: len(batch_files(inbox)) == 2)
    # On shutdown, whatever was buffered is written too.
    files = batch_files(inbox)
    assert len(files) == 2 and all(is_batch_name(p.name) for p in files)
    assert not [p for p in inbox.iterdir() if p.name.startswith(".")]  # no temporary left
    frames = [pd.read_csv(p) for p in files]
    assert [len(f) for f in frames] == [7, 2]
    assert [set(f["served_deployment_version"]) for f in frames] == [{first}, {second}]
    batch = pd.concat(frames, ignore_index=True)
    assert batch["_row_id"].tolist() == ids
    assert [i.rsplit(":", 1)[0] for i in ids] == [files[0].name] * 7 + [files[1].name] * 2
    assert {"x1", "x2", "colour", "region", "served_probability", "served_decision"} <= set(batch)
    # Each file passes the same row checks a production batch does.
    features = FeatureColumns(numeric=["x1", "x2"], categorical=["colour"])
    assert all(row_problems(project, features, f) == [] for f in frames)


def test_labels_for_served_rows_become_label_files(project, store, inbox):
    deploy(store, project)
    with running(app_for(project, store, inbox, flush_seconds=60)) as url:
        wait_for(lambda: served_version(url))
        ids = [a["row_id"] for a in predict(url, {"rows": rows(3)})[1]["predictions"]]
        labels_url = f"{url}/v1/projects/small/labels"
        first_two = [{"row_id": ids[0], "label": 1}, {"row_id": ids[1], "label": 0}]
        status, body, _ = call(labels_url, "POST", {"labels": first_two}, headers=AUTH)
        assert status == 200, body
        batch = ids[0].rsplit(":", 1)[0]
        assert body == {"accepted": 2, "files": {batch: 2}}
        # Later labels merge with the earlier file; a corrected label wins.
        status, body, _ = call(
            labels_url,
            "POST",
            [{"row_id": ids[1], "label": 1}, {"row_id": ids[2], "label": 0}],
            headers=AUTH,
        )
        assert status == 200 and body["files"] == {batch: 3}
        written = pd.read_csv(inbox / "labels" / batch)
        assert written.to_dict(orient="list") == {"_row_id": ids, "label": [1, 1, 0]}

        status, body, _ = call(
            labels_url, "POST", {"labels": [{"row_id": ids[0], "label": "yes"}]}, headers=AUTH
        )
        assert status == 422
        assert body["detail"] == (
            "row 0: field 'label': is 'yes', not one of the training classes [0, 1]"
        )
        status, body, _ = call(
            labels_url, "POST", {"labels": [{"row_id": "../x", "label": 1}]}, headers=AUTH
        )
        assert status == 422 and body["problems"][0]["field"] == "row_id"
        status, body, _ = call(labels_url, "POST", {"labels": [{"row_id": ids[0]}]}, headers=AUTH)
        assert status == 422 and body["detail"] == "row 0: field 'label': is missing"


def test_concurrent_work_is_bounded(project, store, inbox):
    deploy(store, project)
    app = app_for(project, store, inbox, max_concurrent=1, queue_seconds=0, max_rows=2000)
    many = rows(2000)
    with running(app) as url:
        wait_for(lambda: served_version(url))
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: predict(url, {"rows": many}), range(24)))
        statuses = [status for status, _, _ in answers]
        assert set(statuses) <= {200, 503}
        assert 200 in statuses and 503 in statuses, statuses
        busy = next(body for status, body, _ in answers if status == 503)
        assert busy["detail"].startswith("small: 1 requests are being scored and none finished")
        text = call(f"{url}/metrics")[1]
        assert 'unified_ai_serving_requests_in_flight{project="small"} 1.0' in text  # /metrics


def test_options_are_checked():
    with pytest.raises(ServeConfigError, match="--max-rows: 0 must be a positive number"):
        ServeOptions(max_rows=0)
    with pytest.raises(ServeConfigError, match="--poll-seconds: nan must be a positive number"):
        ServeOptions(poll_seconds=float("nan"))
    with pytest.raises(ServeConfigError, match="--max-pending-rows"):
        ServeOptions(flush_rows=10, max_pending_rows=5)
    with pytest.raises(ServeConfigError, match=r"--workers: 1\.5 is not a whole number"):
        ServeOptions(workers=1.5)
    with pytest.raises(ServeConfigError, match="--log-traffic: 1 is not true or false"):
        ServeOptions(log_traffic=1)
    assert ServeOptions(workers=2, log_traffic=False).workers == 2


def test_endpoint_names_are_remembered_for_a_bounded_number_of_paths():
    from unified_ai.serving import app as serving_app

    names = {serving_app._endpoint(f"/v1/projects/p{i}/predict") for i in range(1_000)}
    assert names == {"predict"}
    assert serving_app._endpoint("/nowhere/at/all") == "other"
    assert len(serving_app._known_paths) <= serving_app._KNOWN_PATHS
