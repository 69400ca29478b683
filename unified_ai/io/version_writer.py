"""Writing versions of a lineage store: immutable, content-addressed, published whole.

Locally a version folder is written under a staging name and renamed into place; on object
stores the manifest is the last object put (see `unified_ai.io.store`).
"""

import os
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from unified_ai.io.formats import (
    FRAME,
    Payload,
    describe,
    payload_bytes,
)
from unified_ai.io.localfs import clean_stale_staging, discard, write_synced
from unified_ai.io.records import (
    MANIFEST,
    SEGMENT,
    STAGING_PREFIX,
    VERSIONS,
    LineageStoreError,
    Manifest,
    StoreDamageError,
    asset_label,
    sha256_bytes,
    utc_now,
    validate_asset_path,
    version_of_checksums,
)
from unified_ai.io.version_reader import VersionReader

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: The one file of a stored frame (what `formats.serialize` writes for a DataFrame).
FRAME_FILE = "data.parquet"


class ChunkSchemaError(LineageStoreError):
    """A chunk of a streamed frame does not fit the schema its first chunk set."""


class VersionWriter(VersionReader):
    """Writes versions of a store (see `LineageStore`)."""

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
        upstream: Mapping[str, str | list[str]] | None = None,
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

    def write_frame_chunks(
        self,
        asset_path: Sequence[str],
        chunks: Iterable["pd.DataFrame"],
        *,
        schema: "pa.Schema | None" = None,
        run_id: str | None = None,
        code_version: str | None = None,
        policy_version: str | None = None,
        upstream: Mapping[str, str | list[str]] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Manifest:
        """Store a frame given in chunks as one version: one Parquet file, streamed to disk.

        Read back, the version is the concatenation of the chunks (`read_value` gives one
        frame, `unified_ai.io.frame_chunks` gives it chunk by chunk): the same kind and file
        name as a frame stored whole. Each chunk becomes one row group, written by a
        `pyarrow.parquet.ParquetWriter` into the version's staging file as it arrives, so only
        one chunk is in memory; the version is published whole exactly as `write_version`
        publishes one (a failure while chunks are produced, an exception from the iterator
        included, leaves nothing behind). On an object store the file is assembled in memory
        first (`write_version` puts whole objects).

        Args:
            asset_path: Where the version goes.
            chunks: The frame's chunks, in order; at least one (it sets the schema unless
                `schema` is given). Every chunk must have the same columns.
            schema: The Arrow schema of every chunk, when the first chunk cannot tell it (a
                column all missing in the first chunk).
            run_id: As `write_version`.
            code_version: As `write_version`.
            policy_version: As `write_version`.
            upstream: As `write_version`.
            metadata: As `write_version`.

        Raises:
            ChunkSchemaError: no chunk was given, or a chunk does not fit the schema.
        """

        def write(handle: BinaryIO) -> None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = None
            fixed = schema
            try:
                for number, chunk in enumerate(chunks):
                    try:
                        table = pa.Table.from_pandas(chunk, schema=fixed, preserve_index=False)
                    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, ValueError) as exc:
                        raise ChunkSchemaError(
                            f"{asset_label(asset_path)}: chunk {number} does not fit the schema "
                            f"of the first: {exc}"
                        ) from None
                    if writer is None:
                        fixed = table.schema
                        writer = pq.ParquetWriter(handle, fixed)
                    writer.write_table(table)
                if writer is None:
                    raise ChunkSchemaError(f"{asset_label(asset_path)}: no chunk to store")
            finally:
                if writer is not None:
                    writer.close()

        return self.write_version(
            asset_path,
            FRAME,
            {FRAME_FILE: write},
            run_id=run_id,
            code_version=code_version,
            policy_version=policy_version,
            upstream=upstream,
            metadata=metadata,
        )

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
