"""Loading the code location: what it leaves behind in the process that loaded it."""

import json
import subprocess
import sys

PROBE = """
import gc, json
import dagster
import unified_ai.definitions as module
frozen_before = gc.get_freeze_count()
collections = []
gc.callbacks.append(lambda phase, info: collections.append(1) if phase == "start" else None)
module.defs()
first = {"frozen": gc.get_freeze_count(), "collections": len(collections), "on": gc.isenabled()}
gc.disable()
module.defs()
second = {"frozen": gc.get_freeze_count(), "on": gc.isenabled()}
print(json.dumps({"before": frozen_before, "first": first, "second": second}))
"""


def test_the_loaded_definitions_are_frozen_out_of_the_collectors_view_once(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "", "UNIFIED_AI_HOME": str(tmp_path / "home")},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    first, second = result["first"], result["second"]
    assert result["before"] == 0
    # Everything alive once the definitions are built is frozen; the collector is on again.
    assert first["frozen"] > 100_000 and first["on"] is True
    # Building them collected nothing (without the pause: dozens of collections).
    assert first["collections"] <= 2, first
    # A second load freezes nothing more (freezing again would take in the tens of thousands
    # of objects it built), and leaves a disabled collector disabled.
    assert second["frozen"] < first["frozen"] + 1_000 and second["on"] is False
