"""The lineage store: immutable, content-addressed versions of every asset value.

Layout under the root (a local folder or any fsspec URL)::

    <asset path>/versions/<version>/<payload files> + manifest.json
    <asset path>/CURRENT                   which version is current (one small JSON object)
    <asset path>/history/<time>-<id>.json  one immutable record per pointer move

A version is visible only once its `manifest.json` exists; locally the whole version folder is
written under a temporary name and renamed into place, on object stores the manifest is the
last object put. The pointer is replaced in one operation (rename locally, one put remotely),
so readers never see a half-written version or pointer. History entries are separate objects,
so concurrent writers never overwrite each other's records.

This module is pure: no Dagster import. The IO manager in `unified_ai.io.manager` sits on top.
"""

import hashlib
import io
import json
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from unified_ai.io.formats import PARALLEL_VERIFY_KINDS, Payload, deserialize, payload_bytes

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_VERSION = re.compile(r"^[0-9a-f]{16}$")
_CACHING_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}


class LineageStoreError(RuntimeError):
    """A store operation was refused; the message names the asset, version and reason."""


class IntegrityError(LineageStoreError):
    """Stored bytes do not match the checksum recorded in their manifest."""


def validate_asset_path(asset_path: Sequence[str]) -> tuple[str, ...]:
    """Return `asset_path` as a tuple, refusing empty, absolute or `..` segments."""
    parts = tuple(asset_path)
    if not parts:
        raise LineageStoreError("asset path is empty")
    for part in parts:
        if not _SEGMENT.match(part) or part in {".", ".."}:
            raise LineageStoreError(f"asset path segment {part!r} is not allowed")
    return parts


def validate_version(version: str) -> str:
    if not _VERSION.match(version):
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


class LineageStore:
    """Versioned, content-addressed storage for asset values on a local folder or fsspec URL."""

    def __init__(
        self, root: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
    ):
        from upath import UPath  # fsspec is only needed once a store is used

        options = dict(storage_options or {})
        if str(root).split("://")[0] in _CACHING_PROTOCOLS:
            # Other processes move pointers and append history: never trust a cached listing.
            options.setdefault("use_listings_cache", False)
        self.root = UPath(root, **options)
        self._local = self.root.protocol in ("", "file", "local")

    # -- paths -----------------------------------------------------------------------------
    def asset_dir(self, asset_path: Sequence[str]):
        return self.root.joinpath(*validate_asset_path(asset_path))

    def version_dir(self, asset_path: Sequence[str], version: str):
        return self.asset_dir(asset_path) / "versions" / validate_version(version)

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
        same version; an existing version is never rewritten.
        """
        validate_asset_path(asset_path)
        for name in files:
            if name == MANIFEST or not _SEGMENT.match(name):
                raise LineageStoreError(f"payload file name {name!r} is not allowed")

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
                metadata=dict(metadata or {}),
            )

        if self._local:
            return self._write_local_version(asset_path, files, manifest_for)
        encoded = {name: payload_bytes(payload) for name, payload in files.items()}
        manifest = manifest_for({name: sha256_bytes(data) for name, data in encoded.items()})
        target = self.version_dir(asset_path, manifest.version)
        if (target / MANIFEST).exists():
            return self.read_manifest(asset_path, manifest.version)
        target.mkdir(parents=True, exist_ok=True)
        for name, data in encoded.items():
            (target / name).write_bytes(data)
        (target / MANIFEST).write_bytes(manifest.to_json())  # last: makes it visible
        return manifest

    def _write_local_version(self, asset_path, files, manifest_for) -> Manifest:
        # Everything is written under a staging name first; the rename publishes it whole.
        versions = Path(self.asset_dir(asset_path).path) / "versions"
        versions.mkdir(parents=True, exist_ok=True)
        staging = versions / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            checksums = {
                name: _write_synced(staging / name, payload) for name, payload in files.items()
            }
            manifest = manifest_for(checksums)
            final = versions / manifest.version
            if (final / MANIFEST).exists():
                return self.read_manifest(asset_path, manifest.version)
            _write_synced(staging / MANIFEST, manifest.to_json())
            try:
                os.rename(staging, final)
            except OSError:
                # Another writer stored the same content first; theirs is identical.
                if not (final / MANIFEST).exists():
                    raise
                return self.read_manifest(asset_path, manifest.version)
            return manifest
        finally:
            if staging.exists():
                for child in staging.iterdir():
                    child.unlink()
                staging.rmdir()

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
        """Point `asset_path` at an existing `version` and append the move to its history."""
        if not self.has_version(asset_path, version):
            raise LineageStoreError(
                f"{'/'.join(asset_path)}: version {version} does not exist in the store"
            )
        move = PointerMove(
            asset_key=list(asset_path),
            version=version,
            previous=self.current_version(asset_path),
            action=action,
            at=utc_now(),
            run_id=run_id,
            actor=actor,
            reason=reason,
            policy_version=policy_version,
        )
        history = self.asset_dir(asset_path) / "history"
        history.mkdir(parents=True, exist_ok=True)
        entry = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        (history / entry).write_bytes(json.dumps(move.__dict__, sort_keys=True).encode())
        pointer = json.dumps({"version": version, "at": move.at}).encode()
        self._replace(self.asset_dir(asset_path) / CURRENT, pointer)
        return move

    def names(self, folder) -> list[str]:
        """Entry names of a folder, without building a path object per entry."""
        if self._local:
            return os.listdir(folder.path)
        return [
            entry.rstrip("/").rsplit("/", 1)[-1]
            for entry in folder.fs.ls(folder.path, detail=False)
        ]

    def _read(self, path) -> bytes:
        if self._local:
            return path.read_bytes()
        # One GET: a buffered, Etag-checked read fails if another writer replaces the object
        # (the pointer) between requests.
        return path.fs.cat_file(path.path)

    def _replace(self, path, data: bytes) -> None:
        if self._local:
            final = Path(path.path)
            tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}")
            _write_synced(tmp, data)
            os.replace(tmp, final)
        else:
            path.write_bytes(data)  # a single put is atomic on object stores

    # -- reading ---------------------------------------------------------------------------
    def current_version(self, asset_path: Sequence[str]) -> str | None:
        pointer = self.asset_dir(asset_path) / CURRENT
        if not pointer.exists():
            return None
        return validate_version(json.loads(self._read(pointer))["version"])

    def require_current(self, asset_path: Sequence[str]) -> str:
        version = self.current_version(asset_path)
        if version is None:
            raise LineageStoreError(
                f"{'/'.join(asset_path)} has no stored version yet; materialize it first"
            )
        return version

    def read_manifest(self, asset_path: Sequence[str], version: str) -> Manifest:
        path = self.version_dir(asset_path, version) / MANIFEST
        if not path.exists():
            raise LineageStoreError(
                f"{'/'.join(asset_path)}: version {version} does not exist in the store"
            )
        return Manifest.from_json(self._read(path))

    def read_files(self, asset_path: Sequence[str], version: str) -> tuple[Manifest, dict]:
        """Read a version's payload, verifying every file against its recorded checksum."""
        manifest, files = self._read_unverified(asset_path, version)
        self._verify(asset_path, manifest, files)
        return manifest, files

    def _read_unverified(self, asset_path, version) -> tuple[Manifest, dict[str, bytes]]:
        manifest = self.read_manifest(asset_path, version)
        folder = self.version_dir(asset_path, version)
        return manifest, {name: self._read(folder / name) for name in manifest.files}

    def _verify(self, asset_path, manifest: Manifest, files: Mapping[str, bytes]) -> None:
        for name, expected in manifest.files.items():
            if sha256_bytes(files[name]) != expected:
                path = self.version_dir(asset_path, manifest.version) / name
                raise IntegrityError(
                    f"{'/'.join(asset_path)}@{manifest.version}: {path} does not match its "
                    "checksum; refusing to load it"
                )

    def versions(self, asset_path: Sequence[str]) -> list[Manifest]:
        """All complete versions of an asset, oldest first."""
        folder = self.asset_dir(asset_path) / "versions"
        if not folder.exists():
            return []
        found = []
        for name in self.names(folder):
            if _VERSION.match(name) and (folder / name / MANIFEST).exists():
                found.append(Manifest.from_json(self._read(folder / name / MANIFEST)))
        return sorted(found, key=lambda m: m.created_at)

    def history(self, asset_path: Sequence[str]) -> list[PointerMove]:
        """Every pointer move of an asset, oldest first."""
        return list(reversed(list(self.history_newest_first(asset_path))))

    def history_newest_first(self, asset_path: Sequence[str]) -> Iterator[PointerMove]:
        """Pointer moves, newest first, read lazily (callers usually need only a few)."""
        folder = self.asset_dir(asset_path) / "history"
        if not folder.exists():
            return
        names = sorted((n for n in self.names(folder) if n.endswith(".json")), reverse=True)
        for name in names:
            yield PointerMove(**json.loads(self._read(folder / name)))

    def has_version(self, asset_path: Sequence[str], version: str) -> bool:
        return (self.version_dir(asset_path, version) / MANIFEST).exists()

    def read_value(self, asset_path: Sequence[str], version: str) -> Any:
        """Read and decode a version; its checksums are verified before it is returned.

        Parquet and JSON are decoded while the checksum is computed on another thread (both
        release the GIL); their decoders run no stored code, and a mismatch still refuses the
        value. Models are verified before they are decoded at all.
        """
        where = f"{'/'.join(asset_path)}@{version}"
        manifest, files = self._read_unverified(asset_path, version)
        if manifest.kind not in PARALLEL_VERIFY_KINDS:
            self._verify(asset_path, manifest, files)
            return deserialize(manifest.kind, files, where=where)
        with ThreadPoolExecutor(max_workers=1) as pool:
            verified = pool.submit(self._verify, asset_path, manifest, files)
            value = deserialize(manifest.kind, files, where=where)
            verified.result()  # raises IntegrityError: the decoded value is discarded
        return value


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
