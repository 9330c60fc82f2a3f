"""Secrets stay secret, the web API is closed by default, logs hold no payload data.

One worker runs for the module with every secret set (a Kafka SASL password, a Redis password, a
password inside the Redis URL, a web token), debug logging in JSON, against a Redis started here
with `--requirepass` (the URL's password: redis-py lets a URL's password win over `redis_password`).
The broker is the session's PLAINTEXT Tansu, so the SASL password is configured but not sent.

- no secret appears in the worker's log (debug, JSON), in GET /health, or in repr/str of Settings;
- the web API listens on 127.0.0.1 only, by default;
- with `web_token`, /customers/{id}, /tiers and /metrics answer 401 without the bearer token (or with
  a wrong one) and 200 with it, while /health stays open;
- customer ids are the only personal data logged: after valid and invalid events carrying
  recognisable amounts, order ids, a card number and free text, none of those appears in the
  INFO-or-above records of the log.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from streams.kafka import client_options
from streams.local.embedded import find_redis_server, free_port
from streams.local.process import ChildProcess
from streams.settings import Settings
from tests.kits.faults import start_group
from tests.kits.stream import StreamGroup, Upstream, complaint, enquiry, eventually, http_json, purchase

pytestmark = pytest.mark.integration

KAFKA_PASSWORD = "kafka-Pa55-5ecret-31337"
REDIS_PASSWORD = "redis-Pa55-5ecret-42424"
URL_PASSWORD = "url-Pa55-5ecret-27182"
TOKEN = "web-T0ken-5ecret-16180"
SECRETS = (KAFKA_PASSWORD, REDIS_PASSWORD, URL_PASSWORD, TOKEN)
PRIVATE = ("987.65", "ORD-PRIVATE", "4111111111111111", "PRIVATE-TOPIC", "PRIVATE-CATEGORY", "-555.55")


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this module's own with `--requirepass URL_PASSWORD`; its URL (with the password)."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis-auth")
    argv = [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir), "--requirepass", URL_PASSWORD]
    server = ChildProcess.start("password-redis", argv, workdir / "redis.log")
    try:
        client = redis.Redis(port=port, password=URL_PASSWORD, socket_timeout=1)

        def ping() -> bool:
            with contextlib.suppress(redis.RedisError):
                return bool(client.ping())
            return False

        server.wait_until(ping, 15, "answering PING with the password", poll=0.05)
        client.close()
        yield f"redis://:{URL_PASSWORD}@127.0.0.1:{port}/0"
    finally:
        server.stop(grace=10)


@pytest.fixture(scope="module")
async def stream(kafka_bootstrap: str, password_redis: str, key_prefix: str,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StreamGroup]:
    async with start_group("security", kafka_bootstrap, password_redis, key_prefix,
                           tmp_path_factory.mktemp("stream-security"), redis_password=REDIS_PASSWORD,
                           kafka_sasl_username="tierstream", kafka_sasl_password=KAFKA_PASSWORD,
                           web_token=TOKEN, log_level="debug", log_format="json") as group:
        yield group


@pytest.fixture(scope="module")
async def traffic(stream: StreamGroup, upstream: Upstream) -> str:
    """Valid and invalid events with recognisable private data, all handled; the customer's id."""
    customer = f"sec-{stream.settings.app_id[-8:]}"
    at = datetime.now(UTC) - timedelta(days=1)
    valid = [purchase(customer, "987.65", at, order_id="ORD-PRIVATE-1", channel="web"),
             complaint(customer, 4, at + timedelta(minutes=1), category="PRIVATE-CATEGORY"),
             enquiry(customer, at + timedelta(minutes=2), topic="PRIVATE-TOPIC")]
    invalid = [purchase(customer, "-555.55", at, order_id="ORD-PRIVATE-2"),  # negative
               purchase(customer, "987.65", at + timedelta(days=30), order_id="ORD-PRIVATE-3"),  # far future
               {**purchase(customer, "987.65", at, order_id="ORD-PRIVATE-4"), "card_number": "4111111111111111"}]
    for event in valid + invalid:
        await upstream.send(stream.topics.events, event)
    await stream.outputs.wait_for(lambda: len(stream.outputs.dlq()) >= len(invalid), "the dead letters")
    await stream.outputs.wait_score(customer, str(valid[-1]["event_id"]))  # the latest snapshot: all three in
    return customer


def log_records(stream: StreamGroup) -> list[dict[str, object]]:
    """The worker's JSON log records (the ready banner and other plain lines left out)."""
    records = []
    for line in stream.worker.log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                records.append(doc)
    return records


async def test_secrets_never_appear_in_logs_health_or_settings(stream: StreamGroup, traffic: str) -> None:
    health = await stream.worker.health()
    assert health is not None and health["redis"] == "ok", health  # the password in the URL works
    status, body = await http_json("GET", f"{stream.worker.web_url}/health")
    assert status == 200
    text = json.dumps(body)
    log = stream.worker.log_path.read_text(errors="replace")
    assert any(r.get("level") == "DEBUG" for r in log_records(stream)), "the worker did not log at debug level"
    settings = stream.settings
    shown = {"log": log, "/health": text, "repr(Settings)": repr(settings), "str(Settings)": str(settings),
             "Settings.model_dump_json()": settings.model_dump_json()}
    for where, content in shown.items():
        for secret in SECRETS:
            assert secret not in content, f"a secret ({secret[:8]}...) appears in {where}"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == KAFKA_PASSWORD  # it was set, just not shown


def test_the_sasl_password_is_given_to_clients_but_not_shown() -> None:
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="tierstream",
                        kafka_sasl_password=KAFKA_PASSWORD)
    assert client_options(settings)["sasl_plain_password"] == KAFKA_PASSWORD
    from streams.worker.faust_options import faust_options

    credentials = faust_options(settings)["broker_credentials"]
    assert credentials.password == KAFKA_PASSWORD
    assert KAFKA_PASSWORD not in repr(credentials) and KAFKA_PASSWORD not in repr(settings)


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a listening TCP socket on `port` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


async def test_the_web_api_listens_on_localhost_by_default(stream: StreamGroup) -> None:
    assert Settings().web_host == "127.0.0.1"
    assert "web_host" not in stream.settings.model_fields_set  # the worker runs with the default
    assert listening_addresses(stream.worker.web_port) == {"0100007F"}  # 127.0.0.1 only, no 0.0.0.0 or ::


@pytest.mark.parametrize("path", ["/customers/{customer}", "/tiers", "/metrics"])
async def test_the_bearer_token_protects_the_data(stream: StreamGroup, traffic: str, path: str) -> None:
    url = stream.worker.web_url + path.format(customer=traffic)
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        status, _ = await http_json("GET", url, headers=headers)
        assert status == 401, (path, headers)
    status, body = await http_json("GET", url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, (path, body)


async def test_health_stays_open(stream: StreamGroup) -> None:
    status, body = await http_json("GET", f"{stream.worker.web_url}/health")
    assert status == 200 and body["status"] == "ok"


async def test_customer_ids_are_the_only_personal_data_in_info_logs(stream: StreamGroup, traffic: str) -> None:
    async def handled() -> bool:  # the dead letters and scores are out: the log lines about them are written
        health = await stream.worker.health()
        return health is not None and health["dead_lettered"] >= 3 and health["events_scored"] >= 3

    await eventually(handled, "the worker to handle the traffic")
    info = [r for r in log_records(stream) if r.get("level") in ("INFO", "WARNING", "ERROR", "CRITICAL")]
    leaks = [(r.get("logger"), r.get("message")) for r in info if any(p in json.dumps(r) for p in PRIVATE)]
    assert not leaks, f"payload data in INFO+ log records: {leaks[:5]}"


def registered_routes(settings: Settings) -> list[tuple[str, str]]:
    """(method, path template) of every route the worker's web server registers (built in-process, not run)."""
    from streams.worker.run import build

    web = build(settings).app.web
    web.init_server()
    return sorted({(r.method, r.resource.canonical) for r in web.web_app.router.routes()
                   if r.method != "HEAD" and r.resource is not None})


async def test_every_route_but_health_and_the_dashboard_page_needs_the_token(stream: StreamGroup, traffic: str
                                                                             ) -> None:
    routes = registered_routes(stream.settings)
    assert ("GET", "/customers/{customer_id}") in routes and ("GET", "/metrics") in routes
    faust_own = [("GET", "/table/customers/x/"), ("GET", "/router/"), ("GET", "/graph/"), ("GET", "/stats/"),
                 ("GET", "/table/customers/"), ("GET", "/router/customers/x/")]
    open_ = {"/health", "/dashboard", "/dashboard/static/{name}"}
    for method, template in [*routes, *faust_own]:
        path = template.replace("{customer_id}", traffic).replace("{name}", "app.js")
        status, body = await http_json(method, stream.worker.web_url + path, body={} if method == "POST" else None)
        if template in open_:
            assert status != 401, (method, path)
        else:
            assert status in (401, 404) if (method, template) in faust_own else status == 401, (method, path, status)
            assert traffic not in json.dumps(body), (method, path)  # nothing of a customer without the token
