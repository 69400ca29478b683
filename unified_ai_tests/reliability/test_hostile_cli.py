"""A hostile user of the command line and of project files: one line and exit 1, always.

Each case runs the real `unified-ai` command (click's runner) against a real store on disk, or
a real Dagster instance for approvals, and expects exactly one line naming what was refused.
"""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import Report
from unified_ai.names import ROW_ID
from unified_ai.payloads import Approval
from unified_ai_tests.conftest import make_frame, write_project

PROJECT = "small"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_one_line(result, *names: str, exit_code: int = 1) -> str:
    """The command failed with `exit_code` and said why on one line that names `names`."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {result.exception!r}"
    )
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def store_of(home: Path) -> LineageStore:
    return LineageStore(home / "store")


def put(store: LineageStore, path: list[str], value) -> str:
    version = store.write_version(path, *serialize(value)).version
    store.set_current(path, version, action="materialize", actor="test")
    return version


@pytest.fixture
def project(home, projects_dir, monkeypatch):
    """The small project, loaded by the CLI from UNIFIED_AI_PROJECTS."""
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    return PROJECT


# -- report --out ------------------------------------------------------------------------------


@pytest.fixture
def report(home, project):
    page = Report(body={"page": "p"}, attachments={"evaluation.html": "<html>page</html>"})
    return put(store_of(home), [project, "evaluation_report"], page)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_report_to_a_full_device_is_one_line(report):
    line = assert_one_line(invoke("report", PROJECT, "--out", "/dev/full"), "/dev/full")
    assert "No space left on device" in line


def test_report_to_an_empty_path_is_one_line(report):
    assert_one_line(invoke("report", PROJECT, "--out", ""), "--out ''", "empty path")


def test_report_under_a_file_is_one_line_and_leaves_nothing_behind(report, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    target = blocker / "page.html"
    assert_one_line(invoke("report", PROJECT, "--out", str(target)), str(target))
    assert blocker.read_text() == "x"


def test_report_still_writes_a_page(report, tmp_path):
    target = tmp_path / "pages" / "page.html"
    result = invoke("report", PROJECT, "--out", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text() == "<html>page</html>"
    assert [p.name for p in target.parent.iterdir()] == ["page.html"]  # no partial file left


# -- simulate -----------------------------------------------------------------------------------


@pytest.fixture
def holdout(home, project):
    """A stored holdout split, so `simulate` gets as far as drawing rows."""
    frame = make_frame(rows=60)
    frame[ROW_ID] = [f"src:{i}" for i in range(len(frame))]
    return put(store_of(home), [project, "holdout_split"], frame)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--rows", "-5"], "--rows"),
        (["--rows", "0"], "--rows"),
        (["--rows", "10000001"], "--rows"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**32)], "--seed"),
        (["--batches", "-1"], "--batches"),
        (["--rows", "many"], "--rows"),
        (["--drift", "shift:x1=1.2.3"], "shift:x1=1.2.3"),
        (["--drift", "scale:x1=" + "9" * 400], "scale:x1="),
    ],
)
def test_simulate_out_of_range_numbers_are_one_line(holdout, home, args, option):
    result = invoke("simulate", PROJECT, "--batches", "1", *args)
    assert_one_line(result, option)
    assert not (home / "inbox" / PROJECT).exists() or not list(
        (home / "inbox" / PROJECT).glob("*.csv")
    )


def test_simulate_accepts_the_edges_of_its_ranges(holdout, home):
    result = invoke("simulate", PROJECT, "--batches", "2", "--rows", "1", "--seed", str(2**32 - 1))
    assert result.exit_code == 0, result.output
    assert len(list((home / "inbox" / PROJECT).glob("*.csv"))) == 2


def test_a_malformed_command_line_is_one_line_with_click_exit_code_2(project):
    assert_one_line(invoke("simulate", PROJECT, "--nope"), "--nope", exit_code=2)
    assert_one_line(invoke("rollback", PROJECT), "--reason", exit_code=2)


# -- policy check: webhooks and paths ------------------------------------------------------------


def check(folder: Path, data: str = "{source: small.csv}", extra: str = ""):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "small.csv").write_text("x1,label\n1,0\n")
    path = folder / "small.yaml"
    path.write_text(
        f"name: small\ndata: {data}\ntarget: label\nfeatures: {{numeric: [x1]}}\n"
        f"estimator: {{class: LogisticRegression}}\n{extra}"
    )
    return invoke("policy", "check", str(path))


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://hooks.example/x",
        "gopher://hooks.example/x",
        "hooks.example/no-scheme",
        "https:///no-host",
    ],
)
def test_policy_check_refuses_webhooks_that_are_not_http(home, tmp_path, url):
    extra = f'policy:\n  notifications:\n    - {{type: webhook, url: "{url}"}}\n'
    line = assert_one_line(check(tmp_path / "p", extra=extra), "policy.notifications.0.url")
    assert "http" in line


@pytest.mark.parametrize(
    ("data", "extra", "field"),
    [
        ("{source: ../../../../etc/passwd.csv}", "", "data.source"),
        ("{source: /etc/passwd.csv}", "", "data.source"),
        ("{source: 'file:///etc/passwd.csv'}", "", "data.source"),
        ("{source: '~/loans.csv'}", "", "data.source"),
        ("{source: data/../../loans.csv}", "", "data.source"),
        ("{source: small.csv}", "monitoring: {inbox: ../../../../tmp/inbox}\n", "monitoring.inbox"),
        ("{source: small.csv}", "monitoring: {inbox: 'file:///tmp/inbox'}\n", "monitoring.inbox"),
        ("{source: small.csv}", "training: {runner: pipes, script: ../t.py}\n", "training.script"),
    ],
)
def test_policy_check_refuses_paths_that_leave_the_project_folder(
    home, tmp_path, data, extra, field
):
    line = assert_one_line(check(tmp_path / "p", data, extra), field, "outside the project")
    assert "data.allow_outside_paths" in line  # says how to allow it


def test_paths_outside_are_allowed_explicitly_and_paths_inside_always(home, tmp_path):
    folder = tmp_path / "p"
    outside = (tmp_path / "shared" / "loans.csv").as_posix()
    for data, extra in [
        ("{source: small.csv}", "monitoring: {inbox: incoming}\n"),
        (f"{{source: {(folder / 'small.csv').as_posix()}}}", ""),  # absolute, but inside
        ("{source: 's3://bucket/loans.csv'}", "monitoring: {inbox: 's3://bucket/inbox'}\n"),
        (f"{{source: {outside}, allow_outside_paths: true}}", "monitoring: {inbox: /srv/in}\n"),
        ("{source: ../../../../etc/passwd.csv, allow_outside_paths: true}", ""),
    ]:
        result = check(folder, data, extra)
        assert result.exit_code == 0, (data, result.output)


def test_projects_refused_by_policy_check_are_refused_when_loaded(home, tmp_path, monkeypatch):
    check(tmp_path / "p", "{source: ../../../../etc/passwd.csv}")
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(tmp_path / "p"))
    assert_one_line(invoke("projects"), "data.source", "outside the project")


# -- approvals dated in the future ---------------------------------------------------------------

APPROVAL_POLICY = """\
  approval:
    mode: required
    approvers: [alice, bob]
    four_eyes: true
"""


def forged_approval(model: str, report: str, at: datetime) -> dict:
    return Approval(
        project=PROJECT,
        decision="approve",
        approver="bob",
        model_version=model,
        evaluation_report_version=report,
        candidate_model_version=model,
        at=at.isoformat(timespec="milliseconds"),
        valid=True,
        comment="approved in advance",
    ).to_payload()


@pytest.fixture
def approval_defs(home, projects_dir, monkeypatch):
    from unified_ai_tests.flows.helpers import project_defs

    write_project(projects_dir, policy_extra=APPROVAL_POLICY)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    return project_defs(projects_dir)


def test_a_reported_approval_dated_in_the_future_never_deploys(approval_defs, instance):
    """A materialization reported over the webserver's REST API with a forged `at`."""
    from unified_ai_tests.flows.monitoring_helpers import SensorDriver

    driver = SensorDriver(approval_defs, instance)
    key = dg.AssetKey([PROJECT, "deployment_approval"])
    now = datetime.now(timezone.utc)

    def report(at: datetime) -> None:
        metadata = Approval.metadata(
            Approval.from_payload(forged_approval("m1", "r1", at), where="test")
        )
        instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata=metadata))

    report(now + timedelta(days=365))
    tick = driver.tick(f"{PROJECT}__approval_sensor")
    assert tick.requests == []
    assert "bob (dated" in tick.skip and "in the future" in tick.skip
    assert len(tick.skip.splitlines()) == 1

    report(now)  # the same approval, honestly dated, deploys
    assert len(driver.tick(f"{PROJECT}__approval_sensor").requests) == 1


def test_a_stored_approval_dated_in_the_future_is_refused_when_deploying(
    approval_defs, instance, home
):
    """A hand-made approval record in the store, dated a year ahead (it would never expire)."""
    from unified_ai_tests.flows.helpers import step_failures

    trained = approval_defs.resolve_job_def(f"{PROJECT}__training_loop").execute_in_process(
        instance=instance, tags={"unified_ai/actor": "alice"}, raise_on_error=False
    )
    assert trained.success, step_failures(trained)
    store = store_of(home)
    model = store.require_current([PROJECT, "candidate_model"])
    report = store.require_current([PROJECT, "evaluation_report"])
    ahead = datetime.now(timezone.utc) + timedelta(days=365)
    put(store, [PROJECT, "deployment_approval"], forged_approval(model, report, ahead))

    deployed = approval_defs.resolve_job_def(f"{PROJECT}__deploy").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not deployed.success
    assert store.current_version([PROJECT, "deployed_model"]) is None
    message = step_failures(deployed)[f"{PROJECT}__deployed_model"]
    assert len(message.strip().splitlines()) == 1, message
    assert "refusing to deploy model" in message
    assert f"bob (dated {ahead:%Y-%m-%d %H:%M} UTC, in the future" in message
    # The record stays in the audit trail as it was written.
    stored = store.read_value(
        [PROJECT, "deployment_approval"], store.require_current([PROJECT, "deployment_approval"])
    )
    assert json.loads(json.dumps(stored))["at"].startswith(f"{ahead:%Y-%m-%d}")


@pytest.mark.parametrize("at", ["tomorrow", "2099-01-01T00:00:00"])
def test_a_stored_approval_with_an_unreadable_time_is_one_line(home, project, projects_dir, at):
    """`2099-01-01T00:00:00` has no time zone: it compares with no clock (it used to crash)."""
    record = forged_approval("m1", "r1", datetime.now(timezone.utc))
    version = put(store_of(home), [project, "deployment_approval"], {**record, "at": at})
    result = invoke("policy", "dry-run", project, "--policy", str(projects_dir / "small.yaml"))
    assert_one_line(result, f"{project}/deployment_approval@{version}", "at:", "time zone")
