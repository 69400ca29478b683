"""What a process keeps until it exits, built out of the cyclic garbage collector's view.

The collector frees cycles by scanning tracked objects, and a full collection scans all of
them. Objects that live as long as their process are never freed by it, yet every full
collection scans them again. A run worker is a process started for one run, and two things it
builds live that long: the code location (`unified_ai.definitions`) and the table libraries
its steps import (numpy, pandas and pyarrow, about 0.2 s and hundreds of thousands of objects).
Each is built with the collector paused, then frozen out of its view (`gc.freeze`), once per
process for each kind: later collections scan only what the run allocates.

Measured in a 200-row `score_batch` run worker: building the code location collected nothing
(62 collections, 40 ms of a 0.29 s load of five projects), and the table libraries, imported in
the run's first step, were scanned again by a full collection later in the run (about 50 ms).
"""

import functools
import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def kept_for_the_process(kind: str) -> Iterator[None]:
    """Build what the process keeps (`kind`, e.g. "definitions") with the collector paused.

    Then freeze what exists, the first time `kind` is built in this process (a second build,
    in tests, must not freeze what was garbage since). Nothing is frozen if the body raises. A
    collector the caller had disabled stays disabled.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
    _freeze_once(kind)


@functools.cache
def _freeze_once(kind: str) -> None:
    gc.freeze()


@functools.cache
def import_table_libraries() -> None:
    """Import numpy, pandas and pyarrow (with Parquet) once, as objects kept for the process.

    Called where a step first reads or stores a table (a batch file, a stored frame); each
    later call returns at once.
    """
    with kept_for_the_process("table libraries"):
        import numpy  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401
