"""The webhook receiver on the local backend: auth, limits, validation, dedupe, status."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app as st_app
from smarttrader_cli.config import load_config
from smarttrader_cli.config.schema import Config
from smarttrader_cli.errors import ConfigError
from smarttrader_cli.stream.backend import OutboundEvent, StreamMessage
from smarttrader_cli.stream.local_log import LocalConsumer, LocalProducer
from smarttrader_cli.stream.server import create_app, serve
from smarttrader_cli.stream.spool import Spool
from tests.harness import write_config
from tests.stream_support import helius_events

TOKEN = "s3cret-auth-header"
AUTH = {"Authorization": TOKEN}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = write_config(tmp_path, {"webhook.max_body_bytes": 65536})
    return load_config(path).config


@pytest.fixture
def client(config: Config) -> Iterator[TestClient]:
    app = create_app(config, LocalProducer(config.stream), TOKEN)
    with TestClient(app) as c:
        yield c


def stream_contents(config: Config) -> list[StreamMessage]:
    consumer = LocalConsumer(config.stream)
    consumer.start(lambda parts: dict.fromkeys(parts, 0))
    out = consumer.poll(1_000_000, 1 << 30, 0.1)
    consumer.close()
    return out


def test_accepts_a_helius_payload_and_publishes_one_message_per_event(
    client: TestClient, config: Config
) -> None:
    events = helius_events(5)
    r = client.post("/webhooks", content=orjson.dumps(events), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 5, "duplicates": 0}
    messages = stream_contents(config)
    assert sorted(m.key for m in messages) == sorted(e["signature"].encode() for e in events)
    by_key = {m.key: m for m in messages}
    assert orjson.loads(by_key[events[0]["signature"].encode()].value) == events[0]
    assert all(m.received_at_us and m.received_at_us > 0 for m in messages)


def test_a_body_of_one_event_object_is_accepted_as_that_event(
    client: TestClient, config: Config
) -> None:
    event = helius_events(1)[0]
    r = client.post("/webhooks", content=orjson.dumps(event), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "duplicates": 0}
    [message] = stream_contents(config)
    assert message.key == event["signature"].encode()
    assert orjson.loads(message.value) == event


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "wrong"}, {"Authorization": TOKEN + "x"}]
)
def test_wrong_or_missing_auth_is_401(client: TestClient, config: Config, headers: dict) -> None:
    r = client.post("/webhooks", content=orjson.dumps(helius_events(1)), headers=headers)
    assert r.status_code == 401
    assert stream_contents(config) == []


def test_oversized_body_is_413_by_header_and_while_streaming(
    client: TestClient, config: Config
) -> None:
    big = orjson.dumps([{"signature": "x" * 10, "pad": "p" * 70_000}])
    assert client.post("/webhooks", content=big, headers=AUTH).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies as it streams
        for _ in range(20):
            yield b" " * 8192

    r = client.post("/webhooks", content=chunks(), headers=AUTH)
    assert r.status_code == 413
    assert stream_contents(config) == []


@pytest.mark.parametrize(
    ("body", "reason", "detail"),
    [
        (b"{not json", "invalid_json", "not valid JSON"),
        (b"", "invalid_json", "not valid JSON"),
        (b'{"slot": 5}', "invalid_event", "event 0: event has no signature"),
        (b'"abc"', "not_a_list", "JSON array"),
        (b'[{"signature": "a"}, {"slot": 5}]', "invalid_event", "event 1: event has no signature"),
        (b'[{"signature": 5}]', "invalid_event", "not a non-empty string"),
        (b'[{"signature": "  "}]', "invalid_event", "not a non-empty string"),
        (b"[1]", "invalid_event", "not a JSON object"),
    ],
)
def test_invalid_bodies_are_422_with_the_reason(
    client: TestClient, config: Config, body: bytes, reason: str, detail: str
) -> None:
    r = client.post("/webhooks", content=body, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["error"] == reason
    assert detail in r.json()["detail"]
    assert stream_contents(config) == []


def test_an_event_nested_300_deep_is_stored_with_the_rest_of_its_batch(
    client: TestClient, config: Config
) -> None:
    # orjson parses 1024 levels but re-encodes only 254: this body used to be a 500, so
    # Helius retried it and never stored its valid events.
    good = orjson.dumps(helius_events(1)[0])
    deep = b'{"signature":"deep-one","x":' + b"[" * 300 + b"]" * 300 + b"}"
    r = client.post("/webhooks", content=b"[" + good + b"," + deep + b"]", headers=AUTH)
    assert r.status_code == 200, r.text
    stored = {m.key: m.value for m in stream_contents(config)}
    assert stored[b"deep-one"] == deep
    assert stored[orjson.loads(good)["signature"].encode()] == good


def test_a_body_too_deep_to_store_is_a_422_with_the_reason(
    client: TestClient, config: Config
) -> None:
    deep = b'[{"signature":"too-deep","x":' + b"[" * 2000 + b"]" * 2000 + b"}]"
    r = client.post("/webhooks", content=deep, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_json" and "depth" in r.json()["detail"]
    assert stream_contents(config) == []


# Whitespace, key spacing, number spellings, escapes, integers past 64 bits and brackets
# inside strings: what Helius sent is what the stream holds, byte for byte.
RAW_EVENTS = [
    b'{ "signature" : "raw-1", "amount": 340282366920938463463374607431768211457,'
    b' "neg": -18446744073709551617, "f": 1.10, "e": 1E+2, "z": -0,'
    b' "s": "caf\\u00e9 \\"q\\" ]}[{,", "u": "\xc3\xa9\xe2\x80\xa6", "bs": "\\\\" }',
    b'{"signature":"raw-2","nested":[{"a":[1,2,{"b":"}"}]},[]],"o":{}}',
    b'{"signature":"raw-3"}',
]


@pytest.mark.parametrize("count", [1, 3])
def test_events_are_stored_byte_for_byte_as_received(
    client: TestClient, config: Config, count: int
) -> None:
    events = RAW_EVENTS[:count]
    body = b" [\n  " + b" ,\n\t".join(events) + b"\r\n] "
    r = client.post("/webhooks", content=body, headers=AUTH)
    assert r.status_code == 200, r.text
    stored = {m.key: m.value for m in stream_contents(config)}
    assert [stored[f"raw-{i + 1}".encode()] for i in range(count)] == events


def test_duplicate_deliveries_are_acknowledged_but_published_once(
    client: TestClient, config: Config
) -> None:
    events = helius_events(3)
    body = orjson.dumps(events)
    assert client.post("/webhooks", content=body, headers=AUTH).json()["duplicates"] == 0
    again = client.post("/webhooks", content=body, headers=AUTH)
    assert again.status_code == 200
    assert again.json() == {"accepted": 3, "duplicates": 3}
    within = client.post("/webhooks", content=orjson.dumps([events[0], events[0]]), headers=AUTH)
    assert within.json()["duplicates"] == 2
    assert len(stream_contents(config)) == 3


def test_health_status_and_metrics(client: TestClient) -> None:
    client.post("/webhooks", content=orjson.dumps(helius_events(2)), headers=AUTH)
    client.post("/webhooks", content=b"nope", headers=AUTH)
    client.post("/webhooks", content=b"[]")
    assert client.get("/health").json() == {"status": "ok"}
    status = client.get("/webhooks/status").json()
    assert status["received"] == 2 and status["published"] == 2
    assert status["rejected"]["invalid_json"] == 1 and status["rejected"]["unauthorized"] == 1
    assert status["broker"] == "up" and status["spool_depth"] == 0
    assert status["last_event_at"] is not None
    text = client.get("/metrics").text
    assert "st_webhook_events_received_total 2" in text
    assert "st_webhook_events_published_total 2" in text
    assert 'st_webhook_requests_rejected_total{reason="invalid_json"} 1' in text
    assert 'st_webhook_request_duration_seconds_bucket{le="+Inf"} 3' in text


class FlakyProducer:
    """A producer whose broker is down until `up` is set: nothing is acknowledged."""

    def __init__(self) -> None:
        self.up = False
        self.delivered: list[OutboundEvent] = []

    def publish(self, events: Sequence[OutboundEvent], timeout: float) -> list[bool]:
        if not self.up:
            return [False] * len(events)
        self.delivered.extend(events)
        return [True] * len(events)

    def describe(self) -> str:
        return "flaky test broker"

    def close(self, timeout: float = 10.0) -> None:
        pass


def test_broker_down_spools_then_republishes_in_order(config: Config, tmp_path: Path) -> None:
    producer = FlakyProducer()
    spool = Spool(tmp_path / "spool")
    app = create_app(config, producer, TOKEN, spool)
    events = helius_events(30)
    with TestClient(app) as c:
        for i in range(0, 30, 3):
            r = c.post("/webhooks", content=orjson.dumps(events[i : i + 3]), headers=AUTH)
            assert r.status_code == 200
        status = c.get("/webhooks/status").json()
        assert status["broker"] == "down" and status["spool_depth"] == 30
        producer.up = True
        for _ in range(100):
            if c.get("/webhooks/status").json()["spool_depth"] == 0:
                break
            import time

            time.sleep(0.05)
        assert c.get("/webhooks/status").json()["broker"] == "up"
    assert [e.key.decode() for e in producer.delivered] == [e["signature"] for e in events]
    assert Spool(tmp_path / "spool").depth == 0


def test_serve_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    result = CliRunner().invoke(st_app, ["--config", str(path), "webhook", "serve"], env={})
    assert result.exit_code == 2
    assert "ST_WEBHOOK_AUTH_TOKEN" in result.output


@pytest.mark.parametrize(("key", "value"), [("port", 99999), ("body_timeout_seconds", 0.0)])
def test_serve_refuses_settings_changed_in_code(
    config: Config, monkeypatch: pytest.MonkeyPatch, key: str, value: object
) -> None:
    import uvicorn

    def started(*args: object, **kwargs: object) -> None:
        pytest.fail("the server started")

    monkeypatch.setattr(uvicorn, "run", started)
    setattr(config.webhook, key, value)
    with pytest.raises(ConfigError, match=f"webhook.{key}"):
        serve(config, TOKEN)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
events_like = st.dictionaries(
    st.sampled_from(["signature", "slot", "type", "x"]), json_values, max_size=4
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(orjson.dumps)
    | st.lists(events_like, max_size=5).map(orjson.dumps)
    | st.lists(st.text(min_size=1, max_size=90).map(lambda s: {"signature": s}), max_size=5).map(
        orjson.dumps
    )
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, auth=st.sampled_from([TOKEN, "", "bad", "ünïcode"]), ctype=st.text(max_size=10))
def test_fuzzed_requests_never_get_a_500(
    client: TestClient, body: bytes, auth: str, ctype: str
) -> None:
    headers = {"Content-Type": ctype.encode("ascii", "ignore") or b"application/json"}
    if auth:
        headers["Authorization"] = auth.encode("utf-8")
    r = client.post("/webhooks", content=body, headers=headers)
    assert r.status_code in (200, 401, 413, 422), (r.status_code, r.text)


def test_an_event_larger_than_one_broker_message_is_413_not_spooled_forever(
    tmp_path: Path,
) -> None:
    from smarttrader_cli.stream.server import MAX_EVENT_BYTES

    config = load_config(write_config(tmp_path, {"webhook.max_body_bytes": 4 << 20})).config
    app = create_app(config, LocalProducer(config.stream), TOKEN)
    small, big = helius_events(2)
    big["pad"] = "p" * MAX_EVENT_BYTES  # the body fits, this one event does not
    with TestClient(app) as c:
        r = c.post("/webhooks", content=orjson.dumps([small, big]), headers=AUTH)
    assert r.status_code == 413 and "event 1 is larger than" in r.text
    assert stream_contents(config) == []  # nothing of the batch is stored: Helius retries it
