"""A credit-risk reviewer answers one routed prediction in the browser; ground truth counts it.

The same setup as `test_ui.py` (its `dagster dev` fixture, its user and its Chromium): the
default project's first model is trained and deployed from the UI, a batch arrives (the
daemon's sensor scores it, and the project's `policy.review` routes its unsure rows to
`review_queue`), and the reviewer answers one item from the `<project>__review` launchpad with
typed config. The batch's labels are then ingested with no label file: its ground truth is the
answer alone, and the `ground_truth` page shows it counted (`review_labels`) with the reviewer.
"""

import re

import pytest

from unified_ai.names import op_name, review_job
from unified_ai.stages.review.jobs import REVIEW_OP
from unified_ai_tests.browser.test_ui import (
    PROJECT,
    SECOND,
    DagsterDev,
    User,
    chromium_path,
    dagster_dev,  # noqa: F401  (the fixture, shared with the tour)
)

pytestmark = pytest.mark.browser

#: In `policy.review.groups.credit_risk` of the bundled project.
REVIEWER = "underwriter"


def test_answer_a_review_from_the_launchpad_and_see_it_in_ground_truth(
    dagster_dev: DagsterDev,  # noqa: F811
    tmp_path,
):
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(60 * SECOND)
            user = User(page, dagster_dev.url, shots, private=(str(tmp_path),))
            try:
                answer_one_review(user, dagster_dev)
            except BaseException:
                page.screenshot(path=str(shots / "failure.png"), full_page=True)
                print(dagster_dev.logs())
                raise
        finally:
            browser.close()


def open_item(server: DagsterDev) -> tuple[str, str, str]:
    """(review id, batch, model answer) of the first open item `unified-ai review` lists."""
    listed = server.cli("review", PROJECT, "list")
    # Piped, the table is one line per row: review id, state, batch, row, reasons, model, ...
    for line in listed.splitlines():
        cells = line.split()
        if (
            len(cells) > 5
            and re.fullmatch(r"[0-9a-f]{16}", cells[0])
            and cells[1].lower() == "open"
        ):
            return cells[0], cells[2], cells[5]
    raise AssertionError(f"no open review item:\n{listed}")


def answer_one_review(user: User, server: DagsterDev) -> None:
    page = user.page

    # The first model deploys by policy; the batch sensor then scores what arrives.
    user.wait_for_run(user.materialize_job(f"{PROJECT}__training_loop"))
    server.cli("simulate", PROJECT, "--batches", "1", "--rows", "300", "--seed", "3")
    server.wait_for_version("review_queue")
    review_id, batch, model_answer = open_item(server)

    # The queue's page lists the open items.
    user.open(f"/assets/{PROJECT}/review_queue")
    page.get_by_text(review_id).first.wait_for()
    user.shot("review_queue")

    # The reviewer disagrees with the model, from the launchpad, with typed config.
    answer = "0" if model_answer == "1" else "1"
    op = op_name(PROJECT, REVIEW_OP)
    user.open(f"/locations/unified_ai/jobs/{review_job(PROJECT)}/playground")
    page.locator(".CodeMirror").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    # One line of flow-style YAML: typed line by line, the editor would re-indent it.
    page.keyboard.insert_text(
        f"ops: {{{op}: {{config: {{review_id: '{review_id}', answer: '{answer}', "
        f"by: {REVIEWER}, comment: 'co-signer income verified by phone'}}}}}}"
    )
    page.get_by_text("No errors").wait_for()
    page.get_by_role("button", name="Launch Run").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+$"), timeout=60 * SECOND)
    user.wait_for_run(page.url.removeprefix(user.url))
    listed = server.cli("review", PROJECT, "list", "--all")
    answered = [review_id, "answered"]
    assert any(line.lower().split()[:2] == answered for line in listed.splitlines()), listed

    # The batch's labels: no label file, so its ground truth is the reviewer's answer.
    run_id = launch_label_ingest(server, batch)
    user.wait_for_run(f"/runs/{run_id}")
    user.open(f"/assets/{PROJECT}/ground_truth")
    assert user.metadata_value("review_labels") == "1"
    assert REVIEWER in user.metadata_value("reviewers")
    user.shot("ground_truth_review")


def launch_label_ingest(server: DagsterDev, batch: str) -> str:
    """Submit `<project>__ingest_labels` for `batch` to the webserver; the run id."""
    from dagster_graphql import DagsterGraphQLClient

    from unified_ai.names import ingest_labels_job

    client = DagsterGraphQLClient("127.0.0.1", port_number=server.port)
    return client.submit_job_execution(
        ingest_labels_job(PROJECT),
        repository_location_name="unified_ai",
        repository_name="__repository__",
        tags={"dagster/partition": batch},
    )
