"""Serialising pointer moves of one asset across processes.

Locally an exclusive `flock` on `<asset>/.lock` (one host; see docs/lineage-store.md on
NFS). On object stores a lock object created with a conditional put; a holder that died is
taken over after `LOCK_LEASE_SECONDS`.
"""

import json
import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from unified_ai.io.records import LineageStoreError

LOCK = ".lock"
#: How long an object-store pointer lock is honoured before a waiting writer may take it over
#: (a pointer move takes milliseconds; this only matters when a writer died holding it).
LOCK_LEASE_SECONDS = 60.0
#: How long a writer waits for an asset's pointer lock before giving up with an error.
LOCK_TIMEOUT_SECONDS = 120.0


@contextmanager
def file_lock(path: Path, label: str) -> Iterator[None]:
    """An exclusive `flock` on `path`: works across processes on one host (NFS: see the docs)."""
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


@contextmanager
def object_lock(lock, label: str, *, conditional_overwrite: bool) -> Iterator[None]:
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
            if _take_over_stale_lock(fs, key, body.encode(), conditional_overwrite):
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


def _take_over_stale_lock(fs, key: str, body: bytes, conditional_overwrite: bool) -> bool:
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
    if conditional_overwrite and etag:
        try:
            fs.pipe_file(key, body, IfMatch=etag)
            return True
        except OSError:
            return False  # another waiter took it over first
    # Without a conditional overwrite: delete it and race for the conditional create.
    with suppress(FileNotFoundError):
        fs.rm_file(key)
    return False
