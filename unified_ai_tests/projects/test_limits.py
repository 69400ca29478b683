"""Numbers, keys, identifiers and estimator params in project files are refused at load."""

import importlib
import inspect

import pytest

from unified_ai.projects.loader import ProjectConfigError, load_project_file
from unified_ai.projects.schema import (
    ESTIMATOR_PARAMS,
    ESTIMATORS,
    ApprovalPolicy,
    DeploymentWindow,
)
from unified_ai_tests.conftest import write_project


def _edited(projects_dir, old: str, new: str):
    path = write_project(projects_dir)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def _refused(path, expected: str) -> str:
    with pytest.raises(ProjectConfigError, match=expected) as raised:
        load_project_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message


def test_nan_margin_cannot_open_the_champion_gate(projects_dir):
    # `.nan` made every comparison false, so a much worse model passed beats_champion.
    path = _edited(
        projects_dir,
        "beats_champion: {metric: roc_auc, tolerance: 0.02}",
        "beats_champion: {metric: roc_auc, min_improvement: .nan, tolerance: 0.02}",
    )
    _refused(path, r"policy\.beats_champion\.min_improvement: .*finite number")


@pytest.mark.parametrize(
    ("policy_extra", "expected"),
    [
        # `.inf` / 1e308 hours overflowed `timedelta` in the approval checks.
        (
            "  approval: {expires_after_hours: .inf}\n",
            r"policy\.approval\.expires_after_hours: .*finite number",
        ),
        (
            "  approval: {expires_after_hours: 1e308}\n",
            r"policy\.approval\.expires_after_hours: .*less than or equal to 8760",
        ),
        (
            "  approval: {expires_after_hours: nan}\n",
            r"policy\.approval\.expires_after_hours: .*finite number",
        ),
        (
            "  approval: {required_approvals: 1000000}\n",
            r"policy\.approval\.required_approvals: .*less than or equal to 20",
        ),
        (
            "  approval: {auto_approve: {min_improvement: -.inf}}\n",
            r"policy\.approval\.auto_approve\.min_improvement: .*finite number",
        ),
        (
            "  approval: {auto_approve: {min_improvement: 5}}\n",
            # Bounded by 1 because ROC AUC is a share (an RMSE improvement may be larger).
            r"policy\.approval\.auto_approve\.min_improvement: 5\.0 is above 1, and roc_auc is a "
            "share",
        ),
        (
            "  triggers: {rollback: {bake_window_hours: 1e308}}\n",
            r"policy\.triggers\.rollback\.bake_window_hours: .*less than or equal to 8760",
        ),
        (
            "  triggers: {rollback: {margin: .nan}}\n",
            r"policy\.triggers\.rollback\.margin: .*finite number",
        ),
        (
            "  triggers: {drift: {cooldown_minutes: .inf}}\n",
            r"policy\.triggers\.drift\.cooldown_minutes: .*finite number",
        ),
        (
            "  triggers: {performance: {cooldown_minutes: 1e12}}\n",
            r"policy\.triggers\.performance\.cooldown_minutes: .*less than or equal to 525600",
        ),
    ],
)
def test_non_finite_and_unbounded_policy_numbers_are_refused(projects_dir, policy_extra, expected):
    path = write_project(projects_dir, policy_extra=policy_extra)
    _refused(path, expected)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("x1: {min: -10, max: 10}", "x1: {min: -.inf, max: 10}", r"columns\.x1\.min: .*finite"),
        ("x1: {min: -10, max: 10}", "x1: {min: -10, max: .nan}", r"columns\.x1\.max: .*finite"),
        (
            "params: {max_iter: 200}",
            "params: {max_iter: 200, C: .nan}",
            r"estimator\.params: C: .nan is not a finite number",
        ),
        (
            "params: {max_iter: 200}",
            "params: {max_iter: 200, tol: [1.0, .inf]}",
            r"estimator\.params: tol: .inf is not a finite number",
        ),
        ("seed: 3", "seed: -1", r"split\.seed: .*greater than or equal to 0"),
    ],
)
def test_numbers_in_columns_params_and_split_must_be_finite(projects_dir, old, new, expected):
    _refused(_edited(projects_dir, old, new), expected)


def test_unknown_estimator_param_is_refused_at_load_with_the_valid_names(projects_dir):
    path = _edited(projects_dir, "params: {max_iter: 200}", "params: {max_iters: 200}")
    message = _refused(
        path, r"estimator\.params: LogisticRegression has no parameter 'max_iters' \(valid: C, "
    )
    assert "max_iter," in message


def test_estimator_param_table_matches_the_installed_sklearn_signatures():
    # The table keeps sklearn out of code-location load; this keeps it from drifting.
    assert set(ESTIMATOR_PARAMS) == set(ESTIMATORS)
    for name, path in ESTIMATORS.items():
        module, _, class_name = path.rpartition(".")
        cls = getattr(importlib.import_module(module), class_name)
        assert ESTIMATOR_PARAMS[name] == frozenset(inspect.signature(cls).parameters), name


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "holdout_fraction: 0.3,",
            "holdout_fraction: 0.3, seed: 4,",
            r"line 16: duplicate key 'seed'",
        ),
        ("target: label\n", "target: label\ntarget: region\n", r"line 6: duplicate key 'target'"),
    ],
)
def test_duplicate_yaml_keys_are_refused(projects_dir, old, new, expected):
    _refused(_edited(projects_dir, old, new), expected)


def test_identifiers_are_matched_whole(projects_dir):
    # A trailing newline must not pass an end-of-string anchor.
    _refused(_edited(projects_dir, "name: small", 'name: "small\\n"'), r"name: String should match")
    quantity = write_project(
        projects_dir, policy_extra='resources:\n  training:\n    requests: {cpu: "1\\n"}\n'
    )
    _refused(quantity, r"resources\.training\.requests: cpu: '1\\n' is not a Kubernetes quantity")
    with pytest.raises(ValueError, match="should match pattern"):
        DeploymentWindow(start="09:00\n", end="17:00")


def test_deployment_window_shapes():
    assert DeploymentWindow(start="22:00", end="02:00").overnight
    with pytest.raises(ValueError, match="start and end are both 09:00"):
        DeploymentWindow(start="09:00", end="09:00")
    with pytest.raises(ValueError, match="at least 1 item"):
        DeploymentWindow(days=[])


def test_required_approvals_must_be_reachable_by_distinct_people():
    with pytest.raises(ValueError, match="required_approvals is 2 but approvers name only 1"):
        ApprovalPolicy(
            approvers=["alice", "Alice", "group:risk"],
            groups={"risk": ["ALICE"]},
            required_approvals=2,
        )
    ApprovalPolicy(approvers=["alice", "bob"], required_approvals=2)
    ApprovalPolicy(required_approvals=2)  # anyone may approve


def test_policy_dry_run_refuses_duplicate_keys_and_nan(home, projects_dir, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from unified_ai.cli import main

    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text("quality_floor: {roc_auc: 0.9}\nquality_floor: {roc_auc: 0.5}\n")
    result = CliRunner().invoke(main, ["policy", "dry-run", "small", "--policy", str(candidate)])
    assert result.exit_code == 1
    assert result.output.strip().endswith(f"{candidate}: line 2: duplicate key 'quality_floor'")
    candidate.write_text("beats_champion: {min_improvement: .nan}\n")
    result = CliRunner().invoke(main, ["policy", "dry-run", "small", "--policy", str(candidate)])
    assert result.exit_code == 1
    assert "beats_champion.min_improvement: Input should be a finite number" in result.output


def test_field_names_with_line_breaks_stay_on_one_line(projects_dir):
    path = _edited(projects_dir, "data:\n", 'data:\n  "odd\\nkey\\u2028": 1\n')
    message = _refused(path, r"data\.odd\\nkey\\u2028: unknown field")
    assert message.isprintable()


def test_an_invisible_approver_name_is_refused():
    with pytest.raises(ValueError, match=r"approvers: '\\u200b' is not a name"):
        ApprovalPolicy(approvers=["group:risk"], groups={"risk": ["\u200b"]})
