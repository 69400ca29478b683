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
import json
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_VERSION = re.compile(r"^[0-9a-f]{16}$")


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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_version(files: Mapping[str, bytes]) -> str:
    """Content hash of a payload: stable over file names and bytes, 16 hex digits."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(sha256_bytes(files[name]).encode())
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

    def __init__(self, root: str | os.PathLike[str]):
        from upath import UPath  # fsspec is only needed once a store is used

        self.root = UPath(root)
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
        files: Mapping[str, bytes],
        *,
        run_id: str | None = None,
        code_version: str | None = None,
        policy_version: str | None = None,
        upstream: Mapping[str, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Manifest:
        """Store `files` as an immutable version and return its manifest.

        Identical content maps to the same version; an existing version is never rewritten.
        """
        for name in files:
            if name == MANIFEST or not _SEGMENT.match(name):
                raise LineageStoreError(f"payload file name {name!r} is not allowed")
        version = content_version(files)
        target = self.version_dir(asset_path, version)
        if (target / MANIFEST).exists():
            return self.read_manifest(asset_path, version)
        manifest = Manifest(
            asset_key=list(asset_path),
            version=version,
            kind=kind,
            files={name: sha256_bytes(data) for name, data in files.items()},
            created_at=utc_now(),
            run_id=run_id,
            code_version=code_version,
            policy_version=policy_version,
            upstream=dict(upstream or {}),
            metadata=dict(metadata or {}),
        )
        if self._local:
            self._write_local_version(target, files, manifest)
        else:
            target.mkdir(parents=True, exist_ok=True)
            for name, data in files.items():
                (target / name).write_bytes(data)
            (target / MANIFEST).write_bytes(manifest.to_json())  # last: makes it visible
        return manifest

    def _write_local_version(self, target, files: Mapping[str, bytes], manifest: Manifest):
        final = Path(target.path)
        staging = final.parent / f".staging-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            for name, data in files.items():
                _write_synced(staging / name, data)
            _write_synced(staging / MANIFEST, manifest.to_json())
            try:
                os.rename(staging, final)
            except OSError:
                # Another writer stored the same content first; theirs is identical.
                if not (final / MANIFEST).exists():
                    raise
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
        if not (self.version_dir(asset_path, version) / MANIFEST).exists():
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
        return validate_version(json.loads(pointer.read_bytes())["version"])

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
        return Manifest.from_json(path.read_bytes())

    def read_files(self, asset_path: Sequence[str], version: str) -> tuple[Manifest, dict]:
        """Read a version's payload, verifying every file against its recorded checksum."""
        manifest = self.read_manifest(asset_path, version)
        folder = self.version_dir(asset_path, version)
        files: dict[str, bytes] = {}
        for name, expected in manifest.files.items():
            path = folder / name
            data = path.read_bytes()
            if sha256_bytes(data) != expected:
                raise IntegrityError(
                    f"{'/'.join(asset_path)}@{version}: {path} does not match its checksum; "
                    "refusing to load it"
                )
            files[name] = data
        return manifest, files

    def versions(self, asset_path: Sequence[str]) -> list[Manifest]:
        """All complete versions of an asset, oldest first."""
        folder = self.asset_dir(asset_path) / "versions"
        if not folder.exists():
            return []
        found = []
        for child in folder.iterdir():
            if _VERSION.match(child.name) and (child / MANIFEST).exists():
                found.append(Manifest.from_json((child / MANIFEST).read_bytes()))
        return sorted(found, key=lambda m: m.created_at)

    def history(self, asset_path: Sequence[str]) -> list[PointerMove]:
        """Every pointer move of an asset, oldest first."""
        folder = self.asset_dir(asset_path) / "history"
        if not folder.exists():
            return []
        entries = sorted(
            (p for p in folder.iterdir() if p.name.endswith(".json")), key=lambda p: p.name
        )
        return [PointerMove(**json.loads(p.read_bytes())) for p in entries]


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
