"""Reading the lineage store for one step, remembering every version read: its lineage.

A step reads the store through its inputs (the IO manager) and, for versions other than its
inputs (the champion a report compares against, the approvals a deployment was decided on, the
deployments an incident describes), through a `StoreReader` bound to the step. Both note each
version in the step's `ReadLog`; the IO manager writes the log into the manifest of every value
the step stores. No asset assembles its lineage itself, so none can forget a read.

Pure: no Dagster import (the binding to a step is `LineageStorage.reader`).
"""

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from unified_ai.io.store import LineageStore, Manifest, PointerMove

#: Read logs kept per process. A step's log lives until its outputs are stored (a step with
#: several outputs records the same reads in each); the oldest logs are forgotten first, long
#: after their steps ended.
MAX_STEP_LOGS = 1024


class ReadLog:
    """The store versions one step read, by asset path, in the order first read."""

    def __init__(self) -> None:
        self._versions: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def add(self, asset_path: Sequence[str], version: str) -> None:
        label = "/".join(asset_path)
        with self._lock:
            seen = self._versions.setdefault(label, [])
            if version not in seen:
                seen.append(version)

    def upstream(self) -> dict[str, str | list[str]]:
        """`asset path → version`, or `→ [versions]` for an asset read at several versions."""
        with self._lock:
            return {
                label: versions[0] if len(versions) == 1 else list(versions)
                for label, versions in self._versions.items()
            }


_logs: "OrderedDict[tuple[str, str], ReadLog]" = OrderedDict()
_logs_lock = threading.Lock()


def step_log(run_id: str, step_key: str) -> ReadLog:
    """The read log of step `step_key` of run `run_id` (the same object for every caller)."""
    key = (run_id, step_key)
    with _logs_lock:
        log = _logs.get(key)
        if log is None:
            log = _logs[key] = ReadLog()
            while len(_logs) > MAX_STEP_LOGS:
                _logs.popitem(last=False)
        else:
            _logs.move_to_end(key)
        return log


def upstream_versions(manifest: Manifest) -> Iterator[tuple[str, str]]:
    """(asset path, version) of every version a stored value was built from."""
    for label, versions in sorted(manifest.upstream.items()):
        for version in [versions] if isinstance(versions, str) else versions:
            yield label, version


class StoreReader:
    """Read access to the store that records every value it returns in a step's `ReadLog`.

    Listing versions, pointers, history and manifests is not recorded (nothing of a value is
    used); `read_value` is. Writes (a rollback's pointer move) go to `store` explicitly.

    Args:
        store: The lineage store.
        log: Where reads are recorded; None records nothing (outside a step).
    """

    def __init__(self, store: LineageStore, log: ReadLog | None = None):
        self.store = store
        self.log = log

    def read_value(self, asset_path: Sequence[str], version: str) -> Any:
        value = self.store.read_value(asset_path, version)
        self.record(asset_path, version)
        return value

    def record(self, asset_path: Sequence[str], version: str) -> None:
        """Put a version the step used but did not read here (in chunks, say) in its lineage."""
        if self.log is not None:
            self.log.add(asset_path, version)

    def current_version(self, asset_path: Sequence[str]) -> str | None:
        return self.store.current_version(asset_path)

    def require_current(self, asset_path: Sequence[str]) -> str:
        return self.store.require_current(asset_path)

    def current_or_recorded(self, asset_path: Sequence[str]) -> str | None:
        return self.store.current_or_recorded(asset_path)

    def read_manifest(self, asset_path: Sequence[str], version: str) -> Manifest:
        return self.store.read_manifest(asset_path, version)

    def versions(self, asset_path: Sequence[str]) -> list[Manifest]:
        return self.store.versions(asset_path)

    def has_version(self, asset_path: Sequence[str], version: str) -> bool:
        return self.store.has_version(asset_path, version)

    def history(self, asset_path: Sequence[str]) -> list[PointerMove]:
        return self.store.history(asset_path)

    def history_newest_first(self, asset_path: Sequence[str]) -> Iterator[PointerMove]:
        return self.store.history_newest_first(asset_path)

    def asset_dir(self, asset_path: Sequence[str]):
        return self.store.asset_dir(asset_path)

    def version_dir(self, asset_path: Sequence[str], version: str):
        return self.store.version_dir(asset_path, version)

    def names(self, folder) -> list[str]:
        return self.store.names(folder)
