"""The lineage IO manager: what a run that reads stored inputs records, and where."""

import dagster as dg

from unified_ai.names import UPSTREAM_METADATA, VERSION_METADATA
from unified_ai.resources.io_manager import LineageIOManager
from unified_ai.resources.storage import LineageStorage


def test_a_read_is_shown_on_what_the_step_stores_not_as_an_observation(tmp_path, instance):
    @dg.asset(key_prefix=["p"])
    def up() -> dict:
        return {"n": 1}

    @dg.asset(key_prefix=["p"], ins={"up": dg.AssetIn(key=["p", "up"])})
    def down(up: dict) -> dict:
        return {"n": up["n"] + 1}

    storage = LineageStorage(root=str(tmp_path / "store"))
    io_manager = LineageIOManager(storage=storage)
    assert dg.materialize([up], resources={"io_manager": io_manager}, instance=instance).success
    result = dg.materialize(
        [up, down],
        selection=[down],
        resources={"io_manager": io_manager},
        instance=instance,
    )
    assert result.success
    store = storage.store()
    read = store.current_version(["p", "up"])
    # Each observation is an asset event Dagster writes twice (run and index shards).
    assert not result.get_asset_observation_events()
    [stored] = result.get_asset_materialization_events()
    metadata = stored.materialization.metadata
    assert metadata[UPSTREAM_METADATA].value == {"p/up": read}
    assert metadata[VERSION_METADATA].value == store.current_version(["p", "down"])


def test_an_input_typed_table_or_chunks_takes_a_large_frame_in_chunks(tmp_path, monkeypatch):
    import pandas as pd

    from unified_ai.io.formats import serialize
    from unified_ai.io.frame_chunks import FrameChunks
    from unified_ai.ml import chunked_batches
    from unified_ai.resources.io_manager import TABLE_OR_CHUNKS
    from unified_ai.stages.common import DATA_FRAME

    monkeypatch.setattr(chunked_batches, "CHUNK_ROWS", 3)
    storage = LineageStorage(root=str(tmp_path / "store"))
    store = storage.store()
    kind, files = serialize(pd.DataFrame({"x": range(10)}))
    store.set_current(["p", "t"], store.write_version(["p", "t"], kind, files).version, action="m")
    io_manager = LineageIOManager(storage=storage)
    key = dg.AssetKey(["p", "t"])

    typed = io_manager.load_input(
        dg.build_input_context(asset_key=key, dagster_type=TABLE_OR_CHUNKS)
    )
    assert isinstance(typed, FrameChunks) and [len(c) for c in typed] == [3, 3, 3, 1]
    # An input of another type, or a context built without one, gets the frame whole.
    for context in (
        dg.build_input_context(asset_key=key, dagster_type=DATA_FRAME),
        dg.build_input_context(asset_key=key),
    ):
        assert list(io_manager.load_input(context)["x"]) == list(range(10))
