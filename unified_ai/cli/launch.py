"""Launching a job the way the UI would, for the CLI.

Locally the run executes in this process on the instance in `DAGSTER_HOME` (it shows up in the
UI); with `--url` it is submitted to a running webserver and awaited.
"""

import re
import time
from dataclasses import dataclass
from urllib.parse import urlparse

_TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
_FAILURES_QUERY = """
query RunFailures($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent { stepKey error { message } }
      }
    }
  }
}
"""


class LaunchError(RuntimeError):
    """The run could not be launched or did not succeed; the message says why in one line."""


@dataclass(frozen=True)
class LaunchResult:
    run_id: str
    status: str


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), text)
    # A remote error reads "dagster._core.definitions.events.Failure: <description>".
    return re.sub(r"^[\w.]+\.Failure: ", "", line)


def step_failure_messages(result) -> dict[str, str]:
    """Step key → the one-line reason it failed (a `dg.Failure` description when given)."""
    messages = {}
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        data = event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            messages[event.step_key] = data.user_failure_data.description
        elif data.error:
            messages[event.step_key] = _first_line(data.error.message)
    return messages


def run_local(job_name: str, run_config: dict, tags: dict[str, str]) -> LaunchResult:
    """Execute in this process against the instance in `DAGSTER_HOME` (visible in the UI)."""
    import dagster as dg

    from unified_ai.runtime import dagster_home

    if not dagster_home():
        raise LaunchError(
            "DAGSTER_HOME is not set: point it at the instance `dagster dev` uses, or pass --url"
        )
    from unified_ai.definitions import defs

    job = defs().resolve_job_def(job_name)
    with dg.DagsterInstance.get() as instance:
        # The run's events go to the instance (and the UI); keep the terminal to one line.
        quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        result = job.execute_in_process(
            run_config={**run_config, **quiet}, instance=instance, tags=tags, raise_on_error=False
        )
    if not result.success:
        messages = list(step_failure_messages(result).values())
        raise LaunchError(messages[0] if messages else f"run {result.run_id} failed")
    return LaunchResult(run_id=result.run_id, status="SUCCESS")


def post_graphql(url: str, document: str, variables: dict, timeout: float = 60) -> dict:
    """Run `document` on the webserver at `url` through the GraphQL endpoint its UI uses.

    Returns the whole reply (`data`, and `errors` when GraphQL refused it).

    Raises:
        LaunchError: The endpoint is unreachable or answered with an HTTP error or no JSON.
    """
    import json
    import urllib.error
    import urllib.request

    parsed = urlparse(url if "://" in url else f"http://{url}")
    endpoint = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}/graphql"
    request = urllib.request.Request(
        endpoint,
        data=json.dumps({"query": document, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise LaunchError(f"{endpoint}: HTTP {exc.code} {exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise LaunchError(f"{endpoint}: unreachable ({exc})") from None


def run_remote(
    url: str, job_name: str, run_config: dict, tags: dict[str, str], timeout: float = 600
) -> LaunchResult:
    """Submit to a webserver and wait for the run to finish."""
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    parsed = urlparse(url if "://" in url else f"http://{url}")
    client = DagsterGraphQLClient(
        parsed.hostname or "localhost",
        port_number=parsed.port,
        use_https=parsed.scheme == "https",
    )
    try:
        run_id = client.submit_job_execution(job_name, run_config=run_config, tags=tags)
        deadline = time.monotonic() + timeout
        while True:
            status = client.get_run_status(run_id).value
            if status in _TERMINAL:
                break
            if time.monotonic() > deadline:
                raise LaunchError(f"run {run_id} still {status} after {timeout:.0f}s")
            time.sleep(0.5)
    except DagsterGraphQLClientError as exc:
        raise LaunchError(f"{url}: {_first_line(str(exc))}") from None
    if status != "SUCCESS":
        try:
            data = post_graphql(url, _FAILURES_QUERY, {"runId": run_id}, timeout=30)["data"] or {}
        except (LaunchError, KeyError):
            data = {}  # the run's status already says it failed; its reason is a bonus
        events = data.get("logsForRun", {}).get("events", [])
        messages = [
            _first_line(e["error"]["message"])
            for e in events
            if e["__typename"] == "ExecutionStepFailureEvent"
        ]
        raise LaunchError(messages[0] if messages else f"run {run_id} ended {status}")
    return LaunchResult(run_id=run_id, status=status)


def run_job(
    job_name: str, run_config: dict, tags: dict[str, str], url: str | None = None
) -> LaunchResult:
    if url:
        return run_remote(url, job_name, run_config, tags)
    return run_local(job_name, run_config, tags)
