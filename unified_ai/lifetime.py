"""What a process keeps until it exits, built out of the cyclic garbage collector's view.

The collector frees cycles by scanning tracked objects, and a full collection scans all of
them. Objects that live as long as their process are never freed by it, yet every full
collection scans them again. A run worker is a process started for one run, and what it builds
that lives that long is the code location (`unified_ai.definitions`) and the libraries its
steps import where they first need them (numpy, pandas and pyarrow for tables, about 0.2 s and
a hundred thousand objects; Great Expectations, scikit-learn, MLflow, matplotlib, Evidently).
Each kind is built with the collector paused, then frozen out of its view (`gc.freeze`), once
per process: later collections scan only what the run allocates.

Measured in a 200-row `score_batch` run worker: building the code location collected nothing
(62 collections, 40 ms of a 0.29 s load of five projects), and the table libraries, imported in
the run's first step, were scanned again by a full collection later in the run (about 50 ms).
In a training loop's run worker the collections took 1.45 s before the libraries were kept,
0.42 s after.
"""

import functools
import gc
import importlib
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
def import_kept(kind: str, *modules: str) -> None:
    """Import `modules` once per process as objects kept for it (`kind` names them).

    Each later call with the same arguments returns at once.
    """
    with kept_for_the_process(kind):
        for module in modules:
            importlib.import_module(module)


def import_table_libraries() -> None:
    """numpy, pandas and pyarrow (with Parquet): where a step first reads or stores a table."""
    import_kept("table libraries", "numpy", "pandas", "pyarrow.parquet")


def import_evidently() -> None:
    """Evidently, where a drift page or an evaluation report is first built.

    Importing it builds several seconds' worth of objects; with the collector on, the full
    collections during a drifted batch's `drift_report` step took about 1 s (measured).
    """
    import_kept("evidently", "evidently", "evidently.presets", _EVIDENTLY_STATTESTS)


def import_great_expectations() -> None:
    """Great Expectations, where a dataset is first validated.

    Measured: with the collector on, its import and first validation ran eight full
    collections, about 0.6 s, in a training loop's first step.
    """
    import_kept("great_expectations", "great_expectations", _GX_CONTEXT_CONFIG)


#: The module of GX's in-memory context configuration (`unified_ai.ml.validation`).
_GX_CONTEXT_CONFIG = "great_expectations.data_context.types.base"
#: Where Evidently keeps its stat tests (`unified_ai.ml.drift` registers the project's PSI).
_EVIDENTLY_STATTESTS = "evidently.legacy.calculations.stattests.registry"
