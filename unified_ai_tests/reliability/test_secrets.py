"""A planted secret never appears in metadata, run tags, logs, local state or the store.

One training loop with a failing gate (so a notification is sent) and Pipes training (so the
project crosses a process boundary) runs on a real instance whose every file is then searched,
together with everything under UNIFIED_AI_HOME (store, MLflow database, outbox).
"""

from pathlib import Path

import dagster as dg
import pytest

from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import project_defs, run_loop
from unified_ai_tests.flows.monitoring_helpers import Receiver
from unified_ai_tests.resources.test_notifications import closed_port_url
from unified_ai_tests.stages.gate_outcome_driver import GateOutcomes

WEBHOOK_SECRET = "xoxb-webhook-5ecret-7d41"
ENV_SECRET = "env-5ecret-c0ffee-91aa"
SIGNING_SECRET = "signing-5ecret-b00b-77"


#: Trains with the default trainer, and first writes the Pipes extras it was given where the
#: search below looks (extras travel in the pod spec on a cluster).
SPYING_TRAINER = """\
import json
import pathlib

import dagster_pipes

from unified_ai.stages.training import external_train

_open = dagster_pipes.open_dagster_pipes


def _spy(*args, **kwargs):
    context = _open(*args, **kwargs)
    pathlib.Path({dump!r}).write_text(json.dumps(context.extras))
    return context


dagster_pipes.open_dagster_pipes = _spy
external_train.main()
"""


def files_containing(root: Path, needle: str) -> list[str]:
    data = needle.encode()
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and data in path.read_bytes()
    ]


@pytest.mark.slow
def test_planted_secrets_stay_out_of_every_record(home, projects_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("UNIFIED_AI_SIGNING_KEY", SIGNING_SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    receiver = Receiver()
    try:
        url = f"{receiver.url}/{WEBHOOK_SECRET}?token={WEBHOOK_SECRET}"
        # A second channel is down: its message is retried, logged and parked in the outbox.
        down = f"{closed_port_url()}/{WEBHOOK_SECRET}?token={WEBHOOK_SECRET}"
        dump = home / "pipes-extras.json"
        projects_dir.mkdir(parents=True)
        (projects_dir / "spying_train.py").write_text(SPYING_TRAINER.format(dump=str(dump)))
        path = write_project(
            projects_dir,
            floor=0.999,  # the quality gate fails: a gate_failed notification goes out
            policy_extra=f"  notifications:\n    - {{type: webhook, url: '{url}'}}\n"
            f"    - {{type: webhook, url: '{down}'}}\n"
            "training: {runner: pipes, script: spying_train.py}\n",
        )
        defs = project_defs(projects_dir)
        (tmp_path / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
            gates = GateOutcomes(defs, instance, load_project_file(path))
            result = run_loop(defs, instance, "small")
            assert not result.success  # the gate stopped the loop
            gates.tick()  # the gate outcome sensor tells the failed gate
            [run] = instance.get_runs()
            tags = dict(run.tags)
            logs = [entry.user_message for entry in instance.all_logs(run.run_id)]
        assert [m["event"] for m in receiver.messages] == ["gate_failed"]
    finally:
        receiver.close()

    for secret in (WEBHOOK_SECRET, ENV_SECRET, SIGNING_SECRET):
        assert not any(secret in str(v) for v in tags.values()), secret
        assert not any(secret in message for message in logs), secret
        assert files_containing(tmp_path / "dagster", secret) == [], secret
        assert files_containing(home, secret) == [], secret
    assert dump.is_file(), "the training process received its extras"
    assert (home / "store").is_dir() and (home / "mlflow.db").is_file()
    assert list((home / "notifications" / "outbox").glob("*.json")), "the down channel parked"
