"""Local-disk primitives of the lineage store: durable writes and staging folders.

A local version is written into a staging folder (`.staging-<id>` beside the versions) and
renamed into place; a folder no writer has touched for `STALE_STAGING_SECONDS` was left by one
that died.
"""

import hashlib
import io
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import BinaryIO, cast

from unified_ai.io.formats import Payload
from unified_ai.io.records import STAGING_PREFIX, sha256_bytes

#: A staging folder untouched for this long was left by a writer that died.
STALE_STAGING_SECONDS = 15 * 60


def clean_stale_staging(versions: Path) -> list[str]:
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


def discard(folder: Path) -> None:
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


def write_synced(path: Path, payload: Payload) -> str:
    """Write `payload` durably to `path` and return its sha256."""
    with open(path, "wb") as handle:
        if callable(payload):
            writer = _HashingWriter(handle)
            # A binary file, though an `io.RawIOBase` is not a `typing.BinaryIO` to the checker.
            payload(cast(BinaryIO, writer))
            checksum = writer.digest.hexdigest()
        else:
            handle.write(payload)
            checksum = sha256_bytes(payload)
        handle.flush()
        os.fsync(handle.fileno())
    return checksum
