import re

from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai_tests.conftest import write_project


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_help_lists_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("projects", "status", "policy"):
        assert command in result.output


def test_projects_lists_default_and_extra_projects(home, projects_dir, monkeypatch):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    result = invoke("projects")
    assert result.exit_code == 0
    assert "mortgage_approval" in result.output and "small" in result.output


def test_policy_check_reports_file_field_and_reason(home, projects_dir):
    good = write_project(projects_dir)
    bad = write_project(projects_dir, name="bad")
    bad.write_text(bad.read_text().replace("max_gap: 0.3", "max_gap: huge"))
    result = invoke("policy", "check", str(good), str(bad))
    assert result.exit_code == 1
    assert f"{good}: ok (small, small@" in result.output
    assert f"{bad}: policy.fairness.max_gap: Input should be a valid number" in result.output


def test_status_of_unknown_project_is_a_one_line_error(home):
    result = invoke("status", "nope")
    assert result.exit_code == 1
    known = "hourly_wages, mortgage_approval, work_status"
    assert result.output.strip() == f"Error: unknown project 'nope' (known: {known})"


def test_status_before_any_run(home):
    result = invoke("status", "mortgage_approval")
    assert result.exit_code == 0
    assert re.search(r"deployed_model +\(not materialized\)", result.output)


def test_unknown_runtime_is_a_one_line_error(home, monkeypatch):
    monkeypatch.setenv("UNIFIED_AI_RUNTIME", "mars")
    result = invoke("projects")
    assert result.exit_code == 1
    assert "UNIFIED_AI_RUNTIME='mars' is not a known runtime" in result.output
