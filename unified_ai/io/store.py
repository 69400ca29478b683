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

This module is pure: no Dagster import. The IO manager in `unified_ai.io.manager` sits on top.
"""

import hashlib
import hmac
import io
import json
import os
import random
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import MISSING, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from unified_ai.io.formats import (
    PARALLEL_VERIFY_KINDS,
    Payload,
    UnsupportedValueError,
    describe,
    deserialize,
    payload_bytes,
)

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
VERSIONS = "versions"
HISTORY = "history"
LOCK = ".lock"
STAGING_PREFIX = ".staging-"
SIGNATURE = "signature"
#: A staging folder untouched for this long was left by a writer that died.
STALE_STAGING_SECONDS = 15 * 60
#: How long an object-store pointer lock is honoured before a waiting writer may take it over
#: (a pointer move takes milliseconds; this only matters when a writer died holding it).
LOCK_LEASE_SECONDS = 60.0
#: How long a writer waits for an asset's pointer lock before giving up with an error.
LOCK_TIMEOUT_SECONDS = 120.0

# Identifiers are matched whole (fullmatch): `$` would also accept a trailing newline.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_VERSION = re.compile(r"[0-9a-f]{16}")
_ENTRY = re.compile(r"([0-9]{20})-[0-9a-f]{8}\.json")
_SIGNATURE_SCHEME = "hmac-sha256:"
_CACHING_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
_S3_PROTOCOLS = {"s3", "s3a"}


class LineageStoreError(RuntimeError):
    """A store operation was refused; the message names the asset, version, path and reason.

    Attributes:
        asset: The asset path ("project/asset"), when known.
        version: The version concerned, when known.
        path: The stored file or folder concerned, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        asset: str | None = None,
        version: str | None = None,
        path: Any = None,
    ):
        super().__init__(message)
        self.asset = asset
        self.version = version
        self.path = str(path) if path is not None else None


class IntegrityError(LineageStoreError):
    """Stored bytes or records do not match their checksum, version id or signature."""


class StoreDamageError(LineageStoreError):
    """A stored file is missing, unreadable or cannot be decoded."""


def _label(asset_path: Sequence[str]) -> str:
    return "/".join(asset_path)


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message: errors stay one line."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def validate_asset_path(asset_path: Sequence[str]) -> tuple[str, ...]:
    """Return `asset_path` as a tuple, refusing empty, absolute or `..` segments."""
    parts = tuple(asset_path)
    if not parts:
        raise LineageStoreError("asset path is empty")
    for part in parts:
        if not isinstance(part, str) or not _SEGMENT.fullmatch(part) or part in {".", ".."}:
            raise LineageStoreError(f"asset path segment {part!r} is not allowed")
    return parts


def validate_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise LineageStoreError(f"version id {version!r} is not a 16-digit hex content hash")
    return version


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def content_version(files: Mapping[str, bytes]) -> str:
    """Content hash of a payload: stable over file names and bytes, 16 hex digits."""
    return version_of_checksums({name: sha256_bytes(data) for name, data in files.items()})


def version_of_checksums(checksums: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(checksums):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(checksums[name].encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Manifest:
    """What travels with every stored version."""

    asset_key: list[str]
    version: str
    kind: str
    files: dict[str, str]
    created_at: str
    run_id: str | None = None
    code_version: str | None = None
    policy_version: str | None = None
    upstream: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2, sort_keys=True, default=str).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Manifest":
        raw = json.loads(data)
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


@dataclass(frozen=True)
class PointerMove:
    """One entry of an asset's append-only history."""

    asset_key: list[str]
    version: str
    previous: str | None
    action: str
    at: str
    run_id: str | None = None
    actor: str | None = None
    reason: str | None = None
    policy_version: str | None = None


@dataclass(frozen=True)
class Problem:
    """One piece of damage found by `LineageStore.verify`."""

    asset: str
    version: str | None
    path: str
    problem: str


@dataclass
class StoreReport:
    """What `LineageStore.verify` checked, found and cleaned up."""

    assets: int = 0
    versions: int = 0
    problems: list[Problem] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)


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
        self._key: bytes | None = signing_key or None

    def __repr__(self) -> str:  # never shows the key
        return f"LineageStore({str(self.root)!r}, signed={self._key is not None})"

    @property
    def signed(self) -> bool:
        return self._key is not None

    # -- paths -----------------------------------------------------------------------------
    def asset_dir(self, asset_path: Sequence[str]):
        return self.root.joinpath(*validate_asset_path(asset_path))

    def version_dir(self, asset_path: Sequence[str], version: str):
        return self.asset_dir(asset_path) / VERSIONS / validate_version(version)

    # -- signed records --------------------------------------------------------------------
    def _signature(self, record: Mapping[str, Any]) -> str:
        assert self._key is not None
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        return _SIGNATURE_SCHEME + hmac.new(self._key, canonical, hashlib.sha256).hexdigest()

    def _encode(self, record: Mapping[str, Any], indent: int | None = None) -> bytes:
        """JSON bytes of a record, signed when a key is set."""
        # Normalised through JSON first, so the signature covers exactly what a reader parses.
        plain = json.loads(json.dumps(dict(record), default=str))
        plain.pop(SIGNATURE, None)
        if self._key is not None:
            plain[SIGNATURE] = self._signature(plain)
        return json.dumps(plain, indent=indent, sort_keys=True).encode()

    def _decode(
        self, data: bytes, *, what: str, path: Any, asset: str, version: str | None = None
    ) -> dict[str, Any]:
        """Parse a stored record and check its signature when a key is set."""
        where = f"{asset}@{version}" if version else asset
        context = {"asset": asset, "version": version, "path": path}
        try:
            record = json.loads(data)
        except ValueError as exc:
            raise StoreDamageError(
                f"{where}: {what} {path} is not valid JSON ({_reason(exc)})", **context
            ) from None
        if not isinstance(record, dict):
            raise StoreDamageError(f"{where}: {what} {path} is not a JSON object", **context)
        signature = record.pop(SIGNATURE, None)
        if self._key is not None:
            if signature is None:
                raise IntegrityError(
                    f"{where}: {what} {path} is not signed, but a signing key is configured; "
                    "refusing it",
                    **context,
                )
            if not isinstance(signature, str) or not hmac.compare_digest(
                signature, self._signature(record)
            ):
                raise IntegrityError(
                    f"{where}: {what} {path} failed verification (signature does not match: "
                    "edited, or signed with another key); refusing it",
                    **context,
                )
        return record

    # -- raw io ----------------------------------------------------------------------------
    def names(self, folder) -> list[str]:
        """Entry names of a folder, without building a path object per entry."""
        if self._local:
            return os.listdir(folder.path)
        return [
            entry.rstrip("/").rsplit("/", 1)[-1]
            for entry in folder.fs.ls(folder.path, detail=False)
        ]

    def _entries(self, folder) -> list[tuple[str, bool]]:
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
                f"{where}: {what} {path} cannot be read ({_reason(exc)})",
                asset=asset,
                version=version,
                path=path,
            ) from None

    def _replace(self, path, data: bytes) -> None:
        if self._local:
            final = Path(path.path)
            tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}")
            _write_synced(tmp, data)
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
            if name == MANIFEST or not isinstance(name, str) or not _SEGMENT.fullmatch(name):
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
        return self._encode(manifest.__dict__, indent=2)

    def _intact_version(self, asset_path: Sequence[str], version: str) -> Manifest | None:
        """The manifest of an existing, readable version, or None if it must be (re)written."""
        try:
            manifest = self._manifest_or_none(asset_path, version)
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
        _clean_stale_staging(versions)
        staging = versions / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            checksums = {
                name: _write_synced(staging / name, payload) for name, payload in files.items()
            }
            manifest = manifest_for(checksums)
            existing = self._intact_version(asset_path, manifest.version)
            if existing is not None:
                return existing
            _write_synced(staging / MANIFEST, self._manifest_bytes(manifest))
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
                    _discard(final)
            raise StoreDamageError(
                f"{_label(asset_path)}@{manifest.version}: the damaged version folder {final} "
                "could not be replaced",
                asset=_label(asset_path),
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
        label = _label(validate_asset_path(asset_path))
        validate_version(version)
        self.read_manifest(asset_path, version)  # exists, and is intact
        folder = self.asset_dir(asset_path)
        history = folder / HISTORY
        with self._pointer_lock(asset_path):
            newest_name, newest, notes = self._newest_move(asset_path)
            previous, pointer_notes = self._previous_for_move(asset_path, newest)
            notes += pointer_notes
            if not pointer_notes and newest is not None and previous != newest.version:
                # The last move was interrupted between its history entry and the pointer
                # (or CURRENT was replaced by hand): record that, so the chain stays whole.
                newest_name = self._append_move(
                    history,
                    newest_name,
                    PointerMove(
                        asset_key=list(asset_path),
                        version=previous,
                        previous=newest.version,
                        action="repair",
                        at=utc_now(),
                        reason=f"CURRENT named {previous} while the newest history entry "
                        f"moved to {newest.version}; recorded before the next move",
                    ),
                )
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
            )
            entry = self._append_move(history, newest_name, move)
            pointer = {"asset": label, "version": version, "at": move.at, "entry": entry}
            self._replace(folder / CURRENT, self._encode(pointer))
        return move

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
    ) -> tuple[str | None, PointerMove | None, list[str]]:
        """(name, entry, notes) of the newest history entry; the entry is None if unreadable."""
        history = self.asset_dir(asset_path) / HISTORY
        try:
            names = self.names(history)
        except FileNotFoundError:
            return None, None, []
        # Entry names sort by time; temporary files start with "." and sort first. Only a
        # stray name of another shape makes the (slower) full filter necessary.
        newest = max(names, default=None)
        if newest is not None and not _ENTRY.fullmatch(newest):
            newest = max((n for n in names if _ENTRY.fullmatch(n)), default=None)
        if newest is None:
            return None, None, []
        try:
            return newest, self._read_move(asset_path, history / newest), []
        except LineageStoreError as exc:
            return newest, None, [f"newest history entry was unreadable ({exc})"]

    def _append_move(self, history, newest_name: str | None, move: PointerMove) -> str:
        """Write one history entry named after (and sorting after) the newest; return its name."""
        stamp = time.time_ns()
        if newest_name is not None:
            # Names order the chain: never sort before the newest, even if the clock went back.
            stamp = max(stamp, int(newest_name[:20]) + 1)
        name = f"{stamp:020d}-{uuid.uuid4().hex[:8]}.json"
        if self._local:
            Path(history.path).mkdir(parents=True, exist_ok=True)
        self._replace(history / name, self._encode(move.__dict__))
        return name

    @contextmanager
    def _pointer_lock(self, asset_path: Sequence[str]) -> Iterator[None]:
        folder = self.asset_dir(asset_path)
        label = _label(asset_path)
        if self._local:
            with _file_lock(Path(folder.path) / LOCK, label):
                yield
        else:
            with self._object_lock(folder / LOCK, label):
                yield

    @contextmanager
    def _object_lock(self, lock, label: str) -> Iterator[None]:
        """A lock object created with a conditional put (S3 `If-None-Match: *`).

        A holder that died is taken over after `LOCK_LEASE_SECONDS`; on S3 the takeover is a
        conditional overwrite (`If-Match` on the stale lock's ETag), so only one waiter wins.
        """
        fs, key = lock.fs, lock.path
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        delay = 0.005
        while True:
            body = json.dumps({"owner": owner, "expires": time.time() + LOCK_LEASE_SECONDS})
            try:
                fs.pipe_file(key, body.encode(), mode="create")
                break
            except FileExistsError:
                if self._take_over_stale_lock(fs, key, body.encode()):
                    break
            if time.monotonic() > deadline:
                raise LineageStoreError(
                    f"{label}: the pointer lock {lock} has been held by another writer for over "
                    f"{LOCK_TIMEOUT_SECONDS:.0f} s; try again",
                    asset=label,
                    path=lock,
                )
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.2)
        try:
            yield
        finally:
            try:
                held = json.loads(fs.cat_file(key))
                if held.get("owner") == owner:
                    fs.rm_file(key)
            except (FileNotFoundError, ValueError):
                pass  # released or taken over already: nothing of ours to remove

    def _take_over_stale_lock(self, fs, key: str, body: bytes) -> bool:
        try:
            etag = fs.info(key).get("ETag")
            held = json.loads(fs.cat_file(key))
            expires = float(held["expires"])
        except FileNotFoundError:
            return False  # just released: the next conditional create may win
        except (ValueError, KeyError, TypeError):
            expires = 0.0  # an unreadable lock object protects nothing
        if expires > time.time():
            return False
        if self.root.protocol in _S3_PROTOCOLS and etag:
            try:
                fs.pipe_file(key, body, IfMatch=etag)
                return True
            except OSError:
                return False  # another waiter took it over first
        # Without a conditional overwrite: delete it and race for the conditional create.
        with suppress(FileNotFoundError):
            fs.rm_file(key)
        return False

    # -- reading ---------------------------------------------------------------------------
    def current_version(self, asset_path: Sequence[str]) -> str | None:
        """The version CURRENT names, None if the asset was never made current."""
        label = _label(validate_asset_path(asset_path))
        pointer = self.asset_dir(asset_path) / CURRENT
        try:
            data = self._read_optional(pointer, what="pointer", asset=label)
            if data is None:
                return None
            record = self._decode(data, what="pointer", path=pointer, asset=label)
        except StoreDamageError as exc:
            raise StoreDamageError(
                f"{exc}; a rollback or re-materialization repairs it", asset=label, path=pointer
            ) from None
        version = record.get("version")
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            raise StoreDamageError(
                f"{label}: pointer {pointer} names no valid version ({version!r}); a rollback or "
                "re-materialization repairs it",
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
        return version

    def current_or_recorded(self, asset_path: Sequence[str]) -> str | None:
        """CURRENT's version; if CURRENT is damaged, the version its newest history entry set.

        For repairs only (a rollback away from a damaged pointer): readers of values use
        `current_version`, which refuses a damaged pointer.
        """
        try:
            return self.current_version(asset_path)
        except LineageStoreError:
            _, newest, _ = self._newest_move(asset_path)
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
        manifest = self._manifest_or_none(asset_path, version)
        if manifest is None:
            path = self.version_dir(asset_path, version) / MANIFEST
            raise LineageStoreError(
                f"{_label(asset_path)}@{version}: version does not exist in the store (no {path})",
                asset=_label(asset_path),
                version=version,
                path=path,
            )
        return manifest

    def _manifest_or_none(self, asset_path: Sequence[str], version: str) -> Manifest | None:
        """A version's verified manifest, None if it has none (absent or incomplete)."""
        label = _label(validate_asset_path(asset_path))
        path = self.version_dir(asset_path, version) / MANIFEST
        data = self._read_optional(path, what="manifest", asset=label, version=version)
        if data is None:
            return None
        record = self._decode(data, what="manifest", path=path, asset=label, version=version)
        return _checked_manifest(record, asset_path, version, path)

    def read_files(self, asset_path: Sequence[str], version: str) -> tuple[Manifest, dict]:
        """Read a version's payload, verifying every file against its recorded checksum."""
        manifest, files = self._read_unverified(asset_path, version)
        self._verify(asset_path, manifest, files)
        return manifest, files

    def _read_unverified(self, asset_path, version) -> tuple[Manifest, dict[str, bytes]]:
        manifest = self.read_manifest(asset_path, version)
        folder = self.version_dir(asset_path, version)
        files = {}
        for name in manifest.files:
            path = folder / name
            data = self._read_optional(
                path, what="payload file", asset=_label(asset_path), version=version
            )
            if data is None:
                raise StoreDamageError(
                    f"{_label(asset_path)}@{version}: payload file {path} is missing",
                    asset=_label(asset_path),
                    version=version,
                    path=path,
                )
            files[name] = data
        return manifest, files

    def _verify(self, asset_path, manifest: Manifest, files: Mapping[str, bytes]) -> None:
        for name, expected in manifest.files.items():
            if sha256_bytes(files[name]) != expected:
                self._checksum_mismatch(asset_path, manifest.version, name)

    def _checksum_mismatch(self, asset_path, version: str, name: str):
        path = self.version_dir(asset_path, version) / name
        raise IntegrityError(
            f"{_label(asset_path)}@{version}: {path} does not match its checksum; refusing to "
            "load it",
            asset=_label(asset_path),
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
            if _VERSION.fullmatch(name):
                manifest = self._manifest_or_none(asset_path, name)
                if manifest is not None:
                    found.append(manifest)
        return sorted(found, key=lambda m: m.created_at)

    def history(self, asset_path: Sequence[str]) -> list[PointerMove]:
        """Every pointer move of an asset, oldest first."""
        return list(reversed(list(self.history_newest_first(asset_path))))

    def history_newest_first(self, asset_path: Sequence[str]) -> Iterator[PointerMove]:
        """Pointer moves, newest first, read lazily (callers usually need only a few)."""
        folder = self.asset_dir(asset_path) / HISTORY
        try:
            names = sorted((n for n in self.names(folder) if _ENTRY.fullmatch(n)), reverse=True)
        except FileNotFoundError:
            return
        for name in names:
            yield self._read_move(asset_path, folder / name)

    def _read_move(self, asset_path: Sequence[str], path) -> PointerMove:
        label = _label(asset_path)
        data = self._read_optional(path, what="history entry", asset=label)
        if data is None:
            raise StoreDamageError(
                f"{label}: history entry {path} disappeared", asset=label, path=path
            )
        record = self._decode(data, what="history entry", path=path, asset=label)
        known = {k: record[k] for k in PointerMove.__dataclass_fields__ if k in record}
        try:
            move = PointerMove(**known)
        except TypeError:
            missing = sorted(set(PointerMove.__dataclass_fields__) - set(record))
            raise StoreDamageError(
                f"{label}: history entry {path} lacks {', '.join(missing)}",
                asset=label,
                path=path,
            ) from None
        for name, value in (("version", move.version), ("previous", move.previous)):
            if (value is not None or name == "version") and not (
                isinstance(value, str) and _VERSION.fullmatch(value)
            ):
                raise StoreDamageError(
                    f"{label}: history entry {path} has an invalid {name} {value!r}",
                    asset=label,
                    path=path,
                )
        if move.asset_key != list(asset_path):
            raise IntegrityError(
                f"{label}: history entry {path} belongs to {move.asset_key!r}; refusing it",
                asset=label,
                path=path,
            )
        return move

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
                f"{where}: {paths} cannot be decoded as {manifest.kind} ({_reason(exc)})",
                asset=_label(asset_path),
                version=manifest.version,
                path=folder,
            ) from None

    # -- verification ----------------------------------------------------------------------
    def asset_paths(self, prefix: Sequence[str] = ()) -> list[tuple[str, ...]]:
        """Every stored asset path under `prefix` (the whole store by default)."""
        start = self.root.joinpath(*validate_asset_path(prefix)) if prefix else self.root
        found: list[tuple[str, ...]] = []

        def walk(folder, parts: tuple[str, ...]) -> None:
            try:
                entries = self._entries(folder)
            except (FileNotFoundError, NotADirectoryError):
                return
            if parts and {name for name, _ in entries} & {VERSIONS, HISTORY, CURRENT}:
                found.append(parts)
            for name, is_dir in sorted(entries):
                if is_dir and name not in (VERSIONS, HISTORY) and _SEGMENT.fullmatch(name):
                    walk(folder / name, (*parts, name))

        walk(start, tuple(prefix))
        return found

    def verify(self, prefix: Sequence[str] = ()) -> StoreReport:
        """Check every version, checksum, pointer and history chain under `prefix`.

        Read-only except for one thing: staging folders left by writers that died (older than
        `STALE_STAGING_SECONDS`) are removed and listed in `cleaned`.
        """
        report = StoreReport()
        for asset_path in self.asset_paths(prefix):
            report.assets += 1
            self._verify_asset(asset_path, report)
        return report

    def _verify_asset(self, asset_path: tuple[str, ...], report: StoreReport) -> None:
        label = _label(asset_path)
        folder = self.asset_dir(asset_path)

        def problem(version: str | None, path: Any, text: str) -> None:
            report.problems.append(Problem(label, version, str(path), text))

        def damage(exc: LineageStoreError, version: str | None = None) -> None:
            problem(exc.version or version, exc.path or folder, str(exc))

        if self._local:
            report.cleaned += _clean_stale_staging(Path(folder.path) / VERSIONS)
        # Versions: manifest, signature, version id and every payload checksum.
        present: set[str] = set()
        intact: set[str] = set()
        try:
            entries = self._entries(folder / VERSIONS)
        except FileNotFoundError:
            entries = []
        for name, _ in sorted(entries):
            path = folder / VERSIONS / name
            if name.startswith(STAGING_PREFIX):
                continue  # a write in progress (stale ones were cleaned above)
            if not _VERSION.fullmatch(name):
                problem(None, path, f"{label}: unexpected entry {path} in the versions folder")
                continue
            report.versions += 1
            present.add(name)
            try:
                manifest = self._manifest_or_none(asset_path, name)
                if manifest is None:
                    problem(
                        name,
                        path / MANIFEST,
                        f"{label}@{name}: {path} has no {MANIFEST} (an interrupted write or a "
                        "deleted manifest); storing the same content again repairs it",
                    )
                    continue
                self._verify_stored_files(asset_path, manifest)
            except LineageStoreError as exc:
                damage(exc, name)
                continue
            intact.add(name)
        # The pointer.
        pointer = folder / CURRENT
        current: str | None = None
        pointer_ok = True
        try:
            current = self.current_version(asset_path)
        except LineageStoreError as exc:
            damage(exc)
            pointer_ok = False
        if current is not None and current not in intact:
            state = "damaged" if current in present else "missing"
            problem(
                current, pointer, f"{label}: {pointer} names version {current}, which is {state}"
            )
        # The history chain.
        history = folder / HISTORY
        try:
            names = sorted(self.names(history))
        except FileNotFoundError:
            names = []
        newest: PointerMove | None = None
        chain_ok = False
        entries_seen = 0
        for name in names:
            path = history / name
            if not _ENTRY.fullmatch(name):
                if not name.startswith("."):
                    problem(None, path, f"{label}: unexpected file {path} in the history folder")
                continue
            entries_seen += 1
            try:
                move = self._read_move(asset_path, path)
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

    def _verify_stored_files(self, asset_path: Sequence[str], manifest: Manifest) -> None:
        """Hash each payload file in chunks (verify never holds a whole payload in memory)."""
        label = _label(asset_path)
        folder = self.version_dir(asset_path, manifest.version)
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
                    f"({_reason(exc)})",
                    asset=label,
                    version=manifest.version,
                    path=path,
                ) from None
            if digest.hexdigest() != expected:
                self._checksum_mismatch(asset_path, manifest.version, name)


def _checked_manifest(
    record: dict[str, Any], asset_path: Sequence[str], version: str, path: Any
) -> Manifest:
    """Build a manifest from a stored record, refusing anything that does not add up."""
    label = _label(asset_path)
    where = f"{label}@{version}"
    context = {"asset": label, "version": version, "path": path}
    known = {k: record[k] for k in Manifest.__dataclass_fields__ if k in record}
    try:
        manifest = Manifest(**known)
    except TypeError:
        missing = sorted(
            name
            for name, spec in Manifest.__dataclass_fields__.items()
            if name not in record and spec.default is MISSING and spec.default_factory is MISSING
        )
        raise StoreDamageError(
            f"{where}: manifest {path} lacks {', '.join(missing)}", **context
        ) from None
    files = manifest.files
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise StoreDamageError(f"{where}: manifest {path} has no valid file list", **context)
    for name in files:
        if name == MANIFEST or not _SEGMENT.fullmatch(name):
            raise IntegrityError(
                f"{where}: manifest {path} lists file name {name!r}, which is not allowed; "
                "refusing it",
                **context,
            )
    if not isinstance(manifest.upstream, dict) or not isinstance(manifest.metadata, dict):
        raise StoreDamageError(f"{where}: manifest {path} has a malformed field", **context)
    if manifest.asset_key != list(asset_path):
        shown = (
            "/".join(map(str, manifest.asset_key))
            if isinstance(manifest.asset_key, list)
            else (repr(manifest.asset_key))
        )
        raise IntegrityError(
            f"{where}: manifest {path} records asset {shown}; refusing it", **context
        )
    computed = version_of_checksums(files)
    if manifest.version != version or computed != version:
        raise IntegrityError(
            f"{where}: manifest {path} checksums hash to version {computed} and it records "
            f"version {manifest.version}, not {version}: the manifest or payload was edited; "
            "refusing it",
            **context,
        )
    return manifest


@contextmanager
def _file_lock(path: Path, label: str) -> Iterator[None]:
    """An exclusive `flock` on `path`: works across processes on one host (see README on NFS)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        delay = 0.001
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LineageStoreError(
                        f"{label}: the pointer lock {path} has been held by another writer for "
                        f"over {LOCK_TIMEOUT_SECONDS:.0f} s; try again",
                        asset=label,
                        path=path,
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
        yield
    finally:
        os.close(handle)  # closing the descriptor releases the lock


def _clean_stale_staging(versions: Path) -> list[str]:
    """Remove staging folders no writer has touched for `STALE_STAGING_SECONDS`."""
    try:
        names = [n for n in os.listdir(versions) if n.startswith(STAGING_PREFIX)]
    except FileNotFoundError:
        return []
    removed = []
    now = time.time()
    for name in names:
        folder = versions / name
        try:
            touched = max(
                [folder.stat().st_mtime, *(child.stat().st_mtime for child in folder.iterdir())]
            )
        except (FileNotFoundError, NotADirectoryError):
            continue  # its writer just published or removed it
        if now - touched < STALE_STAGING_SECONDS:
            continue  # possibly still being written
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(str(folder))
    return removed


def _discard(folder: Path) -> None:
    """Move a damaged version folder out of the way (atomically), then delete it."""
    trash = folder.with_name(f"{STAGING_PREFIX}{uuid.uuid4().hex}-damaged")
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return  # another writer moved it already
    shutil.rmtree(trash, ignore_errors=True)


class _HashingWriter(io.RawIOBase):
    """A binary file that hashes what passes through it on the way to disk."""

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        return self._handle.write(data)


def _write_synced(path: Path, payload: Payload) -> str:
    """Write `payload` durably to `path` and return its sha256."""
    with open(path, "wb") as handle:
        if callable(payload):
            writer = _HashingWriter(handle)
            payload(writer)
            checksum = writer.digest.hexdigest()
        else:
            handle.write(payload)
            checksum = sha256_bytes(payload)
        handle.flush()
        os.fsync(handle.fileno())
    return checksum
