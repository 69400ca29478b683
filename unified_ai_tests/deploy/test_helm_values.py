"""The Helm values, merged over the charts' defaults as Helm does, pass the charts' schemas.

The charts' Kubernetes `$ref`s point at remote URLs; they are resolved offline from the
definitions bundled in `kubernetes-validate`.
"""

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "helm"
SCHEMAS = HELM / "schema"
REMOTE_DEFINITIONS = [
    "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json",
    "https://raw.githubusercontent.com/yannh/kubernetes-json-schema/master/v1.19.0/_definitions.json",
]


def kubernetes_registry(version: str = "1.30.0") -> Registry:
    bundled = (
        Path(kubernetes_validate.__file__).parent
        / "kubernetes-json-schema"
        / f"v{version}-local"
        / "_definitions.json"
    )
    definitions = json.loads(bundled.read_text())["$defs"]
    resource = Resource.from_contents(
        {"definitions": definitions, "$defs": definitions}, default_specification=DRAFT7
    )
    return Registry().with_resources([(url, resource) for url in REMOTE_DEFINITIONS])


def helm_merge(base, override):
    """Helm's merge: maps merge key by key, everything else (lists too) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = helm_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def schema_errors(schema_file: str, values: dict) -> list[str]:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema, registry=kubernetes_registry())
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}"
        for e in validator.iter_errors(values)
    ]


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def user_deployment_values(*files: str) -> dict:
    merged = load(SCHEMAS / "dagster-user-deployments.default-values.yaml")
    for name in files:
        merged = helm_merge(merged, load(HELM / name))
    return merged


@pytest.mark.parametrize(
    "files",
    [
        ("user-deployments-values.yaml",),
        ("user-deployments-values.yaml", "overlays/staging.yaml"),
        ("user-deployments-values.yaml", "overlays/prod.yaml"),
    ],
)
def test_user_deployments_values_pass_the_chart_schema(files):
    values = user_deployment_values(*files)
    assert schema_errors("dagster-user-deployments.values.schema.json", values) == []
    [deployment] = values["deployments"]
    env = {item["name"]: item.get("value") for item in deployment["env"]}
    assert env["UNIFIED_AI_RUNTIME"] == "k8s"
    # The k8s runtime refuses an unsigned store: the key comes from a Secret, never a value.
    [signing] = [item for item in deployment["env"] if item["name"] == "UNIFIED_AI_SIGNING_KEY"]
    assert "value" not in signing
    assert signing["valueFrom"]["secretKeyRef"] == {
        "name": "unified-ai-runtime",
        "key": "UNIFIED_AI_SIGNING_KEY",
    }
    assert "UNIFIED_AI_ALLOW_UNSIGNED" not in env
    assert env["UNIFIED_AI_HOME"].startswith("s3://")
    assert env["MLFLOW_TRACKING_URI"].startswith("http")
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "unified_ai.definitions"]


def test_dagster_chart_values_pass_the_chart_schema():
    values = load(HELM / "dagster-values.yaml")
    assert schema_errors("dagster.values.schema.EXCERPT.json", values) == []
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"


def test_the_validator_catches_a_broken_value():
    values = user_deployment_values("user-deployments-values.yaml")
    values["deployments"][0]["image"]["pullPolicy"] = "Sometimes"
    errors = schema_errors("dagster-user-deployments.values.schema.json", values)
    assert any("deployments/0/image/pullPolicy" in e for e in errors)


def test_dockerfile_builds_a_non_root_image_without_entrypoint():
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    instructions = [line.split()[0].upper() for line in lines]
    assert "ENTRYPOINT" not in instructions and "CMD" not in instructions
    user = [line for line in lines if line.upper().startswith("USER ")]
    assert user and user[-1].split()[1] not in {"root", "0"}
    assert any("dagster_postgres, dagster_k8s" in line for line in lines)
