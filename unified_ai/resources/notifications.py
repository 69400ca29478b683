"""Notifications for failed gates, triggered retrains, automatic rollbacks and quarantines.

Dagster does not alert on failed checks by itself, so this is ours.

A channel that is down never fails the caller: the message is retried a few times, then kept
in an outbox under `UNIFIED_AI_HOME` (a folder or an object-store URL, through fsspec like the
lineage store, so every pod shares it) and sent before the next message to that project.

Webhook URLs carry credentials (Slack's do), so neither logs nor the outbox ever hold one: a
parked message names its channel by a fingerprint and is resent to the channel of the project's
current policy with that fingerprint; logs name a channel by scheme and host only.
"""

import contextlib
import hashlib
import json
import logging
import time
import uuid
from typing import Any

import dagster as dg

from unified_ai.projects.schema import Channel, NotificationEvent
from unified_ai.runtime import secret

log = logging.getLogger("unified_ai.notifications")
_TITLES = {
    "gate_failed": "evaluation gate failed",
    "retrain": "retraining triggered",
    "rollback": "automatic rollback",
    "quarantine": "batch quarantined",
    "run_failed": "run failed",
    "review_queue": "review queue needs people",
}


def format_message(
    project: str, event: str, summary: str, evidence: dict[str, Any], link: str | None
) -> dict[str, Any]:
    """A Slack-compatible payload (`text`) that also carries the structured fields."""
    lines = [f"*{project}: {_TITLES.get(event, event)}*", summary]
    lines += [f"• {k}: {v}" for k, v in evidence.items()]
    if link:
        lines.append(link)
    return {
        "text": "\n".join(lines),
        "project": project,
        "event": event,
        "summary": summary,
        "evidence": evidence,
        "link": link,
    }


class Notifier(dg.ConfigurableResource):
    """Posts messages to the channels a project's policy configures.

    Attributes:
        outbox: Folder or fsspec URL for messages that could not be delivered yet.
        storage_options: fsspec options for an object-store outbox (endpoint, credentials...).
        webserver_url: Base URL of the Dagster UI, for links to runs.
        attempts: Delivery attempts per message before it goes to the outbox.
        timeout_seconds: Per-request timeout.
    """

    outbox: str
    storage_options: dict[str, Any] = {}
    webserver_url: str = "http://127.0.0.1:3000"
    attempts: int = 3
    timeout_seconds: float = 3.0

    def run_link(self, run_id: str | None) -> str | None:
        return f"{self.webserver_url.rstrip('/')}/runs/{run_id}" if run_id else None

    def notify(
        self,
        channels: list[Channel],
        *,
        project: str,
        event: NotificationEvent,
        summary: str,
        evidence: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> int:
        """Send to every channel subscribed to `event`; returns how many deliveries succeeded."""
        targets = [c for c in channels if event in c.events]
        if not targets:
            return 0
        self.flush_outbox(channels)
        message = format_message(project, event, summary, evidence or {}, self.run_link(run_id))
        delivered = 0
        for channel in targets:
            if self._deliver(channel, message):
                delivered += 1
            else:
                self._park(channel, message)
        return delivered

    def flush_outbox(self, channels: list[Channel]) -> int:
        """Retry parked messages addressed to one of `channels`; returns how many were delivered.

        Messages for channels not in the list (another project's, or one since removed from
        the policy) stay parked.
        """
        fs, folder = self._outbox()
        by_id = {channel_id(channel): channel for channel in channels}
        delivered = 0
        for path in sorted(fs.glob(f"{folder}/*.json")):
            try:
                parked = json.loads(fs.cat_file(path))
            except FileNotFoundError:
                continue  # another sender delivered it meanwhile
            channel = by_id.get(parked.get("channel_id"))
            if channel is not None and self._deliver(channel, parked["message"], attempts=1):
                with contextlib.suppress(FileNotFoundError):
                    fs.rm_file(path)
                delivered += 1
        return delivered

    def parked(self) -> list[dict]:
        """The messages waiting in the outbox, oldest first (channels named by host only)."""
        fs, folder = self._outbox()
        return [json.loads(fs.cat_file(path)) for path in sorted(fs.glob(f"{folder}/*.json"))]

    def _outbox(self):
        """The outbox's filesystem and folder path (created lazily; fsspec is imported here)."""
        from fsspec.core import url_to_fs

        options = dict(self.storage_options)
        if "://" in self.outbox and not self.outbox.startswith("file://"):
            # Other pods park and flush messages: never trust a cached listing.
            options.setdefault("use_listings_cache", False)
        fs, folder = url_to_fs(self.outbox, **options)
        return fs, folder.rstrip("/")

    def _park(self, channel: Channel, message: dict) -> None:
        fs, folder = self._outbox()
        body = json.dumps(
            {"channel_id": channel_id(channel), "channel": _where(channel), "message": message}
        ).encode()
        name = f"{folder}/{time.time_ns():020d}-{uuid.uuid4().hex[:6]}.json"
        if "file" in fs.protocol or "local" in fs.protocol:
            # Written beside, then renamed: a flush never reads half a message.
            fs.makedirs(folder, exist_ok=True)
            fs.pipe_file(f"{name}.partial", body)
            fs.mv(f"{name}.partial", name)
        else:
            fs.pipe_file(name, body)  # one object put is atomic
        log.warning("notification to %s parked in the outbox", _where(channel))

    def _deliver(self, channel: Channel, message: dict, attempts: int | None = None) -> bool:
        for attempt in range(attempts or self.attempts):
            try:
                if channel.type == "webhook":
                    self._post_webhook(channel.url, message)
                else:
                    self._post_slack(channel, message)
                return True
            except Exception as exc:  # a channel that is down must never fail the caller
                log.warning(
                    "notification to %s failed (attempt %d): %s",
                    _where(channel),
                    attempt + 1,
                    _redact(str(exc), channel),
                )
                time.sleep(min(0.2 * 2**attempt, 1.0))
        return False

    def _post_webhook(self, url: str | None, message: dict) -> None:
        import urllib.request
        from urllib.parse import urlsplit

        # The schema refuses other schemes; urllib would also open file:// and ftp:// URLs.
        if not url or urlsplit(url).scheme.lower() not in ("http", "https"):
            raise RuntimeError("not an http:// or https:// URL")
        request = urllib.request.Request(
            url,
            data=json.dumps(message).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            if response.status >= 300:
                raise RuntimeError(f"HTTP {response.status}")

    def _post_slack(self, channel: Channel, message: dict) -> None:
        from dagster_slack import SlackResource

        if not channel.slack_channel:  # the schema requires one
            raise RuntimeError("no slack_channel is set")
        token = secret(channel.token_env or "")
        if not token:
            raise RuntimeError(f"environment variable {channel.token_env} is not set")
        client = SlackResource(token=token).get_client()
        client.chat_postMessage(channel=channel.slack_channel, text=message["text"])


def channel_id(channel: Channel) -> str:
    """A fingerprint of a channel's whole configuration that reveals nothing of its URL."""
    body = json.dumps(channel.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(body).hexdigest()[:16]


def _redact(text: str, channel: Channel) -> str:
    """`text` with the channel's URL (and its path, which holds the token) masked."""
    if channel.url:
        from urllib.parse import urlsplit

        text = text.replace(channel.url, _where(channel))
        path = urlsplit(channel.url).path
        if len(path) > 1:
            text = text.replace(path, "/…")
    return text


def _where(channel: Channel) -> str:
    """A channel's name for logs: scheme and host of a webhook (its path and query hold tokens)."""
    if channel.type != "webhook":
        return f"slack {channel.slack_channel}"
    from urllib.parse import urlsplit

    parts = urlsplit(channel.url or "")
    return f"webhook {parts.scheme}://{parts.hostname or '?'}" + (
        f":{parts.port}" if parts.port else ""
    )
