"""Reading versions of a lineage store: manifests, checksums, decoded values.

Every payload file is checked against its manifest's checksum before its value is returned; a
version id is the hash of its manifest's checksums (see `unified_ai.io.store`).
"""

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from unified_ai.io.formats import (
    PARALLEL_VERIFY_KINDS,
    UnsupportedValueError,
    deserialize,
)
from unified_ai.io.records import (
    MANIFEST,
    VERSION,
    VERSIONS,
    IntegrityError,
    LineageStoreError,
    Manifest,
    StoreDamageError,
    asset_label,
    checked_manifest,
    first_line,
    sha256_bytes,
    validate_asset_path,
)
from unified_ai.io.store_files import StoreFiles


class VersionReader(StoreFiles):
    """Reads and checks the versions of a store (see `LineageStore`)."""

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
