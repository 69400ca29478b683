"""The upstream tree of a stored version, read from manifests (what each step actually loaded)."""

from typing import Any

from unified_ai.io.reader import upstream_versions
from unified_ai.io.store import IntegrityError, LineageStore


def lineage_tree(store: LineageStore, asset_path: list[str], version: str) -> dict[str, Any]:
    """`{asset, version, created_at, run_id, policy_version, upstream: [subtrees]}`."""
    return _subtree(store, list(asset_path), version, ())


def _subtree(
    store: LineageStore, asset_path: list[str], version: str, below: tuple[str, ...]
) -> dict[str, Any]:
    node = f"{'/'.join(asset_path)}@{version}"
    if node in below:
        # Content hashes cannot form a cycle; an edited manifest can. Refuse it in one line
        # instead of recursing until the interpreter gives up.
        raise IntegrityError(
            f"{node}: its lineage leads back to itself ({' -> '.join([*below, node])}); a "
            "manifest was edited"
        )
    manifest = store.read_manifest(asset_path, version)
    upstream = []
    for label, upstream_version in upstream_versions(manifest):
        upstream.append(_subtree(store, label.split("/"), upstream_version, (*below, node)))
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


def stored_paths(store: LineageStore, project: str, assets: list[str]) -> list[list[str]]:
    """Every stored asset path of a project: each asset, and each partition of it."""
    paths = []
    for asset in assets:
        base = [project, asset]
        if (store.asset_dir(base) / "versions").exists():
            paths.append(base)
        partitions = store.asset_dir(base) / "partitions"
        if partitions.exists():
            # Hidden names are the store's own bookkeeping (locks, temporary files).
            names = sorted(n for n in store.names(partitions) if not n.startswith("."))
            paths += [[*base, "partitions", name] for name in names]
    return paths


def downstream_of(
    store: LineageStore, paths: list[list[str]], asset_path: list[str], version: str
) -> list[dict[str, Any]]:
    """Every stored version built, directly or transitively, from `asset_path@version`.

    Returns one row per version: asset, version, whether it is current, created time and the
    upstream it was built from, in dependency order (nearest first).
    """
    store.read_manifest(asset_path, version)  # the starting point must exist
    children: dict[tuple[str, str], list[tuple[str, str, Any]]] = {}
    for path in paths:
        current = store.current_version(path)
        for manifest in store.versions(path):
            for label, upstream_version in upstream_versions(manifest):
                children.setdefault((label, upstream_version), []).append(
                    ("/".join(path), manifest.version, (manifest, current))
                )
    found, queue, seen = [], [("/".join(asset_path), version)], set()
    while queue:
        node = queue.pop(0)
        for label, child_version, (manifest, current) in children.get(node, []):
            if (label, child_version) in seen:
                continue
            seen.add((label, child_version))
            found.append(
                {
                    "asset": label,
                    "version": child_version,
                    "current": child_version == current,
                    "created_at": manifest.created_at,
                    "built_from": f"{node[0]}@{node[1]}",
                }
            )
            queue.append((label, child_version))
    return found
