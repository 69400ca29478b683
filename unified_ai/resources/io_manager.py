"""Dagster IO manager over the lineage store.

`handle_output` stores an immutable version whose manifest records everything the step read
from the store (its inputs, loaded here, and what it read through `LineageStorage.reader`),
moves the asset's pointer and shows version, path and lineage in the UI. `load_input` always
resolves the upstream's *current pointer* (so a rollback is honoured, which Dagster's own
provenance does not do) and verifies checksums.

Large frames stay out of memory: an output given as a `ChunkedOutput` is streamed into its
version chunk by chunk, and an input of Dagster type `TABLE_OR_CHUNKS` is handed over as
`FrameChunks` when its stored frame is larger than one chunk (a smaller one is read whole, as
any other input).
"""

import sys

import dagster as dg
from pydantic import PrivateAttr

import unified_ai
from unified_ai.io.formats import serialize
from unified_ai.io.frame_chunks import ChunkedOutput, FrameChunks, stored_frame_rows
from unified_ai.io.reader import ReadLog, step_log
from unified_ai.names import (
    COLUMN_SCHEMA_METADATA,
    FILES_METADATA,
    MATERIALIZE_ACTION,
    PARTITIONS,
    PATH_METADATA,
    POLICY_VERSION_METADATA,
    UPSTREAM_METADATA,
    VERSION_METADATA,
    actor_of,
)
from unified_ai.resources.storage import LineageStorage


def is_data_frame(value: object) -> bool:
    """Whether `value` is a pandas DataFrame, without importing pandas.

    A value can only be a DataFrame once pandas is imported, so the check never imports it
    (the code location loads without pandas).
    """
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _is_table_or_chunks(_context: dg.TypeCheckContext, value: object) -> bool:
    return isinstance(value, FrameChunks) or is_data_frame(value)


#: The Dagster type of an input that takes a large stored frame in chunks (`FrameChunks`), a
#: smaller one whole (a pandas DataFrame). The type is what asks for chunks, so an input that is
#: also an `AssetDep` of a multi-asset (whose `AssetIn` can carry no metadata) asks as well.
TABLE_OR_CHUNKS = dg.DagsterType(
    type_check_fn=_is_table_or_chunks,
    name="DataFrameOrChunks",
    description="A pandas DataFrame, or a large stored one read in chunks.",
)


def _takes_chunks(context: dg.InputContext) -> bool:
    """Whether the input is typed `TABLE_OR_CHUNKS` (a context built without a type is not)."""
    try:
        return context.dagster_type.key == TABLE_OR_CHUNKS.key
    except dg.DagsterInvariantViolationError:
        return False


def chunk_rows() -> int:
    """Rows per chunk of a chunked input (read when asked, so a test can make it small)."""
    from unified_ai.ml import chunked_batches

    return chunked_batches.CHUNK_ROWS


def storage_path(asset_key: dg.AssetKey, partition: str | None = None) -> list[str]:
    """Where an asset (or one partition of it) lives in the lineage store."""
    path = list(asset_key.path)
    return [*path, PARTITIONS, partition] if partition is not None else path


def _code_version(context: dg.OutputContext) -> str:
    """The asset's code version (package + project file), or the package's outside an asset."""
    try:
        return context.asset_spec.code_version or unified_ai.__version__
    except dg.DagsterInvariantViolationError:
        # A context built without its asset (tests, direct calls) knows no more than the package.
        return unified_ai.__version__


def _column_schema(obj) -> dg.TableSchema | None:
    """The columns of a table value, as the UI shows them; None for anything else."""
    if not is_data_frame(obj):
        return None
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=str(name), type=str(dtype)) for name, dtype in obj.dtypes.items()
        ]
    )


class LineageIOManager(dg.ConfigurableIOManager):
    """Stores every asset value as a versioned, checksummed artifact with its lineage."""

    storage: dg.ResourceDependency[LineageStorage]
    # The run this manager was set up for (None outside a run: benchmarks, direct calls). An
    # input context has no public run id, so the run is taken once, at resource setup.
    _run_id: str | None = PrivateAttr(default=None)
    _run_tags: dict[str, str] = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.run
        if run is not None:
            self._run_id = run.run_id
            self._run_tags = dict(run.tags)

    def _read_log(self, context: dg.InputContext | dg.OutputContext) -> ReadLog | None:
        """The read log of the step `context` belongs to (keyed as `LineageStorage.reader`)."""
        return step_log(self._run_id, context.op_def.name) if self._run_id else None

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        path = storage_path(
            context.asset_key, context.asset_partition_key if context.has_asset_partitions else None
        )
        store = self.storage.store()
        run_id = self._run_id
        log = self._read_log(context)
        # Every output of the step gets all of its reads (a step may store several assets).
        upstream = log.upstream() if log is not None else {}
        policy_version = (context.definition_metadata or {}).get(POLICY_VERSION_METADATA)
        if isinstance(obj, ChunkedOutput):
            manifest = self._write_chunks(context, store, path, obj, upstream, policy_version)
        else:
            kind, files = serialize(obj)
            manifest = store.write_version(
                path,
                kind,
                files,
                run_id=run_id,
                code_version=_code_version(context),
                policy_version=policy_version,
                upstream=upstream,
            )
        store.set_current(
            path,
            manifest.version,
            action=MATERIALIZE_ACTION,
            run_id=run_id,
            actor=actor_of(self._run_tags),
            reason="materialized by run",
            policy_version=policy_version,
        )
        schema = _column_schema(obj)
        context.add_output_metadata(
            {
                **({COLUMN_SCHEMA_METADATA: schema} if schema is not None else {}),
                VERSION_METADATA: manifest.version,
                PATH_METADATA: dg.MetadataValue.path(
                    str(store.version_dir(path, manifest.version))
                ),
                UPSTREAM_METADATA: dg.MetadataValue.json(upstream),
                FILES_METADATA: dg.MetadataValue.json(manifest.files),
            }
        )
        if isinstance(obj, ChunkedOutput):
            # Known once every chunk went through (row counts, validation, scores).
            context.add_output_metadata(dict(obj.metadata()))

    def _write_chunks(self, context, store, path, obj: ChunkedOutput, upstream, policy_version):
        """Store a chunked output as one version (nothing is stored if a chunk fails)."""

        def write(chunks):
            return store.write_frame_chunks(
                path,
                chunks,
                run_id=self._run_id,
                code_version=_code_version(context),
                policy_version=policy_version,
                upstream=upstream,
            )

        try:
            try:
                return write(obj.chunks())
            except obj.fallback_on:
                if obj.fallback is None:
                    raise
                return write(obj.fallback())
        except Exception as exc:
            if obj.on_failure is not None:
                obj.on_failure(exc)
            raise

    def load_input(self, context: dg.InputContext):
        partition = context.asset_partition_key if context.has_asset_partitions else None
        path = storage_path(context.asset_key, partition)
        store = self.storage.store()
        version = store.require_current(path)
        rows = chunk_rows() if _takes_chunks(context) else 0
        if rows and stored_frame_rows(store, path, version) > rows:
            # Its read is recorded below as any input's: the lineage is the same.
            value: object = FrameChunks(store, path, version, rows)
        else:
            value = store.read_value(path, version)
        log = self._read_log(context)
        if log is not None:
            # The read is shown on what the step stores (its `upstream` metadata), not as an
            # observation of the input: that was three more asset events in every batch run.
            log.add(path, version)
        return value
