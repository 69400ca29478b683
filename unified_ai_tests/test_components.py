"""`unified_ai.ModelProject`: a project is a component of Dagster's defs folder.

The real `dg` scaffolds, checks and lists it; the code location builds components and the
projects in `UNIFIED_AI_PROJECTS` with the same schema and the same builder.
"""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

import unified_ai
from unified_ai.components import ModelProject, ModelProjectScaffolder, project_name_for
from unified_ai.definitions import build_definitions, defs
from unified_ai.names import MODEL_PROJECT_TYPE
from unified_ai.project_tree import DEFS_DIR, discover_projects, file_projects, load_projects
from unified_ai.projects.loader import ProjectConfigError
from unified_ai.runtime import load_settings
from unified_ai.stages.project import build_project
from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.defs.test_graph_snapshot import describe_graph

ROOT = Path(unified_ai.__file__).resolve().parents[1]


def test_the_component_type_is_found_where_defs_yaml_names_it():
    assert MODEL_PROJECT_TYPE == "unified_ai.ModelProject"
    assert unified_ai.ModelProject is ModelProject
    assert "ModelProject" in dir(unified_ai)


def test_the_packaged_project_is_a_component_of_the_defs_folder():
    sources = discover_projects()
    bundled = ["hourly_wages", "mortgage_approval", "work_status"]
    assert [(s.project.name, s.tree is not None) for s in sources] == [(n, True) for n in bundled]
    assert [s.path for s in sources] == [DEFS_DIR / n / "defs.yaml" for n in bundled]


def scaffold(folder: Path) -> Path:
    """What `dg scaffold defs unified_ai.ModelProject <folder>` does, through the public API."""
    ModelProjectScaffolder().scaffold(
        dg.ScaffoldRequest(
            type_name=MODEL_PROJECT_TYPE,
            target_path=folder,
            scaffold_format="yaml",
            project_root=folder.parent,
            params=None,
        )
    )
    return folder / "defs.yaml"


def test_a_scaffolded_project_is_valid_and_its_data_path_is_relative_to_its_folder(tmp_path):
    path = scaffold(tmp_path / "Churn-EU")
    [source] = file_projects(path)
    project = source.project
    assert project.name == "churn_eu"
    assert project.data.source == str((tmp_path / "Churn-EU" / "churn_eu.csv").resolve())
    with pytest.raises(FileExistsError, match="already exists"):
        scaffold(tmp_path / "Churn-EU")


def test_project_names_from_folder_names():
    assert project_name_for("churn") == "churn"
    assert project_name_for("Churn-EU 2") == "churn_eu_2"
    assert project_name_for("2024") == "model_2024"
    assert project_name_for("---") == "model"


def test_a_defs_folder_component_builds_what_its_project_file_builds(tmp_path, monkeypatch):
    # A throwaway defs folder, loaded the way `unified_ai.definitions` loads the real one.
    package = tmp_path / "scratch_defs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    path = scaffold(package / "churn")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = dg.ComponentTree.from_module(
        defs_module=importlib.import_module("scratch_defs"), project_root=tmp_path
    ).build_defs()
    settings = load_settings({"UNIFIED_AI_HOME": str(tmp_path / "home")})
    resources = build_definitions(settings, [])
    expected = dg.Definitions.merge(build_project(file_projects(path)[0].project), resources)
    merged = dg.Definitions.merge(loaded, resources)
    assert describe_graph(merged) == describe_graph(expected)
    # The data path is relative to the component's folder, as for a project file.
    data = merged.resolve_assets_def(dg.AssetKey(["churn", "training_data"]))
    assert str(package / "churn" / "churn.csv") in data.descriptions_by_key[data.key]


def test_defs_loads_the_defs_folder_and_the_extra_projects_like_the_tests_do(
    home, projects_dir, monkeypatch
):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    loaded = defs()
    settings = load_settings()
    expected = build_definitions(settings, load_projects(str(projects_dir)))
    assert describe_graph(loaded) == describe_graph(expected)
    assert {key.path[0] for key in loaded.resolve_asset_graph().get_all_asset_keys()} == {
        "hourly_wages",
        "mortgage_approval",
        "work_status",
        "small",
    }


def test_a_project_name_in_the_defs_folder_and_in_unified_ai_projects_is_refused(
    home, projects_dir, monkeypatch
):
    write_project(projects_dir, name="mortgage_approval")
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    with pytest.raises(ProjectConfigError) as refused:
        defs()
    message = str(refused.value)
    assert "\n" not in message
    assert "mortgage_approval.yaml: name: project 'mortgage_approval' is also in" in message
    assert str(DEFS_DIR / "mortgage_approval" / "defs.yaml") in message


def test_a_defs_yaml_without_a_model_project_is_refused(tmp_path):
    path = tmp_path / "other" / "defs.yaml"
    path.parent.mkdir()
    path.write_text("type: dagster.DefinitionsComponent\nattributes: {}\n")
    with pytest.raises(ProjectConfigError, match=r"declares no unified_ai\.ModelProject component"):
        file_projects(path)


def component_folder(projects_dir: Path, name: str = "churn") -> Path:
    """A `ModelProject` component folder in `projects_dir`, with its data."""
    path = scaffold(projects_dir / name)
    make_frame().to_csv(path.parent / f"{name}.csv", index=False)
    return path


def test_unified_ai_projects_is_a_second_defs_folder(home, projects_dir, monkeypatch):
    component_folder(projects_dir)
    write_project(projects_dir)  # a plain project file beside it keeps working
    # A training script beside a project is never imported as a definitions module.
    (projects_dir / "churn" / "train.py").write_text("raise SystemExit('imported')\n")
    (projects_dir / "train.py").write_text("raise SystemExit('imported')\n")
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    loaded = defs()
    assert {key.path[0] for key in loaded.resolve_asset_graph().get_all_asset_keys()} == {
        "hourly_wages",
        "mortgage_approval",
        "work_status",
        "churn",
        "small",
    }
    sources = discover_projects(str(projects_dir))
    assert [(s.project.name, s.path, s.tree is not None) for s in sources] == [
        ("hourly_wages", DEFS_DIR / "hourly_wages" / "defs.yaml", True),
        ("mortgage_approval", DEFS_DIR / "mortgage_approval" / "defs.yaml", True),
        ("work_status", DEFS_DIR / "work_status" / "defs.yaml", True),
        ("churn", (projects_dir / "churn" / "defs.yaml").resolve(), True),
        ("small", projects_dir / "small.yaml", False),
    ]
    churn = loaded.resolve_assets_def(dg.AssetKey(["churn", "training_data"]))
    assert (
        str((projects_dir / "churn" / "churn.csv").resolve())
        in churn.descriptions_by_key[churn.key]
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("class: LogisticRegression", "class: Nope", r"defs\.yaml: estimator\.class: unknown"),
        ("  target: label\n", "", r"defs\.yaml: target: required field is missing"),
        ("attributes:", "bogus: 1\nattributes:", r"defs\.yaml: bogus: unknown field"),
        ("  target: label", "  target: [label", r"defs\.yaml: is not valid YAML at line \d+"),
        ("source: churn.csv", "source: ../../x.csv", r"defs\.yaml: data\.source: .* outside"),
        (
            "  target: label\n",
            "  target: label\n  target: x\n",
            r"line \d+: duplicate key 'target'",
        ),
    ],
)
def test_an_invalid_component_folder_is_one_line_naming_file_and_field(
    home, projects_dir, monkeypatch, old, new, expected
):
    path = component_folder(projects_dir)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    with pytest.raises(ProjectConfigError) as refused:
        defs()
    message = str(refused.value)
    assert "\n" not in message
    assert re.search(expected, message), message
    assert str(projects_dir / "churn") in message


def test_a_component_file_among_plain_project_files_is_told_where_it_goes(projects_dir):
    body = (ROOT / "unified_ai" / "defs" / "mortgage_approval" / "defs.yaml").read_text()
    path = projects_dir / "mortgage.yaml"
    projects_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    with pytest.raises(ProjectConfigError) as refused:
        load_projects(str(projects_dir))
    assert str(refused.value) == (
        f"{path}: type: a unified_ai.ModelProject component file is loaded by Dagster from a "
        f"folder: move it to {projects_dir / 'mortgage' / 'defs.yaml'}, or keep only its "
        "attributes (unindented) in a plain project file"
    )
    # Moved where the message says, it loads.
    (projects_dir / "mortgage").mkdir()
    path.rename(projects_dir / "mortgage" / "defs.yaml")
    with pytest.raises(ProjectConfigError, match="project 'mortgage_approval' is also in"):
        load_projects(str(projects_dir))


def test_the_cli_lists_and_checks_projects_as_the_code_location_loads_them(
    home, projects_dir, monkeypatch
):
    from click.testing import CliRunner

    from unified_ai.cli import main

    churn = component_folder(projects_dir)
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    listed = CliRunner().invoke(main, ["projects", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["name"] for row in json.loads(listed.output)] == [
        "hourly_wages",
        "mortgage_approval",
        "work_status",
        "churn",
        "small",
    ]
    checked = CliRunner().invoke(main, ["policy", "check", "--json"])
    assert checked.exit_code == 0, checked.output
    rows = {row["project"]: row["file"] for row in json.loads(checked.output)}
    assert rows["churn"] == str(churn.resolve())
    assert rows["small"] == str(projects_dir / "small.yaml")
    # An invalid component is one line naming its file and field; the others still check.
    churn.write_text(churn.read_text().replace("class: LogisticRegression", "class: Nope"))
    refused = CliRunner().invoke(main, ["policy", "check"])
    assert refused.exit_code == 1
    [error] = [line for line in refused.output.splitlines() if "Nope" in line]
    assert error.startswith(f"{churn.resolve()}: estimator.class: unknown estimator 'Nope'")
    assert f"{projects_dir / 'small.yaml'}: ok (small," in refused.output


def test_only_dagster_reads_defs_yaml():
    """One reader: the file name is declared once, and no module keeps a copy of Dagster's keys."""
    package = ROOT / "unified_ai"
    texts = {str(path.relative_to(package)): path.read_text() for path in package.rglob("*.py")}
    declaring = [name for name, text in texts.items() if re.search(r"^DEFS_FILE\b.*=", text, re.M)]
    assert declaring == ["components.py"]
    assert not [name for name, text in texts.items() if "template_vars_module" in text]


def _dg(copy: Path, *args: str) -> subprocess.CompletedProcess:
    executable = shutil.which("dg", path=str(Path(sys.executable).parent)) or shutil.which("dg")
    assert executable, "dagster-dg-cli is a dependency and provides `dg`"
    env = {
        **os.environ,
        # The copy's package, not the installed (editable) one.
        "PYTHONPATH": str(copy),
        "UNIFIED_AI_HOME": str(copy / "home"),
        "VIRTUAL_ENV": str(Path(sys.executable).parents[1]),
    }
    env.pop("UNIFIED_AI_PROJECTS", None)
    return subprocess.run(
        [executable, *args], cwd=copy, capture_output=True, text=True, env=env, timeout=300
    )


def test_dg_scaffolds_checks_and_lists_a_new_model_project(tmp_path):
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    shutil.copytree(
        ROOT / "unified_ai", copy / "unified_ai", ignore=shutil.ignore_patterns("__pycache__")
    )
    scaffolded = _dg(copy, "scaffold", "defs", "unified_ai.ModelProject", "churn")
    assert scaffolded.returncode == 0, scaffolded.stdout + scaffolded.stderr
    defs_yaml = copy / "unified_ai" / "defs" / "churn" / "defs.yaml"
    assert defs_yaml.read_text().startswith("# A model project")
    make_frame().to_csv(defs_yaml.parent / "churn.csv", index=False)

    checked = _dg(copy, "check", "yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = _dg(copy, "list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    churn_assets = {a["asset_key"] for a in found["assets"] if a["asset_key"].startswith("churn/")}
    assert churn_assets == {f"churn/{name}" for name in unified_ai.names.PROJECT_ASSETS}
    assert "churn__training_loop" in {job["name"] for job in found["jobs"]}

    # `dg check yaml` validates the attributes against the project schema.
    text = defs_yaml.read_text()
    defs_yaml.write_text(text.replace("class: LogisticRegression", "class: Nope"))
    refused = _dg(copy, "check", "yaml")
    assert refused.returncode != 0
    assert "attributes.estimator.class" in refused.stdout + refused.stderr
