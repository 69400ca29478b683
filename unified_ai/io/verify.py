"""Checking a whole lineage store: every version, checksum, pointer and history chain.

`unified-ai store verify` and `LineageStore.verify` report each problem on one line (asset,
version, path, reason). Read-only, except that staging folders left by writers that died are
removed.
"""

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unified_ai.io.localfs import clean_stale_staging
from unified_ai.io.records import (
    CURRENT,
    ENTRY,
    HISTORY,
    MANIFEST,
    SEGMENT,
    STAGING_PREFIX,
    VERSION,
    VERSIONS,
    LineageStoreError,
    Manifest,
    PointerMove,
    Problem,
    StoreDamageError,
    StoreReport,
    asset_label,
    first_line,
    validate_asset_path,
)

if TYPE_CHECKING:
    from unified_ai.io.store import LineageStore


def asset_paths(store: "LineageStore", prefix: Sequence[str] = ()) -> list[tuple[str, ...]]:
    """Every stored asset path under `prefix` (the whole store by default)."""
    start = store.root.joinpath(*validate_asset_path(prefix)) if prefix else store.root
    found: list[tuple[str, ...]] = []

    def walk(folder, parts: tuple[str, ...]) -> None:
        try:
            entries = store.entries(folder)
        except (FileNotFoundError, NotADirectoryError):
            return
        if parts and {name for name, _ in entries} & {VERSIONS, HISTORY, CURRENT}:
            found.append(parts)
        for name, is_dir in sorted(entries):
            if is_dir and name not in (VERSIONS, HISTORY) and SEGMENT.fullmatch(name):
                walk(folder / name, (*parts, name))

    walk(start, tuple(prefix))
    return found


def verify(store: "LineageStore", prefix: Sequence[str] = ()) -> StoreReport:
    """Check every version, checksum, pointer and history chain under `prefix`.

    Read-only except for one thing: staging folders left by writers that died (older than
    `STALE_STAGING_SECONDS`) are removed and listed in `cleaned`.
    """
    report = StoreReport()
    for asset_path in asset_paths(store, prefix):
        report.assets += 1
        _verify_asset(store, asset_path, report)
    return report


def _verify_asset(store: "LineageStore", asset_path: tuple[str, ...], report: StoreReport) -> None:
    label = asset_label(asset_path)
    folder = store.asset_dir(asset_path)

    def problem(version: str | None, path: Any, text: str) -> None:
        report.problems.append(Problem(label, version, str(path), text))

    def damage(exc: LineageStoreError, version: str | None = None) -> None:
        problem(exc.version or version, exc.path or folder, str(exc))

    if store.local:
        report.cleaned += clean_stale_staging(Path(folder.path) / VERSIONS)
    # Versions: manifest, signature, version id and every payload checksum.
    present: set[str] = set()
    intact: set[str] = set()
    try:
        entries = store.entries(folder / VERSIONS)
    except FileNotFoundError:
        entries = []
    for name, _ in sorted(entries):
        path = folder / VERSIONS / name
        if name.startswith(STAGING_PREFIX):
            continue  # a write in progress (stale ones were cleaned above)
        if not VERSION.fullmatch(name):
            problem(None, path, f"{label}: unexpected entry {path} in the versions folder")
            continue
        report.versions += 1
        present.add(name)
        try:
            manifest = store.manifest_or_none(asset_path, name)
            if manifest is None:
                problem(
                    name,
                    path / MANIFEST,
                    f"{label}@{name}: {path} has no {MANIFEST} (an interrupted write or a "
                    "deleted manifest); storing the same content again repairs it",
                )
                continue
            _verify_stored_files(store, asset_path, manifest)
        except LineageStoreError as exc:
            damage(exc, name)
            continue
        intact.add(name)
    # The pointer.
    pointer = folder / CURRENT
    current: str | None = None
    pointer_ok = True
    try:
        current = store.current_version(asset_path)
    except LineageStoreError as exc:
        damage(exc)
        pointer_ok = False
    if current is not None and current not in intact:
        state = "damaged" if current in present else "missing"
        problem(current, pointer, f"{label}: {pointer} names version {current}, which is {state}")
    # The history chain.
    history = folder / HISTORY
    try:
        names = sorted(store.names(history))
    except FileNotFoundError:
        names = []
    newest: PointerMove | None = None
    chain_ok = False
    entries_seen = 0
    for name in names:
        path = history / name
        if not ENTRY.fullmatch(name):
            if not name.startswith("."):
                problem(None, path, f"{label}: unexpected file {path} in the history folder")
            continue
        entries_seen += 1
        try:
            move = store.read_move(asset_path, path)
        except LineageStoreError as exc:
            damage(exc)
            chain_ok = False
            continue
        if chain_ok and newest is not None and move.previous != newest.version:
            problem(
                move.version,
                path,
                f"{label}: history chain broken at {path}: previous is {move.previous}, but "
                f"the entry before it moved to {newest.version}",
            )
        if move.version not in present:
            problem(
                move.version,
                path,
                f"{label}: history entry {path} moves to version {move.version}, which is "
                "not in the store",
            )
        newest, chain_ok = move, True
    if pointer_ok:
        if entries_seen and current is None:
            problem(None, pointer, f"{label}: {pointer} is missing but history exists")
        elif current is not None and not entries_seen:
            problem(current, pointer, f"{label}: {pointer} has no history entry")
        elif chain_ok and newest is not None and current != newest.version:
            problem(
                current,
                pointer,
                f"{label}: {pointer} names {current} but the newest history entry moved to "
                f"{newest.version} (an interrupted or concurrent pointer move)",
            )


def _verify_stored_files(
    store: "LineageStore", asset_path: Sequence[str], manifest: Manifest
) -> None:
    """Hash each payload file in chunks (verify never holds a whole payload in memory)."""
    label = asset_label(asset_path)
    folder = store.version_dir(asset_path, manifest.version)
    for name, expected in manifest.files.items():
        path = folder / name
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                for chunk in iter(lambda handle=handle: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except FileNotFoundError:
            raise StoreDamageError(
                f"{label}@{manifest.version}: payload file {path} is missing",
                asset=label,
                version=manifest.version,
                path=path,
            ) from None
        except OSError as exc:
            raise StoreDamageError(
                f"{label}@{manifest.version}: payload file {path} cannot be read "
                f"({first_line(exc)})",
                asset=label,
                version=manifest.version,
                path=path,
            ) from None
        if digest.hexdigest() != expected:
            raise store.checksum_error(asset_path, manifest.version, name)
