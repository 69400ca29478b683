import socket

from unified_ai.projects.schema import Channel
from unified_ai.resources.notifications import Notifier
from unified_ai_tests.flows.monitoring_helpers import Receiver


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/down"


def test_posts_one_message_per_subscribed_channel(tmp_path):
    receiver = Receiver()
    try:
        notifier = Notifier(outbox=str(tmp_path / "outbox"))
        channels = [
            Channel(type="webhook", url=receiver.url),
            Channel(type="webhook", url=receiver.url, events=["rollback"]),
        ]
        sent = notifier.notify(
            channels,
            project="p",
            event="retrain",
            summary="drift 0.5",
            evidence={"batch": "b1"},
            run_id="abc",
        )
        assert sent == 1
        [message] = receiver.messages
        assert message["event"] == "retrain" and message["evidence"] == {"batch": "b1"}
        assert "*p: retraining triggered*" in message["text"]
        assert message["link"] == "http://127.0.0.1:3000/runs/abc"
    finally:
        receiver.close()


def test_a_channel_that_is_down_never_raises_and_is_retried_later(tmp_path):
    notifier = Notifier(outbox=str(tmp_path / "outbox"), attempts=2, timeout_seconds=0.5)
    down = Channel(type="webhook", url=closed_port_url())
    assert notifier.notify([down], project="p", event="rollback", summary="s") == 0
    assert len(list((tmp_path / "outbox").glob("*.json"))) == 1

    receiver = Receiver()
    try:
        parked = next((tmp_path / "outbox").glob("*.json"))
        parked.write_text(parked.read_text().replace(down.url, receiver.url))
        assert notifier.flush_outbox() == 1
        assert [m["event"] for m in receiver.messages] == ["rollback"]
        assert list((tmp_path / "outbox").glob("*.json")) == []
    finally:
        receiver.close()


def test_slack_without_its_token_is_parked_not_raised(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    notifier = Notifier(outbox=str(tmp_path / "outbox"), attempts=1)
    slack = Channel(type="slack", slack_channel="#ml", token_env="NO_SUCH_TOKEN")
    assert notifier.notify([slack], project="p", event="gate_failed", summary="s") == 0
    assert len(list((tmp_path / "outbox").glob("*.json"))) == 1
