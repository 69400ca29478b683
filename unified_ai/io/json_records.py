"""Small JSON records kept beside a project's assets, each write a version and a pointer move.

Review answers, served review items, the day's routed counts and training profiles are not
Dagster assets, but they are kept as the assets are: an immutable, checksummed version (signed
with a signing key) whose pointer move names who or what wrote it and why. Pure: no Dagster
import.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import unified_ai
from unified_ai.io.formats import serialize
from unified_ai.io.pointers import ANY_PREVIOUS, AnyPrevious
from unified_ai.io.store import LineageStore
from unified_ai.projects.schema import ProjectConfig


def put_record(
    store: LineageStore,
    project: ProjectConfig,
    path: Sequence[str],
    value: Any,
    *,
    action: str,
    reason: str,
    actor: str | None = None,
    run_id: str | None = None,
    upstream: Mapping[str, str] | None = None,
    only_if_previous: str | AnyPrevious | None = ANY_PREVIOUS,
) -> str:
    """Store `value` (JSON) as a version of `path` and make it current; returns the version.

    Raises:
        PointerConflict: `only_if_previous` is not what the pointer named (compare and set).
    """
    kind, files = serialize(value)
    manifest = store.write_version(
        path,
        kind,
        files,
        code_version=unified_ai.__version__,
        policy_version=project.policy_version,
        upstream=dict(upstream or {}),
    )
    store.set_current(
        path,
        manifest.version,
        action=action,
        actor=actor,
        run_id=run_id,
        reason=reason,
        policy_version=project.policy_version,
        only_if_previous=only_if_previous,
    )
    return manifest.version
