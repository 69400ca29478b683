"""Following the deployment pointer on local disk and on an object store; loading safely."""

import uuid

import numpy as np
import pandas as pd
import pytest

from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.rows import as_model_categories
from unified_ai.ml.scorer_compile import compile_pipeline
from unified_ai.ml.training import fit, predict_proba
from unified_ai.projects.loader import load_project_file
from unified_ai.serving.follower import DeploymentFollower, encoder_categories, load_deployment
from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.serving.helpers import deploy


@pytest.fixture
def project(projects_dir):
    return load_project_file(write_project(projects_dir))


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LineageStore(tmp_path / "store")
    options = request.getfixturevalue("s3_server")
    return LineageStore(f"s3://lineage/{uuid.uuid4().hex}", options)


def test_follows_the_pointer_and_keeps_the_previous_model_for_rollback(project, store):
    swaps = []
    follower = DeploymentFollower(store, project, on_swap=lambda old, new: swaps.append(new))
    follower.poll_once()
    assert follower.current is None and follower.status()["pointer"] is None

    first, first_model = deploy(store, project, seed=0)
    follower.poll_once()
    served = follower.current
    assert (served.deployment_version, served.model_version) == (first, first_model)
    assert served.features.all == ["x1", "x2", "colour"]
    assert served.categories == {"colour": frozenset({"red", "green", "blue"})}

    second, _ = deploy(store, project, seed=1)
    follower.poll_once()
    assert follower.current.deployment_version == second
    assert served.deployment_version == first  # a request holding the old one is unaffected

    store.set_current(["small", "deployed_model"], first, action="rollback", reason="r")
    follower.poll_once()
    assert follower.current is served  # the same loaded object: no load on rollback
    assert [s.deployment_version for s in swaps] == [first, second, first]
    assert follower.status()["swaps"] == 3 and follower.status()["last_error"] is None


def test_a_deployment_naming_a_missing_model_is_refused_and_retried(project, store):
    good, _ = deploy(store, project)
    failures = []
    follower = DeploymentFollower(store, project, retry_seconds=60, on_failure=failures.append)
    follower.poll_once()
    payload = {"model_version": "0123456789abcdef"}
    broken = store.write_version(["small", "deployed_model"], *serialize(payload))
    store.set_current(["small", "deployed_model"], broken.version, action="materialize")
    follower.poll_once()
    follower.poll_once()  # not retried (or reported) again before retry_seconds
    assert follower.current.deployment_version == good
    assert len(failures) == 1
    assert failures[0].startswith("small/candidate_model@0123456789abcdef")
    assert follower.status()["last_error"] == failures[0]


def test_a_model_that_cannot_score_is_refused_with_its_version(project, tmp_path):
    store = LineageStore(tmp_path / "store")
    pipeline, _ = fit(project, make_frame())
    # A card whose features the pipeline was not trained on: it cannot score a probe row.
    card = {"features": {"numeric": ["x1"], "categorical": []}}
    model = store.write_version(
        ["small", "candidate_model"], *serialize(TrainedModel(pipeline, card))
    )
    deployment = store.write_version(
        ["small", "deployed_model"], *serialize({"model_version": model.version})
    )
    with pytest.raises(Exception, match=rf"^small/candidate_model@{model.version}: the model "):
        load_deployment(store, project, deployment.version)


def test_numbers_reach_a_float_trained_category_as_the_model_knows_them(project):
    """A categorical column read as float in training (`0.0`, `1.0`: blanks made it float)."""
    frame = make_frame()
    frame["colour"] = np.where(frame["colour"] == "red", 1.0, 0.0)
    frame.loc[::17, "colour"] = np.nan
    pipeline, features = fit(project, frame)
    known = encoder_categories(TrainedModel(pipeline))
    assert known == {"colour": frozenset({"0.0", "1.0"})}
    # A served model answers from its compiled scorer, which knows the same categories.
    compiled = TrainedModel(pipeline, scorer=compile_pipeline(pipeline))
    assert encoder_categories(compiled) == known
    sent = frame.head(40).copy()
    # What a JSON client sends: whole numbers (and nulls), in an object column like the API's.
    whole = [v if v != v else int(v) for v in sent["colour"]]
    sent["colour"] = pd.Series(whole, index=sent.index, dtype=object)
    expected = predict_proba(pipeline, frame.head(40), features)
    aligned = as_model_categories(sent, ["colour"], known)
    assert np.allclose(predict_proba(pipeline, aligned, features), expected)
    # Plain str() would have made `1` an unknown category, silently ignored by the encoder.
    assert not np.allclose(predict_proba(pipeline, sent, features), expected)
