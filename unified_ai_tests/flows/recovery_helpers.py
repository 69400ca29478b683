"""What the recovery flows share: a concept-drifted world, drawn and labeled as `simulate` does.

Each flow cuts the pool `unified-ai simulate` draws from (the holdout split's source rows) in
three disjoint parts with the same spread of the drifted column: rows the retrain trains on,
rows of the recent holdout, and rows of the next batches, which no model ever trained on.
"""

import pandas as pd

from unified_ai.ml.data import resolve_features
from unified_ai.ml.simulate import parse_drift, write_batches
from unified_ai.ml.split import holdout_parts
from unified_ai.names import HOLDOUT_SPLIT, ROW_ID
from unified_ai.resources.inbox import Inbox
from unified_ai.runtime import load_settings
from unified_ai_tests.flows.helpers import step_failures, store
from unified_ai_tests.flows.monitoring_helpers import SensorDriver, simulate


def pool_parts(home, project, column: str) -> list[pd.DataFrame]:
    """The rows `simulate` draws from, cut in three parts with the same spread of `column`.

    Every third row by `column` goes to each part, so the concept's median (taken in the rows
    a batch is drawn from) is the same to within a row in all three.
    """
    lineage = store(home)
    path = [project.name, HOLDOUT_SPLIT]
    pool = holdout_parts(project, lineage.read_value(path, lineage.require_current(path)))[0]
    ordered = pool.sort_values([column, ROW_ID], kind="stable")
    return [ordered.iloc[start::3].reset_index(drop=True) for start in range(3)]


def drifted(project, pool, drift: str, *, batches: int, rows: int, seed: int) -> list[str]:
    """Write `drift`ed batches drawn from `pool` into the inbox, as `simulate` does."""
    inbox = Inbox(root=load_settings().inbox_root).folder(project)
    spec = parse_drift([drift], project, resolve_features(project, pool).numeric)
    return write_batches(project, pool, inbox, batches=batches, rows=rows, drift=spec, seed=seed)


def score_and_label(driver: SensorDriver, project, batches: list[str]) -> None:
    """The batch sensor scores the waiting batches; their labels arrive and are ingested."""
    name = project.name
    scored = [
        driver.launch(r, f"{name}__score_batch")
        for r in driver.tick(f"{name}__batch_sensor").requests
    ]
    assert all(run.success for run in scored), [step_failures(run) for run in scored]
    assert sorted(run.dagster_run.tags["dagster/partition"] for run in scored) == sorted(batches)
    simulate(name, "--labels")
    labeled = [
        driver.launch(r, f"{name}__ingest_labels")
        for r in driver.tick(f"{name}__labels_sensor").requests
    ]
    assert len(labeled) == len(batches)
    assert all(run.success for run in labeled), [step_failures(run) for run in labeled]


def inputs(project, frame: pd.DataFrame) -> set[tuple]:
    """Each row's model inputs: the identity of a drawn row (a concept drift leaves them)."""
    columns = [*project.features.numeric, *project.features.categorical]
    return set(frame[columns].astype(str).itertuples(index=False, name=None))
