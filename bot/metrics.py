"""What the bot did, for GET /metrics in Prometheus' text format. One registry per app (tests run several apps in
one process); updates are counter increments, and the text is built only when scraped."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # the "_created" series say when a counter was made: noise for a scrape


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.turns = Counter("bot_turns", "Turns answered, by intent and outcome (ok, failed).",
                             ["intent", "outcome"], registry=r)
        self.turn_seconds = Histogram("bot_turn_seconds", "Time from a request's arrival to its reply being sent.",
                                      buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.auth_failures = Counter("bot_auth_failures", "Inbound requests refused, by reason.", ["reason"], registry=r)
        self.key_fetches = Counter("bot_signing_key_fetches", "Fetches of the channel's signing keys, by result.",
                                   ["result"], registry=r)
        self.replies_failed = Counter("bot_replies_failed", "Replies the Connector did not take after all retries.",
                                      registry=r)
        self.connector_retries = Counter("bot_connector_retries", "Connector calls retried, by status (or timeout).",
                                         ["status"], registry=r)
        self.nudges = Counter("bot_nudges", "Proactive messages, by state (claimed, sent, gone, failed).", ["state"],
                              registry=r)
        self.store_write_seconds = Histogram("bot_store_write_seconds", "Time to make one change durable.",
                                             buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1),
                                             registry=r)

    def text(self) -> bytes:
        return generate_latest(self.registry)
