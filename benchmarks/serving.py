"""`unified-ai serve` measured: latency, throughput, swap time and failures across swaps.

The service runs as users start it (`python -m unified_ai.cli serve`, its own process) on the
project `training_loop` deployed twice; the client is plain HTTP on localhost with keep-alive.

- Latency for 1 and 1,000 rows per request, p50 and p99, vs the raw `pipeline.predict_proba`
  on the same rows in this process (the least any server could do).
- Throughput with 1, 4 and 16 concurrent clients (a bounded loop each), vs raw predict_proba
  calls per second in one thread.
- Swap time: from `unified-ai rollback --to V` (back and forth between two deployments)
  returning to the first answer from version V (target <= 2 s), with clients sending all
  along; failed requests across the swaps (target 0).

    python -m benchmarks --only serving [--quick]
"""

import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.harness import (
    DEFAULT_PROJECT,
    Row,
    Stats,
    clean_env,
    free_port,
    service,
    tail,
    wait_until,
)


class Connection:
    """One keep-alive HTTP connection to the service."""

    def __init__(self, port: int):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes) -> tuple[int, dict]:
        try:
            self.connection.request(
                "POST", path, body=body, headers={"Content-Type": "application/json"}
            )
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            raise
        return response.status, json.loads(data) if data else {}


class Client(threading.Thread):
    """Sends one request body again and again until told to stop; keeps every answer."""

    def __init__(self, port: int, path: str, body: bytes):
        super().__init__(daemon=True)
        self.connection = Connection(port)
        self.path = path
        self.body = body
        self.answers: list[tuple[float, int | None, str | None]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                status, body = self.connection.post(self.path, self.body)
            except (OSError, http.client.HTTPException) as exc:
                self.answers.append((time.time(), None, repr(exc)))
                continue
            self.answers.append((time.time(), status, body.get("deployment_version")))


def raw_latencies(pipeline, inputs, times: int) -> list[float]:
    """Seconds of `times` raw predict_proba calls, with the faster of all and of one thread.

    Tree models predict with OpenMP threads; on a busy machine their barriers wait for
    descheduled threads and one thread is several times faster, so the floor is the better of
    both (the least any server could do here).
    """
    from threadpoolctl import threadpool_limits

    best: list[float] = []
    for limit in (None, 1):
        with threadpool_limits(limits=limit):
            pipeline.predict_proba(inputs)  # warm-up
            values = []
            for _ in range(times):
                start = time.perf_counter()
                pipeline.predict_proba(inputs)
                values.append(time.perf_counter() - start)
        if not best or statistics.median(values) < statistics.median(best):
            best = values
    return best


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(quick: bool, shared: Path) -> list[Row]:
    import pandas as pd
    from click.testing import CliRunner

    from unified_ai.cli import main
    from unified_ai.io.store import LineageStore
    from unified_ai.ml.training import model_inputs
    from unified_ai.names import DEPLOYED_MODEL, HOLDOUT_SPLIT
    from unified_ai.project_tree import load_projects
    from unified_ai.serving.follower import load_deployment

    project = next(p for p in load_projects() if p.name == DEFAULT_PROJECT)
    requests = {1: 30, 1000: 5} if quick else {1: 200, 1000: 30}
    concurrency = (2,) if quick else (1, 4, 16)
    seconds = 2.0 if quick else 5.0
    swaps = 2 if quick else 10
    rows = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp) / "deployed"
        shutil.copytree(shared / "deployed", root)
        home = root / "home"
        env = clean_env(DAGSTER_HOME=str(root / "dagster_home"), UNIFIED_AI_HOME=str(home))
        # The rollback command runs in this process, on the same instance and home.
        os.environ.update({"DAGSTER_HOME": env["DAGSTER_HOME"], "UNIFIED_AI_HOME": str(home)})
        store = LineageStore(home / "store")
        deployed = [project.name, DEPLOYED_MODEL]
        newest = store.require_current(deployed)
        older = next(m.version for m in store.history(deployed) if m.version != newest)
        pool = store.read_value(
            [project.name, HOLDOUT_SPLIT], store.require_current([project.name, HOLDOUT_SPLIT])
        ).drop(columns=[project.target])
        # Bookkeeping columns (row ids, origin) are the store's, not a client's.
        pool = pool[[c for c in pool.columns if not c.startswith("_")]]
        sample = pool.sample(n=1000, replace=len(pool) < 1000, random_state=0)
        sample = sample.reset_index(drop=True)
        bodies = {
            n: json.dumps({"rows": json.loads(sample.head(n).to_json(orient="records"))}).encode()
            for n in requests
        }
        served = load_deployment(store, project, newest)

        port = free_port()
        log = root / "serve.log"
        command = [sys.executable, "-m", "unified_ai.cli", "serve", project.name]
        command += ["--port", str(port), "--poll-seconds", "0.2", "--log-level", "warning"]
        command += ["--max-rows", "1000", "--flush-seconds", "5", "--max-concurrent", "4"]
        path = f"/v1/projects/{project.name}/predict"
        with service(command, env, log) as process:

            def ready():
                if process.poll() is not None:
                    raise RuntimeError(f"unified-ai serve exited: {tail(log)}")
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    connection.request("GET", "/readyz")
                    return connection.getresponse().status == 200
                except OSError:
                    return False

            wait_until(ready, timeout=180, what="unified-ai serve to be ready", poll=0.2)

            for count, times in requests.items():
                connection = Connection(port)
                connection.post(path, bodies[count])  # warm-up
                latencies = []
                for _ in range(times):
                    start = time.perf_counter()
                    status, answer = connection.post(path, bodies[count])
                    latencies.append(time.perf_counter() - start)
                    if status != 200:
                        raise RuntimeError(f"predict answered {status}: {answer}")
                inputs = model_inputs(pd.DataFrame(sample.head(count)), served.features)
                raw = raw_latencies(served.model.pipeline, inputs, times)
                for label, share in (("p50", 0.5), ("p99", 0.99)):
                    rows.append(
                        Row(
                            "serving",
                            f"{label} latency, {count:,} row(s) per request ({times} requests)",
                            Stats([percentile(latencies, share)]),
                            Stats([percentile(raw, share)]),
                            f"{label} of raw predict_proba on the same rows, in process",
                        )
                    )

            inputs = model_inputs(pd.DataFrame(sample.head(1)), served.features)
            raw_rate = 1 / statistics.median(raw_latencies(served.model.pipeline, inputs, 50))
            for clients in concurrency:
                threads = [Client(port, path, bodies[1]) for _ in range(clients)]
                began = time.perf_counter()
                for thread in threads:
                    thread.start()
                time.sleep(seconds)
                for thread in threads:
                    thread.done.set()
                for thread in threads:
                    thread.join(60)
                elapsed = time.perf_counter() - began
                answers = [a for t in threads for a in t.answers]
                ok = sum(1 for _, status, _ in answers if status == 200)
                rows.append(
                    Row(
                        "serving",
                        f"throughput, {clients} concurrent client(s), 1-row requests",
                        Stats([ok / elapsed], unit="req/s"),
                        Stats([raw_rate], unit="calls/s"),
                        "raw 1-row predict_proba calls per second, one caller",
                        higher_is_better=True,
                        note=f"{len(answers) - ok} failed",
                    )
                )

            # Swaps under load: rollback to the previous deployment, then back to the newest.
            runner = CliRunner()
            clients = [Client(port, path, bodies[1]) for _ in range(2)]
            for thread in clients:
                thread.start()
            swap_times = []
            for index in range(swaps):
                # Explicit targets: "the previous deployment" skips one rolled back from.
                target_args = ["--to", newest if index % 2 else older]
                args = ["rollback", project.name, "--reason", "benchmark", "--by", "bench"]
                result = runner.invoke(main, [*args, *target_args])
                returned = time.time()
                if result.exit_code != 0:
                    raise RuntimeError(f"unified-ai rollback failed: {result.output.strip()}")
                target = store.require_current(deployed)

                def answered(target=target, returned=returned):
                    for thread in clients:
                        for when, status, version in list(thread.answers):
                            if status == 200 and version == target and when >= returned:
                                return when
                    return None

                swap_times.append(
                    wait_until(answered, timeout=60, what=f"the endpoint to serve {target}")
                    - returned
                )
            for thread in clients:
                thread.done.set()
            for thread in clients:
                thread.join(60)
            answers = [a for t in clients for a in t.answers]
            failed = [a for a in answers if a[1] != 200]
            rows.append(
                Row(
                    "serving",
                    f"swap: `unified-ai rollback` returned -> first answer from that version "
                    f"({swaps} swaps, 2 clients sending all along)",
                    Stats(swap_times),
                    limit=2.0,
                )
            )
            rows.append(
                Row(
                    "serving",
                    f"failed requests across the {swaps} swaps",
                    Stats([float(len(failed))], unit="requests"),
                    limit=0,
                    note=f"of {len(answers)} sent" + (f"; first: {failed[0][2]}" if failed else ""),
                )
            )
    return rows
