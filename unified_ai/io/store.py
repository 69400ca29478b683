"""The lineage store: immutable, content-addressed versions of every asset value.

Layout under the root (a local folder or any fsspec URL)::

    <asset path>/versions/<version>/<payload files> + manifest.json
    <asset path>/CURRENT                   which version is current (one small JSON object)
    <asset path>/history/<time>-<id>.json  one immutable record per pointer move
    <asset path>/.lock                     serialises pointer moves of this asset

A version is visible only once its `manifest.json` exists; locally the whole version folder is
written under a temporary name and renamed into place, on object stores the manifest is the
last object put. The pointer is replaced in one operation (rename locally, one put remotely),
so readers never see a half-written version or pointer.

Integrity: a version id is the hash of its manifest's checksums, recomputed on every read, and
every payload file is checked against its checksum before its value is returned. With a signing
key, manifests, pointers and history entries also carry an HMAC-SHA256 signature that is
verified on every read, so a store shared across trust boundaries cannot be edited unnoticed.

Pointer moves of one asset are serialised (an exclusive `flock` locally, a lock object created
with a conditional put on object stores), so the history is one chain: each entry's `previous`
is the version the entry before it moved to, and the newest entry is CURRENT.

History cannot be rewritten unnoticed: each entry records the sha256 of the entry before it
(`prev_entry`), and CURRENT holds the newest entry itself with its hash (`head`), under the
pointer's signature. A move replaces CURRENT first (the commit) and then copies the entry into
`history/`, so a move interrupted in between is complete (the next move restores the copy).
The name of the entry after `E` is fixed by `E` (`records.successor_entry`): `current_version`
checks with one lookup, without listing history, that nothing follows the entry CURRENT names,
so an older pointer put back is refused; reading history checks each link of the chain, and
`verify` checks all of them. Putting back an older pointer AND deleting every entry after it
restores an earlier state exactly, which no check inside the store can tell apart from that
state: object versioning or retention on the bucket (and a signing key) guard against that.
Entries written before the chain existed stay readable; the chain starts at the first entry
written after them (`verify` notes "unchained history before ...").

Beside this module: `records` (manifests, history entries, signatures, identifiers), `locks`
(pointer locks), `localfs` (durable local writes, staging) and `verify` (checking a whole
store). All pure: no Dagster import. The IO manager in `unified_ai.io.manager` sits on top.
"""

import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from unified_ai.io.formats import (
    PARALLEL_VERIFY_KINDS,
    Payload,
    UnsupportedValueError,
    describe,
    deserialize,
    payload_bytes,
)
from unified_ai.io.localfs import clean_stale_staging, discard, write_synced
from unified_ai.io.locks import LOCK, file_lock, object_lock
from unified_ai.io.records import (
    CURRENT,
    DIGEST,
    ENTRY,
    HISTORY,
    MANIFEST,
    SEGMENT,
    STAGING_PREFIX,
    VERSION,
    VERSIONS,
    IntegrityError,
    LineageStoreError,
    Manifest,
    PointerMove,
    RecordCodec,
    StoreDamageError,
    StoreReport,
    asset_label,
    checked_manifest,
    checked_move,
    content_version,
    first_line,
    sha256_bytes,
    successor_entry,
    utc_now,
    validate_asset_path,
    validate_version,
    version_of_checksums,
)

__all__ = [
    "CURRENT",
    "MANIFEST",
    "IntegrityError",
    "LineageStore",
    "LineageStoreError",
    "Manifest",
    "PointerMove",
    "StoreDamageError",
    "StoreReport",
    "content_version",
    "utc_now",
    "validate_asset_path",
    "validate_version",
    "version_of_checksums",
]

_CACHING_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
_S3_PROTOCOLS = {"s3", "s3a"}


class LineageStore:
    """Versioned, content-addressed storage for asset values on a local folder or fsspec URL.

    Args:
        root: Folder or fsspec URL.
        storage_options: fsspec options for an object store (endpoint, credentials, ...).
        signing_key: When set, manifests, pointers and history entries are HMAC-signed on write
            and anything unsigned or wrongly signed is refused on read.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        storage_options: Mapping[str, Any] | None = None,
        *,
        signing_key: str | bytes | None = None,
    ):
        from upath import UPath  # fsspec is only needed once a store is used

        options = dict(storage_options or {})
        protocol = str(root).split("://")[0] if "://" in str(root) else ""
        if protocol in _CACHING_PROTOCOLS:
            # Other processes move pointers and append history: never trust a cached listing.
            options.setdefault("use_listings_cache", False)
        self.root = UPath(root, **options)
        self._local = self.root.protocol in ("", "file", "local")
        if isinstance(signing_key, str):
            signing_key = signing_key.encode()
        self._codec = RecordCodec(signing_key or None)

    def __repr__(self) -> str:  # never shows the key
        return f"LineageStore({str(self.root)!r}, signed={self._codec.signed})"

    @property
    def signed(self) -> bool:
        return self._codec.signed

    @property
    def local(self) -> bool:
        """Whether the root is a local folder (not an object store)."""
        return self._local

    # -- paths -----------------------------------------------------------------------------
    def asset_dir(self, asset_path: Sequence[str]):
        return self.root.joinpath(*validate_asset_path(asset_path))

    def version_dir(self, asset_path: Sequence[str], version: str):
        return self.asset_dir(asset_path) / VERSIONS / validate_version(version)

    # -- raw io ----------------------------------------------------------------------------
    def names(self, folder) -> list[str]:
        """Entry names of a folder, without building a path object per entry."""
        if self._local:
            return os.listdir(folder.path)
        return [
            entry.rstrip("/").rsplit("/", 1)[-1]
            for entry in folder.fs.ls(folder.path, detail=False)
        ]

    def entries(self, folder) -> list[tuple[str, bool]]:
        """(name, is a folder) of each entry of a folder; FileNotFoundError if it is absent."""
        if self._local:
            with os.scandir(folder.path) as entries:
                return [(entry.name, entry.is_dir()) for entry in entries]
        return [
            (info["name"].rstrip("/").rsplit("/", 1)[-1], info["type"] == "directory")
            for info in folder.fs.ls(folder.path, detail=True)
        ]

    def _read(self, path) -> bytes:
        if self._local:
            return path.read_bytes()
        # One GET: a buffered, Etag-checked read fails if another writer replaces the object
        # (the pointer) between requests.
        return path.fs.cat_file(path.path)

    def _read_optional(
        self, path, *, what: str, asset: str, version: str | None = None
    ) -> bytes | None:
        """A stored file's bytes, None if it does not exist, a one-line error if unreadable."""
        try:
            return self._read(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            where = f"{asset}@{version}" if version else asset
            raise StoreDamageError(
                f"{where}: {what} {path} cannot be read ({first_line(exc)})",
                asset=asset,
                version=version,
                path=path,
            ) from None

    def _replace(self, path, data: bytes) -> None:
        if self._local:
            final = Path(path.path)
            tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}")
            write_synced(tmp, data)
            os.replace(tmp, final)
        else:
            path.write_bytes(data)  # a single put is atomic on object stores

    # -- writing ---------------------------------------------------------------------------
    def write_version(
        self,
        asset_path: Sequence[str],
        kind: str,
        files: Mapping[str, "Payload"],
        *,
        run_id: str | None = None,
        code_version: str | None = None,
        policy_version: str | None = None,
        upstream: Mapping[str, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Manifest:
        """Store `files` as an immutable version and return its manifest.

        A payload is bytes, or a function that writes into a binary file (so large values are
        encoded straight to disk, without an in-memory copy). Identical content maps to the
        same version; an existing intact version is never rewritten, a damaged one (manifest
        deleted or unreadable, payload file missing) is replaced by the content just written.
        """
        validate_asset_path(asset_path)
        for name in files:
            if name == MANIFEST or not isinstance(name, str) or not SEGMENT.fullmatch(name):
                raise LineageStoreError(f"payload file name {name!r} is not allowed")
        # What the format knows about the value (a model's type list), checked again on load.
        described = describe(kind, files, where="/".join(asset_path))

        def manifest_for(checksums: dict[str, str]) -> Manifest:
            return Manifest(
                asset_key=list(asset_path),
                version=version_of_checksums(checksums),
                kind=kind,
                files=checksums,
                created_at=utc_now(),
                run_id=run_id,
                code_version=code_version,
                policy_version=policy_version,
                upstream=dict(upstream or {}),
                metadata={**dict(metadata or {}), **described},
            )

        if self._local:
            return self._write_local_version(asset_path, files, manifest_for)
        encoded = {name: payload_bytes(payload) for name, payload in files.items()}
        manifest = manifest_for({name: sha256_bytes(data) for name, data in encoded.items()})
        existing = self._intact_version(asset_path, manifest.version)
        if existing is not None:
            return existing
        target = self.version_dir(asset_path, manifest.version)
        target.mkdir(parents=True, exist_ok=True)
        for name, data in encoded.items():
            (target / name).write_bytes(data)
        (target / MANIFEST).write_bytes(self._manifest_bytes(manifest))  # last: makes it visible
        return manifest

    def _manifest_bytes(self, manifest: Manifest) -> bytes:
        return self._codec.encode(manifest.__dict__, indent=2)

    def _intact_version(self, asset_path: Sequence[str], version: str) -> Manifest | None:
        """The manifest of an existing, readable version, or None if it must be (re)written."""
        try:
            manifest = self.manifest_or_none(asset_path, version)
        except LineageStoreError:
            return None  # damaged: the caller replaces it with the content it just encoded
        if manifest is None:
            return None
        folder = self.version_dir(asset_path, version)
        if not all((folder / name).exists() for name in manifest.files):
            return None
        return manifest

    def _write_local_version(self, asset_path, files, manifest_for) -> Manifest:
        # Everything is written under a staging name first; the rename publishes it whole.
        versions = Path(self.asset_dir(asset_path).path) / VERSIONS
        versions.mkdir(parents=True, exist_ok=True)
        clean_stale_staging(versions)
        staging = versions / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            checksums = {
                name: write_synced(staging / name, payload) for name, payload in files.items()
            }
            manifest = manifest_for(checksums)
            existing = self._intact_version(asset_path, manifest.version)
            if existing is not None:
                return existing
            write_synced(staging / MANIFEST, self._manifest_bytes(manifest))
            final = versions / manifest.version
            for _ in range(3):
                try:
                    os.rename(staging, final)
                    return manifest
                except OSError:
                    # Another writer stored the same content first (theirs is identical), or a
                    # damaged folder holds the name: move that aside and publish ours.
                    existing = self._intact_version(asset_path, manifest.version)
                    if existing is not None:
                        return existing
                    discard(final)
            raise StoreDamageError(
                f"{asset_label(asset_path)}@{manifest.version}: the damaged version folder {final} "
                "could not be replaced",
                asset=asset_label(asset_path),
                version=manifest.version,
                path=final,
            )
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def set_current(
        self,
        asset_path: Sequence[str],
        version: str,
        *,
        action: str,
        run_id: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        policy_version: str | None = None,
    ) -> PointerMove:
        """Point `asset_path` at an existing `version` and append the move to its history.

        Moves of one asset are serialised, so `previous` is always the version the newest
        history entry moved to. A damaged pointer does not block the move (a rollback or
        re-materialization is how it gets repaired); the damage is noted in the entry's reason.
        """
        label = asset_label(validate_asset_path(asset_path))
        validate_version(version)
        self.read_manifest(asset_path, version)  # exists, and is intact
        folder = self.asset_dir(asset_path)
        history = folder / HISTORY
        with self._pointer_lock(asset_path):
            newest_name, newest_data, newest, notes = self._newest_move(asset_path)
            restored = self._restore_head_copy(asset_path, newest_name, newest_data)
            if restored is not None:
                newest_name, newest_data, newest = restored
            previous, pointer_notes = self._previous_for_move(asset_path, newest)
            notes += pointer_notes
            if not pointer_notes and newest is not None and previous != newest.version:
                # The last move was interrupted between its history entry and the pointer
                # (or CURRENT was replaced by hand): record that, so the chain stays whole.
                repair = PointerMove(
                    asset_key=list(asset_path),
                    version=previous,
                    previous=newest.version,
                    action="repair",
                    at=utc_now(),
                    reason=f"CURRENT named {previous} while the newest history entry "
                    f"moved to {newest.version}; recorded before the next move",
                    prev_entry=self._link(newest_name, newest_data),
                )
                data = self._codec.encode(repair.__dict__)
                newest_name = self._entry_name(newest_name, newest_data)
                self._write_entry(history, newest_name, data)
                newest_data = data
            if notes:
                reason = "; ".join([reason, *notes] if reason else notes)
            move = PointerMove(
                asset_key=list(asset_path),
                version=version,
                previous=previous,
                action=action,
                at=utc_now(),
                run_id=run_id,
                actor=actor,
                reason=reason,
                policy_version=policy_version,
                prev_entry=self._link(newest_name, newest_data),
            )
            data = self._codec.encode(move.__dict__)
            entry = self._entry_name(newest_name, newest_data)
            pointer = {
                "asset": label,
                "version": version,
                "at": move.at,
                "entry": entry,
                "head": sha256_bytes(data),
                "record": data.decode(),
            }
            # The pointer (holding the entry) is the commit; the history copy follows it.
            self._replace(folder / CURRENT, self._codec.encode(pointer))
            self._write_entry(history, entry, data)
        return move

    @staticmethod
    def _link(newest_name: str | None, newest_data: bytes | None) -> str | None:
        """`prev_entry` of the entry after the newest: its hash, "" if there is none."""
        if newest_name is None:
            return ""
        return sha256_bytes(newest_data) if newest_data is not None else None

    @staticmethod
    def _entry_name(newest_name: str | None, newest_data: bytes | None) -> str:
        """The name of the entry after the newest (fixed by it; see `successor_entry`)."""
        if newest_name is not None and newest_data is not None:
            return successor_entry(newest_name, sha256_bytes(newest_data))
        stamp = time.time_ns()
        if newest_name is not None:  # unreadable newest entry: still sort after it
            stamp = max(stamp, int(newest_name[:20]) + 1)
        return f"{stamp:020d}-{uuid.uuid4().hex[:8]}.json"

    def _write_entry(self, history, name: str, data: bytes) -> None:
        if self._local:
            Path(history.path).mkdir(parents=True, exist_ok=True)
        self._replace(history / name, data)

    def pointer_head(self, asset_path: Sequence[str]) -> tuple[str, bytes] | None:
        """(entry name, entry bytes) CURRENT holds, if it is a readable chained pointer."""
        label = asset_label(asset_path)
        pointer = self.asset_dir(asset_path) / CURRENT
        try:
            data = self._read_optional(pointer, what="pointer", asset=label)
            if data is None:
                return None
            record = self._codec.decode(data, what="pointer", path=pointer, asset=label)
        except LineageStoreError:
            return None
        entry, head, text = record.get("entry"), record.get("head"), record.get("record")
        if not (isinstance(entry, str) and ENTRY.fullmatch(entry) and isinstance(text, str)):
            return None
        if head != sha256_bytes(text.encode()):
            return None
        return entry, text.encode()

    def _restore_head_copy(
        self, asset_path: Sequence[str], newest_name: str | None, newest_data: bytes | None
    ) -> tuple[str, bytes, PointerMove] | None:
        """Copy into history the entry CURRENT holds when a move stopped before copying it."""
        head = self.pointer_head(asset_path)
        if head is None:
            return None
        name, data = head
        expected = (
            successor_entry(newest_name, sha256_bytes(newest_data))
            if newest_name is not None and newest_data is not None
            else None
        )
        if newest_name is not None and name != expected:
            return None  # not the missing successor: `current_version` reports the state
        history = self.asset_dir(asset_path) / HISTORY
        try:
            move = self._move_of(asset_path, data, history / name)
        except LineageStoreError:
            return None
        if move.prev_entry != self._link(newest_name, newest_data):
            return None
        self._write_entry(history, name, data)
        return name, data, move

    def _previous_for_move(
        self, asset_path: Sequence[str], newest: PointerMove | None
    ) -> tuple[str | None, list[str]]:
        """The version a move replaces, and notes on damage found while deciding it."""
        try:
            current = self.current_version(asset_path)
        except LineageStoreError as exc:
            fallback = newest.version if newest is not None else None
            source = "the newest history entry" if fallback else "nothing (no readable history)"
            return fallback, [f"CURRENT was unreadable ({exc}); previous taken from {source}"]
        if current is None and newest is not None:
            return newest.version, [
                "CURRENT was missing; previous taken from the newest history entry"
            ]
        return current, []

    def _newest_move(
        self, asset_path: Sequence[str]
    ) -> tuple[str | None, bytes | None, PointerMove | None, list[str]]:
        """(name, bytes, entry, notes) of the newest history entry; None parts if unreadable."""
        history = self.asset_dir(asset_path) / HISTORY
        try:
            names = self.names(history)
        except FileNotFoundError:
            return None, None, None, []
        # Entry names sort by time; temporary files start with "." and sort first. Only a
        # stray name of another shape makes the (slower) full filter necessary.
        newest = max(names, default=None)
        if newest is not None and not ENTRY.fullmatch(newest):
            newest = max((n for n in names if ENTRY.fullmatch(n)), default=None)
        if newest is None:
            return None, None, None, []
        data = None
        try:
            data, move = self.read_entry(asset_path, history / newest)
            return newest, data, move, []
        except LineageStoreError as exc:
            return newest, data, None, [f"newest history entry was unreadable ({exc})"]

    @contextmanager
    def _pointer_lock(self, asset_path: Sequence[str]) -> Iterator[None]:
        folder = self.asset_dir(asset_path)
        label = asset_label(asset_path)
        if self._local:
            with file_lock(Path(folder.path) / LOCK, label):
                yield
        else:
            # S3 can overwrite a stale lock conditionally (If-Match), other stores cannot.
            overwrite = self.root.protocol in _S3_PROTOCOLS
            with object_lock(folder / LOCK, label, conditional_overwrite=overwrite):
                yield

    # -- reading ---------------------------------------------------------------------------
    def current_version(self, asset_path: Sequence[str]) -> str | None:
        """The version CURRENT names, None if the asset was never made current.

        The history entry CURRENT holds is checked (its hash, signature and version), and one
        lookup checks that no entry follows it: an older pointer put back is an IntegrityError.
        History is not listed.
        """
        label = asset_label(validate_asset_path(asset_path))
        pointer = self.asset_dir(asset_path) / CURRENT
        for _ in range(3):
            try:
                data = self._read_optional(pointer, what="pointer", asset=label)
                if data is None:
                    return None
                record = self._codec.decode(data, what="pointer", path=pointer, asset=label)
            except StoreDamageError as exc:
                raise StoreDamageError(
                    f"{exc}; a rollback or re-materialization repairs it", asset=label, path=pointer
                ) from None
            version = record.get("version")
            if not isinstance(version, str) or not VERSION.fullmatch(version):
                raise StoreDamageError(
                    f"{label}: pointer {pointer} names no valid version ({version!r}); a "
                    "rollback or re-materialization repairs it",
                    asset=label,
                    path=pointer,
                )
            owner = record.get("asset")
            if owner is not None and owner != label:
                raise IntegrityError(
                    f"{label}: pointer {pointer} belongs to {owner}; refusing it",
                    asset=label,
                    path=pointer,
                )
            successor = self._check_head(asset_path, record, version, pointer)
            if successor is None:
                return version
            # A move replaces CURRENT before it writes the next entry: a pointer that changed
            # since it was read was moved concurrently; read it again.
            if self._read_optional(pointer, what="pointer", asset=label) == data:
                raise IntegrityError(
                    f"{label}: pointer {pointer} names history entry {record.get('entry')}, but "
                    f"{successor} follows it: an older pointer was put back (replayed); refusing "
                    "it (a rollback or re-materialization repairs it)",
                    asset=label,
                    path=pointer,
                )
        raise StoreDamageError(
            f"{label}: pointer {pointer} kept changing while it was read", asset=label, path=pointer
        )

    def _check_head(
        self, asset_path: Sequence[str], record: dict[str, Any], version: str, pointer
    ) -> str | None:
        """Check the history entry a pointer names; the name of an entry after it, if one exists.

        Raises:
            IntegrityError: the entry the pointer holds does not hash to its head, moved to
                another version, or differs from its copy in history.
        """
        label = asset_label(asset_path)
        history = self.asset_dir(asset_path) / HISTORY
        entry, head = record.get("entry"), record.get("head")
        if entry is None and head is None:
            return None  # a pointer from before pointers named their history entry
        if not isinstance(entry, str) or not ENTRY.fullmatch(entry):
            raise StoreDamageError(
                f"{label}: pointer {pointer} names no valid history entry ({entry!r}); a "
                "rollback or re-materialization repairs it",
                asset=label,
                path=pointer,
            )
        if head is None:
            # A pointer from before the chain: nothing chained may follow the entry it names.
            data = self._read_optional(history / entry, what="history entry", asset=label)
            if data is None:
                return None
        else:
            text = record.get("record")
            if not isinstance(head, str) or not DIGEST.fullmatch(head) or not isinstance(text, str):
                raise StoreDamageError(
                    f"{label}: pointer {pointer} has a malformed head; a rollback or "
                    "re-materialization repairs it",
                    asset=label,
                    path=pointer,
                )
            data = text.encode()
            if sha256_bytes(data) != head:
                raise IntegrityError(
                    f"{label}: pointer {pointer} holds a history entry that does not hash to its "
                    "head (edited); refusing it",
                    asset=label,
                    path=pointer,
                )
            move = self._move_of(asset_path, data, history / entry)
            if move.version != version:
                raise IntegrityError(
                    f"{label}: pointer {pointer} names {version} but its history entry {entry} "
                    f"moved to {move.version} (edited); refusing it",
                    asset=label,
                    path=pointer,
                )
            copy = self._read_optional(history / entry, what="history entry", asset=label)
            if copy is not None and copy != data:
                raise IntegrityError(
                    f"{label}: history entry {history / entry} differs from the entry pointer "
                    f"{pointer} holds (edited); refusing it",
                    asset=label,
                    path=history / entry,
                )
        successor = successor_entry(entry, sha256_bytes(data))
        return successor if (history / successor).exists() else None

    def current_or_recorded(self, asset_path: Sequence[str]) -> str | None:
        """CURRENT's version; if CURRENT is damaged, the version its newest history entry set.

        For repairs only (a rollback away from a damaged pointer): readers of values use
        `current_version`, which refuses a damaged pointer.
        """
        try:
            return self.current_version(asset_path)
        except LineageStoreError:
            _, _, newest, _ = self._newest_move(asset_path)
            if newest is None:
                raise
            return newest.version

    def require_current(self, asset_path: Sequence[str]) -> str:
        version = self.current_version(asset_path)
        if version is None:
            raise LineageStoreError(
                f"{'/'.join(asset_path)} has no stored version yet; materialize it first"
            )
        return version

    def read_manifest(self, asset_path: Sequence[str], version: str) -> Manifest:
        manifest = self.manifest_or_none(asset_path, version)
        if manifest is None:
            path = self.version_dir(asset_path, version) / MANIFEST
            label = asset_label(asset_path)
            raise LineageStoreError(
                f"{label}@{version}: version does not exist in the store (no {path})",
                asset=label,
                version=version,
                path=path,
            )
        return manifest

    def manifest_or_none(self, asset_path: Sequence[str], version: str) -> Manifest | None:
        """A version's verified manifest, None if it has none (absent or incomplete)."""
        label = asset_label(validate_asset_path(asset_path))
        path = self.version_dir(asset_path, version) / MANIFEST
        data = self._read_optional(path, what="manifest", asset=label, version=version)
        if data is None:
            return None
        record = self._codec.decode(data, what="manifest", path=path, asset=label, version=version)
        return checked_manifest(record, asset_path, version, path)

    def _read_unverified(self, asset_path, version) -> tuple[Manifest, dict[str, bytes]]:
        manifest = self.read_manifest(asset_path, version)
        folder = self.version_dir(asset_path, version)
        files = {}
        for name in manifest.files:
            path = folder / name
            data = self._read_optional(
                path, what="payload file", asset=asset_label(asset_path), version=version
            )
            if data is None:
                raise StoreDamageError(
                    f"{asset_label(asset_path)}@{version}: payload file {path} is missing",
                    asset=asset_label(asset_path),
                    version=version,
                    path=path,
                )
            files[name] = data
        return manifest, files

    def _verify(self, asset_path, manifest: Manifest, files: Mapping[str, bytes]) -> None:
        for name, expected in manifest.files.items():
            if sha256_bytes(files[name]) != expected:
                raise self.checksum_error(asset_path, manifest.version, name)

    def checksum_error(self, asset_path, version: str, name: str) -> IntegrityError:
        """The error for payload file `name` of a version that does not match its checksum."""
        path = self.version_dir(asset_path, version) / name
        return IntegrityError(
            f"{asset_label(asset_path)}@{version}: {path} does not match its checksum; refusing to "
            "load it",
            asset=asset_label(asset_path),
            version=version,
            path=path,
        )

    def versions(self, asset_path: Sequence[str]) -> list[Manifest]:
        """All complete versions of an asset, oldest first (a damaged one is an error)."""
        folder = self.asset_dir(asset_path) / VERSIONS
        try:
            names = self.names(folder)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if VERSION.fullmatch(name):
                manifest = self.manifest_or_none(asset_path, name)
                if manifest is not None:
                    found.append(manifest)
        return sorted(found, key=lambda m: m.created_at)

    def history(self, asset_path: Sequence[str]) -> list[PointerMove]:
        """Every pointer move of an asset, oldest first."""
        return list(reversed(list(self.history_newest_first(asset_path))))

    def history_newest_first(self, asset_path: Sequence[str]) -> Iterator[PointerMove]:
        """Pointer moves, newest first, read lazily (callers usually need only a few).

        Each link of the hash chain is checked as it is read: an entry deleted, edited or
        inserted between two chained entries is an IntegrityError.
        """
        label = asset_label(asset_path)
        folder = self.asset_dir(asset_path) / HISTORY
        try:
            names = sorted((n for n in self.names(folder) if ENTRY.fullmatch(n)), reverse=True)
        except FileNotFoundError:
            names = []
        expected: str | None = None  # the hash the next (older) entry must have
        head = self.pointer_head(asset_path)
        if head is not None and (not names or head[0] > names[0]):
            # A move stopped before copying its entry into history: CURRENT holds it.
            move = self._move_of(asset_path, head[1], folder / head[0])
            expected = move.prev_entry
            yield move
        for name in names:
            path = folder / name
            data, move = self.read_entry(asset_path, path)
            if expected is not None and (expected == "" or sha256_bytes(data) != expected):
                raise IntegrityError(
                    f"{label}: history chain broken at {path}: the entry after it records "
                    "another hash (an entry was deleted, edited or inserted); refusing it",
                    asset=label,
                    path=path,
                )
            expected = move.prev_entry
            yield move

    def read_move(self, asset_path: Sequence[str], path) -> PointerMove:
        """One history entry, verified (signature, versions, owner)."""
        return self.read_entry(asset_path, path)[1]

    def read_entry(self, asset_path: Sequence[str], path) -> tuple[bytes, PointerMove]:
        """A history entry's stored bytes (what the chain hashes) and the verified entry."""
        label = asset_label(asset_path)
        data = self._read_optional(path, what="history entry", asset=label)
        if data is None:
            raise StoreDamageError(
                f"{label}: history entry {path} disappeared", asset=label, path=path
            )
        return data, self._move_of(asset_path, data, path)

    def _move_of(self, asset_path: Sequence[str], data: bytes, path) -> PointerMove:
        label = asset_label(asset_path)
        record = self._codec.decode(data, what="history entry", path=path, asset=label)
        return checked_move(record, asset_path, path)

    def has_version(self, asset_path: Sequence[str], version: str) -> bool:
        return (self.version_dir(asset_path, version) / MANIFEST).exists()

    def read_value(self, asset_path: Sequence[str], version: str) -> Any:
        """Read and decode a version; its checksums are verified before it is returned.

        Parquet and JSON are decoded while the checksum is computed on another thread (both
        release the GIL); their decoders run no stored code, and a mismatch still refuses the
        value (and is what gets reported when the damaged bytes also fail to decode). Models
        are verified before they are decoded at all.
        """
        where = f"{'/'.join(asset_path)}@{version}"
        manifest, files = self._read_unverified(asset_path, version)
        if manifest.kind not in PARALLEL_VERIFY_KINDS:
            self._verify(asset_path, manifest, files)
            return self._decoded(asset_path, manifest, files, where)
        with ThreadPoolExecutor(max_workers=1) as pool:
            verified = pool.submit(self._verify, asset_path, manifest, files)
            try:
                value = self._decoded(asset_path, manifest, files, where)
            except BaseException:
                verified.result()  # a checksum mismatch explains the failure: it wins
                raise
            verified.result()  # raises IntegrityError: the decoded value is discarded
        return value

    def _decoded(self, asset_path, manifest: Manifest, files: dict[str, bytes], where: str) -> Any:
        """`deserialize`, with decoding failures turned into one-line store errors."""
        try:
            return deserialize(manifest.kind, files, where=where, recorded=manifest.metadata)
        except (LineageStoreError, UnsupportedValueError):
            raise
        except Exception as exc:
            folder = self.version_dir(asset_path, manifest.version)
            paths = ", ".join(str(folder / name) for name in sorted(manifest.files))
            raise StoreDamageError(
                f"{where}: {paths} cannot be decoded as {manifest.kind} ({first_line(exc)})",
                asset=asset_label(asset_path),
                version=manifest.version,
                path=folder,
            ) from None

    # -- verification ----------------------------------------------------------------------
    def asset_paths(self, prefix: Sequence[str] = ()) -> list[tuple[str, ...]]:
        """Every stored asset path under `prefix` (the whole store by default)."""
        from unified_ai.io import verify

        return verify.asset_paths(self, prefix)

    def verify(self, prefix: Sequence[str] = (), *, deep: bool = False) -> StoreReport:
        """Check every version, checksum, pointer and history chain (see `unified_ai.io.verify`).

        With `deep`, also decode every version as a reader does and report those it refuses.
        """
        from unified_ai.io import verify

        return verify.verify(self, prefix, deep=deep)
