"""Crash safety and concurrency of the lineage store, with real processes."""

import json
import multiprocessing
import signal
import subprocess
import sys
import time
import uuid

import pytest

from unified_ai.io.store import LineageStore

WRITER = """
import sys
from unified_ai.io.store import LineageStore
store = LineageStore(sys.argv[1])
first = store.write_version(["p", "big"], "json", {"payload.json": b"1"})
store.set_current(["p", "big"], first.version, action="materialize")
print(first.version, flush=True)
# 1 GiB in 1 MiB chunks: slow enough to be killed in the middle of writing.
payload = b"x" * (1024 * 1024 * 1024)
second = store.write_version(["p", "big"], "json", {"payload.json": payload})
store.set_current(["p", "big"], second.version, action="materialize")
print("finished", flush=True)
"""


def test_sigkill_mid_write_leaves_the_previous_version_current(tmp_path):
    root = tmp_path / "store"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True
    )
    first = writer.stdout.readline().strip()
    versions = root / "p" / "big" / "versions"
    deadline = time.monotonic() + 60
    # Wait until the large payload is being written into a staging folder, then kill.
    while time.monotonic() < deadline:
        staging = [p for p in versions.iterdir() if p.name.startswith(".staging-")]
        if staging and any(f.stat().st_size > 0 for f in staging[0].iterdir()):
            break
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL

    store = LineageStore(root)
    assert store.current_version(["p", "big"]) == first
    assert [m.version for m in store.versions(["p", "big"])] == [first]
    assert store.read_value(["p", "big"], first) == 1
    assert [m.version for m in store.history(["p", "big"])] == [first]


def _write_one(root: str, options: dict, index: int) -> str:
    store = LineageStore(root, options)
    body = json.dumps({"writer": index}).encode()
    version = store.write_version(["p", "shared"], "json", {"payload.json": body}).version
    store.set_current(["p", "shared"], version, action="materialize", actor=f"w{index}")
    return version


#: Seconds the 8 writers get; minutes more than they need on a loaded 2-core machine.
POOL_TIMEOUT = 300


def run_in_pool(function, arguments: list[tuple]) -> list:
    """`function` over `arguments` in 8 fresh processes, each call in parallel.

    A worker that dies loses its task: that fails here instead of waiting forever. The pool
    is closed and joined, not terminated: workers leave when told to, so a process that
    inherited SIGTERM ignored (as under `nohup` or some CI runners) cannot hang the join.
    """
    pool = multiprocessing.get_context("spawn").Pool(8)
    try:
        return pool.starmap_async(function, arguments).get(timeout=POOL_TIMEOUT)
    finally:
        pool.close()
        pool.join()


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_parallel_writers_lose_no_version(tmp_path, backend, request):
    if backend == "s3":
        options = request.getfixturevalue("s3_server")
        root = f"s3://lineage/{uuid.uuid4().hex}"
    else:
        options, root = {}, str(tmp_path / "store")
    written = run_in_pool(_write_one, [(root, options, i) for i in range(8)])
    store = LineageStore(root, options)
    assert len(set(written)) == 8
    assert {m.version for m in store.versions(["p", "shared"])} == set(written)
    history = store.history(["p", "shared"])
    assert sorted(m.actor for m in history) == sorted(f"w{i}" for i in range(8))
    assert store.current_version(["p", "shared"]) in written
    for version in written:
        assert store.read_value(["p", "shared"], version)["writer"] in range(8)


def _move_many(root: str, options: dict, index: int, moves: int) -> None:
    store = LineageStore(root, options)
    versions = [
        store.write_version(
            ["p", "chain"], "json", {"payload.json": json.dumps([index, i]).encode()}
        ).version
        for i in range(3)
    ]
    for move in range(moves):
        store.set_current(
            ["p", "chain"], versions[move % 3], action="materialize", actor=f"w{index}"
        )


def assert_one_chain(store: LineageStore, path: list[str], expected_moves: int) -> None:
    history = store.history(path)
    assert len(history) == expected_moves
    broken = [
        (index, move.previous, history[index - 1].version)
        for index, move in enumerate(history)
        if index and move.previous != history[index - 1].version
    ]
    assert broken == [], f"{len(broken)} of {len(history)} entries name the wrong previous"
    assert history[0].previous is None
    assert history[-1].version == store.current_version(path)


@pytest.mark.parametrize(("backend", "moves"), [("local", 25), ("s3", 4)])
def test_concurrent_pointer_moves_keep_history_one_chain(tmp_path, request, backend, moves):
    if backend == "s3":
        options = request.getfixturevalue("s3_server")
        root = f"s3://lineage/{uuid.uuid4().hex}"
    else:
        options, root = {}, str(tmp_path / "store")
    run_in_pool(_move_many, [(root, options, i, moves) for i in range(8)])
    store = LineageStore(root, options)
    assert_one_chain(store, ["p", "chain"], 8 * moves)
    assert store.verify().problems == []
