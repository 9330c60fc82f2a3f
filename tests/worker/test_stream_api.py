"""The query API of a worker: /customers/{id}, /tiers, /health, and the bearer token.

The module's worker requires a token on everything but /health. Its customers are
created once (module fixture): one AAA, two A, one B.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

import pytest

from scoring.rfm import COMPONENT_NAMES
from tests.kits.stream import StartStream, StreamGroup, Upstream, enquiry, eventually, http_json, purchase, uid

pytestmark = pytest.mark.integration
TOKEN = "t0ken-for-tests-only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("api", web_token=TOKEN) as group:
        yield group


@dataclass
class Customers:
    aaa: str
    a1: str
    a2: str
    b: str


@pytest.fixture(scope="module")
async def customers(stream: StreamGroup, upstream: Upstream) -> Customers:
    """AAA (score 85), A (61.25), A (62.25 with an enquiry), B (35); waits until /tiers counts them."""
    made = Customers(uid("aaa"), uid("a1"), uid("a2"), uid("b"))
    at = datetime.now(UTC) - timedelta(days=1)
    t = stream.topics
    for i in range(4):
        await upstream.send(t.purchases, purchase(made.aaa, 1000, at + timedelta(minutes=i)))
    await upstream.send(t.purchases, purchase(made.a1, 1000, at))
    await upstream.send(t.purchases, purchase(made.a2, 1000, at))
    await upstream.send(t.enquiries, enquiry(made.a2, at))
    await upstream.send(t.purchases, purchase(made.b, 50, at))

    async def counted() -> bool:
        status, body = await http_json("GET", f"{stream.worker.web_url}/tiers", headers=AUTH)
        return status == 200 and body["tiers"] == {"AAA": 1, "A": 2, "B": 1, "C": 0}

    await eventually(counted, "/tiers counting the four customers")
    return made


async def test_customer_profile_with_explanation(stream: StreamGroup, customers: Customers) -> None:
    status, body = await http_json("GET", f"{stream.worker.web_url}/customers/{customers.aaa}", headers=AUTH)
    assert status == 200, body
    assert body["customer_id"] == customers.aaa
    assert (body["tier"], body["stored_tier"], body["score"], body["segment"]) == ("AAA", "AAA", 85.0, "new")
    assert (body["r_score"], body["f_score"], body["m_score"]) == (5, 3, 5)
    assert (body["frequency"], body["monetary"], body["annual_value"]) == (4, 4000.0, 4000.0)
    assert body["at_risk"] is False
    assert [c["name"] for c in body["components"]] == list(COMPONENT_NAMES)
    assert {c["name"]: c["points"] for c in body["components"] if c["points"]} == {
        "recency": 35.0, "frequency": 15.0, "monetary": 35.0}
    assert body["explanation"] == "recency +35.0; frequency +15.0; monetary +35.0"
    assert date.fromisoformat(body["as_of"])
    assert datetime.fromisoformat(body["next_review_at"]) > datetime.now(UTC)
    assert body["config_version"] == "rules-1"

    status, body = await http_json("GET", f"{stream.worker.web_url}/customers/{customers.a2}", headers=AUTH)
    assert (status, body["tier"], body["score"]) == (200, "A", 62.25)
    assert body["explanation"] == "recency +35.0; monetary +26.2; enquiries +1.0"


@pytest.mark.parametrize("customer_id", ["nobody-at-all", "no body é/ü"])
async def test_unknown_customer_is_404_with_a_json_body(stream: StreamGroup, customers: Customers,
                                                        customer_id: str) -> None:
    url = f"{stream.worker.web_url}/customers/{quote(customer_id, safe='')}"
    status, body = await http_json("GET", url, headers=AUTH)
    assert status == 404
    assert body == {"error": "unknown customer", "customer_id": customer_id}


async def test_tiers_counts_and_value_concentration(stream: StreamGroup, customers: Customers) -> None:
    """Revenue (the window's net spend): AAA 4,000, A 2 x 1,000, B 50, of 6,050; customers 1, 2, 1 of 4."""
    status, body = await http_json("GET", f"{stream.worker.web_url}/tiers", headers=AUTH)
    assert (status, body["tiers"], body["total"]) == (200, {"AAA": 1, "A": 2, "B": 1, "C": 0}, 4)
    assert body["value"] == [
        {"tier": "AAA", "customers": 1, "customer_share": 0.25, "revenue": 4000.0,
         "revenue_share": round(4000 / 6050, 4), "lift": round(4000 / 6050 / 0.25, 2)},
        {"tier": "A", "customers": 2, "customer_share": 0.5, "revenue": 2000.0,
         "revenue_share": round(2000 / 6050, 4), "lift": round(2000 / 6050 / 0.5, 2)},
        {"tier": "B", "customers": 1, "customer_share": 0.25, "revenue": 50.0,
         "revenue_share": round(50 / 6050, 4), "lift": round(50 / 6050 / 0.25, 2)},
        {"tier": "C", "customers": 0, "customer_share": 0.0, "revenue": 0.0, "revenue_share": 0.0, "lift": None}]


async def test_health_needs_no_token_and_shows_no_secret(stream: StreamGroup, customers: Customers) -> None:
    status, body = await http_json("GET", f"{stream.worker.web_url}/health")
    assert status == 200
    assert body["status"] == "ok"
    assert body["app_id"] == stream.settings.app_id
    assert body["partitions"] == [0, 1, 2, 3]
    assert (body["redis"], body["clock"]) == ("ok", "wall")
    assert body["events_scored"] == 8
    assert body["dead_lettered"] == 0
    text = json.dumps(body)
    assert TOKEN not in text
    assert "redis://" not in text


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_a_token_is_required(stream: StreamGroup, customers: Customers,
                                   headers: dict[str, str] | None) -> None:
    for path in (f"/customers/{customers.aaa}", "/tiers"):
        status, body = await http_json("GET", f"{stream.worker.web_url}{path}", headers=headers)
        assert (status, body) == (401, {"error": "unauthorized"}), path


async def test_clock_control_is_off_by_default(stream: StreamGroup) -> None:
    status, body = await http_json("POST", f"{stream.worker.web_url}/clock", {"advance_days": 1}, headers=AUTH)
    assert (status, body) == (403, {"error": "clock control is disabled"})
