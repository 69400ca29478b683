"""Who may write, what a served row may hold, how many labels a minute: the pieces on their own."""

import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.runtime import SERVE_TOKEN_ENV
from unified_ai.serving.auth import TokenGuard
from unified_ai.serving.docs import docs_page
from unified_ai.serving.limits import LabelRateLimit, require_json, served_text_problems
from unified_ai.serving.refusal import Refusal
from unified_ai_tests.conftest import write_project
from unified_ai_tests.serving.helpers import AUTH, TOKEN


def refusal(call, *args, **kwargs) -> Refusal:
    with pytest.raises(Refusal) as caught:
        call(*args, **kwargs)
    return caught.value


def test_writes_need_the_configured_token():
    guard = TokenGuard(TOKEN)
    guard.check_write({"authorization": AUTH["Authorization"]}, "labels")
    guard.check_write({"authorization": f"bearer  {TOKEN} "}, "labels")  # scheme is any case
    for headers in ({}, {"authorization": TOKEN}, {"authorization": f"Basic {TOKEN}"}):
        refused = refusal(guard.check_write, headers, "labels")
        assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = refusal(guard.check_write, {"authorization": f"Bearer {TOKEN}x"}, "labels")
    assert wrong.status == 401 and "invalid_token" in wrong.headers["WWW-Authenticate"]
    assert TOKEN not in wrong.detail
    guard.check_predict({})  # predictions are open unless required

    disabled = refusal(TokenGuard("").check_write, {"authorization": "Bearer x"}, "labels")
    assert disabled.status == 403
    assert disabled.detail.startswith(f"labels are disabled: set {SERVE_TOKEN_ENV}")

    strict = TokenGuard(TOKEN, require_for_predict=True)
    assert refusal(strict.check_predict, {}).status == 401
    strict.check_predict({"authorization": AUTH["Authorization"]})


def test_only_json_bodies_are_read():
    for kind in ("application/json", "application/json; charset=utf-8", "application/vnd+json"):
        require_json({"content-type": kind})
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""):
        refused = refusal(require_json, {"content-type": kind} if kind else {})
        assert refused.status == 415, kind


def test_served_text_is_bounded_and_free_of_control_characters():
    ok = {"colour": "red", "region": "north", "x1": 1.5}
    records = [
        ok,
        {**ok, "region": "n" * 257},
        {**ok, "colour": "r\x00d"},
        {**ok, "region": "tab\there"},
        {**ok, "colour": "r" * 300},  # has a category list: no length cap here
    ]
    problems = served_text_problems(
        records, ["colour", "region"], ["region"], max_text_chars=256, max_row_bytes=10_000
    )
    assert [(p.row, p.field) for p in problems] == [(1, "region"), (2, "colour"), (3, "region")]
    assert problems[0].reason == "is 257 characters, more than the limit of 256"
    assert problems[1].reason.startswith("holds the control character '\\x00'")
    [big] = served_text_problems([ok], ["colour"], [], max_text_chars=256, max_row_bytes=10)
    assert (big.row, big.field) == (
        0,
        "",
    ) and big.reason == "is 35 bytes as text, more than the limit of 10"


def test_labels_per_minute_over_a_sliding_window():
    now = [1000.0]
    limit = LabelRateLimit(rows_per_minute=10, files_per_minute=3, clock=lambda: now[0])
    limit.take(6, 1)
    now[0] += 30
    limit.take(4, 1)
    refused = refusal(limit.take, 1, 1)
    assert refused.status == 429 and refused.headers["Retry-After"] == "30"
    assert refused.detail == "labels: 11 label rows (limit 10) within a minute; retry later"
    now[0] += 30  # the first request leaves the window
    limit.take(6, 1)
    assert "label files (limit 3)" in refusal(limit.take, 0, 2).detail


def test_docs_page_is_self_contained():
    page = docs_page(
        {
            "info": {"title": "t <x>", "description": "d"},
            "paths": {
                "/a": {"post": {"summary": "s", "responses": {"200": {"description": "ok"}}}}
            },
        }
    )
    assert "<script" not in page and "://" not in page and "t &lt;x&gt;" in page


def test_serve_command_checks_the_token(home, projects_dir, monkeypatch):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    monkeypatch.delenv(SERVE_TOKEN_ENV, raising=False)
    result = CliRunner().invoke(main, ["serve", "small", "--require-token-for-predict"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: --require-token-for-predict needs a token: set {SERVE_TOKEN_ENV}"
    )
    monkeypatch.setenv(SERVE_TOKEN_ENV, "short")
    result = CliRunner().invoke(main, ["serve", "small"])
    assert result.exit_code == 1 and "shorter than 16 characters" in result.output
    assert "short" not in result.output.replace("shorter", "")
    monkeypatch.delenv(SERVE_TOKEN_ENV)
    result = CliRunner().invoke(main, ["serve", "small", "--body-seconds", "0"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --body-seconds: 0.0 must be a positive number"
