"""Served rows routed to people: held (`pending_review` + id), answered, timed out, queued."""

import threading
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from unified_ai.io.formats import serialize
from unified_ai.io.reader import ReadLog, StoreReader
from unified_ai.io.review_answers import answered_labels
from unified_ai.io.review_served import (
    ServedItem,
    all_items,
    item_answers,
    record_any,
    served_item,
    served_review_ids,
    store_served,
)
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.training import fit
from unified_ai.names import REVIEWER_COLUMN, ROW_ID
from unified_ai.policies.review_answers import ANSWERED, ReviewAnswer, ReviewRefused
from unified_ai.policies.review_serving import held_state
from unified_ai.projects.loader import load_project_file
from unified_ai.projects.tasks import MULTICLASS, REGRESSION
from unified_ai.serving.app import ServeOptions, create_app
from unified_ai.serving.auth import TokenGuard
from unified_ai.serving.follower import load_deployment
from unified_ai.serving.reviews import review_state
from unified_ai.serving.service import ServingService
from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.serving.helpers import AUTH, TOKEN, call, deploy, rows, running, wait_for
from unified_ai_tests.serving.task_helpers import deploy_task, task_rows
from unified_ai_tests.tasks_fixtures import write_multiclass_project, write_regression_project

FAST = {"poll_seconds": 0.1, "retry_seconds": 0.5, "flush_seconds": 0.3}


def review_policy(*, hold: bool = True, extra: str = "") -> str:
    """A policy that routes every row (audit share 1), answered by the risk group."""
    return (
        "  review:\n"
        "    audit_share: 1.0\n"
        f"    hold_decision: {'true' if hold else 'false'}\n"
        "    due_after: 2h\n"
        "    reviewers: [group:risk]\n"
        "    groups: {risk: [ana, bo]}\n" + extra
    )


@pytest.fixture
def serve(home, projects_dir, monkeypatch):
    """Start a service of `small` with a review policy: (project, store, url) as a context."""
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    store = LineageStore(home / "store")

    def start(policy: str | None, deployer=deploy):
        project = load_project_file(write_project(projects_dir, policy_extra=policy or ""))
        deployer(store, project)
        inbox = home / "inbox" / project.name
        app = create_app(project, store, str(inbox), ServeOptions(**FAST), TokenGuard(TOKEN))
        return project, app

    return store, start


def _predict(url: str, body_rows: list[dict]):
    _, _ = wait_for(lambda: call(f"{url}/readyz")[0] == 200)
    status, body, _ = call(f"{url}/v1/projects/small/predict", "POST", {"rows": body_rows})
    assert status == 200, body
    return body["predictions"]


def _state(url: str, review_id: str, headers=AUTH):
    return call(f"{url}/v1/projects/small/reviews/{review_id}", headers=headers)


def test_a_held_row_is_answered_pending_review_with_an_id(serve):
    store, start = serve
    _, app = start(review_policy())
    with running(app) as url:
        answers = _predict(url, rows(2))
        for answer in answers:
            assert answer["status"] == "pending_review"
            assert "decision" not in answer and "probability" not in answer
            assert answer["reasons"] == ["audit"]
            item = served_item(store, "small", answer["review_id"])
            assert item is not None and item.held and item.row_id == answer["row_id"]
            assert item.due_at.isoformat() == answer["due_at"]
            assert item.model_answer in ("0", "1")
        status, state, _ = _state(url, answers[0]["review_id"])
        assert status == 200, state
        assert state["status"] == "pending_review" and not state["escalated"]
        assert "decision" not in state and "model_answer" not in state
        # The state is behind the reviews token, and an unknown id is 404.
        assert _state(url, answers[0]["review_id"], headers={})[0] == 401
        status, missing, _ = _state(url, "0123456789abcdef")
        assert status == 404 and "no routed item 0123456789abcdef" in missing["detail"]
        # The OpenAPI document says a row may be answered pending_review.
        _, document, _ = call(f"{url}/openapi.json")
        assert "PendingReview" in document["components"]["schemas"]


def test_a_person_answers_a_held_row_over_http_and_get_shows_it(serve):
    store, start = serve
    project, app = start(review_policy())
    with running(app) as url:
        (held,) = _predict(url, rows(1))
        reviews = f"{url}/v1/projects/small/reviews"
        body = {"review_id": held["review_id"], "answer": 1, "by": "Ana", "comment": "verified"}
        status, recorded, _ = call(reviews, "POST", body, headers=AUTH)
        assert status == 200, recorded
        assert (recorded["state"], recorded["answer"], recorded["row_id"]) == (
            ANSWERED,
            "1",
            held["row_id"],
        )
        status, state, _ = _state(url, held["review_id"])
        assert status == 200, state
        assert (state["status"], state["decision"], state["answered_by"]) == (
            "answered",
            1,
            ["Ana"],
        )
        again = {"review_id": held["review_id"], "answer": "0", "by": "bo"}
        status, refused, _ = call(reviews, "POST", again, headers=AUTH)
        assert status == 409 and "answered already" in refused["detail"]
    # Recorded where the batch path's answers of the row's batch are, by the same rules.
    item = served_item(store, "small", held["review_id"])
    (answer,) = item_answers(store, "small", item)
    assert (answer.reviewer, answer.answer, answer.comment) == ("Ana", "1", "verified")
    assert answer.batch == held["row_id"].rpartition(":")[0]
    # The answer is ground truth of the row's batch, with the served item in its lineage,
    # though no queue of that batch holds the row (the batch was never scored).
    log = ReadLog()
    labels = answered_labels(StoreReader(store, log), project, answer.batch)
    assert labels.to_dict("records") == [
        {ROW_ID: held["row_id"], "label": 1, REVIEWER_COLUMN: "Ana"}
    ]
    assert f"small/review_served/{held['review_id']}" in log.upstream()


def test_a_reviewer_outside_the_group_is_refused(serve):
    store, start = serve
    _, app = start(review_policy())
    with running(app) as url:
        (held,) = _predict(url, rows(1))
        body = {"review_id": held["review_id"], "answer": "1", "by": "eve"}
        status, refused, _ = call(f"{url}/v1/projects/small/reviews", "POST", body, headers=AUTH)
        assert (status, refused["detail"]) == (403, "eve may not review small items")
        assert _state(url, held["review_id"])[1]["status"] == "pending_review"
    import unified_ai.cli.review  # noqa: F401  (registers `review` on the command line)
    from unified_ai.cli import main

    outsider = CliRunner().invoke(
        main, ["review", "small", "answer", held["review_id"], "--answer", "1", "--by", "eve"]
    )
    assert outsider.exit_code == 1
    assert "eve may not review (allowed: ana, bo)" in outsider.output
    assert item_answers(store, "small", served_item(store, "small", held["review_id"])) == []


def test_the_cli_lists_and_answers_served_items(serve):
    import unified_ai.cli.review  # noqa: F401  (registers `review` on the command line)
    from unified_ai.cli import main

    _, start = serve
    _, app = start(review_policy())
    with running(app) as url:
        first, second = _predict(url, rows(2))
        runner = CliRunner()

        def review(*args: str):
            return runner.invoke(main, ["review", "small", *args])

        listed = review()
        assert listed.exit_code == 0, listed.output
        assert first["review_id"] in listed.output and second["review_id"] in listed.output
        ok = review("answer", first["review_id"], "--answer", "0", "--by", "bo")
        assert ok.exit_code == 0, ok.output
        assert f"recorded answer 0 of small item {first['review_id']}" in ok.output
        assert (
            "answered already"
            in review("answer", first["review_id"], "--answer", "1", "--by", "ana").output
        )
        _, state, _ = _state(url, first["review_id"])
        assert (state["status"], state["decision"], state["answered_by"]) == (
            "answered",
            0,
            ["bo"],
        )
        still_open = review().output
        assert first["review_id"] not in still_open and second["review_id"] in still_open


def _past_due(store: LineageStore, project, model_answer: str = "1") -> ServedItem:
    """A held item routed three hours ago, due an hour ago."""
    now = datetime.now(timezone.utc)
    item = ServedItem(
        review_id="00aa11bb22cc33dd",
        batch="serve-x.csv",
        row_id="serve-x.csv:0",
        reasons="audit",
        detail="",
        model_answer=model_answer,
        model_score=0.7,
        model_version="m1",
        deployment_version="d1",
        routed_at=now - timedelta(hours=3),
        due_at=now - timedelta(hours=1),
        held=True,
    )
    store_served(store, project, [item])
    return item


@pytest.mark.parametrize(
    ("on_timeout", "decision", "declined"),
    [("keep_model_decision", 1, False), ("decline", None, True)],
)
def test_past_due_a_held_row_takes_on_timeout(serve, on_timeout, decision, declined):
    store, start = serve
    project, app = start(review_policy(extra=f"    on_timeout: {on_timeout}\n"))
    item = _past_due(store, project)
    with running(app) as url:
        status, state, _ = _state(url, item.review_id)
    assert status == 200, state
    assert (state["status"], state["outcome"]) == ("timed_out", on_timeout)
    assert (state["decision"], state["declined"]) == (decision, declined)
    # Answered before the due time, the person's answer stands past it.
    on_time = ReviewAnswer(
        review_id=item.review_id,
        batch=item.batch,
        row_id=item.row_id,
        reviewer="ana",
        action="answer",
        answer="0",
        comment="",
        at=(item.due_at - timedelta(minutes=5)).isoformat(),
    )
    kept = held_state(
        project.policy.review,
        project.task,
        answers=[on_time],
        due_at=item.due_at,
        now=datetime.now(timezone.utc),
        model_answer="1",
    )
    assert (kept["status"], kept["decision"]) == ("answered", 0)
    # A late answer is recorded (and still teaches) but does not change a timed-out decision.
    late = ReviewAnswer(**{**on_time.to_json(), "at": datetime.now(timezone.utc).isoformat()})
    timed_out = held_state(
        project.policy.review,
        project.task,
        answers=[late],
        due_at=item.due_at,
        now=datetime.now(timezone.utc),
        model_answer="1",
    )
    assert (timed_out["status"], timed_out["late_answers"]) == ("timed_out", ["0"])
    # Judged on read: before the due time it is pending.
    early = review_state(store, project, item.review_id, now=item.routed_at)
    assert early["status"] == "pending_review"


def test_without_hold_decision_the_decision_is_answered_and_the_row_queued(serve):
    store, start = serve
    project, app = start(review_policy(hold=False))
    with running(app) as url:
        answers = _predict(url, rows(2))
        assert all("decision" in a and "probability" in a for a in answers)
        assert all("status" not in a and "review_id" not in a for a in answers)
        ids = served_review_ids(store, "small")
        assert len(ids) == 2
        items = [served_item(store, "small", i) for i in ids]
        assert {i.row_id for i in items} == {a["row_id"] for a in answers}
        assert not any(i.held for i in items)
        listed = {i.review_id for i in all_items(store, project)}
        assert listed == set(ids)
        status, state, _ = _state(url, ids[0])
        assert status == 200 and state["held"] is False and state["status"] == "pending_review"


def test_the_daily_cap_counts_served_items(serve, monkeypatch):
    from unified_ai.serving import held as held_module

    store, start = serve
    _, app = start(review_policy(extra="    daily_cap: 2\n"))
    ranked = []
    real = held_module.route_served
    monkeypatch.setattr(
        held_module, "route_served", lambda *a, **k: ranked.append(1) or real(*a, **k)
    )
    with running(app) as url:
        first = _predict(url, rows(3))
        second = _predict(url, rows(2, seed=9))
    held = [a for a in [*first, *second] if a.get("status") == "pending_review"]
    assert len(held) == 2 and len(served_review_ids(store, "small")) == 2
    assert all("decision" in a for a in second)
    # Once the cap is reached, flagged rows are not ranked at all (the cost of a check).
    assert ranked == [1]


def test_without_policy_review_nothing_is_routed(serve):
    store, start = serve
    _, app = start(None)
    assert app.state.service.reviews is None
    with running(app) as url:
        answers = _predict(url, rows(2))
    assert all("decision" in a for a in answers)
    assert served_review_ids(store, "small") == []


def _deploy_with_split(store: LineageStore, project, seed: int = 0):
    """As `helpers.deploy`, with a model card naming its train split (as training writes it)."""
    frame = make_frame(seed=seed)
    split = store.write_version([project.name, "train_split"], *serialize(frame))
    store.set_current([project.name, "train_split"], split.version, action="materialize")
    pipeline, features = fit(project, frame)
    card = {
        "features": {"numeric": features.numeric, "categorical": features.categorical},
        "train_split_version": split.version,
    }
    model = store.write_version(
        [project.name, "candidate_model"], *serialize(TrainedModel(pipeline, card))
    )
    payload = {"model_version": model.version, "deployed_at": "now"}
    deployment = store.write_version([project.name, "deployed_model"], *serialize(payload))
    store.set_current([project.name, "deployed_model"], deployment.version, action="materialize")


def test_out_of_range_compares_with_what_the_deployed_model_was_trained_on(serve):
    store, start = serve
    policy = "  review:\n    out_of_range: true\n    hold_decision: true\n    reviewers: [ana]\n"
    _, app = start(policy, deployer=_deploy_with_split)
    inside, beyond = rows(2)
    beyond = {**beyond, "x2": 1000.0}
    with running(app) as url:
        plain, held = _predict(url, [inside, beyond])
    assert "decision" in plain
    assert held["status"] == "pending_review" and held["reasons"] == ["out_of_range"]
    item = served_item(store, "small", held["review_id"])
    assert "x2=1000 outside the training range" in item.detail


def test_concurrent_requests_lose_no_item(serve):
    store, start = serve
    _, app = start(review_policy())
    with running(app) as url:
        _predict(url, rows(1))
        answers: list = []

        def send(seed: int) -> None:
            status, body, _ = call(
                f"{url}/v1/projects/small/predict", "POST", {"rows": rows(2, seed=seed)}
            )
            assert status == 200, body
            answers.extend(body["predictions"])

        threads = [threading.Thread(target=send, args=(seed,)) for seed in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert len(answers) == 16
    ids = set(served_review_ids(store, "small"))
    assert len(ids) == 17 and {a["review_id"] for a in answers} <= ids


def test_items_another_process_routed_today_count_toward_the_cap(serve):
    store, start = serve
    project, app = start(review_policy(extra="    daily_cap: 2\n"))
    now = datetime.now(timezone.utc)
    for n in range(2):  # as another worker would have stored them
        item = _past_due(store, project)
        store_served(
            store,
            project,
            [
                ServedItem(
                    **{
                        **item.__dict__,
                        "review_id": f"{n:016x}",
                        "routed_at": now,
                        "due_at": now + timedelta(hours=2),
                    }
                )
            ],
        )
    _, app = start(review_policy(extra="    daily_cap: 2\n"))
    with running(app) as url:
        answers = _predict(url, rows(2))
    assert all("decision" in a for a in answers)
    assert len(served_review_ids(store, "small")) == 3


@pytest.mark.parametrize(
    ("task", "unsure"),
    [(MULTICLASS, "{top_probability_below: 1.0}"), (REGRESSION, "{outside: [1.0e6, 2.0e6]}")],
)
def test_multiclass_and_regression_rows_are_held_by_their_unsure_rule(tmp_path, task, unsure):
    writer = write_multiclass_project if task == MULTICLASS else write_regression_project
    policy = f"  review:\n    unsure: {unsure}\n    hold_decision: true\n    reviewers: [ana]\n"
    project = load_project_file(writer(tmp_path / "projects", policy_extra=policy))
    store = LineageStore(tmp_path / "store")
    deployment, _ = deploy_task(store, project)
    service = ServingService(project, store, str(tmp_path / "inbox"))
    served = load_deployment(store, project, deployment)
    sent, _ = task_rows(task, count=2)
    answers = service.score(served, sent)["predictions"]
    assert [a["status"] for a in answers] == ["pending_review", "pending_review"]
    item = served_item(store, project.name, answers[0]["review_id"])
    assert item.reasons == "unsure"
    if task == MULTICLASS:
        assert item.classes == served.class_keys and item.model_answer in item.classes
        refused = "is not one of the model's classes"
        with pytest.raises(ReviewRefused, match=refused):
            record_any(store, project, item.review_id, reviewer="ana", answer="nope")
        answer = item.classes[0]
    else:
        answer = "12.5"
    record_any(store, project, item.review_id, reviewer="ana", answer=answer)
    state = review_state(store, project, item.review_id)
    expected = answer if task == MULTICLASS else 12.5
    assert (state["status"], state["decision"]) == ("answered", expected)
