"""`dg check defs` loads the code location the way Dagster's tooling does."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_dg_check_defs_passes(tmp_path):
    dg = shutil.which("dg", path=str(Path(sys.executable).parent)) or shutil.which("dg")
    assert dg, "dagster-dg-cli is a dependency and provides `dg`"
    env = {**os.environ, "UNIFIED_AI_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [dg, "check", "defs"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
