"""Monitoring: the deployed model's reference predictions and the prediction drift they measure.

Also how a stored model's classes are read from its card without loading the model.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from unified_ai.io.reader import StoreReader
from unified_ai.ml.batch_scoring import primary_score
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.drift import PREDICTION_REFERENCE_ROWS, prediction_drift
from unified_ai.ml.training import predict
from unified_ai.names import CANDIDATE_MODEL, TRAIN_SPLIT
from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.common import key

if TYPE_CHECKING:
    import numpy as np


def prediction_drift_metadata(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    model,
    model_version: str,
    predicted,
) -> dict[str, Any]:
    """Drift of the deployed model's predictions: the batch against the training split.

    The reference is the model's predictions on a seeded sample of the current training split
    (`reference_scores`: computed once per model and split version, then reused); the result
    is metadata (`prediction_psi`, `prediction_drifted`).

    Evidence beside the input drift of `drift_report`: a model whose answers move while its
    inputs look the same (or the reverse) is worth a look. Never stops the scores.
    """
    try:
        expected = reference_scores(context, reader, project, model, model_version)
        found = prediction_drift(
            model.task,
            expected,
            primary_score(model.task, predicted),
            project.policy.triggers.drift.psi_threshold,
        )
    except Exception as exc:
        context.log.warning(f"{project.name}/predictions: no prediction drift: {exc}")
        return {"prediction_drift": f"not measured: {exc}"[:300]}
    psi = found["psi"]
    return {
        "prediction_drift_of": found["of"],
        "prediction_psi": "none" if psi is None else float(psi),
        "prediction_drifted": bool(found["drifted"]),
    }


#: Where the store keeps each model's reference predictions (beside the project's assets).
PREDICTION_REFERENCE = "prediction_reference"
_REFERENCE_COLUMN = "score"


def reference_scores(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    model,
    model_version: str,
) -> "np.ndarray":
    """The model's primary scores on a seeded sample of the current training split.

    They depend only on the model version, the split version, the split seed and the sample
    size, so they are computed once and stored as an immutable version under
    `[project, prediction_reference, <model>-<split>-<seed>-<rows>]` (written whole, like any
    version: a half-written one is never read), and every later batch reads those 2,000 numbers
    instead of reading the split and scoring it again. The split version is recorded in the
    step's lineage either way, as when it was read.
    """
    import numpy as np
    import pandas as pd

    from unified_ai.io.formats import serialize

    train_path = key(project, TRAIN_SPLIT).path
    train_version = reader.require_current(train_path)
    reader.record(train_path, train_version)
    seed = project.split.seed
    name = f"{model_version}-{train_version}-{seed}-{PREDICTION_REFERENCE_ROWS}"
    cache = [project.name, PREDICTION_REFERENCE, name]
    store = reader.store
    try:
        stored = store.versions(cache)
        if stored:
            frame = store.read_value(cache, stored[-1].version)
            return frame[_REFERENCE_COLUMN].to_numpy(dtype="float64")
    except Exception as exc:
        # A damaged copy is never trusted: the reference is scored again (`verify` reports it).
        context.log.warning(f"{project.name}/predictions: reference predictions reread: {exc}")
    reference = store.read_value(train_path, train_version)
    if len(reference) > PREDICTION_REFERENCE_ROWS:
        reference = reference.sample(PREDICTION_REFERENCE_ROWS, random_state=seed)
    features = FeatureColumns(**model.card["features"])
    expected = np.asarray(
        primary_score(model.task, predict(model, reference, features)), dtype="float64"
    )
    try:
        kind, files = serialize(pd.DataFrame({_REFERENCE_COLUMN: expected}))
        store.write_version(
            cache,
            kind,
            files,
            run_id=context.run_id,
            upstream={
                "/".join(key(project, CANDIDATE_MODEL).path): model_version,
                "/".join(train_path): train_version,
            },
            metadata={"train_split": train_version, "seed": seed, "rows": len(expected)},
        )
    except Exception as exc:
        context.log.warning(f"{project.name}/predictions: reference predictions not kept: {exc}")
    return expected


def recorded_classes(
    reader: StoreReader, project: ProjectConfig, model_version: str
) -> list | None:
    """A stored model's class list, read from its card without loading the model."""
    classes = recorded_card(reader, project, model_version).get("classes")
    return list(classes) if classes is not None else None


def recorded_card(reader: StoreReader, project: ProjectConfig, model_version: str) -> dict:
    """A stored model's card (`card.json`: task, classes, features), without loading the model.

    The card (where `TrainedModel.task` and `.classes` come from) is checked against the
    version's verified manifest like any payload file, and the model version is recorded in
    the step's lineage as a read of the model would record it.

    Raises:
        IntegrityError: the card does not match its checksum.
        LineageStoreError: the version or its card is missing.
    """
    import hashlib
    import json

    from unified_ai.io.records import IntegrityError, LineageStoreError

    path = key(project, CANDIDATE_MODEL).path
    manifest = reader.read_manifest(path, model_version)
    where = f"{'/'.join(path)}@{model_version}"
    if "card.json" not in manifest.files:
        raise LineageStoreError(f"{where}: the model version has no card.json")
    card_path = reader.version_dir(path, model_version) / "card.json"
    data = card_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.files["card.json"]:
        raise IntegrityError(f"{where}: {card_path} does not match its checksum; refusing it")
    reader.record(path, model_version)
    return dict(json.loads(data))
