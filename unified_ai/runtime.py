"""The one place that reads the process environment.

Everything that depends on where the code location runs (runtime, artifact root, extra
project directory, MLflow tracking URI, the store's signing key) is resolved here, lazily,
when `load_settings()` is called: importing this module reads nothing.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

RUNTIME_ENV = "UNIFIED_AI_RUNTIME"
HOME_ENV = "UNIFIED_AI_HOME"
PROJECTS_ENV = "UNIFIED_AI_PROJECTS"
MLFLOW_URI_ENV = "MLFLOW_TRACKING_URI"
IDENTITY_TAG_ENV = "UNIFIED_AI_IDENTITY_TAG"
SIGNING_KEY_ENV = "UNIFIED_AI_SIGNING_KEY"
#: `1` lets the k8s runtime run on an unsigned store (refused otherwise: a shared store
#: needs signed pointers and history).
ALLOW_UNSIGNED_ENV = "UNIFIED_AI_ALLOW_UNSIGNED"
#: The bearer token `unified-ai serve` requires for writes (labels); unset = labels disabled.
SERVE_TOKEN_ENV = "UNIFIED_AI_SERVE_TOKEN"
#: Set by the Dagster Helm chart in the code location's pods; Dagster runs its run and step pods
#: (and Pipes training pods) from this image, and the serving endpoint's manifests name it too.
IMAGE_ENV = "DAGSTER_CURRENT_IMAGE"
MLFLOW_UI_URL_ENV = "UNIFIED_AI_MLFLOW_UI_URL"
DAGSTER_UI_URL_ENV = "UNIFIED_AI_DAGSTER_UI_URL"
#: Where `mlflow ui` and `dagster dev` listen by default.
DEFAULT_MLFLOW_UI_URL = "http://localhost:5000"
DEFAULT_DAGSTER_UI_URL = "http://localhost:3000"
#: A shorter key is too easy to guess for an HMAC that guards a shared store.
MIN_SIGNING_KEY_LENGTH = 16
#: A shorter serving token is too easy to guess by trying.
MIN_SERVE_TOKEN_LENGTH = 16
DEFAULT_HOME = ".unified_ai"
#: Dagster's own: the instance folder the CLI and local runs use.
DAGSTER_HOME_ENV = "DAGSTER_HOME"
#: The login name, who acts when a CLI command is given no --actor/--approver.
USER_ENV = "USER"
#: MLflow's own switch: its usage telemetry is off unless the user sets this to a false value.
MLFLOW_TELEMETRY_ENV = "MLFLOW_DISABLE_TELEMETRY"


class Runtime(str, Enum):
    """Where runs execute."""

    LOCAL = "local"
    K8S = "k8s"


class RuntimeConfigError(ValueError):
    """The environment names a runtime or setting that does not exist."""


@dataclass(frozen=True)
class Settings:
    """Resolved runtime settings.

    Attributes:
        runtime: The selected runtime.
        home: Root of the artifact store and local state (a local path or an fsspec URL).
        projects_dir: Extra directory of project YAML files, if any.
        mlflow_tracking_uri: Where MLflow tracking and the model registry live.
        identity_tag: Run tag carrying an authenticated user name, if a proxy sets one.
        signing_key: HMAC key for the lineage store's manifests, pointers and history ("" =
            unsigned). Kept out of `repr` so it never reaches a log line.
        mlflow_ui_url: Base URL of the MLflow UI that links point to: the tracking URI when it
            is an http(s) server, else what `mlflow ui` serves by default.
        dagster_ui_url: Base URL of the Dagster UI that MLflow runs link back to.
        image: The code location's container image ("" outside a cluster).
        serve_token: Bearer token the serving endpoint requires for writes ("" = writes are
            refused). Kept out of `repr`, like the signing key.
        mlflow_telemetry: Whether MLflow may send usage telemetry: only when the user sets
            `MLFLOW_DISABLE_TELEMETRY` to a false value (`false`, `0`, `no`).
    """

    runtime: Runtime
    home: str
    projects_dir: str | None
    mlflow_tracking_uri: str
    identity_tag: str = ""
    signing_key: str = field(default="", repr=False)
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL
    dagster_ui_url: str = DEFAULT_DAGSTER_UI_URL
    image: str = ""
    serve_token: str = field(default="", repr=False)
    mlflow_telemetry: bool = False

    # The layout of UNIFIED_AI_HOME, in one place for the code location and the CLI.
    def _under(self, *parts: str) -> str:
        return "/".join([self.home.rstrip("/"), *parts])

    @property
    def store_root(self) -> str:
        return self._under("store")

    @property
    def inbox_root(self) -> str:
        return self._under("inbox")

    @property
    def automations_root(self) -> str:
        """Why each automation was last paused (its on/off state is Dagster's own)."""
        return self._under("automations")

    @property
    def outbox_root(self) -> str:
        return self._under("notifications", "outbox")

    @property
    def mlflow_artifact_root(self) -> str:
        return self._under("mlflow-artifacts")


def parse_runtime(value: str | None) -> Runtime:
    """Return the runtime named by `value` (default `local`); anything else is an error."""
    if value is None or value.strip() == "":
        return Runtime.LOCAL
    try:
        return Runtime(value.strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in Runtime)
        raise RuntimeConfigError(
            f"{RUNTIME_ENV}={value!r} is not a known runtime (choose one of: {choices})"
        ) from None


def _is_url(value: str) -> bool:
    return "://" in value


def _require_cluster_config(env: Mapping[str, str]) -> None:
    """Pods share nothing local: the store and MLflow must be services every pod reaches."""
    if not env.get(HOME_ENV):
        raise RuntimeConfigError(
            f"{RUNTIME_ENV}=k8s needs {HOME_ENV}: an object-store URL (s3://, gs://, ...) or a "
            "volume mounted in every pod, because each step runs in its own pod"
        )
    uri = env.get(MLFLOW_URI_ENV, "")
    if not uri or uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri:
        raise RuntimeConfigError(
            f"{RUNTIME_ENV}=k8s needs {MLFLOW_URI_ENV} pointing at an MLflow tracking server "
            f"(got {uri or 'nothing'}): a SQLite or file store cannot be shared between pods"
        )


def _require_signed_store(env: Mapping[str, str]) -> None:
    """A store shared by every pod of a cluster is signed, unless unsigned is allowed explicitly."""
    allow = env.get(ALLOW_UNSIGNED_ENV, "").strip()
    if allow not in ("", "0", "1"):
        raise RuntimeConfigError(f"{ALLOW_UNSIGNED_ENV}={allow!r} is not 0 or 1")
    if not env.get(SIGNING_KEY_ENV, "").strip() and allow != "1":
        raise RuntimeConfigError(
            f"{RUNTIME_ENV}=k8s refuses an unsigned lineage store: set {SIGNING_KEY_ENV} (from a "
            f"Secret) or, to run unsigned anyway, {ALLOW_UNSIGNED_ENV}=1"
        )


def _signing_key(env: Mapping[str, str]) -> str:
    key = env.get(SIGNING_KEY_ENV, "")
    if key and len(key.strip()) < MIN_SIGNING_KEY_LENGTH:
        # The message never echoes the key itself.
        raise RuntimeConfigError(
            f"{SIGNING_KEY_ENV} is set but shorter than {MIN_SIGNING_KEY_LENGTH} characters; use "
            "a long random secret (e.g. the output of `openssl rand -hex 32`)"
        )
    return key


def _serve_token(env: Mapping[str, str]) -> str:
    token = env.get(SERVE_TOKEN_ENV, "").strip()
    if token and len(token) < MIN_SERVE_TOKEN_LENGTH:
        # The message never echoes the token itself.
        raise RuntimeConfigError(
            f"{SERVE_TOKEN_ENV} is set but shorter than {MIN_SERVE_TOKEN_LENGTH} characters; use "
            "a long random secret (e.g. the output of `openssl rand -hex 32`)"
        )
    return token


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def dagster_home(environ: Mapping[str, str] | None = None) -> str:
    """The Dagster instance folder (`DAGSTER_HOME`) the CLI and local runs use; "" when unset."""
    return _environ(environ).get(DAGSTER_HOME_ENV, "").strip()


def login_name(environ: Mapping[str, str] | None = None) -> str:
    """Who is at the terminal (`USER`); "" when unknown."""
    return _environ(environ).get(USER_ENV, "").strip()


def secret(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The secret held by the environment variable `name` (e.g. a channel's `token_env`).

    "" when `name` is empty or unset. The value is for the caller to use, never to record.
    """
    return _environ(environ).get(name, "") if name else ""


def mlflow_telemetry(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the user let MLflow send usage telemetry (`MLFLOW_DISABLE_TELEMETRY=false`)."""
    value = _environ(environ).get(MLFLOW_TELEMETRY_ENV, "").strip().lower()
    return value in ("false", "0", "no", "off")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from `environ` (default: the process environment)."""
    env = _environ(environ)
    runtime = parse_runtime(env.get(RUNTIME_ENV))
    if runtime is Runtime.K8S:
        _require_cluster_config(env)
        _require_signed_store(env)
    home = env.get(HOME_ENV) or DEFAULT_HOME
    if not _is_url(home):
        home = str(Path(home).expanduser().resolve())
    projects_dir = env.get(PROJECTS_ENV) or None
    tracking_uri = env.get(MLFLOW_URI_ENV)
    if not tracking_uri:
        if _is_url(home):
            raise RuntimeConfigError(
                f"{HOME_ENV} is an object-store URL ({home}); set {MLFLOW_URI_ENV} to an MLflow "
                "server, because a SQLite tracking database cannot live in an object store"
            )
        tracking_uri = f"sqlite:///{Path(home) / 'mlflow.db'}"
    return Settings(
        runtime=runtime,
        home=home,
        projects_dir=projects_dir,
        mlflow_tracking_uri=tracking_uri,
        identity_tag=env.get(IDENTITY_TAG_ENV, ""),
        signing_key=_signing_key(env),
        mlflow_ui_url=_ui_url(env, MLFLOW_UI_URL_ENV, tracking_uri, DEFAULT_MLFLOW_UI_URL),
        dagster_ui_url=_ui_url(env, DAGSTER_UI_URL_ENV, None, DEFAULT_DAGSTER_UI_URL),
        image=env.get(IMAGE_ENV, "").strip(),
        serve_token=_serve_token(env),
        mlflow_telemetry=mlflow_telemetry(env),
    )


def _ui_url(env: Mapping[str, str], name: str, tracking_uri: str | None, default: str) -> str:
    """The URL in `name`, else an http(s) tracking server's own address, else the default."""
    value = (env.get(name) or "").strip()
    if value and not value.startswith(("http://", "https://")):
        raise RuntimeConfigError(f"{name}={value!r} is not an http(s) URL of a web UI")
    for candidate in (value, tracking_uri or ""):
        if candidate.startswith(("http://", "https://")):
            return candidate.rstrip("/")
    return default
