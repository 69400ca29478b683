"""The upstream tree of a stored version, read from manifests (what each step actually loaded)."""

from typing import Any

from unified_ai.io.store import LineageStore


def lineage_tree(store: LineageStore, asset_path: list[str], version: str) -> dict[str, Any]:
    """`{asset, version, created_at, run_id, policy_version, upstream: [subtrees]}`."""
    manifest = store.read_manifest(asset_path, version)
    upstream = []
    for label, upstream_version in sorted(manifest.upstream.items()):
        upstream.append(lineage_tree(store, label.split("/"), upstream_version))
    return {
        "asset": "/".join(asset_path),
        "version": version,
        "created_at": manifest.created_at,
        "run_id": manifest.run_id,
        "policy_version": manifest.policy_version,
        "upstream": upstream,
    }


def render_tree(tree: dict[str, Any]) -> list[str]:
    """Box-drawing lines of a lineage tree, root first."""
    lines = [_label(tree)]

    def walk(node: dict[str, Any], prefix: str) -> None:
        children = node["upstream"]
        for index, child in enumerate(children):
            last = index == len(children) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{_label(child)}")
            walk(child, prefix + ("    " if last else "│   "))

    walk(tree, "")
    return lines


def _label(node: dict[str, Any]) -> str:
    return f"{node['asset']}@{node['version']}  ({node['created_at']}, run {node['run_id']})"
