"""The lineage store as a Dagster resource, for assets that read versions other than inputs."""

import dagster as dg
from pydantic import PrivateAttr

from unified_ai.io.store import LineageStore


class LineageStorage(dg.ConfigurableResource):
    """Root of the lineage store: a local folder or an fsspec URL (s3://, gs://, ...)."""

    root: str
    _store: LineageStore | None = PrivateAttr(default=None)

    def store(self) -> LineageStore:
        if self._store is None:
            self._store = LineageStore(self.root)
        return self._store
