"""Run every benchmark, each beside its floor, and print (and in full mode write) the table.

    python -m benchmarks            # full sizes; writes BENCHMARKS.md at the repository root
    python -m benchmarks --quick    # small sizes, few repetitions (CI); writes nothing
    python -m benchmarks --only drift,serving --out bench.md

Each benchmark runs in a process of its own (imports, memory and environment do not leak from
one into the next). A benchmark that crashes is reported and makes the exit status 1; a missed
target does not (timings vary by machine; the table says which targets were met).
"""

import argparse
import importlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness import REPO, Row, clean_env, dump_rows

#: In running order: training_loop leaves the deployed project the later ones start from.
BENCHMARKS = (
    "drift",
    "io_throughput",
    "training_loop",
    "rollback",
    "sensor_tick",
    "scaling",
    "batch_latency",
    "review_routing",
    "bursts",
    "serving",
    "memory",
)
NEEDS_DEPLOYED = {"rollback", "batch_latency", "bursts", "serving", "memory"}


def compile_packages() -> None:
    """Compile the product's and the benchmarks' modules, as installing a package does.

    An editable install compiles nothing: the first process to import a module writes its
    bytecode. Measured before that (or where PYTHONDONTWRITEBYTECODE is set), each run worker
    compiles from source what it imports (about 0.1 s of a 200-row run).
    """
    import compileall

    for package in ("unified_ai", "benchmarks"):
        compileall.compile_dir(REPO / package, quiet=1)


def run_one(name: str, quick: bool, shared: Path, out: Path) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    dump_rows(module.run(quick, shared), out)


def child(name: str, quick: bool, shared: Path) -> tuple[list[Row], str | None, float]:
    """Rows of benchmark `name` run in its own process, the reason it failed, its wall time."""
    import json

    out = shared / f"{name}.rows.json"
    command = [sys.executable, "-m", "benchmarks", "--child", name, "--shared", str(shared)]
    if quick:
        command.append("--quick")
    start = time.perf_counter()
    process = subprocess.run(
        command, cwd=REPO, env=clean_env(), capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if process.returncode != 0 or not out.exists():
        lines = [line for line in process.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {process.returncode}"
        sys.stderr.write(process.stderr[-4000:])
        return [], f"{name} crashed (exit status {process.returncode}): {reason}", wall
    return [Row.from_json(r) for r in json.loads(out.read_text())], None, wall


def table(rows: list[Row]) -> str:
    lines = [
        "| benchmark | case | measured (min / median) | floor or baseline (min / median) "
        "| ratio | target | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        baseline = f"{row.baseline.show()}: {row.baseline_label}" if row.baseline else ""
        if row.ratio is None:
            ratio = ""
        else:
            ratio = f"{row.ratio:.2f}x" if row.ratio >= 0.1 else f"{row.ratio:.2g}x"
        if row.limit is not None:
            target = f"<= {row.limit:g} {row.measured.unit}"
        elif row.target is None:
            target = ""
        else:
            target = f"{'>=' if row.higher_is_better else '<='} {row.target:g}x"
        case = f"{row.case} ({row.note})" if row.note else row.case
        lines.append(
            f"| {row.benchmark} | {case} | {row.measured.show()} | {baseline} | {ratio} "
            f"| {target} | {row.verdict} |"
        )
    return "\n".join(lines)


def report(rows: list[Row], failures: list[str], walls: dict[str, float], quick: bool) -> str:
    command = "python -m benchmarks" + (" --quick" if quick else "")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpus = os.cpu_count()
    header = [
        "# Benchmarks",
        "",
        "Measured by the benchmark harness; every number sits beside its floor measured in the "
        "same run on the same machine. Reproduce with:",
        "",
        "```",
        command,
        "```",
        "",
        f"Run {stamp} on {platform.machine()}, {cpus} CPUs, Python {platform.python_version()}. "
        "Times are min / median over the repetitions; the ratio compares medians.",
        "",
        table(rows),
        "",
        "Wall time per benchmark: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in walls.items())
        + f" (total {sum(walls.values()):.0f} s).",
    ]
    if failures:
        header += ["", "## Crashed", "", *[f"- {f}" for f in failures]]
    return "\n".join(header) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    parser.add_argument("--only", default="", help="comma-separated benchmarks to run")
    parser.add_argument(
        "--out", type=Path, help="write the report here (full mode default: BENCHMARKS.md)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--shared", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one(args.child, args.quick, args.shared, args.shared / f"{args.child}.rows.json")
        return 0

    chosen = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    if NEEDS_DEPLOYED & set(chosen) and "training_loop" not in chosen:
        chosen.insert(0, "training_loop")  # it deploys the model the others use
    chosen = [n for n in BENCHMARKS if n in chosen]

    compile_packages()
    rows: list[Row] = []
    failures: list[str] = []
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="unified-ai-bench-", ignore_cleanup_errors=True) as tmp:
        shared = Path(tmp)
        for name in chosen:
            if name in NEEDS_DEPLOYED and not (shared / "deployed").exists():
                failures.append(f"{name} not run: training_loop did not leave a deployed project")
                continue
            print(f"benchmarks: {name} ...", flush=True)
            got, failure, walls[name] = child(name, args.quick, shared)
            rows += got
            if failure:
                failures.append(failure)
            print(table(got) if got else failure, flush=True)
            print(f"({name}: {walls[name]:.0f} s)\n", flush=True)

    text = report(rows, failures, walls, args.quick)
    print(text)
    out = args.out or (None if args.quick else REPO / "BENCHMARKS.md")
    if out is not None:
        out.write_text(text)
        print(f"benchmarks: wrote {out}")
    for failure in failures:
        print(f"benchmarks: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
