"""`unified-ai serve` measured: latency, throughput, swap time and failures across swaps.

The service runs as users start it (`python -m unified_ai.cli serve`, its own process) on the
project `training_loop` deployed twice; the client is plain HTTP on localhost with keep-alive,
the same client for every server measured.

- Latency for 1 and 1,000 rows per request, p50 and p99, vs the raw `pipeline.predict_proba`
  on the same rows in this process (the least any server could do); 1,000 rows: target <= 3x.
- Against the framework's floor, in the same run: a hello-world FastAPI app that parses the
  same JSON body on the same uvicorn settings (`benchmarks.serving_floor`), one process each,
  measured in turns with the service: 1-row requests per second from one client (target
  >= 0.5x), and the p99 of 1-row requests under 8 concurrent clients (target: at most 2 ms
  above the floor's).
- Traffic logging: 1-row throughput under 8 clients with served rows written to the inbox,
  vs the same service started with `--no-traffic-log` (target >= 0.9x).
- `--workers 2` under 8 clients, vs one worker (information: the client shares the machine).
- Micro-batching's potential: 8 one-row scoring calls vs one call of 8 rows, in process.
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
from contextlib import ExitStack
from pathlib import Path

from benchmarks.harness import (
    DEFAULT_PROJECT,
    Row,
    Stats,
    clean_env,
    free_port,
    repeat,
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


class Timed(threading.Thread):
    """Sends one body again and again on a keep-alive connection; keeps each request's time."""

    def __init__(self, port: int, path: str, body: bytes, start: threading.Event):
        super().__init__(daemon=True)
        self.connection = Connection(port)
        self.path = path
        self.body = body
        self.start_event = start
        self.latencies: list[float] = []
        self.failed = 0
        self.done = threading.Event()

    def run(self) -> None:
        self.start_event.wait()
        while not self.done.is_set():
            began = time.perf_counter()
            try:
                status, _ = self.connection.post(self.path, self.body)
            except (OSError, http.client.HTTPException):
                self.failed += 1
                continue
            if status != 200:
                self.failed += 1
                continue
            self.latencies.append(time.perf_counter() - began)


def load(port: int, path: str, body: bytes, clients: int, seconds: float) -> tuple:
    """(requests per second, latencies, failed) of `clients` senders for `seconds`."""
    start = threading.Event()
    threads = [Timed(port, path, body, start) for _ in range(clients)]
    for thread in threads:
        thread.start()
    # One warm-up request per connection, untimed.
    for thread in threads:
        thread.connection.post(path, body)
    began = time.perf_counter()
    start.set()
    time.sleep(seconds)
    for thread in threads:
        thread.done.set()
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - began
    latencies = [v for t in threads for v in t.latencies]
    return len(latencies) / elapsed, latencies, sum(t.failed for t in threads)


def in_turns(measure, ports: dict[str, int], rounds: int) -> dict[str, list]:
    """`measure(port)` for each named server, in turns over `rounds` rounds (drift cancels)."""
    results: dict[str, list] = {name: [] for name in ports}
    for _ in range(rounds):
        for name, port in ports.items():
            results[name].append(measure(port))
    return results


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

        ports = {name: free_port() for name in ("serve", "no_log", "workers", "floor")}
        port = ports["serve"]
        serve = [sys.executable, "-m", "unified_ai.cli", "serve", project.name]
        serve += ["--poll-seconds", "0.2", "--log-level", "warning"]
        serve += ["--max-rows", "1000", "--flush-seconds", "5", "--max-concurrent", "4"]
        commands = {
            "serve": [*serve, "--port", str(port)],
            "no_log": [*serve, "--port", str(ports["no_log"]), "--no-traffic-log"],
            "workers": [*serve, "--port", str(ports["workers"]), "--workers", "2"],
            "floor": [sys.executable, "-m", "benchmarks.serving_floor", "--port", ""],
        }
        commands["floor"][-1] = str(ports["floor"])
        path = f"/v1/projects/{project.name}/predict"
        with ExitStack() as stack:
            processes = {
                name: stack.enter_context(service(command, env, root / f"{name}.log"))
                for name, command in commands.items()
            }
            for name, process in processes.items():
                wait_until(
                    lambda name=name, process=process: ready(
                        process, ports[name], root / f"{name}.log"
                    ),
                    timeout=180,
                    what=f"{name} to be ready",
                    poll=0.2,
                )

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
                            target=3.0 if (count, label) == (1000, "p50") else None,
                        )
                    )

            rows += against_floor(ports, path, bodies[1], quick)
            rows.append(micro_batching(project, served, sample))

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
                    why = result.output.strip() or repr(result.exception)
                    raise RuntimeError(f"unified-ai rollback failed: {why}")
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


def ready(process, port: int, log: Path) -> bool:
    """Whether the server on `port` answers /readyz with 200 (raises if it exited)."""
    if process.poll() is not None:
        raise RuntimeError(f"a server exited: {tail(log)}")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def against_floor(ports: dict[str, int], path: str, body: bytes, quick: bool) -> list[Row]:
    """The service beside the hello-world floor, without traffic logging and with 2 workers."""
    seconds = 1.5 if quick else 4.0
    rounds = 1 if quick else 3
    rows = []

    one = in_turns(
        lambda port: load(port, path, body, 1, seconds),
        {"serve": ports["serve"], "floor": ports["floor"]},
        rounds,
    )
    rate = {name: [r[0] for r in results] for name, results in one.items()}
    latency = {name: [v for r in results for v in r[1]] for name, results in one.items()}
    failed = sum(r[2] for results in one.values() for r in results)
    rows.append(
        Row(
            "serving",
            "1-row requests per second, one client, vs a hello-world FastAPI app parsing the "
            "same body on the same uvicorn settings",
            Stats(rate["serve"], unit="req/s"),
            Stats(rate["floor"], unit="req/s"),
            "hello-world app, measured in turns with the service",
            target=0.5,
            higher_is_better=True,
            note=f"p50 {percentile(latency['serve'], 0.5) * 1e3:.2f} ms vs "
            f"{percentile(latency['floor'], 0.5) * 1e3:.2f} ms; {failed} failed",
        )
    )

    eight = in_turns(
        lambda port: load(port, path, body, 8, seconds),
        {"serve": ports["serve"], "floor": ports["floor"], "no_log": ports["no_log"]},
        rounds,
    )
    p99 = {
        name: percentile([v for r in results for v in r[1]], 0.99)
        for name, results in eight.items()
    }
    rate = {name: [r[0] for r in results] for name, results in eight.items()}
    failed = sum(r[2] for results in eight.values() for r in results)
    rows.append(
        Row(
            "serving",
            "1-row p99 under 8 concurrent clients minus the hello-world app's p99",
            Stats([p99["serve"] - p99["floor"]]),
            limit=0.002,
            note=f"p99 {p99['serve'] * 1e3:.2f} ms vs {p99['floor'] * 1e3:.2f} ms; "
            f"{statistics.median(rate['serve']):,.0f} vs "
            f"{statistics.median(rate['floor']):,.0f} req/s; {failed} failed",
        )
    )
    rows.append(
        Row(
            "serving",
            "throughput with traffic logging vs without (1-row requests, 8 clients)",
            Stats(rate["serve"], unit="req/s"),
            Stats(rate["no_log"], unit="req/s"),
            "the same service started with --no-traffic-log, measured in turns",
            target=0.9,
            higher_is_better=True,
        )
    )

    workers = in_turns(
        lambda port: load(port, path, body, 8, seconds),
        {"workers": ports["workers"], "serve": ports["serve"]},
        rounds,
    )
    rate = {name: [r[0] for r in results] for name, results in workers.items()}
    rows.append(
        Row(
            "serving",
            "throughput with --workers 2 vs one worker (1-row requests, 8 clients)",
            Stats(rate["workers"], unit="req/s"),
            Stats(rate["serve"], unit="req/s"),
            "one worker, measured in turns (the client shares the 2 CPUs)",
            higher_is_better=True,
        )
    )
    return rows


def micro_batching(project, served, sample) -> Row:
    """What batching 8 concurrent one-row requests could save: 8 calls of 1 row vs 1 of 8."""
    from unified_ai.serving.plain_rows import check_rows, row_plan

    project_rows = json.loads(sample.head(8).to_json(orient="records"))

    def checked(records):
        result, problems = check_rows(
            records, row_plan(project, served.features, served.categories), lambda columns: []
        )
        assert result is not None, problems
        return result.model

    one = [checked(project_rows[i : i + 1]) for i in range(8)]
    eight = checked(project_rows)
    score = getattr(served.model, "predict_columns", None)
    if score is None:  # a model without it: the same columns as a frame

        def score(columns):
            import pandas as pd

            return served.model.predict(pd.DataFrame(columns))

    def ones():
        for columns in one:
            score(columns)

    separate = repeat(30, ones)
    together = repeat(30, lambda: score(eight))
    return Row(
        "serving",
        "in-process scoring of 8 one-row requests: one call of 8 rows vs 8 calls of 1 row "
        "(what micro-batching could save per 8 requests)",
        together,
        separate,
        "8 calls of one row",
    )
