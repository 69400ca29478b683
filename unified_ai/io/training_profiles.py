"""What a model was trained on, as `policy.review.out_of_range` compares inputs with it.

The profile of a train split version for a model's features (each numeric feature's lowest and
highest value, each categorical feature's categories) is built once, reading only those
columns of the split in chunks (bounded memory, however large the split), and kept beside the
assets at `<project>/train_profiles/<split version>-<features digest>` (a profile that cannot
be kept is built again next time). Every later batch, and
every start of `serve`, reads that small record instead of the whole split. Pure: no Dagster
import.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from unified_ai.io.frame_chunks import FrameChunks
from unified_ai.io.json_records import put_record
from unified_ai.io.store import LineageStore, LineageStoreError
from unified_ai.names import TRAIN_SPLIT
from unified_ai.policies.review import TrainingProfile
from unified_ai.projects.schema import ProjectConfig

#: Where profiles are kept: `<project>/train_profiles/<split version>-<features digest>`.
TRAIN_PROFILES = "train_profiles"
#: The pointer action of a stored profile.
PROFILE_ACTION = "profile"
#: Rows of the train split read at a time while a profile is built.
PROFILE_CHUNK_ROWS = 200_000


def split_profile(
    store: LineageStore, project: ProjectConfig, card: Mapping[str, Any] | None
) -> TrainingProfile:
    """The profile of the train split `card` names, for its features.

    Returns an empty profile that flags nothing, its `source` saying why, when the card names
    no stored train split (no model scored the batch, or it was stored before cards named one).
    """
    if card is None:
        return TrainingProfile(source="no model scored this batch")
    version = card.get("train_split_version")
    split = [project.name, TRAIN_SPLIT]
    if not version or not store.has_version(split, version):
        return TrainingProfile(source="the model card names no stored train split")
    features = card.get("features") or {}
    numeric = [str(c) for c in features.get("numeric") or []]
    categorical = [str(c) for c in features.get("categorical") or []]
    source = f"{TRAIN_SPLIT}@{version}"
    path = profile_path(project.name, version, numeric, categorical)
    kept = _kept_profile(store, path, numeric, categorical, source)
    if kept is not None:
        return kept
    profile = _profile_in_chunks(store, split, version, numeric, categorical, source)
    try:
        put_record(
            store,
            project,
            path,
            _as_json(profile, numeric, categorical),
            action=PROFILE_ACTION,
            reason=f"built from {source}",
            upstream={"/".join(split): version},
        )
    except (TypeError, ValueError, OSError, LineageStoreError):
        # Not kept (an infinite training value JSON cannot hold, a store this process may
        # only read): built again next time, from the split.
        return profile
    return profile


def profile_path(
    project: str, split_version: str, numeric: Sequence[str], categorical: Sequence[str]
) -> list[str]:
    features = json.dumps([list(numeric), list(categorical)]).encode()
    return [project, TRAIN_PROFILES, f"{split_version}-{hashlib.sha256(features).hexdigest()[:16]}"]


def _kept_profile(
    store: LineageStore,
    path: list[str],
    numeric: Sequence[str],
    categorical: Sequence[str],
    source: str,
) -> TrainingProfile | None:
    """The kept profile at `path`, or None when there is none (or it is not of these features)."""
    version = store.current_version(path)
    if version is None:
        return None
    body = store.read_value(path, version)
    if not isinstance(body, dict) or body.get("features") != [list(numeric), list(categorical)]:
        return None  # built again, and kept in its place
    return TrainingProfile(
        ranges={c: (float(lo), float(hi)) for c, (lo, hi) in body["ranges"].items()},
        categories={c: frozenset(map(str, values)) for c, values in body["categories"].items()},
        source=source,
    )


def _profile_in_chunks(
    store: LineageStore,
    split: list[str],
    version: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    source: str,
) -> TrainingProfile:
    """The profile of a stored split, reading only the features' columns, chunk by chunk."""
    ranges: dict[str, tuple[float, float]] = {}
    categories: dict[str, set[str]] = {}
    chunks = FrameChunks(store, split, version, PROFILE_CHUNK_ROWS)
    for chunk in chunks.read([*numeric, *categorical]):
        part = TrainingProfile.of(chunk, numeric=numeric, categorical=categorical)
        for column, (low, high) in part.ranges.items():
            known = ranges.get(column)
            ranges[column] = (
                (low, high) if known is None else (min(known[0], low), max(known[1], high))
            )
        for column, values in part.categories.items():
            categories.setdefault(column, set()).update(values)
    return TrainingProfile(
        ranges=ranges,
        categories={c: frozenset(values) for c, values in categories.items()},
        source=source,
    )


def _as_json(
    profile: TrainingProfile, numeric: Sequence[str], categorical: Sequence[str]
) -> dict[str, Any]:
    return {
        "features": [list(numeric), list(categorical)],
        "ranges": {c: [low, high] for c, (low, high) in profile.ranges.items()},
        "categories": {c: sorted(values) for c, values in profile.categories.items()},
    }
