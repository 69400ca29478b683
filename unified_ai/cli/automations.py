"""Pausing and resuming a project's automations (`unified-ai impact --pause`, `resume`).

A paused automation is a *stopped Dagster sensor*: Dagster's own sensor state is the switch, so
the UI's toggle shows it and can undo it, and the daemon does not evaluate the sensor at all.
The state is changed through the GraphQL API the UI uses: on a webserver (`--url`), or locally
through `dagster-graphql` against the instance in `DAGSTER_HOME`, with the code location loaded
under the name `dagster dev` gives it. Loading it costs a code-location start (seconds), once
per read and once per change.

Why an automation was paused (the suspect version, who, when) is kept beside the artifacts
under `UNIFIED_AI_HOME` (a folder or an object-store URL, through fsspec like the lineage store)
and shown while Dagster reports the sensor stopped. The note decides nothing: a sensor resumed
from the UI runs, whatever the note says.
"""

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_ai.cli.launch import LaunchError, post_graphql
from unified_ai.names import CODE_LOCATION
from unified_ai.runtime import dagster_home

RUNNING = "RUNNING"
STOPPED = "STOPPED"
#: Seconds to wait for the local code location to load and answer.
LOCAL_TIMEOUT_SECONDS = 300

_STARTED = """
    __typename
    ... on Sensor { name sensorState { status } }
    ... on SensorNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
"""
_STOPPED = """
    __typename
    ... on StopSensorMutationResult { instigationState { name status } }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
"""


class AutomationError(RuntimeError):
    """A sensor could not be read, paused or resumed; the message says which and why."""


@dataclass(frozen=True)
class SensorState:
    """A sensor as Dagster reports it, with the note of its last pause while it is stopped."""

    name: str
    status: str
    note: dict | None = None

    @property
    def paused(self) -> bool:
        return self.status == STOPPED


def _document(kind: str, field: str, arg: str, arg_type: str, selection: str, count: int) -> str:
    """One GraphQL document touching `count` sensors (aliases s0, s1, ...) in one request."""
    params = ", ".join(f"$a{i}: {arg_type}" for i in range(count))
    body = "\n".join(f"  s{i}: {field}({arg}: $a{i}) {{{selection}}}" for i in range(count))
    return f"{kind} Automations({params}) {{\n{body}\n}}"


def _local(document: str, variables: dict) -> dict:
    """Run `document` with `dagster-graphql` against the instance in `DAGSTER_HOME`."""
    if not dagster_home():
        raise AutomationError(
            "DAGSTER_HOME is not set: point it at the instance `dagster dev` uses, or pass --url"
        )
    with tempfile.TemporaryDirectory() as folder:
        # The location name makes the sensors the same ones `dagster dev` and the daemon see.
        workspace = Path(folder) / "workspace.yaml"
        location = {"module_name": "unified_ai.definitions", "location_name": CODE_LOCATION}
        workspace.write_text(json.dumps({"load_from": [{"python_module": location}]}))
        output = Path(folder) / "out.json"
        command = [
            # `dagster-graphql`, run by this interpreter (its script may not be on PATH).
            *(sys.executable, "-c", "from dagster_graphql.cli import main; main()"),
            *("-w", str(workspace), "-t", document, "-v", json.dumps(variables)),
            *("-o", str(output)),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=LOCAL_TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise AutomationError(
                f"loading the code location took over {LOCAL_TIMEOUT_SECONDS}s"
            ) from None
        if not output.exists():
            lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
            raise AutomationError(
                "dagster-graphql failed: " + (lines[-1] if lines else f"exit {done.returncode}")
            )
        return json.loads(output.read_text())


def _run(document: str, variables: dict, url: str | None) -> dict[str, Any]:
    if url:
        try:
            reply = post_graphql(url, document, variables)
        except LaunchError as exc:
            raise AutomationError(str(exc)) from None
    else:
        reply = _local(document, variables)
    if reply.get("errors"):
        raise AutomationError(f"GraphQL: {reply['errors'][0].get('message', reply['errors'][0])}")
    return reply.get("data") or {}


_SENSORS = """
query Sensors {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes { name location { name } sensors { name sensorState { id status } } }
    }
    ... on PythonError { message }
  }
}
"""


@dataclass(frozen=True)
class _Found:
    selector: dict[str, str]
    state_id: str
    status: str


def _find(names: Sequence[str], url: str | None) -> dict[str, _Found]:
    """Each sensor's selector and state, looked up in every code location of the deployment.

    Sensors are found by name (project names make them unique), so the code location may have
    any name: `unified_ai` locally, the Helm deployment's name in a cluster.
    """
    answer = _run(_SENSORS, {}, url).get("repositoriesOrError") or {}
    if "message" in answer:
        raise AutomationError(f"listing sensors: {answer['message'].splitlines()[0]}")
    found = {}
    for repository in answer.get("nodes", []):
        for sensor in repository["sensors"]:
            found[sensor["name"]] = _Found(
                selector={
                    "repositoryLocationName": repository["location"]["name"],
                    "repositoryName": repository["name"],
                    "sensorName": sensor["name"],
                },
                state_id=sensor["sensorState"]["id"],
                status=sensor["sensorState"]["status"],
            )
    missing = [name for name in names if name not in found]
    if missing:
        where = url or "the local code location"
        raise AutomationError(f"sensor(s) {', '.join(missing)} not found on {where}")
    return {name: found[name] for name in names}


def _changed(data: dict, names: Sequence[str], what: str) -> None:
    """Raise for the first sensor whose mutation answered with an error."""
    for i, name in enumerate(names):
        answer = data.get(f"s{i}") or {}
        if "message" in answer:
            raise AutomationError(f"sensor {name}: {what}: {answer['message'].splitlines()[0]}")


def statuses(names: Sequence[str], url: str | None = None) -> dict[str, str]:
    """`RUNNING` or `STOPPED` for each sensor, as Dagster (and its UI) report it."""
    if not names:
        return {}
    return {name: found.status for name, found in _find(names, url).items()}


def stop(names: Sequence[str], url: str | None = None) -> list[str]:
    """Stop the sensors; returns those that were running."""
    if not names:
        return []
    running = [(n, f.state_id) for n, f in _find(names, url).items() if f.status == RUNNING]
    if running:
        document = _document("mutation", "stopSensor", "id", "String!", _STOPPED, len(running))
        data = _run(document, {f"a{i}": state for i, (_, state) in enumerate(running)}, url)
        _changed(data, [name for name, _ in running], "not stopped")
    return [name for name, _ in running]


def start(names: Sequence[str], url: str | None = None) -> list[str]:
    """Start the sensors; returns those that were stopped."""
    if not names:
        return []
    stopped = [(n, f.selector) for n, f in _find(names, url).items() if f.status == STOPPED]
    if stopped:
        document = _document(
            "mutation", "startSensor", "sensorSelector", "SensorSelector!", _STARTED, len(stopped)
        )
        data = _run(document, {f"a{i}": selector for i, (_, selector) in enumerate(stopped)}, url)
        _changed(data, [name for name, _ in stopped], "not started")
    return [name for name, _ in stopped]


_OBSERVE = """
mutation Observe($params: ReportRunlessAssetEventsParams!) {
  reportRunlessAssetEvents(eventParams: $params) {
    __typename
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}
"""


def observe(
    asset_path: Sequence[str], partition: str | None, description: str, url: str | None = None
) -> None:
    """Record `description` as an observation of the asset, shown on its page in the UI.

    Locally it goes straight to the instance in `DAGSTER_HOME` (no code location needed).
    """
    if url:
        params = {
            "eventType": "ASSET_OBSERVATION",
            "assetKey": {"path": list(asset_path)},
            "partitionKeys": [partition] if partition is not None else None,
            "description": description,
        }
        answer = _run(_OBSERVE, {"params": params}, url).get("reportRunlessAssetEvents") or {}
        if "message" in answer:
            raise AutomationError(f"observing {'/'.join(asset_path)}: {answer['message']}")
        return
    import dagster as dg

    if not dagster_home():
        raise AutomationError(
            "DAGSTER_HOME is not set: point it at the instance `dagster dev` uses, or pass --url"
        )
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(
            dg.AssetObservation(
                asset_key=dg.AssetKey(list(asset_path)),
                partition=partition,
                description=description,
            )
        )


class PauseNotes:
    """Why each sensor was last paused, one small JSON object per sensor under `root`.

    Args:
        root: Folder or fsspec URL (`<UNIFIED_AI_HOME>/automations`).
        storage_options: fsspec options for an object store.
    """

    def __init__(self, root: str, storage_options: dict | None = None):
        from fsspec.core import url_to_fs

        options = dict(storage_options or {})
        if "://" in root and not root.startswith("file://"):
            options.setdefault("use_listings_cache", False)  # other processes write notes
        self.fs, path = url_to_fs(root, **options)
        self.root = path.rstrip("/")
        self._local = "file" in self.fs.protocol or "local" in self.fs.protocol

    def _path(self, sensor: str) -> str:
        return f"{self.root}/{sensor}.json"

    def write(self, sensor: str, reason: str, actor: str) -> dict:
        from unified_ai.io.store import utc_now

        note = {"sensor": sensor, "reason": reason, "by": actor, "at": utc_now()}
        body = json.dumps(note).encode()
        path = self._path(sensor)
        if self._local:
            # Written beside, then renamed: a reader never sees half a note.
            self.fs.makedirs(self.root, exist_ok=True)
            self.fs.pipe_file(f"{path}.partial", body)
            self.fs.mv(f"{path}.partial", path)
        else:
            self.fs.pipe_file(path, body)  # one object put is atomic
        return note

    def read(self, sensor: str) -> dict | None:
        try:
            return json.loads(self.fs.cat_file(self._path(sensor)))
        except FileNotFoundError:
            return None


def describe(names: Sequence[str], notes: PauseNotes, url: str | None = None) -> list[SensorState]:
    """Each sensor's Dagster status, with why it was paused while it is stopped."""
    return [
        SensorState(name, status, notes.read(name) if status == STOPPED else None)
        for name, status in statuses(names, url).items()
    ]
