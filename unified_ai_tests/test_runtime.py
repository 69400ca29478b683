from pathlib import Path

import pytest

from unified_ai.runtime import Runtime, RuntimeConfigError, load_settings, parse_runtime


def test_default_runtime_is_local():
    assert parse_runtime(None) is Runtime.LOCAL
    assert parse_runtime("") is Runtime.LOCAL


def test_k8s_runtime_is_recognised_case_insensitively():
    assert parse_runtime("K8s") is Runtime.K8S


def test_unknown_runtime_names_the_variable_and_choices():
    with pytest.raises(RuntimeConfigError, match=r"UNIFIED_AI_RUNTIME='cloud'.*local, k8s"):
        parse_runtime("cloud")


def test_defaults_put_state_and_mlflow_under_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.home == str(tmp_path / ".unified_ai")
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path / '.unified_ai' / 'mlflow.db'}"
    assert settings.projects_dir is None


def test_environment_overrides(tmp_path):
    settings = load_settings(
        {
            "UNIFIED_AI_HOME": str(tmp_path / "h"),
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "UNIFIED_AI_PROJECTS": "/etc/projects",
            "UNIFIED_AI_RUNTIME": "k8s",
            "UNIFIED_AI_ALLOW_UNSIGNED": "1",
        }
    )
    assert settings.home == str(Path(tmp_path / "h"))
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.projects_dir == "/etc/projects"
    assert settings.runtime is Runtime.K8S


def test_object_store_home_requires_an_mlflow_server():
    with pytest.raises(RuntimeConfigError, match="MLFLOW_TRACKING_URI"):
        load_settings({"UNIFIED_AI_HOME": "s3://bucket/unified"})


def test_k8s_runtime_requires_shared_store_and_mlflow_server():
    with pytest.raises(RuntimeConfigError, match="UNIFIED_AI_RUNTIME=k8s needs UNIFIED_AI_HOME"):
        load_settings({"UNIFIED_AI_RUNTIME": "k8s"})
    with pytest.raises(RuntimeConfigError, match=r"needs MLFLOW_TRACKING_URI.*sqlite"):
        load_settings(
            {
                "UNIFIED_AI_RUNTIME": "k8s",
                "UNIFIED_AI_HOME": "s3://bucket/ua",
                "MLFLOW_TRACKING_URI": "sqlite:///x.db",
            }
        )
    cluster = {
        "UNIFIED_AI_RUNTIME": "k8s",
        "UNIFIED_AI_HOME": "s3://bucket/ua",
        "MLFLOW_TRACKING_URI": "http://mlflow.mlops:5000",
    }
    settings = load_settings({**cluster, "UNIFIED_AI_SIGNING_KEY": "k" * 32})
    assert settings.runtime is Runtime.K8S and settings.signing_key == "k" * 32


def test_k8s_runtime_refuses_an_unsigned_store_unless_allowed_explicitly():
    cluster = {
        "UNIFIED_AI_RUNTIME": "k8s",
        "UNIFIED_AI_HOME": "s3://bucket/ua",
        "MLFLOW_TRACKING_URI": "http://mlflow.mlops:5000",
    }
    for allow in ({}, {"UNIFIED_AI_ALLOW_UNSIGNED": "0"}, {"UNIFIED_AI_SIGNING_KEY": "  "}):
        with pytest.raises(RuntimeConfigError) as raised:
            load_settings({**cluster, **allow})
        message = str(raised.value)
        assert "unsigned" in message and "\n" not in message
        assert "UNIFIED_AI_SIGNING_KEY" in message and "UNIFIED_AI_ALLOW_UNSIGNED=1" in message
    with pytest.raises(RuntimeConfigError, match="UNIFIED_AI_ALLOW_UNSIGNED='yes' is not 0 or 1"):
        load_settings({**cluster, "UNIFIED_AI_ALLOW_UNSIGNED": "yes"})
    allowed = load_settings({**cluster, "UNIFIED_AI_ALLOW_UNSIGNED": "1"})
    assert allowed.runtime is Runtime.K8S and allowed.signing_key == ""
    # Locally an unsigned store stays the default.
    assert load_settings({"UNIFIED_AI_HOME": "s3://b/ua", **cluster, "UNIFIED_AI_RUNTIME": ""})


def test_ui_links_default_to_local_servers_and_follow_an_mlflow_server(tmp_path):
    local = load_settings({"UNIFIED_AI_HOME": str(tmp_path)})
    assert local.mlflow_ui_url == "http://localhost:5000"
    assert local.dagster_ui_url == "http://localhost:3000"
    server = load_settings(
        {"UNIFIED_AI_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": "https://mlflow.example/"}
    )
    assert server.mlflow_ui_url == "https://mlflow.example"
    explicit = load_settings(
        {
            "UNIFIED_AI_HOME": str(tmp_path),
            "MLFLOW_TRACKING_URI": "https://mlflow.example",
            "UNIFIED_AI_MLFLOW_UI_URL": "https://ml.example/ui/",
            "UNIFIED_AI_DAGSTER_UI_URL": "https://dagster.example",
        }
    )
    assert explicit.mlflow_ui_url == "https://ml.example/ui"
    assert explicit.dagster_ui_url == "https://dagster.example"


def test_a_ui_url_that_is_not_http_names_the_variable(tmp_path):
    with pytest.raises(RuntimeConfigError, match="UNIFIED_AI_DAGSTER_UI_URL='localhost:3000'"):
        load_settings(
            {"UNIFIED_AI_HOME": str(tmp_path), "UNIFIED_AI_DAGSTER_UI_URL": "localhost:3000"}
        )
