"""A real Dagster daemon on a throwaway instance, for load and fault tests.

The daemon runs the project's sensors on their own schedule and launches every run in its own
process through the queued run coordinator, exactly as `dagster dev` does; the test only drops
files and reads the instance.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg

BIN = Path(sys.executable).parent


class Daemon:
    """`dagster-daemon run` over one code location, with its own DAGSTER_HOME.

    Args:
        root: Folder for the instance, workspace and logs.
        env: Environment of the code location (UNIFIED_AI_HOME, UNIFIED_AI_PROJECTS, ...).
        max_concurrent_runs: The run queue's limit.
    """

    def __init__(self, root: Path, env: dict[str, str], max_concurrent_runs: int = 2):
        self.home = root / "dagster_home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **env, "DAGSTER_HOME": str(self.home)}
        (self.home / "dagster.yaml").write_text(
            textwrap.dedent(
                f"""\
                telemetry: {{enabled: false}}
                run_coordinator:
                  module: dagster.core.run_coordinator
                  class: QueuedRunCoordinator
                  config:
                    max_concurrent_runs: {max_concurrent_runs}
                    dequeue_interval_seconds: 1
                sensors:
                  use_threads: true
                  num_workers: 4
                """
            )
        )
        self.workspace = self.home / "workspace.yaml"
        self.workspace.write_text(
            "load_from:\n  - python_module:\n      module_name: unified_ai.definitions\n"
            "      location_name: unified_ai\n"
        )
        self.log = root / "daemon.log"
        self.process: subprocess.Popen | None = None
        self._groups: list[int] = []

    def start(self) -> None:
        handle = open(self.log, "ab")  # noqa: SIM115 - owned by the daemon process
        self.process = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        self._groups.append(self.process.pid)

    def crash(self) -> None:
        """SIGKILL the daemon process alone, as when its container dies.

        Runs it launched are processes of their own and go on; whatever it had not launched
        yet waits in the queue and in the sensors' cursors for the next daemon.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """Stop the daemon and everything any of its incarnations started."""
        for group in self._groups:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(group, sig)
                except ProcessLookupError:
                    break
                if self.process is not None and self.process.pid == group:
                    try:
                        self.process.wait(timeout=30)
                        break
                    except subprocess.TimeoutExpired:
                        continue
                time.sleep(0.5)
        self.process = None

    def instance(self) -> dg.DagsterInstance:
        """The daemon's instance, opened from this process (DAGSTER_HOME must point at it)."""
        return dg.DagsterInstance.from_config(str(self.home))

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""

    def wait_for(self, condition, *, timeout: float, what: str, poll: float = 2.0):
        """Poll `condition()` until it returns a truthy value; fail with the daemon's log."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the daemon exited while waiting for {what}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}:\n{self.logs()}"
                )
            time.sleep(poll)
