"""A reviewable snapshot of the asset graph: any change to keys, checks or deps shows up here."""

from collections import Counter

import dagster as dg

from unified_ai import names
from unified_ai.definitions import build_definitions
from unified_ai.project_tree import load_projects
from unified_ai.runtime import load_settings


def describe_graph(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for asset_key in sorted(graph.get_all_asset_keys()):
        node = graph.get(asset_key)
        assets[asset_key.to_user_string()] = {
            "group": node.group_name,
            "stage": node.tags.get(names.STAGE_TAG),
            "owners": sorted(node.owners),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(
                f"{c.name}{' (blocking)' if graph.get(c).blocking else ''}" for c in node.check_keys
            ),
            "kinds": sorted(node.kinds),
        }
    jobs = sorted(job.name for job in defs.jobs or [])
    sensors = sorted(
        f"{sensor.name} ({sensor.default_status.value.lower()})" for sensor in defs.sensors or []
    )
    return {
        "assets": assets,
        "jobs": jobs,
        "sensors": sensors,
        "resources": sorted(defs.resources or {}),
    }


def test_local_graph_snapshot(snapshot, tmp_path):
    settings = load_settings({"UNIFIED_AI_HOME": str(tmp_path)})
    defs = build_definitions(settings, load_projects())
    assert describe_graph(defs) == snapshot


def test_k8s_graph_snapshot(snapshot):
    settings = load_settings(
        {
            "UNIFIED_AI_RUNTIME": "k8s",
            "UNIFIED_AI_HOME": "s3://bucket/unified-ai",
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "UNIFIED_AI_ALLOW_UNSIGNED": "1",
        }
    )
    defs = build_definitions(settings, load_projects())
    graph = describe_graph(defs)
    graph["executor"] = defs.executor.name
    graph["op_tags"] = {
        key.to_user_string(): dict(defs.resolve_assets_def(key).op.tags)
        for key in sorted(defs.resolve_asset_graph().get_all_asset_keys())
        if defs.resolve_assets_def(key).op.tags
    }
    assert graph == snapshot


def test_every_gate_is_blocking(tmp_path):
    settings = load_settings({"UNIFIED_AI_HOME": str(tmp_path)})
    graph = build_definitions(settings, load_projects()).resolve_asset_graph()
    checks = [graph.get(k) for k in graph.asset_check_keys]
    # Every bundled project has the same ten checks, whatever its task.
    per_project = Counter(c.key.asset_key.path[0] for c in checks)
    assert per_project == {p.name: 10 for p in load_projects()}
    blocking = {c.key.name for c in checks if c.blocking}
    # Only the label-match check warns without blocking: late labels never stop the loop.
    assert {c.key.name for c in checks} - blocking == {"labels_match_predictions"}
