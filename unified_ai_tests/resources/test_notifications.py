import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from unified_ai.projects.schema import Channel
from unified_ai.resources.notifications import Notifier, channel_id
from unified_ai_tests.flows.monitoring_helpers import Receiver

SECRET = "T0KEN-s3cr3t-9f2c"


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/down"


class FlakyReceiver:
    """A webhook that answers 503 while `down` is set, then records what it receives."""

    def __init__(self):
        self.down = True
        self.messages: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.down:
                    self.send_response(503)
                else:
                    outer.messages.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/{SECRET}?token={SECRET}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


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


def test_a_channel_that_is_down_is_parked_then_sent_with_the_next_message(tmp_path):
    receiver = FlakyReceiver()
    try:
        notifier = Notifier(outbox=str(tmp_path / "outbox"), attempts=2, timeout_seconds=0.5)
        channel = Channel(type="webhook", url=receiver.url)
        assert notifier.notify([channel], project="p", event="rollback", summary="s1") == 0
        assert len(list((tmp_path / "outbox").glob("*.json"))) == 1

        receiver.down = False
        assert notifier.notify([channel], project="p", event="retrain", summary="s2") == 1
        assert [m["summary"] for m in receiver.messages] == ["s1", "s2"]
        assert list((tmp_path / "outbox").glob("*.json")) == []
    finally:
        receiver.close()


def test_parked_messages_wait_for_their_own_channel(tmp_path):
    notifier = Notifier(outbox=str(tmp_path / "outbox"), attempts=1, timeout_seconds=0.5)
    down = Channel(type="webhook", url=closed_port_url())
    assert notifier.notify([down], project="p", event="rollback", summary="s") == 0
    other = Receiver()
    try:
        # Another project's channel does not receive (or drop) this project's parked message.
        assert notifier.flush_outbox([Channel(type="webhook", url=other.url)]) == 0
        assert other.messages == []
        [parked] = (tmp_path / "outbox").glob("*.json")
        assert json.loads(parked.read_text())["channel_id"] == channel_id(down)
    finally:
        other.close()


def test_webhook_secrets_never_reach_logs_or_the_outbox(tmp_path, caplog):
    receiver = FlakyReceiver()
    try:
        notifier = Notifier(outbox=str(tmp_path / "outbox"), attempts=2, timeout_seconds=0.5)
        channels = [
            Channel(type="webhook", url=receiver.url),
            # Not even a URL scheme (the schema refuses it; a channel built around it still
            # never leaks it).
            Channel.model_construct(type="webhook", url=f"hooks.example/{SECRET}"),
        ]
        with caplog.at_level(logging.DEBUG):
            assert notifier.notify(channels, project="p", event="rollback", summary="s") == 0
        assert caplog.records, "failed deliveries are logged"
        assert SECRET not in caplog.text
        parked = [p.read_text() for p in (tmp_path / "outbox").glob("*.json")]
        assert len(parked) == 2
        assert all(SECRET not in text for text in parked)
        assert "127.0.0.1" in caplog.text  # the host is still named, to find the channel
    finally:
        receiver.close()


def test_slack_without_its_token_is_parked_not_raised(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    notifier = Notifier(outbox=str(tmp_path / "outbox"), attempts=1)
    slack = Channel(type="slack", slack_channel="#ml", token_env="NO_SUCH_TOKEN")
    assert notifier.notify([slack], project="p", event="gate_failed", summary="s") == 0
    assert len(list((tmp_path / "outbox").glob("*.json"))) == 1


def test_the_outbox_lives_in_an_object_store_when_home_is_one(s3_server, tmp_path, monkeypatch):
    import fsspec

    # Anything written to a local folder named after the URL would land here.
    monkeypatch.chdir(tmp_path)
    receiver = FlakyReceiver()
    try:
        outbox = "s3://lineage/home/notifications/outbox"
        notifier = Notifier(
            outbox=outbox, storage_options=s3_server, attempts=1, timeout_seconds=0.5
        )
        channel = Channel(type="webhook", url=receiver.url)
        assert notifier.notify([channel], project="p", event="rollback", summary="s") == 0
        s3 = fsspec.filesystem("s3", **s3_server, use_listings_cache=False)
        [parked] = s3.glob("lineage/home/notifications/outbox/*.json")
        assert SECRET not in s3.cat_file(parked).decode()
        assert [m["message"]["event"] for m in notifier.parked()] == ["rollback"]
        # Another pod, same outbox: it delivers the parked message before its own.
        receiver.down = False
        other = Notifier(outbox=outbox, storage_options=s3_server, attempts=1)
        assert other.notify([channel], project="p", event="retrain", summary="t") == 1
        assert [m["event"] for m in receiver.messages] == ["rollback", "retrain"]
        assert s3.glob("lineage/home/notifications/outbox/*.json") == []
        assert list(tmp_path.iterdir()) == []
    finally:
        receiver.close()
