"""Shared fixtures: throwaway homes, a small synthetic project, real Dagster instances."""

import os
import textwrap
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def make_frame(rows: int = 800, seed: int = 0) -> pd.DataFrame:
    """A learnable binary problem with a numeric, a categorical and a segment column."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    x2 = rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows)
    region = rng.choice(["north", "south"], size=rows)
    logit = 2.0 * x1 - 1.0 * x2 + np.where(colour == "red", 0.8, 0.0)
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "region": region, "label": label})


SMALL_PROJECT = """\
name: {name}
description: Synthetic test project.
data:
  source: {source}
target: label
features:
  numeric: [x1, x2]
  categorical: [colour]
segments: [region]
columns:
  colour: {{categories: [red, green, blue]}}
  x1: {{min: -10, max: 10}}
estimator:
  class: LogisticRegression
  params: {{max_iter: 200}}
split: {{holdout_fraction: 0.3, seed: 3}}
evaluation: {{bootstrap_samples: 60}}
policy:
  quality_floor: {{roc_auc: {floor}}}
  beats_champion: {{metric: roc_auc, tolerance: 0.02}}
  fairness: {{metric: true_positive_rate, max_gap: 0.3, min_segment_size: 20}}
{policy_extra}"""


def write_project(
    folder: Path,
    name: str = "small",
    floor: float = 0.6,
    source: str | None = None,
    policy_extra: str = "",
) -> Path:
    """Write a small project (and its CSV unless `source` is given) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    if source is None:
        make_frame().to_csv(folder / f"{name}.csv", index=False)
        source = f"{name}.csv"
    path = folder / f"{name}.yaml"
    text = SMALL_PROJECT.format(name=name, source=source, floor=floor, policy_extra=policy_extra)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh UNIFIED_AI_HOME; MLflow defaults to SQLite inside it."""
    folder = tmp_path / "home"
    monkeypatch.setenv("UNIFIED_AI_HOME", str(folder))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("UNIFIED_AI_PROJECTS", raising=False)
    monkeypatch.delenv("UNIFIED_AI_RUNTIME", raising=False)
    monkeypatch.delenv("UNIFIED_AI_SIGNING_KEY", raising=False)
    return folder


@pytest.fixture
def projects_dir(tmp_path) -> Path:
    return tmp_path / "projects"


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API (moto's server mode) on loopback; yields fsspec storage options."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials).create_bucket(
        Bucket="lineage"
    )
    yield {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    server.stop()
