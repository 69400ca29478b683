"""What the UI shows of each asset: its project's group, owners, stage, code version, columns."""

import json

import dagster as dg
import pytest
import yaml

import unified_ai
from unified_ai import names
from unified_ai.project_tree import load_projects
from unified_ai.projects.loader import ProjectConfigError
from unified_ai.stages.common import code_version
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import materialize, project_defs, store

STAGES = {"data", "training", "evaluation", "approval", "deployment", "rollback", "monitoring"}


def _small(projects_dir):
    return next(p for p in load_projects(str(projects_dir)) if p.name == "small")


def _with_owners(path, owners: list[str]) -> None:
    text = path.read_text()
    path.write_text(text.replace("description:", f"owners: {json.dumps(owners)}\ndescription:", 1))


def test_every_asset_is_in_its_projects_group_with_owners_stage_and_code_version(
    home, projects_dir
):
    _with_owners(write_project(projects_dir), ["team:fraud-ml", "ana@example.com"])
    defs = project_defs(projects_dir)
    graph = defs.resolve_asset_graph()
    small = [k for k in graph.get_all_asset_keys() if k.path[0] == "small"]
    assert {k.path[1] for k in small} >= set(names.PROJECT_ASSETS)
    project = _small(projects_dir)
    for asset_key in small:
        node = graph.get(asset_key)
        assert node.group_name == "small", asset_key
        assert node.owners == ["team:fraud-ml", "ana@example.com"], asset_key
        assert node.tags[names.STAGE_TAG] in STAGES, asset_key
        assert node.code_version == code_version(project), asset_key
        assert node.description.endswith("small: Synthetic test project."), asset_key
    # The packaged project is its own group: projects never share one.
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"small", "mortgage_approval"} <= groups
    assert not groups & STAGES


def test_code_version_follows_the_project_file_and_the_package(projects_dir):
    path = write_project(projects_dir)
    before = _small(projects_dir)
    path.write_text(path.read_text().replace("roc_auc: 0.6", "roc_auc: 0.65"))
    after = _small(projects_dir)
    assert code_version(before).startswith(f"{unified_ai.__version__}+")
    assert code_version(before) != code_version(after)
    assert code_version(before) == code_version(before.model_copy())


@pytest.mark.parametrize("owner", ["fraud-ml", "team:", "team:a b", "user@nowhere"])
def test_an_owner_that_is_neither_a_team_nor_an_email_is_refused(projects_dir, owner):
    _with_owners(write_project(projects_dir), [owner])
    with pytest.raises(ProjectConfigError, match=r"small\.yaml.*owners"):
        load_projects(str(projects_dir))


def test_manifests_carry_the_assets_code_version_and_tables_their_columns(
    home, projects_dir, instance
):
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    data_keys = [
        dg.AssetKey(["small", n])
        for n in (names.TRAINING_DATA, names.TRAIN_SPLIT, names.HOLDOUT_SPLIT)
    ]
    result = materialize(defs, instance, dg.AssetSelection.assets(*data_keys))
    assert result.success
    expected = defs.resolve_asset_graph().get(data_keys[0]).code_version
    assert expected != unified_ai.__version__
    lineage = store(home)
    for asset_key in data_keys:
        path = list(asset_key.path)
        manifest = lineage.read_manifest(path, lineage.require_current(path))
        assert manifest.code_version == expected, asset_key
        event = instance.get_latest_materialization_event(asset_key)
        schema = event.asset_materialization.metadata[names.COLUMN_SCHEMA_METADATA].value
        columns = {c.name: c.type for c in schema.columns}
        assert {"x1", "x2", "colour", "region", "label"} <= set(columns), asset_key
        assert columns["x1"] == "float64"


def test_the_instance_config_turns_the_first_run_dialog_off():
    from pathlib import Path

    config = yaml.safe_load((Path(unified_ai.__file__).parent.parent / "dagster.yaml").read_text())
    assert config["nux"] == {"enabled": False}
    with dg.instance_for_test(overrides={"nux": config["nux"]}) as instance:
        assert instance.nux_enabled is False
