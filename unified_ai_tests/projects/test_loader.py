from pathlib import Path

import pytest

from unified_ai.project_tree import load_projects
from unified_ai.projects.loader import ProjectConfigError, load_project_file
from unified_ai.projects.schema import ProjectConfig
from unified_ai_tests.conftest import write_project


def test_packaged_default_project_loads():
    projects = load_projects()
    names = [p.name for p in projects]
    assert "mortgage_approval" in names
    default = next(p for p in projects if p.name == "mortgage_approval")
    assert default.data.source == "bundled:hmda_boston"
    assert default.target == "approve"
    assert set(default.segments) == {"race", "sex"}
    # Protected attributes are segments, never model inputs.
    assert not {"race", "sex"} & set(default.features.numeric + default.features.categorical)


def test_extra_directory_adds_projects(projects_dir):
    write_project(projects_dir, name="extra")
    names = [p.name for p in load_projects(str(projects_dir))]
    assert names[-1] == "extra" and "mortgage_approval" in names


def test_relative_source_is_resolved_against_the_project_file(projects_dir):
    project = load_project_file(write_project(projects_dir))
    assert project.data.source == str(projects_dir.resolve() / "small.csv")


def _broken(projects_dir, old: str, new: str):
    path = write_project(projects_dir)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("description:", "descripton:", r"descripton: unknown field"),
        ("max_iter: 200", "max_iter: [200", r"is not valid YAML at line \d+"),
        ("holdout_fraction: 0.3", "holdout_fraction: lots", r"split\.holdout_fraction: .*number"),
        ("target: label\n", "", r"target: required field is missing"),
        (
            "class: LogisticRegression",
            "class: DeepMagic",
            r"estimator\.class: unknown estimator 'DeepMagic'",
        ),
        (
            "roc_auc: 0.6",
            "roc_auc: 1.7",
            r"policy\.quality_floor\.roc_auc: .*less than or equal to 1",
        ),
    ],
)
def test_bad_project_file_names_file_field_and_reason(projects_dir, old, new, expected):
    path = _broken(projects_dir, old, new)
    with pytest.raises(ProjectConfigError, match=expected) as raised:
        load_project_file(path)
    message = str(raised.value)
    assert message.startswith(str(path))
    assert "\n" not in message


def test_unknown_bundled_dataset_is_refused(projects_dir):
    path = write_project(projects_dir, source="bundled:nope")
    with pytest.raises(ProjectConfigError, match=r"data\.source: unknown bundled data set 'nope'"):
        load_project_file(path)


def test_duplicate_project_names_are_refused(projects_dir):
    write_project(projects_dir, name="mortgage_approval")
    with pytest.raises(ProjectConfigError, match="also in"):
        load_projects(str(projects_dir))


def test_missing_projects_directory_is_an_error(tmp_path):
    with pytest.raises(ProjectConfigError, match="is not a directory"):
        load_projects(str(tmp_path / "missing"))


def test_policy_version_is_stable_and_tracks_policy_content(projects_dir):
    project = load_project_file(write_project(projects_dir))
    again = load_project_file(write_project(projects_dir))
    assert project.policy_version == again.policy_version
    assert project.policy_version.startswith("small@")
    stricter = project.model_copy(
        update={"policy": project.policy.model_copy(update={"name": "small"})}
    )
    assert stricter.policy_version == project.policy_version
    changed = ProjectConfig.model_validate(
        {**project.model_dump(by_alias=True), "policy": {"quality_floor": {"roc_auc": 0.9}}}
    )
    assert changed.policy_version != project.policy_version


def test_paths_stay_in_the_project_folder_unless_allowed(projects_dir, tmp_path):
    from unified_ai.projects.schema import leaves_folder

    folder = projects_dir
    folder.mkdir(parents=True, exist_ok=True)
    assert leaves_folder("data/x.csv", folder) is None
    assert leaves_folder(str(folder / "x.csv"), folder) is None
    assert leaves_folder("s3://bucket/x.csv", folder) is None
    assert leaves_folder("bundled:hmda_boston", folder) is None
    assert leaves_folder("../x.csv", folder) == str(folder.resolve().parent / "x.csv")
    assert leaves_folder("file:///etc/x.csv", folder) == "/etc/x.csv"
    assert leaves_folder("simplecache::file:///etc/x.csv", folder) == "/etc/x.csv"
    # A link inside the folder that points outside it leads outside too.
    (folder / "link").symlink_to(tmp_path)
    assert leaves_folder("link/x.csv", folder) == str(tmp_path.resolve() / "x.csv")

    path = write_project(projects_dir)
    path.write_text(path.read_text() + "monitoring: {inbox: ../elsewhere}\n")
    with pytest.raises(ProjectConfigError, match=r"small\.yaml: monitoring\.inbox: '\.\./else"):
        load_project_file(path)
    allowed = "  source: small.csv\n  allow_outside_paths: true\n"
    path.write_text(path.read_text().replace("  source: small.csv\n", allowed))
    loaded = load_project_file(path)
    # A relative inbox is relative to the project file, like the source.
    assert Path(loaded.monitoring.inbox).resolve() == projects_dir.resolve().parent / "elsewhere"
    assert loaded.data.allow_outside_paths
