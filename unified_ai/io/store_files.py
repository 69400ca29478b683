"""The files under a lineage store's root: paths, raw reads and atomic replaces.

The base of `LineageStore` (`unified_ai.io.store`): where an asset and a version live, how a
folder is listed and a file read (one GET on object stores), and how a small file is replaced
in one operation (rename locally, one put remotely). The store's layout and guarantees are
described in `unified_ai.io.store`.
"""

import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unified_ai.io.localfs import write_synced
from unified_ai.io.records import (
    VERSIONS,
    RecordCodec,
    StoreDamageError,
    first_line,
    validate_asset_path,
    validate_version,
)

_CACHING_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}


class StoreFiles:
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
        return f"{type(self).__name__}({str(self.root)!r}, signed={self._codec.signed})"

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
