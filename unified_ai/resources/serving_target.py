"""Where the serving endpoint runs on a cluster: the image and environment its pods get."""

import dagster as dg

import unified_ai
from unified_ai.runtime import HOME_ENV, IMAGE_ENV, MLFLOW_URI_ENV, PROJECTS_ENV, RUNTIME_ENV

#: Set in the serving pods as in the code location's (`helm/user-deployments-values.yaml`).
TELEMETRY_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true"}


class ServingTarget(dg.ConfigurableResource):
    """The settings the code location's own pods run with, for the serving pods to share.

    The endpoint must read the same lineage store and MLflow as the code location, from the same
    image, so `serving_config` renders these (bound once, from `runtime.Settings`).

    Attributes:
        image: The code location's image (`DAGSTER_CURRENT_IMAGE`, set by the Helm chart);
            empty outside a cluster.
        runtime: `UNIFIED_AI_RUNTIME` of the code location.
        home: `UNIFIED_AI_HOME`: the lineage store's root.
        mlflow_tracking_uri: `MLFLOW_TRACKING_URI`.
        projects_dir: `UNIFIED_AI_PROJECTS`, when the project comes from there.
    """

    image: str = ""
    runtime: str = "local"
    home: str = ""
    mlflow_tracking_uri: str = ""
    projects_dir: str = ""

    @classmethod
    def from_settings(cls, settings) -> "ServingTarget":
        return cls(
            image=settings.image,
            runtime=settings.runtime.value,
            home=settings.home,
            mlflow_tracking_uri=settings.mlflow_tracking_uri,
            projects_dir=settings.projects_dir or "",
        )

    def pod_image(self) -> tuple[str, str]:
        """(image, where it came from). Outside a cluster: the tag `docker build` would give."""
        if self.image:
            return self.image, IMAGE_ENV
        return f"unified-ai:{unified_ai.__version__}", f"default ({IMAGE_ENV} is not set)"

    def pod_env(self) -> dict[str, str]:
        """Environment variables of the serving container, by name."""
        env = {
            RUNTIME_ENV: self.runtime,
            HOME_ENV: self.home,
            MLFLOW_URI_ENV: self.mlflow_tracking_uri,
        }
        if self.projects_dir:
            env[PROJECTS_ENV] = self.projects_dir
        return {**env, **TELEMETRY_ENV}
