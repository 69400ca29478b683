"""What every benchmark shares: timing with repetitions, result rows, and the processes it starts.

A benchmark module exposes `run(quick: bool, shared: Path) -> list[Row]`; `python -m benchmarks`
runs each in a process of its own and prints one table. Each row sets a measurement beside its
floor (or its small-size baseline) measured in the same run, so a number is always read as a
ratio on this machine today, never against a number written down elsewhere.
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
DEFAULT_PROJECT = "mortgage_approval"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class Stats:
    """Repeated measurements of one quantity (seconds unless `unit` says otherwise)."""

    values: list[float]
    unit: str = "s"

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self) -> str:
        if len(self.values) == 1:
            return f"{_fmt(self.values[0])} {self.unit}"
        return f"{_fmt(self.min)} / {_fmt(self.median)} {self.unit} (n={len(self.values)})"


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    if abs(value) >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2g}"


@dataclass
class Row:
    """One line of the report.

    Attributes:
        benchmark: The module that measured it.
        case: What was measured.
        measured: The measurement.
        baseline: What it is compared with (a floor, or the same thing at a small size).
        baseline_label: Names the baseline.
        target: The target ratio, if there is one.
        higher_is_better: True when the ratio must reach the target from below (throughput).
        note: Anything a reader needs to interpret the numbers.
        limit: An absolute upper bound on the median (in `measured.unit`), where the target is
            a number rather than a ratio.
    """

    benchmark: str
    case: str
    measured: Stats
    baseline: Stats | None = None
    baseline_label: str = ""
    target: float | None = None
    higher_is_better: bool = False
    note: str = ""
    limit: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline.median == 0:
            return None
        return self.measured.median / self.baseline.median

    @property
    def verdict(self) -> str:
        if self.limit is not None:
            return "met" if self.measured.median <= self.limit else "MISSED"
        ratio = self.ratio
        if self.target is None or ratio is None:
            return ""
        met = ratio >= self.target if self.higher_is_better else ratio <= self.target
        return "met" if met else "MISSED"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Row":
        known = set(cls.__dataclass_fields__)
        data = {k: v for k, v in data.items() if k in known}
        data["measured"] = Stats(**data["measured"])
        if data.get("baseline"):
            data["baseline"] = Stats(**data["baseline"])
        return cls(**data)


def repeat(times: int, fn: Callable[[], object], *, setup: Callable[[], object] | None = None):
    """Stats of `fn()` wall time over `times` calls; `setup()` runs untimed before each."""
    values = []
    for _ in range(times):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        values.append(time.perf_counter() - start)
    return Stats(values)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without settings that would point runs elsewhere."""
    # Without PYTHONDONTWRITEBYTECODE too: a user's processes keep the modules they compile, and
    # a run worker that compiles the package from source on every run measures the compiler.
    dropped = {
        "UNIFIED_AI_PROJECTS",
        "UNIFIED_AI_RUNTIME",
        "MLFLOW_TRACKING_URI",
        "PYTHONDONTWRITEBYTECODE",
    }
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false"})
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_instance(home: Path, *, queued: int | None = None) -> Path:
    """A DAGSTER_HOME: runs launched in their own process, queued (daemon) or not (webserver)."""
    home.mkdir(parents=True, exist_ok=True)
    if queued is None:
        coordinator = "module: dagster.core.run_coordinator\n  class: DefaultRunCoordinator"
    else:
        coordinator = textwrap.dedent(
            f"""\
            module: dagster.core.run_coordinator
              class: QueuedRunCoordinator
              config:
                max_concurrent_runs: {queued}
                dequeue_interval_seconds: 1"""
        )
    (home / "dagster.yaml").write_text(
        "telemetry: {enabled: false}\n"
        f"run_coordinator:\n  {coordinator}\n"
        "sensors:\n  use_threads: true\n  num_workers: 4\n"
    )
    return home


def write_workspace(home: Path, **locations: str) -> Path:
    """A workspace.yaml loading each location name's module from this repository."""
    entries = "".join(
        f"  - python_module:\n      module_name: {module}\n"
        f"      location_name: {name}\n"
        f"      working_directory: {REPO}\n"
        for name, module in locations.items()
    )
    path = home / "workspace.yaml"
    path.write_text(f"load_from:\n{entries}")
    return path


@contextmanager
def service(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A long-running process in its own group, stopped (group and all) on the way out."""
    with log.open("ab") as handle:
        process = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=20)
                break
            except subprocess.TimeoutExpired:
                continue


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, poll: float = 0.05):
    """Poll `condition()` until truthy; raise naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def dump_rows(rows: list[Row], path: Path) -> None:
    path.write_text(json.dumps([r.to_json() for r in rows]))
