"""Faults under the lineage store: a writer SIGKILLed mid-write, a disk that fills up.

After each, the previous version is still current and loadable, `verify` finds no damage, and
the store takes the next write.
"""

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd

from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore

PATH = ["p", "frame"]

#: Writes ever larger versions and moves the pointer to each, forever (until killed).
WRITER = f"""
import sys

import numpy as np
import pandas as pd

from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore

store = LineageStore(sys.argv[1])
rng = np.random.default_rng(int(sys.argv[2]))
while True:
    frame = pd.DataFrame(rng.random((300_000, 4)), columns=list("abcd"))
    manifest = store.write_version({PATH!r}, *serialize(frame))
    store.set_current({PATH!r}, manifest.version, action="materialize")
"""


def test_writers_killed_mid_write_never_damage_the_store(tmp_path):
    root = tmp_path / "store"
    store = LineageStore(root)
    first = pd.DataFrame({"a": [1.0, 2.0]})
    version = store.write_version(PATH, *serialize(first)).version
    store.set_current(PATH, version, action="materialize")

    for round_ in range(6):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(round_)])
        # Kill at a different moment of the write/move cycle each round.
        time.sleep(2.0 + 0.37 * round_)
        assert writer.poll() is None, "the writer stopped by itself"
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)

        current = store.require_current(PATH)
        assert store.read_value(PATH, current) is not None
        history = store.history(PATH)
        if history[-1].version != current:
            # Killed between the history entry and the pointer: CURRENT still names the
            # version before, and the next move records a repair entry.
            assert history[-1].previous == current
            history = history[:-1]
        assert history[-1].version == current
        for older, newer in itertools.pairwise(history):
            assert newer.previous == older.version

    # The next move (here a rollback to the first version) leaves one whole chain.
    store.set_current(PATH, version, action="rollback")
    history = store.history(PATH)
    assert history[-1].version == version == store.require_current(PATH)
    for older, newer in itertools.pairwise(history):
        assert newer.previous == older.version

    leftovers = list((root / "p" / "frame" / "versions").glob(".staging-*"))
    for staging in leftovers:  # as if left by a crash long ago
        for child in [*staging.iterdir(), staging]:
            os.utime(child, (0, 0))
    report = store.verify()
    assert report.problems == [], report.problems
    assert sorted(report.cleaned) == sorted(str(p) for p in leftovers)
    assert not list((root / "p" / "frame" / "versions").glob(".staging-*"))
    pd.testing.assert_frame_equal(store.read_value(PATH, version), first)


#: Runs inside its own mount namespace with a 4 MiB filesystem at the store root.
FULL_DISK = textwrap.dedent(
    """
    import json
    import os
    import sys

    import numpy as np
    import pandas as pd

    from unified_ai.io.formats import serialize
    from unified_ai.io.store import LineageStore

    root = sys.argv[1]
    path = {path!r}
    store = LineageStore(root)
    out = {{}}
    small = pd.DataFrame({{"a": list(range(10))}})
    v1 = store.write_version(path, *serialize(small)).version
    store.set_current(path, v1, action="materialize")
    out["v1"] = v1

    # 1. A version larger than the disk: refused, nothing half-written becomes visible.
    big = pd.DataFrame(np.random.default_rng(0).random((400_000, 4)), columns=list("abcd"))
    try:
        store.write_version(path, *serialize(big))
        out["big"] = "stored"
    except OSError as exc:
        out["big"] = f"{{type(exc).__name__}} errno={{exc.errno}}"
    out["versions_after_big"] = [m.version for m in store.versions(path)]
    out["staging_after_big"] = [
        n for n in os.listdir(os.path.join(root, *path, "versions")) if n.startswith(".")
    ]

    # 2. A full disk while the pointer moves: the move fails whole.
    v2 = store.write_version(path, *serialize(pd.DataFrame({{"a": list(range(20))}}))).version
    with open(os.path.join(root, "filler"), "wb") as handle:
        try:
            while True:
                handle.write(b"\\0" * 65536)
                handle.flush()
        except OSError:
            pass
    try:
        store.set_current(path, v2, action="materialize")
        out["move"] = "moved"
    except OSError as exc:
        out["move"] = f"{{type(exc).__name__}} errno={{exc.errno}}"
    out["current_while_full"] = store.current_version(path)
    out["loadable_while_full"] = store.read_value(path, v1).equals(small)
    os.remove(os.path.join(root, "filler"))

    # 3. Space again: verify finds nothing, and the store takes the next move.
    out["problems"] = [p.problem for p in store.verify().problems]
    store.set_current(path, v2, action="materialize")
    out["current_after"] = store.current_version(path)
    history = store.history(path)
    out["chain_ok"] = history[-1].version == out["current_after"] and all(
        b.previous == a.version for a, b in zip(history, history[1:])
    )
    print("RESULT " + json.dumps(out))
    """
).format(path=PATH)


def test_a_full_disk_refuses_the_write_and_keeps_the_previous_version(tmp_path):
    unshare = shutil.which("unshare")
    assert unshare, "util-linux `unshare` is needed to give this test a small filesystem"
    root = tmp_path / "store"
    root.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    shell = f"mount -t tmpfs -o size=4m tmpfs {root} && exec {sys.executable} {script} {root}"
    done = subprocess.run(
        [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", shell],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    assert out["big"] == "OSError errno=28", out  # ENOSPC, reported as such
    assert out["versions_after_big"] == [out["v1"]]
    assert out["staging_after_big"] == []
    assert out["move"] == "OSError errno=28", out
    assert out["current_while_full"] == out["v1"]
    assert out["loadable_while_full"] is True
    assert out["problems"] == []
    assert out["current_after"] != out["v1"]
    assert out["chain_ok"] is True
