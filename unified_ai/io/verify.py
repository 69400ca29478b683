"""Checking a whole lineage store: every version, checksum, pointer and history chain.

`unified-ai store verify` and `LineageStore.verify` report each problem on one line (asset,
version, path, reason); `--deep` also decodes every version as a reader does. Read-only, except
that staging folders left by writers that died are removed.
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
    sha256_bytes,
    successor_entry,
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


def verify(store: "LineageStore", prefix: Sequence[str] = (), *, deep: bool = False) -> StoreReport:
    """Check every version, checksum, pointer and history chain under `prefix`.

    With `deep`, every intact version is also decoded by `LineageStore.read_value`, the
    function readers use (scorer arrays, probe outputs, model types, indices), and each version
    a reader would refuse is a problem. Read-only except for one thing: staging folders left by
    writers that died (older than `STALE_STAGING_SECONDS`) are removed and listed in `cleaned`.
    """
    report = StoreReport()
    for asset_path in asset_paths(store, prefix):
        report.assets += 1
        _verify_asset(store, asset_path, report, deep=deep)
    return report


def _verify_asset(
    store: "LineageStore", asset_path: tuple[str, ...], report: StoreReport, *, deep: bool
) -> None:
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
    # The history chain: `previous` links versions, `prev_entry` links entries by hash.
    history = folder / HISTORY
    try:
        names = sorted(store.names(history))
    except FileNotFoundError:
        names = []
    newest: PointerMove | None = None
    newest_name: str | None = None
    newest_digest: str | None = None
    chain_ok = False
    entries_seen = 0
    unchained = 0
    first_chained: str | None = None
    for name in names:
        path = history / name
        if not ENTRY.fullmatch(name):
            if not name.startswith("."):
                problem(None, path, f"{label}: unexpected file {path} in the history folder")
            continue
        entries_seen += 1
        try:
            data, move = store.read_entry(asset_path, path)
        except LineageStoreError as exc:
            damage(exc)
            chain_ok, newest_digest, newest_name = False, None, name
            continue
        digest = sha256_bytes(data)
        if chain_ok and newest is not None and move.previous != newest.version:
            problem(
                move.version,
                path,
                f"{label}: history chain broken at {path}: previous is {move.previous}, but "
                f"the entry before it moved to {newest.version}",
            )
        if move.prev_entry is None:
            if first_chained is not None:
                problem(
                    move.version,
                    path,
                    f"{label}: history entry {path} is not hash-chained but follows chained "
                    "entries (inserted)",
                )
            else:
                unchained += 1
        else:
            first_chained = first_chained or name
            links = (move.prev_entry == "" and newest_name is None) or (
                newest_digest is not None
                and move.prev_entry == newest_digest
                and name == successor_entry(newest_name, newest_digest)
            )
            if not links:
                problem(
                    move.version,
                    path,
                    f"{label}: history chain broken at {path}: it does not follow "
                    f"{newest_name or 'the start of history'} (an entry was deleted, edited or "
                    "inserted)",
                )
        if move.version not in present:
            problem(
                move.version,
                path,
                f"{label}: history entry {path} moves to version {move.version}, which is "
                "not in the store",
            )
        newest, newest_name, newest_digest, chain_ok = move, name, digest, True
    if unchained and first_chained is not None:
        report.info.append(
            f"{label}: unchained history before {history / first_chained} ({unchained} "
            "entries written before history was hash-chained)"
        )
    elif unchained:
        report.info.append(
            f"{label}: history is not hash-chained yet ({unchained} entries); the next pointer "
            "move starts the chain"
        )
    head_reported = False
    if pointer_ok and current is not None:
        head = store.pointer_head(asset_path)
        if head is not None and head[0] != newest_name:
            expected = (
                successor_entry(newest_name, newest_digest)
                if newest_name is not None and newest_digest is not None
                else None
            )
            how = (
                "a move interrupted before its entry was copied, or the newest entry deleted; "
                "the next move restores it"
                if newest_name is None or head[0] == expected
                else "the history does not lead to it"
            )
            problem(
                current,
                pointer,
                f"{label}: {pointer} holds history entry {head[0]}, which is not the newest "
                f"entry in {history} ({how})",
            )
            head_reported = True
    if pointer_ok and not head_reported:
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
    if deep:
        _decode_versions(store, asset_path, sorted(intact), problem)


def _decode_versions(store: "LineageStore", asset_path, versions, problem) -> None:
    """Decode each intact version with the reader's own function; report each it refuses."""
    from unified_ai.io.formats import UnsupportedValueError

    for version in versions:
        try:
            store.read_value(asset_path, version)
        except (LineageStoreError, UnsupportedValueError) as exc:
            problem(version, store.version_dir(asset_path, version), first_line(exc))


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
