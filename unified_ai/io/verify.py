"""Checking a whole lineage store: every version, checksum, pointer and history chain.

`unified-ai store verify` and `LineageStore.verify` report each problem on one line (asset,
version, path, reason); `--deep` also decodes every version as a reader does. Read-only, except
that staging folders left by writers that died are removed.
"""

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

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


class StoreView(Protocol):
    """What verifying needs of a store.

    `LineageStore` has it; this module does not import `unified_ai.io.store`, which imports
    this one (lazily, in `LineageStore.verify`).
    """

    root: Any

    @property
    def local(self) -> bool: ...
    def asset_dir(self, asset_path: Sequence[str]) -> Any: ...
    def version_dir(self, asset_path: Sequence[str], version: str) -> Any: ...
    def names(self, folder: Any) -> list[str]: ...
    def entries(self, folder: Any) -> list[tuple[str, bool]]: ...
    def manifest_or_none(self, asset_path: Sequence[str], version: str) -> Manifest | None: ...
    def checksum_error(self, asset_path: Any, version: str, name: str) -> Exception: ...
    def current_version(self, asset_path: Sequence[str]) -> str | None: ...
    def pointer_head(self, asset_path: Sequence[str]) -> tuple[str, bytes] | None: ...
    def read_entry(self, asset_path: Sequence[str], path: Any) -> tuple[bytes, PointerMove]: ...
    def read_value(self, asset_path: Sequence[str], version: str) -> Any: ...


def asset_paths(store: StoreView, prefix: Sequence[str] = ()) -> list[tuple[str, ...]]:
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


def verify(store: StoreView, prefix: Sequence[str] = (), *, deep: bool = False) -> StoreReport:
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
    store: StoreView, asset_path: tuple[str, ...], report: StoreReport, *, deep: bool
) -> None:
    check = _AssetCheck(store, asset_path, report)
    if store.local:
        report.cleaned += clean_stale_staging(Path(check.folder.path) / VERSIONS)
    check.versions()
    check.pointer()
    check.history()
    check.head()
    if deep:
        _decode_versions(store, asset_path, sorted(check.intact), check.problem)


class _AssetCheck:
    """The checks of one asset, in the order their problems are reported."""

    def __init__(self, store: StoreView, asset_path: tuple[str, ...], report: StoreReport):
        self.store = store
        self.asset_path = asset_path
        self.report = report
        self.label = asset_label(asset_path)
        self.folder = store.asset_dir(asset_path)
        self.present: set[str] = set()
        self.intact: set[str] = set()
        self.current: str | None = None
        self.pointer_ok = True
        # The history chain as walked: the newest entry read so far and its name and hash.
        self.newest: PointerMove | None = None
        self.newest_name: str | None = None
        self.newest_digest: str | None = None
        self.chain_ok = False
        self.entries_seen = 0
        self.unchained = 0
        self.first_chained: str | None = None

    def problem(self, version: str | None, path: Any, text: str) -> None:
        self.report.problems.append(Problem(self.label, version, str(path), text))

    def damage(self, exc: LineageStoreError, version: str | None = None) -> None:
        self.problem(exc.version or version, exc.path or self.folder, str(exc))

    def versions(self) -> None:
        """Versions: manifest, signature, version id and every payload checksum."""
        store, label, folder = self.store, self.label, self.folder
        try:
            entries = store.entries(folder / VERSIONS)
        except FileNotFoundError:
            entries = []
        for name, _ in sorted(entries):
            path = folder / VERSIONS / name
            if name.startswith(STAGING_PREFIX):
                continue  # a write in progress (stale ones were cleaned before)
            if not VERSION.fullmatch(name):
                self.problem(None, path, f"{label}: unexpected entry {path} in the versions folder")
                continue
            self.report.versions += 1
            self.present.add(name)
            try:
                manifest = store.manifest_or_none(self.asset_path, name)
                if manifest is None:
                    self.problem(
                        name,
                        path / MANIFEST,
                        f"{label}@{name}: {path} has no {MANIFEST} (an interrupted write or a "
                        "deleted manifest); storing the same content again repairs it",
                    )
                    continue
                _verify_stored_files(store, self.asset_path, manifest)
            except LineageStoreError as exc:
                self.damage(exc, name)
                continue
            self.intact.add(name)

    def pointer(self) -> None:
        """The pointer names an intact version."""
        pointer = self.folder / CURRENT
        try:
            self.current = self.store.current_version(self.asset_path)
        except LineageStoreError as exc:
            self.damage(exc)
            self.pointer_ok = False
        current = self.current
        if current is not None and current not in self.intact:
            state = "damaged" if current in self.present else "missing"
            self.problem(
                current,
                pointer,
                f"{self.label}: {pointer} names version {current}, which is {state}",
            )

    def history(self) -> None:
        """The history chain: `previous` links versions, `prev_entry` links entries by hash."""
        history = self.folder / HISTORY
        try:
            names = sorted(self.store.names(history))
        except FileNotFoundError:
            names = []
        for name in names:
            path = history / name
            if not ENTRY.fullmatch(name):
                if not name.startswith("."):
                    self.problem(
                        None, path, f"{self.label}: unexpected file {path} in the history folder"
                    )
                continue
            self.entries_seen += 1
            try:
                data, move = self.store.read_entry(self.asset_path, path)
            except LineageStoreError as exc:
                self.damage(exc)
                self.chain_ok, self.newest_digest, self.newest_name = False, None, name
                continue
            self.entry(name, path, move)
            self.newest, self.newest_name = move, name
            self.newest_digest, self.chain_ok = sha256_bytes(data), True
        label, unchained, first_chained = self.label, self.unchained, self.first_chained
        if unchained and first_chained is not None:
            self.report.info.append(
                f"{label}: unchained history before {history / first_chained} ({unchained} "
                "entries written before history was hash-chained)"
            )
        elif unchained:
            self.report.info.append(
                f"{label}: history is not hash-chained yet ({unchained} entries); the next "
                "pointer move starts the chain"
            )

    def entry(self, name: str, path: Any, move: PointerMove) -> None:
        """One history entry: it follows the entry before it and moves to a stored version."""
        label, newest = self.label, self.newest
        if self.chain_ok and newest is not None and move.previous != newest.version:
            self.problem(
                move.version,
                path,
                f"{label}: history chain broken at {path}: previous is {move.previous}, but "
                f"the entry before it moved to {newest.version}",
            )
        if move.prev_entry is None:
            if self.first_chained is not None:
                self.problem(
                    move.version,
                    path,
                    f"{label}: history entry {path} is not hash-chained but follows chained "
                    "entries (inserted)",
                )
            else:
                self.unchained += 1
        else:
            self.first_chained = self.first_chained or name
            links = (move.prev_entry == "" and self.newest_name is None) or (
                self.newest_digest is not None
                and self.newest_name is not None
                and move.prev_entry == self.newest_digest
                and name == successor_entry(self.newest_name, self.newest_digest)
            )
            if not links:
                self.problem(
                    move.version,
                    path,
                    f"{label}: history chain broken at {path}: it does not follow "
                    f"{self.newest_name or 'the start of history'} (an entry was deleted, "
                    "edited or inserted)",
                )
        if move.version not in self.present:
            self.problem(
                move.version,
                path,
                f"{label}: history entry {path} moves to version {move.version}, which is "
                "not in the store",
            )

    def head(self) -> None:
        """CURRENT holds the newest history entry and names the version it moved to."""
        label, current, pointer = self.label, self.current, self.folder / CURRENT
        history = self.folder / HISTORY
        newest, newest_name, newest_digest = self.newest, self.newest_name, self.newest_digest
        head_reported = False
        if self.pointer_ok and current is not None:
            head = self.store.pointer_head(self.asset_path)
            if head is not None and head[0] != newest_name:
                expected = (
                    successor_entry(newest_name, newest_digest)
                    if newest_name is not None and newest_digest is not None
                    else None
                )
                how = (
                    "a move interrupted before its entry was copied, or the newest entry "
                    "deleted; the next move restores it"
                    if newest_name is None or head[0] == expected
                    else "the history does not lead to it"
                )
                self.problem(
                    current,
                    pointer,
                    f"{label}: {pointer} holds history entry {head[0]}, which is not the newest "
                    f"entry in {history} ({how})",
                )
                head_reported = True
        if not self.pointer_ok or head_reported:
            return
        if self.entries_seen and current is None:
            self.problem(None, pointer, f"{label}: {pointer} is missing but history exists")
        elif current is not None and not self.entries_seen:
            self.problem(current, pointer, f"{label}: {pointer} has no history entry")
        elif self.chain_ok and newest is not None and current != newest.version:
            self.problem(
                current,
                pointer,
                f"{label}: {pointer} names {current} but the newest history entry moved to "
                f"{newest.version} (an interrupted or concurrent pointer move)",
            )


def _decode_versions(store: StoreView, asset_path, versions, problem) -> None:
    """Decode each intact version with the reader's own function; report each it refuses."""
    from unified_ai.io.formats import UnsupportedValueError

    for version in versions:
        try:
            store.read_value(asset_path, version)
        except (LineageStoreError, UnsupportedValueError) as exc:
            problem(version, store.version_dir(asset_path, version), first_line(exc))


def _verify_stored_files(store: StoreView, asset_path: Sequence[str], manifest: Manifest) -> None:
    """Hash each payload file in chunks (verify never holds a whole payload in memory)."""
    label = asset_label(asset_path)
    folder = store.version_dir(asset_path, manifest.version)
    for name, expected in manifest.files.items():
        path = folder / name
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                for chunk in iter(functools.partial(handle.read, 1 << 20), b""):
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
