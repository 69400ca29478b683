"""`unified-ai report`: a stored HTML page written to a file (or opened), one-line errors."""

import json
import webbrowser
from pathlib import Path

from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import Report

PROJECT = "mortgage_approval"


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def store_report(home, path, page: str | None, at: str = "materialize") -> str:
    store = LineageStore(home / "store")
    attachments = {"roc.png": b"\x89PNG\r\n\x1a\n"}
    if page is not None:
        attachments["evaluation.html"] = page
    value = Report(body={"page": page}, attachments=attachments)
    version = store.write_version(path, *serialize(value)).version
    store.set_current(path, version, action=at, actor="ann")
    return version


def test_report_writes_the_current_page_and_an_older_version_on_request(home, tmp_path):
    path = [PROJECT, "evaluation_report"]
    old = store_report(home, path, "<html>old</html>")
    new = store_report(home, path, "<html>new</html>")

    result = invoke("report", PROJECT)
    assert result.exit_code == 0, result.output
    written = result.output.strip()
    assert written.endswith(f"{PROJECT}-evaluation_report-{new}.html")
    assert Path(written).read_text(encoding="utf-8") == "<html>new</html>"

    out = tmp_path / "page.html"
    result = invoke("report", PROJECT, "evaluation_report", "--version", old, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text() == "<html>old</html>"

    result = invoke("report", PROJECT, "--version", old, "--out", str(out), "--json")
    assert json.loads(result.output) == {
        "report": f"{PROJECT}/evaluation_report@{old}",
        "path": str(out),
    }


def test_report_opens_the_page_in_the_browser(home, tmp_path, monkeypatch):
    store_report(home, [PROJECT, "evaluation_report"], "<html>page</html>")
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    out = tmp_path / "page.html"
    result = invoke("report", PROJECT, "--out", str(out), "--open")
    assert result.exit_code == 0, result.output
    assert opened == [out.resolve().as_uri()]


def test_drift_report_defaults_to_the_newest_batch_with_a_page(home, tmp_path):
    drift = [PROJECT, "drift_report", "partitions"]
    store_report(home, [*drift, "batch-a"], "<html>a</html>")
    store_report(home, [*drift, "batch-b"], "<html>b</html>")
    store_report(home, [*drift, "batch-c"], None)  # a clean batch: no page
    out = tmp_path / "drift.html"
    assert invoke("report", PROJECT, "drift_report", "--out", str(out)).exit_code == 0
    assert out.read_text() == "<html>b</html>"
    result = invoke("report", PROJECT, "drift_report", "--batch", "batch-a", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text() == "<html>a</html>"


def test_report_errors_are_one_line(home):
    unknown = invoke("report", PROJECT, "deployed_model")
    assert unknown.exit_code == 1 and "has no HTML page (pages:" in unknown.output
    missing = invoke("report", PROJECT)
    assert missing.exit_code == 1 and f"{PROJECT}/evaluation_report" in missing.output
    no_pages = invoke("report", PROJECT, "drift_report")
    assert no_pages.exit_code == 1 and "no batch has a drift page yet" in no_pages.output
    version = store_report(home, [PROJECT, "evaluation_report"], None)
    bare = invoke("report", PROJECT)
    assert bare.exit_code == 1
    assert f"{PROJECT}/evaluation_report@{version}: this version has no HTML page" in bare.output
    for result in (unknown, missing, no_pages, bare):
        assert len(result.output.strip().splitlines()) == 1, result.output
