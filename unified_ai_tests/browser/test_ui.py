"""The README's tour, done by a user in a real browser against a real `dagster dev`.

`dagster dev` (webserver + daemon) runs on a throwaway `DAGSTER_HOME` that holds a copy of the
repository's `dagster.yaml` (what a user starts with), on a free port, in its own process
group; Playwright drives the system's Chromium (`UNIFIED_AI_TEST_CHROMIUM`, else
`/usr/bin/chromium`; no browser is downloaded). Without a browser the test is skipped locally
and fails in CI (`CI` set), so CI never passes without having looked at the UI.

Screenshots go to a folder the test prints; with `UNIFIED_AI_TEST_SCREENSHOTS=docs/screenshots`
they are also copied there for the README tour. On failure the webserver's and daemon's output
(stdout and stderr of `dagster dev`) is printed.
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROJECT = "mortgage_approval"
# A copy of the default project whose fairness policy its model cannot meet: the failed gate.
STRICT = "mortgage_strict"
APPROVER = "risk-officer"
SECOND = 1000  # Playwright counts milliseconds
STARTUP_SECONDS = 180
RUN_SECONDS = 300


def chromium_path() -> str:
    """The Chromium to drive, or skip (fail in CI) when there is none or no Playwright."""
    path = os.environ.get("UNIFIED_AI_TEST_CHROMIUM") or shutil.which("chromium") or ""
    problems = []
    if not path or not Path(path).exists():
        problems.append(f"no Chromium at {path or 'UNIFIED_AI_TEST_CHROMIUM/PATH'}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("playwright is not installed")
    if problems:
        reason = "; ".join(problems) + " (Debian: apt-get install chromium; pip install playwright)"
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def strict_project(folder: Path) -> None:
    """The default project under another name, with a fairness gap no model here can meet."""
    component = yaml.safe_load((REPO / "unified_ai/defs" / PROJECT / "defs.yaml").read_text())
    attributes = component["attributes"]
    attributes["name"] = STRICT
    attributes["description"] = "The mortgage model under a 1 % fairness gap: it cannot deploy."
    attributes["evaluation"]["bootstrap_samples"] = 50
    attributes["policy"]["name"] = STRICT
    attributes["policy"]["fairness"]["max_gap"] = 0.01
    attributes["policy"]["approval"] = {"mode": "never"}
    folder.mkdir(parents=True)
    (folder / f"{STRICT}.yaml").write_text(yaml.safe_dump(attributes, sort_keys=False))


class DagsterDev:
    """`dagster dev` in its own process group, its output in files."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "dagster_home"
        self.home.mkdir(parents=True)
        shutil.copy(REPO / "dagster.yaml", self.home / "dagster.yaml")
        projects = root / "projects"
        strict_project(projects)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("UNIFIED_AI_", "MLFLOW_"))},
            "DAGSTER_HOME": str(self.home),
            "UNIFIED_AI_HOME": str(root / "unified_ai_home"),
            "UNIFIED_AI_PROJECTS": str(projects),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "GX_ANALYTICS_ENABLED": "false",
        }
        self.stdout = root / "dagster_dev.stdout.log"
        self.stderr = root / "dagster_dev.stderr.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.process = subprocess.Popen(
                [
                    *(str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml")),
                    *("-h", "127.0.0.1", "-p", str(self.port)),
                ],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"dagster dev exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1)
        raise AssertionError(f"dagster dev did not answer on {self.url} in {STARTUP_SECONDS} s")

    def stop(self) -> None:
        if self.process is None:
            return
        # Started without a terminal, `dagster dev` may ignore SIGTERM: stop its whole group.
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Runs the daemon launched live in the same group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def logs(self, chars: int = 12000) -> str:
        parts = []
        for name, path in (("stdout", self.stdout), ("stderr", self.stderr)):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- dagster dev {name} (webserver + daemon), last {chars} chars ---")
            parts.append(text[-chars:])
        # A run's step errors (with their tracebacks) are only in its compute logs.
        for log in sorted(self.home.glob("storage/*/compute_logs/*.err")):
            text = log.read_text(errors="replace")
            if "STEP_FAILURE" in text:
                parts.append(f"--- failed run {log.parts[-3]}: {log.name}, last {chars} chars ---")
                parts.append(text[-chars:])
        return "\n".join(parts)

    def wait_for_version(self, asset: str) -> None:
        """Wait until a batch of `asset` (a partitioned asset of PROJECT) has a current version."""
        from unified_ai.io.store import LineageStore

        store = LineageStore(self.root / "unified_ai_home" / "store")
        folder = self.root / "unified_ai_home" / "store" / PROJECT / asset / "partitions"
        deadline = time.monotonic() + RUN_SECONDS
        while not any(
            store.current_version([PROJECT, asset, "partitions", batch.name])
            for batch in (folder.iterdir() if folder.is_dir() else [])
        ):
            assert time.monotonic() < deadline, f"no {asset} after {RUN_SECONDS} s\n{self.logs()}"
            time.sleep(1)

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "unified-ai"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=RUN_SECONDS,
        )
        assert result.returncode == 0, f"unified-ai {' '.join(args)}: {result.stderr}"
        return result.stdout


@pytest.fixture
def dagster_dev(tmp_path) -> Iterator[DagsterDev]:
    chromium_path()
    server = DagsterDev(tmp_path)
    try:
        server.start()
    except BaseException:
        server.stop()
        print(server.logs())
        raise
    try:
        yield server
    finally:
        server.stop()


class User:
    """One person in the browser: navigates, clicks what a user clicks, takes screenshots.

    Args:
        page: The Playwright page.
        url: The webserver's base URL.
        shots: Folder for the screenshots.
        private: Folders whose paths must not appear in a screenshot (the README shows them):
            a screenshot is cut off above the first row that shows one.
    """

    def __init__(self, page, url: str, shots: Path, private: tuple[str, ...] = ()):
        self.page = page
        self.url = url
        self.shots = shots
        self.private = private

    def open(self, path: str) -> None:
        self.page.goto(self.url + path, timeout=60 * SECOND)

    def shot(self, name: str) -> Path:
        """A screenshot of the viewport once the page has settled, above any private path."""
        self.page.wait_for_timeout(2 * SECOND)  # statuses and metadata arrive by polling
        top = self.page.evaluate(
            """(private) => {
                const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
                let top = Infinity;
                while (walker.nextNode()) {
                    const node = walker.currentNode;
                    if (!private.some((p) => node.textContent.includes(p))) continue;
                    const box = (node.parentElement.closest("tr") || node.parentElement)
                        .getBoundingClientRect();
                    const shown = box.bottom > 0 && box.top < window.innerHeight;
                    if (shown) top = Math.min(top, box.top);
                }
                return top === Infinity ? null : top;
            }""",
            list(self.private),
        )
        viewport = self.page.viewport_size
        height = viewport["height"] if top is None else max(int(top) - 4, 200)
        path = self.shots / f"{name}.png"
        clip = {"x": 0, "y": 0, "width": viewport["width"], "height": height}
        self.page.screenshot(path=str(path), clip=clip)
        return path

    def metadata_value(self, key: str) -> str:
        """The value cell of one metadata row on an asset page."""
        from playwright.sync_api import expect

        row = self.page.get_by_role("row").filter(
            has=self.page.get_by_role("cell", name=key, exact=True)
        )
        row.first.wait_for(timeout=60 * SECOND)
        cell = row.first.locator(":scope > td").last
        # Markdown and JSON values render after their row appears: wait for the text itself.
        expect(cell).to_have_text(re.compile(r"\S"), timeout=60 * SECOND)
        return cell.inner_text().strip()

    def materialize_job(self, job: str) -> str:
        """Jobs → JOB → Materialize all (confirming the unmaterialized-upstream warning)."""
        self.open(f"/locations/unified_ai/jobs/{job}")
        self.page.get_by_role("button", name="Materialize all").click(timeout=60 * SECOND)
        confirm = self.page.get_by_role("button", name="Confirm")
        view = self.page.get_by_role("link", name="View", exact=True)
        confirm.or_(view).first.wait_for(timeout=60 * SECOND)
        if confirm.is_visible():
            confirm.click()
        view.wait_for(timeout=60 * SECOND)
        return view.get_attribute("href")

    def wait_for_run(self, run_path: str, status: str = "Success") -> None:
        """Open the run's page and wait until its status reads Success or Failure."""
        self.open(run_path)
        final = self.page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$"))
        final.first.wait_for(timeout=RUN_SECONDS * SECOND)
        seen = final.first.inner_text().strip()
        assert seen == status, f"run {run_path} ended {seen}, expected {status}"


def test_train_evaluate_approve_deploy_and_roll_back_in_the_browser(dagster_dev, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(60 * SECOND)
            user = User(page, dagster_dev.url, shots, private=(str(tmp_path), str(REPO)))
            try:
                run_the_tour(user, dagster_dev)
            except BaseException:
                page.screenshot(path=str(shots / "failure.png"), full_page=True)
                print(dagster_dev.logs())
                raise
        finally:
            browser.close()
    copies = os.environ.get("UNIFIED_AI_TEST_SCREENSHOTS")
    if copies:
        target = Path(copies) if Path(copies).is_absolute() else REPO / copies
        target.mkdir(parents=True, exist_ok=True)
        for png in shots.glob("*.png"):
            shutil.copy(png, target / png.name)


def run_the_tour(user: User, server: DagsterDev) -> None:
    page = user.page

    # The project's asset graph, with nothing covering it (`nux` is off in dagster.yaml).
    user.open(f"/locations/unified_ai/asset-groups/{PROJECT}")
    page.get_by_text("evaluation_report", exact=True).first.wait_for()
    assert page.get_by_text("Join the Dagster community").count() == 0, (
        "the first-run dialog covers the UI: dagster.yaml needs `nux: {enabled: false}`"
    )

    # First loop: the policy deploys the first model by itself. The strict project's loop is
    # launched meanwhile; its fairness gate will stop it.
    first_run = user.materialize_job(f"{PROJECT}__training_loop")
    strict_run = user.materialize_job(f"{STRICT}__training_loop")
    user.wait_for_run(first_run)
    user.open(f"/assets/{PROJECT}/deployed_model")
    first_model = user.metadata_value("model_version")
    assert "first model" in user.metadata_value("approval")

    # Labeled production rows arrive (the daemon's sensors score and ingest them): the next
    # model learns from them. (On the same rows it would rebuild the champion, which is
    # never deployed.)
    server.cli("simulate", PROJECT, "--batches", "1", "--rows", "300", "--seed", "3")
    server.wait_for_version("predictions")
    server.cli("simulate", PROJECT, "--labels")
    server.wait_for_version("ground_truth")

    # Second loop: not clearly better than the champion, so it waits for a person.
    second_run = user.materialize_job(f"{PROJECT}__training_loop")
    user.wait_for_run(second_run)

    # The evaluation: candidate vs champion, the per-segment table and the plots.
    user.open(f"/assets/{PROJECT}/evaluation_report")
    candidate = user.metadata_value("candidate_version")
    assert user.metadata_value("champion_version") == first_model
    assert candidate != first_model
    assert "roc_auc" in user.metadata_value("summary")
    segments = page.get_by_role("row").filter(
        has=page.get_by_role("cell", name="segments", exact=True)
    )
    for segment in ("white", "black", "hispanic", "male", "female"):
        assert segments.get_by_role("cell", name=segment, exact=True).count() >= 1, segment
    assert "small" in segments.inner_text()  # the 7 applicants of unknown sex are marked
    segments.scroll_into_view_if_needed()
    user.shot("evaluation_segments")
    plots = page.get_by_role("row").filter(has=page.get_by_role("cell", name="plots", exact=True))
    plots.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    for title in ("ROC curve", "Precision-recall curve", "Calibration curve", "Confusion matrix"):
        image = dialog.get_by_role("img", name=title)
        image.wait_for()
        width = image.evaluate("img => img.complete ? img.naturalWidth : 0")
        assert width > 100, f"{title} did not render (width {width})"
    user.shot("evaluation")
    dialog.get_by_role("button", name="Close").click()

    # The deployment still serves the first model: the second waits for its approval.
    user.open(f"/assets/{PROJECT}/deployed_model")
    assert user.metadata_value("model_version") == first_model

    # Approve from the launchpad, as the README says.
    user.open(f"/locations/unified_ai/jobs/{PROJECT}__approve/playground")
    page.locator(".CodeMirror").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    # One line of flow-style YAML: typed line by line, the editor would re-indent it.
    page.keyboard.insert_text(
        f"ops: {{{PROJECT}__deployment_approval: {{config: {{model_version: '{candidate}', "
        f"decision: approve, approver: {APPROVER}, comment: 'fair, better calibrated'}}}}}}"
    )
    page.get_by_text("No errors").wait_for()
    page.get_by_role("button", name="Launch Run").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+$"), timeout=60 * SECOND)
    user.wait_for_run(page.url.removeprefix(user.url))

    # The approval sensor launches the deploy job: the second model goes live.
    user.open(f"/assets/{PROJECT}/deployed_model")
    deadline = time.monotonic() + RUN_SECONDS
    while user.metadata_value("model_version") != candidate:
        assert time.monotonic() < deadline, f"{candidate} was not deployed after its approval"
        page.wait_for_timeout(3 * SECOND)
        page.reload()
    assert user.metadata_value("approval") == f"approved by {APPROVER}"
    user.shot("deployment")

    # The strict project's failed gate, as its checks show it: which gate, why, the evidence.
    user.wait_for_run(strict_run, status="Failure")
    user.open(f"/assets/{STRICT}/evaluation_report?view=checks")
    page.get_by_text("fairness_within_policy").first.click()
    page.get_by_text("This is a blocking asset check.").wait_for()
    # The reason shows as the check's description and again in its recorded metadata.
    page.get_by_text(re.compile(r"gap .* exceeds the policy maximum 0\.0100")).first.wait_for()
    assert page.get_by_text("Failed", exact=True).count() >= 1
    user.shot("failed_gate")

    # A rollback from the command line, through the same webserver: the incident in the UI.
    reason = "approval rate collapsed after deploy"
    said = server.cli(
        "rollback", PROJECT, "--reason", reason, "--by", "on-call", "--url", server.url
    )
    assert "rolled back" in said
    user.open(f"/assets/{PROJECT}/incidents")
    page.get_by_text(reason).first.wait_for()
    assert user.metadata_value("trigger") == "cli:on-call"
    user.shot("rollback_incident")
    user.open(f"/assets/{PROJECT}/deployed_model")
    assert user.metadata_value("model_version") == first_model

    # The graph at the end of the story, every asset of the loop materialized.
    user.open(f"/locations/unified_ai/asset-groups/{PROJECT}")
    page.get_by_text("evaluation_report", exact=True).first.wait_for()
    user.shot("asset_graph")
