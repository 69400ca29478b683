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
`history/`, so a move interrupted in between is complete (the next move restores the copy). The
name of the entry after `E` is fixed by `E` (`records.successor_entry`): `current_version`
checks with one lookup, without listing history, that nothing follows the entry CURRENT names,
so an older pointer put back is refused; reading history checks each link of the chain, and
`verify` checks all of them. Each entry also names the file of the entry before it
(`prev_entry_name`), so reading the newest k moves (a rollback to the previous deployment, a
page of `unified-ai history`) reads k entries from the pointer back, without listing history.
Putting back an older pointer AND deleting every entry after it restores an earlier state
exactly, which no check inside the store can tell apart from that state: object versioning or
retention on the bucket (and a signing key) guard against that. Entries written before the
chain existed stay readable; the chain starts at the first entry written after them (`verify`
notes "unchained history before ..."). Entries written before entries named their predecessor
are read by listing history, from the first such entry on.

`LineageStore` is assembled from one module per job: `store_files` (paths, raw reads, atomic
replaces), `version_reader` (manifests, checksums, decoded values), `version_writer` (staged,
content-addressed writes), `history_walk` (reading the history chain) and `pointers` (pointer
moves). Beside them: `records` (manifests, history entries, signatures, identifiers), `locks`
(pointer locks), `localfs` (durable local writes, staging) and `verify` (checking a whole
store; it does not import this module). All pure: no Dagster import. The IO manager
(`unified_ai.resources.io_manager`) sits on top.
"""

from collections.abc import Sequence

from unified_ai.io.pointers import PointerHistory
from unified_ai.io.records import (
    CURRENT,
    MANIFEST,
    IntegrityError,
    LineageStoreError,
    Manifest,
    PointerConflict,
    PointerMove,
    StoreDamageError,
    StoreReport,
    content_version,
    utc_now,
    validate_asset_path,
    validate_version,
    version_of_checksums,
)
from unified_ai.io.version_writer import VersionWriter

__all__ = [
    "CURRENT",
    "MANIFEST",
    "IntegrityError",
    "LineageStore",
    "LineageStoreError",
    "Manifest",
    "PointerConflict",
    "PointerMove",
    "StoreDamageError",
    "StoreReport",
    "content_version",
    "utc_now",
    "validate_asset_path",
    "validate_version",
    "version_of_checksums",
]


class LineageStore(VersionWriter, PointerHistory):
    """Versioned, content-addressed storage for asset values on a local folder or fsspec URL.

    The work is split by job: `store_files` (paths, raw reads, atomic replaces),
    `version_reader` and `version_writer` (versions), `history_walk` (reading the history
    chain), `pointers` (pointer moves) and `verify` (checking a whole store).

    Args:
        root: Folder or fsspec URL.
        storage_options: fsspec options for an object store (endpoint, credentials, ...).
        signing_key: When set, manifests, pointers and history entries are HMAC-signed on write
            and anything unsigned or wrongly signed is refused on read.
    """

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
