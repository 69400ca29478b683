"""A routed review batch in a lineage store, shared by the review answer tests."""

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from unified_ai import names
from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.policies.review import route_batch
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import write_project

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)
FOUR_EYES = """\
  review:
    audit_share: 1.0
    due_after: 2h
    reviewers: [group:risk]
    groups: {risk: [ana, bo, chen]}
    four_eyes: true
"""


def routed_batch(tmp_path, projects_dir, row_ids: list):
    """A four-eyes project and a store holding batch `b1` of four rows, every one routed.

    Returns:
        (project, store, the review ids in row order, the batch's predictions).
    """
    project = load_project_file(write_project(projects_dir, policy_extra=FOUR_EYES))
    proba = np.array([0.2, 0.45, 0.55, 0.9])
    predictions = pd.DataFrame(
        {
            names.ROW_ID: row_ids,
            "region": ["north", "south", "north", "south"],
            "proba": proba,
            "prediction": (proba >= 0.5).astype(int),
            "model_version": "m1",
        }
    )
    routing = route_batch(
        predictions,
        review=project.policy.review,
        project=project.name,
        task=project.task,
        batch="b1",
        now=NOW,
        segments=project.segments,
    )
    store = LineageStore(tmp_path / "store")
    path = [project.name, names.REVIEW_QUEUE, names.PARTITIONS, "b1"]
    manifest = store.write_version(path, *serialize(routing.rows))
    store.set_current(path, manifest.version, action=names.MATERIALIZE_ACTION)
    return project, store, list(routing.rows[names.REVIEW_ID]), predictions
