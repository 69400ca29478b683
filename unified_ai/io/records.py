"""What the lineage store writes besides payloads: manifests, pointer moves, their signatures.

Identifiers (asset path segments, version ids, history entry names) are matched whole; a version
id is the hash of its manifest's checksums. With a signing key every record (manifest, pointer,
history entry) carries an HMAC-SHA256 signature over its canonical JSON, checked on every read.
Pure: no Dagster import.
"""

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from datetime import datetime, timezone
from typing import Any

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
VERSIONS = "versions"
HISTORY = "history"
STAGING_PREFIX = ".staging-"
SIGNATURE = "signature"

# Identifiers are matched whole (fullmatch): `$` would also accept a trailing newline.
SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
VERSION = re.compile(r"[0-9a-f]{16}")
ENTRY = re.compile(r"([0-9]{20})-[0-9a-f]{8}\.json")
DIGEST = re.compile(r"[0-9a-f]{64}")
_SIGNATURE_SCHEME = "hmac-sha256:"


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


class PointerConflict(LineageStoreError):
    """A conditional pointer move found the pointer moved since its writer read it."""


def asset_label(asset_path: Sequence[str]) -> str:
    return "/".join(asset_path)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: errors stay one line."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def validate_asset_path(asset_path: Sequence[str]) -> tuple[str, ...]:
    """Return `asset_path` as a tuple, refusing empty, absolute or `..` segments."""
    parts = tuple(asset_path)
    if not parts:
        raise LineageStoreError("asset path is empty")
    for part in parts:
        if not isinstance(part, str) or not SEGMENT.fullmatch(part) or part in {".", ".."}:
            raise LineageStoreError(f"asset path segment {part!r} is not allowed")
    return parts


def validate_version(version: str) -> str:
    if not isinstance(version, str) or not VERSION.fullmatch(version):
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
    """What travels with every stored version.

    Attributes:
        asset_key: The asset path (`[project, asset]`, plus `partitions/<key>` for a partition).
        version: Content hash of `files`.
        kind: How the payload is encoded (`unified_ai.io.formats`).
        files: Payload file name → sha256.
        created_at: When it was stored (UTC, ISO 8601).
        run_id: The Dagster run that stored it.
        code_version: `unified_ai.__version__` of the code that stored it.
        policy_version: The project's policy when it was stored.
        upstream: What the step that stored it read from the store: `asset path → version`,
            or `asset path → [versions]` when it read several versions of one asset.
        metadata: What the format recorded about the payload (a model's type list, checked
            again on every load).
    """

    asset_key: list[str]
    version: str
    kind: str
    files: dict[str, str]
    created_at: str
    run_id: str | None = None
    code_version: str | None = None
    policy_version: str | None = None
    upstream: dict[str, str | list[str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PointerMove:
    """One entry of an asset's append-only history.

    Attributes:
        prev_entry: sha256 of the stored bytes of the entry before this one: the history is a
            hash chain, and the signed pointer names the hash of its newest entry. "" for an
            asset's first entry; None in entries written before history was chained.
        prev_entry_name: The file name of the entry before this one, so readers walk back from
            the pointer one entry at a time instead of listing the history (the entry's own
            name holds only its predecessor's hash prefix). None for an asset's first entry
            and in entries written before it was recorded (readers list those).
    """

    asset_key: list[str]
    version: str
    previous: str | None
    action: str
    at: str
    run_id: str | None = None
    actor: str | None = None
    reason: str | None = None
    policy_version: str | None = None
    prev_entry: str | None = None
    prev_entry_name: str | None = None


def successor_entry(name: str, digest: str) -> str:
    """The name the entry after history entry `name` (whose bytes hash to `digest`) gets.

    Fixed by its predecessor, so a reader checks with one lookup that nothing follows the entry
    the pointer names (a replayed pointer), without listing the history.
    """
    return f"{int(name[:20]) + 1:020d}-{digest[:8]}.json"


@dataclass(frozen=True)
class Problem:
    """One piece of damage found by `LineageStore.verify`."""

    asset: str
    version: str | None
    path: str
    problem: str


@dataclass
class StoreReport:
    """What `LineageStore.verify` checked, found and cleaned up.

    `info` holds observations that are not damage (history written before it was chained).
    """

    assets: int = 0
    versions: int = 0
    problems: list[Problem] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)


class RecordCodec:
    """Encodes and decodes the store's JSON records, signing and verifying them with a key."""

    def __init__(self, key: bytes | None):
        self._key = key

    @property
    def signed(self) -> bool:
        return self._key is not None

    def _signature(self, record: Mapping[str, Any]) -> str:
        assert self._key is not None
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        return _SIGNATURE_SCHEME + hmac.new(self._key, canonical, hashlib.sha256).hexdigest()

    def encode(self, record: Mapping[str, Any], indent: int | None = None) -> bytes:
        """JSON bytes of a record, signed when a key is set."""
        # Normalised through JSON first, so the signature covers exactly what a reader parses.
        plain = json.loads(json.dumps(dict(record), default=str))
        plain.pop(SIGNATURE, None)
        if self._key is not None:
            plain[SIGNATURE] = self._signature(plain)
        return json.dumps(plain, indent=indent, sort_keys=True).encode()

    def decode(
        self, data: bytes, *, what: str, path: Any, asset: str, version: str | None = None
    ) -> dict[str, Any]:
        """Parse a stored record and check its signature when a key is set."""
        where = f"{asset}@{version}" if version else asset
        context = {"asset": asset, "version": version, "path": path}
        try:
            record = json.loads(data)
        except ValueError as exc:
            raise StoreDamageError(
                f"{where}: {what} {path} is not valid JSON ({first_line(exc)})", **context
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


def checked_manifest(
    record: dict[str, Any], asset_path: Sequence[str], version: str, path: Any
) -> Manifest:
    """Build a manifest from a stored record, refusing anything that does not add up."""
    label = asset_label(asset_path)
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
        if name == MANIFEST or not SEGMENT.fullmatch(name):
            raise IntegrityError(
                f"{where}: manifest {path} lists file name {name!r}, which is not allowed; "
                "refusing it",
                **context,
            )
    if not isinstance(manifest.upstream, dict) or not isinstance(manifest.metadata, dict):
        raise StoreDamageError(f"{where}: manifest {path} has a malformed field", **context)
    for label, versions in manifest.upstream.items():
        listed = [versions] if isinstance(versions, str) else versions
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise StoreDamageError(
                f"{where}: manifest {path} has a malformed upstream entry for {label}", **context
            )
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
        # Name only what disagrees with the folder: the recorded id, the checksums, or both.
        wrong = [
            *([f"records version {manifest.version}"] if manifest.version != version else []),
            *([f"its checksums hash to {computed}"] if computed != version else []),
        ]
        raise IntegrityError(
            f"{where}: manifest {path} {' and '.join(wrong)}, not {version}: the manifest or "
            "payload was edited; refusing it",
            **context,
        )
    return manifest


def checked_move(record: dict[str, Any], asset_path: Sequence[str], path: Any) -> PointerMove:
    """Build a history entry from a stored record, refusing anything that does not add up."""
    label = asset_label(asset_path)
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
            isinstance(value, str) and VERSION.fullmatch(value)
        ):
            raise StoreDamageError(
                f"{label}: history entry {path} has an invalid {name} {value!r}",
                asset=label,
                path=path,
            )
    chained = move.prev_entry
    if chained is not None and not (
        isinstance(chained, str) and (chained == "" or DIGEST.fullmatch(chained))
    ):
        raise StoreDamageError(
            f"{label}: history entry {path} has an invalid prev_entry {chained!r}",
            asset=label,
            path=path,
        )
    link = move.prev_entry_name
    if link is not None and not (isinstance(link, str) and ENTRY.fullmatch(link)):
        raise StoreDamageError(
            f"{label}: history entry {path} has an invalid prev_entry_name {link!r}",
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
