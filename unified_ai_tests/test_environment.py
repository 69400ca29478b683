"""One place reads the environment (`unified_ai.runtime`); nothing writes it."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import unified_ai
from unified_ai.runtime import dagster_home, load_settings, login_name, mlflow_telemetry, secret

PACKAGE = Path(unified_ai.__file__).parent
#: What reads or writes the process environment, as `os.<name>` or imported from `os`.
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_uses(tree: ast.AST) -> list[int]:
    """Lines that touch the environment: `os.environ`, `os.getenv(...)`, `from os import ...`."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno] if {a.name for a in node.names} & ENVIRONMENT else []
    return lines


def test_only_runtime_reads_the_environment():
    found = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "runtime.py" or path.parent != PACKAGE
        for line in environment_uses(ast.parse(path.read_text()))
    ]
    assert found == []


def test_the_probe_sees_what_it_looks_for():
    sample = "import os\nfrom os import getenv\nos.environ.get('X')\nos.putenv('X', '1')\n"
    assert sorted(environment_uses(ast.parse(sample))) == [2, 3, 4]
    assert environment_uses(ast.parse((PACKAGE / "runtime.py").read_text()))


def test_runtime_reads_the_instance_the_login_and_secrets():
    env = {"DAGSTER_HOME": " /srv/dagster ", "USER": "ana", "SLACK_TOKEN": "xoxb-1"}
    assert (dagster_home(env), login_name(env)) == ("/srv/dagster", "ana")
    assert (dagster_home({}), login_name({})) == ("", "")
    assert secret("SLACK_TOKEN", env) == "xoxb-1"
    assert secret("", env) == secret("MISSING", env) == ""


def test_mlflow_telemetry_is_off_unless_the_user_allows_it(tmp_path):
    home = {"UNIFIED_AI_HOME": str(tmp_path)}
    assert not load_settings(home).mlflow_telemetry
    for value, allowed in [("true", False), ("1", False), ("false", True), ("0", True)]:
        assert mlflow_telemetry({"MLFLOW_DISABLE_TELEMETRY": value}) is allowed
        settings = load_settings({**home, "MLFLOW_DISABLE_TELEMETRY": value})
        assert settings.mlflow_telemetry is allowed


PROBE = """
import json, os, sys
from unified_ai.resources.mlflow_registry import MlflowRegistry
registry = MlflowRegistry(tracking_uri=sys.argv[1], telemetry=sys.argv[2] == "on")
registry.client().search_experiments()
from mlflow.telemetry import get_telemetry_client
# (`mlflow.set_tracking_uri` exports the tracking URI itself, for MLflow's subprocesses.)
print(json.dumps({"client": get_telemetry_client() is not None,
                  "telemetry_env": os.environ.get("MLFLOW_DISABLE_TELEMETRY")}))
"""


def _python_path() -> dict:
    # The package under test, when it is not the installed one.
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}


def _probe(tmp_path: Path, telemetry: str, env: dict) -> dict:
    # A bare environment: no CI or test variable that would switch telemetry off by itself.
    out = subprocess.run(
        [sys.executable, "-c", PROBE, f"sqlite:///{tmp_path / 'mlflow.db'}", telemetry],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "", "HOME": str(tmp_path), **_python_path(), **env},
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mlflow_telemetry_is_switched_off_without_writing_the_environment(tmp_path):
    assert _probe(tmp_path, "off", {}) == {"client": False, "telemetry_env": None}
    # The user's choice stands: allowed, MLflow keeps its client.
    allowed = _probe(tmp_path, "on", {"MLFLOW_DISABLE_TELEMETRY": "false"})
    assert allowed == {"client": True, "telemetry_env": "false"}
