"""A train split's profile is built once, in chunks, and kept: later reads skip the split."""

import numpy as np
import pandas as pd
import pytest

from unified_ai.io import training_profiles
from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.io.training_profiles import TRAIN_PROFILES, split_profile
from unified_ai.names import TRAIN_SPLIT
from unified_ai.policies.review import TrainingProfile
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import write_project


@pytest.fixture
def project(tmp_path):
    return load_project_file(write_project(tmp_path / "projects"))


@pytest.fixture
def stored(tmp_path, project):
    """A stored train split of 1,000 rows and a card naming it."""
    store = LineageStore(tmp_path / "store")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=1000),
            "x2": np.where(rng.random(1000) < 0.1, np.nan, rng.integers(0, 50, 1000)),
            "color": rng.choice(["red", "blue", None, "green"], 1000),
            "size": rng.choice([1, 2.0, 3], 1000),
            "unused": "x",
        }
    )
    kind, files = serialize(frame)
    version = store.write_version([project.name, TRAIN_SPLIT], kind, files).version
    card = {
        "train_split_version": version,
        "features": {"numeric": ["x1", "x2"], "categorical": ["color", "size"]},
    }
    return store, frame, card


def test_built_in_chunks_as_from_the_whole_split_and_kept(stored, project, monkeypatch):
    store, frame, card = stored
    monkeypatch.setattr(training_profiles, "PROFILE_CHUNK_ROWS", 70)
    built = split_profile(store, project, card)
    whole = TrainingProfile.of(frame, numeric=["x1", "x2"], categorical=["color", "size"])
    assert built.ranges == whole.ranges
    assert (
        built.categories
        == whole.categories
        == {
            "color": frozenset({"red", "blue", "green"}),
            "size": frozenset({"1", "2", "3"}),
        }
    )
    assert built.source == f"{TRAIN_SPLIT}@{card['train_split_version']}"
    # Kept: the next read does not touch the split.
    monkeypatch.setattr(training_profiles, "FrameChunks", None)
    assert split_profile(store, project, card) == built
    (kept,) = store.asset_paths([project.name, TRAIN_PROFILES])
    manifest = store.read_manifest(kept, store.require_current(kept))
    assert manifest.upstream == {f"{project.name}/{TRAIN_SPLIT}": card["train_split_version"]}


def test_other_features_of_the_same_split_get_their_own_profile(stored, project):
    store, _, card = stored
    first = split_profile(store, project, card)
    other = {**card, "features": {"numeric": ["x1"], "categorical": []}}
    second = split_profile(store, project, other)
    assert set(second.ranges) == {"x1"} and not second.categories
    assert split_profile(store, project, card) == first
    assert len(store.asset_paths([project.name, TRAIN_PROFILES])) == 2


def test_a_profile_that_cannot_be_kept_is_still_given(stored, project, monkeypatch):
    store, _, card = stored

    def read_only(*args, **kwargs):
        raise PermissionError("read-only store")

    monkeypatch.setattr(store, "write_version", read_only)
    assert set(split_profile(store, project, card).ranges) == {"x1", "x2"}
    assert not store.asset_paths([project.name, TRAIN_PROFILES])


def test_a_card_naming_no_stored_split_gives_an_empty_profile(stored, project):
    store, _, card = stored
    assert split_profile(store, project, None).source == "no model scored this batch"
    missing = {**card, "train_split_version": "0" * 16}
    empty = split_profile(store, project, missing)
    assert not empty.ranges and not empty.categories
    assert empty.source == "the model card names no stored train split"
