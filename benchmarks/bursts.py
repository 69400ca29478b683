"""Bursts: N batch files dropped at once, through a real daemon, end to end.

`dagster-daemon run` watches the inbox with the project's batch sensor (every 15 s) and
launches each `score_batch` run in its own process through the queued run coordinator, as
`dagster dev` does. Measured: batches per minute from the drop until the last run finished
(file -> predictions + drift), for each `max_concurrent_runs`. The baseline is one batch at a
time (max_concurrent_runs = 1), so the ratio is the speed-up concurrency buys on this machine.

    python -m benchmarks --only bursts [--quick]
"""

import shutil
import tempfile
import time
from pathlib import Path

import dagster as dg

from benchmarks.batch_latency import write_batch
from benchmarks.harness import (
    BIN,
    DEFAULT_PROJECT,
    Row,
    Stats,
    clean_env,
    service,
    tail,
    wait_until,
    write_instance,
    write_workspace,
)


def burst(shared: Path, tmp: Path, project, batches: int, concurrency: int) -> float:
    """Batches per minute for `batches` files dropped at once, `concurrency` runs at a time."""
    from unified_ai.names import score_batch_job

    root = tmp / f"c{concurrency}"
    shutil.copytree(shared / "deployed", root)
    home = root / "home"
    dagster_home = write_instance(root / "dagster_home", queued=concurrency)
    workspace = write_workspace(dagster_home, unified_ai="unified_ai.definitions")
    env = clean_env(DAGSTER_HOME=str(dagster_home), UNIFIED_AI_HOME=str(home))
    log = root / "daemon.log"
    command = [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)]
    job = score_batch_job(project.name)
    # Batches are made (untimed) in a folder aside, then moved into the inbox at once.
    staging = root / "staging"
    inbox = home / "inbox" / project.name
    names = [write_batch(home, project, 200, seed) for seed in range(batches)]
    staging.mkdir()
    for name in names:
        (inbox / name).rename(staging / name)
    with (
        service(command, env, log) as process,
        dg.DagsterInstance.from_config(str(dagster_home)) as instance,
    ):

        def daemon_up():
            if process.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited: {tail(log)}")
            return instance.get_daemon_heartbeats()

        wait_until(daemon_up, timeout=180, what="the daemon's first heartbeat", poll=0.5)
        start = time.perf_counter()
        for name in names:
            (staging / name).rename(inbox / name)

        def finished():
            if process.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited: {tail(log)}")
            runs = instance.get_runs(dg.RunsFilter(job_name=job))
            failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
            if failed:
                raise RuntimeError(f"{job} run {failed[0].run_id} failed")
            done = [r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS]
            return len(done) >= batches

        wait_until(finished, timeout=3600, what=f"{batches} {job} runs", poll=0.5)
        return batches / (time.perf_counter() - start) * 60


def run(quick: bool, shared: Path) -> list[Row]:
    from unified_ai.project_tree import load_projects

    project = next(p for p in load_projects() if p.name == DEFAULT_PROJECT)
    # Quick mode proves the path runs (one daemon, two batches); full mode compares settings.
    batches = 2 if quick else 12
    settings = (2,) if quick else (1, 2, 4)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        rates = {c: burst(shared, Path(tmp), project, batches, c) for c in settings}
    one = Stats([rates[1]], unit="batches/min") if 1 in rates else None
    return [
        Row(
            "bursts",
            f"{batches} batches of 200 rows dropped at once, max_concurrent_runs={c}",
            Stats([rates[c]], unit="batches/min"),
            one if c != 1 else None,
            "max_concurrent_runs=1" if c != 1 else "",
            higher_is_better=True,
            note="from the drop, incl. up to one 15 s sensor interval" if c == settings[0] else "",
        )
        for c in settings
    ]
