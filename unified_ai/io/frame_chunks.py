"""Reading a stored frame chunk by chunk, its checksum verified first (bounded memory).

`LineageStore.read_value` reads a version's files whole; a frame of millions of rows is read
here instead in chunks of its Parquet file's record batches. The file is hashed in blocks and
compared with its manifest's checksum before the first chunk is decoded, so a damaged file is
refused as `read_value` refuses it. Versions are immutable once published: nothing rewrites the
file between the check and the reads.
"""

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unified_ai.io.formats import FRAME
from unified_ai.io.records import IntegrityError, LineageStoreError, asset_label
from unified_ai.io.version_writer import FRAME_FILE

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.io.version_reader import VersionReader

_BLOCK = 1 << 20


def stored_frame_rows(store: "VersionReader", asset_path: Sequence[str], version: str) -> int:
    """A stored version's row count from its Parquet footer (-1: not a stored frame).

    Reads the manifest and the file's footer only: cheap enough to ask before every read.
    """
    manifest = store.read_manifest(asset_path, version)
    if manifest.kind != FRAME or FRAME_FILE not in manifest.files:
        return -1
    import pyarrow.parquet as pq

    # Through a file handle: the store may be an object store (a UPath pyarrow cannot open).
    with (store.version_dir(asset_path, version) / FRAME_FILE).open("rb") as handle:
        return int(pq.read_metadata(handle).num_rows)


@dataclass
class ChunkedOutput:
    """A frame output given to the IO manager in chunks, stored as it is produced.

    Attributes:
        chunks: Gives the frame's chunks, in order (called once per attempt to store).
        metadata: The output's metadata, asked for once the frame is stored (it may depend on
            what the chunks held).
        fallback: Gives the chunks again another way when `chunks` fails with one of
            `fallback_on` (nothing of the first attempt is stored).
        fallback_on: The exceptions that make the store try `fallback`.
        on_failure: Told why nothing was stored (a chunk or the fallback raised), before the
            exception goes on; it may raise one of its own that says so in one line. A step
            whose output streams a file has no later line to quarantine it from.
    """

    chunks: Callable[[], Iterable["pd.DataFrame"]]
    metadata: Callable[[], Mapping[str, Any]] = dict
    fallback: Callable[[], Iterable["pd.DataFrame"]] | None = None
    fallback_on: tuple[type[BaseException], ...] = field(default_factory=tuple)
    on_failure: Callable[[Exception], None] | None = None


class FrameChunks:
    """A stored frame version, read in chunks of at most `rows` rows.

    Args:
        store: The lineage store (or anything with its reading methods).
        asset_path: The frame's asset path.
        version: Its version.
        rows: The most rows per chunk.

    Raises:
        LineageStoreError: the version is not a stored frame.
        IntegrityError: its file does not match its checksum.
    """

    def __init__(self, store: "VersionReader", asset_path: Sequence[str], version: str, rows: int):
        manifest = store.read_manifest(asset_path, version)
        label = asset_label(asset_path)
        if manifest.kind != FRAME or FRAME_FILE not in manifest.files:
            raise LineageStoreError(f"{label}@{version}: not a stored frame ({manifest.kind})")
        #: Which stored version the chunks are.
        self.asset_path = list(asset_path)
        self.version = version
        self.path = store.version_dir(asset_path, version) / FRAME_FILE
        self.rows_per_chunk = rows
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
        if digest.hexdigest() != manifest.files[FRAME_FILE]:
            raise IntegrityError(
                f"{label}@{version}: {self.path} does not match its checksum; refusing to load it",
                asset=label,
                version=version,
                path=self.path,
            )
        import pyarrow.parquet as pq

        with self.path.open("rb") as handle:
            parquet = pq.ParquetFile(handle)
            #: How many rows the frame has, and its columns.
            self.rows = parquet.metadata.num_rows
            self.columns = list(parquet.schema_arrow.names)

    def __iter__(self) -> Iterator["pd.DataFrame"]:
        return self.read()

    def read(self, columns: Sequence[str] | None = None) -> Iterator["pd.DataFrame"]:
        """The chunks, of `columns` only (in the file's order) when given: all by default.

        Parquet stores each column apart, so the columns a pass does not read are not decoded
        (a text column costs more to decode than all the numeric ones together).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        from unified_ai.ml.chunked_batches import release_freed_memory

        wanted = None
        if columns is not None:
            asked = set(columns)
            wanted = [c for c in self.columns if c in asked]
        with self.path.open("rb") as handle:
            parquet = pq.ParquetFile(handle)
            schema = parquet.schema_arrow
            if wanted is not None:
                # The pandas metadata stays: it types the columns read as in the whole frame.
                fields = [schema.field(name) for name in wanted]
                schema = pa.schema(fields, metadata=schema.metadata)
            for batch in parquet.iter_batches(batch_size=self.rows_per_chunk, columns=wanted):
                frame = pa.Table.from_batches([batch], schema=schema).to_pandas()
                del batch
                yield frame
                del frame
                # What the last chunk's reading and use freed goes back before the next.
                release_freed_memory()
