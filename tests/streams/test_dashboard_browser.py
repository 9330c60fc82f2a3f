"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright.

A worker with a bearer token serves /dashboard; real events go through Kafka. The page
must show the tiers Redis holds, receive a tier change produced after it loaded over
the live feed, list the at-risk customer, and look a customer up with the score's
components. A screenshot is left in tests/artifacts/ for people to look at.

Needs /usr/bin/chromium (Debian package `chromium`) and the `playwright` Python package;
Playwright's own browser download is never used.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright
from streamkit import ROOT, StartStream, StreamGroup, Upstream, eventually, http_json, purchase, uid

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOT = ROOT / "tests" / "artifacts" / "dashboard.png"
TOKEN = f"dash-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT_MS = 30_000  # a limit for the page to get there, not a timing check


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("dashboard", web_token=TOKEN, clock="wall", clock_control=True,
                            review_interval_seconds=0.2) as group:
        yield group


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def shift_clock(group: StreamGroup, days: float) -> datetime:
    status, body = await http_json("POST", f"{group.worker.web_url}/clock", {"advance_days": days}, headers=AUTH)
    assert status == 200, body
    return datetime.fromisoformat(body["now"])


async def tiers_in_redis(group: StreamGroup) -> dict[str, int]:
    status, body = await http_json("GET", f"{group.worker.web_url}/tiers", headers=AUTH)
    assert status == 200, body
    return dict(body["tiers"])


async def page_tiers(page: Page) -> dict[str, int]:
    rows: list[dict[str, Any]] = await page.eval_on_selector_all(
        "#tiers .row", "rows => rows.map(r => ({tier: r.dataset.tier, n: Number(r.dataset.count)}))")
    return {row["tier"]: row["n"] for row in rows}


async def test_the_data_needs_the_token_and_the_page_does_not(stream: StreamGroup) -> None:
    base = stream.worker.web_url
    async with aiohttp.ClientSession() as http:
        for path in ("/metrics", "/dashboard/summary", "/events/stream"):
            async with http.get(base + path) as response:
                assert response.status == 401, path
        async with http.get(base + "/metrics", headers=AUTH) as response:
            assert response.status == 200
            assert "tierstream_events_total" in await response.text()
        for path in ("/dashboard", "/dashboard/static/dashboard.js", "/dashboard/static/dashboard.css", "/health"):
            async with http.get(base + path) as response:
                assert response.status == 200, path
        async with http.get(base + "/dashboard/static/secrets.txt") as response:
            assert response.status == 404


async def test_dashboard_shows_tiers_live_changes_at_risk_and_lookups(
        stream: StreamGroup, upstream: Upstream, browser: Browser) -> None:
    out, t = stream.outputs, stream.topics
    now = await shift_clock(stream, 0)
    top, risky, small = uid("top"), uid("risky"), uid("small")
    events = [purchase(top, 1000, now - timedelta(days=1, minutes=10 - i)) for i in range(4)]  # AAA
    events += [purchase(risky, 1000, now - timedelta(days=1)), purchase(small, 20, now - timedelta(days=1))]
    await upstream.send_all(t.purchases, events)
    await out.wait_for(lambda: all(out.tiers(c) for c in (top, risky, small)), "the seeded customers' tiers")
    await shift_clock(stream, 125)  # > 2 x the typical gap since the last purchase: valuable ones are at risk
    await out.wait_for(lambda: out.alerts(risky, kind="at_risk"), "the at-risk alert")

    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    await page.goto(f"{stream.worker.web_url}/dashboard#token={TOKEN}")
    await page.wait_for_selector("#live.on", timeout=LIMIT_MS)  # the live feed is connected

    # Tier bars: what Redis holds, all three seeded customers.
    await page.wait_for_function("document.getElementById('tiers-total').textContent === '(3 customers)'",
                                 timeout=LIMIT_MS)

    async def same_tiers() -> bool:
        return await page_tiers(page) == await tiers_in_redis(stream)

    await eventually(same_tiers, "the page's tier bars to equal Redis's tier counts")
    assert list(await page_tiers(page)) == list(stream.settings.scoring.tier_names)

    # The at-risk table: the valuable customer who stopped buying.
    await page.wait_for_selector(f"#at-risk tr[data-customer='{risky}']", timeout=LIMIT_MS)

    # A tier change produced now, after the page loaded, arrives over the live feed.
    fresh = uid("fresh")
    await upstream.send(t.purchases, purchase(fresh, 1000, now + timedelta(days=125, minutes=-5)))
    change = (await out.wait_for(lambda: out.tiers(fresh), "the fresh customer's tier change"))[0]
    item = await page.wait_for_selector(f"#feed li[data-kind='tier_change'][data-customer='{fresh}']",
                                        timeout=LIMIT_MS)
    assert item is not None
    assert f"(new) → {change['to_tier']}" in await item.inner_text()
    await page.wait_for_selector(f"#transitions td[data-from='none'][data-to='{change['to_tier']}']:not(.zero)",
                                 timeout=LIMIT_MS)

    # Lookup: the profile with the score's components.
    await page.fill("#lookup-input", fresh)
    await page.click("#lookup-button")
    await page.wait_for_selector(f"#lookup-result .profile[data-customer='{fresh}'] [data-component]",
                                 timeout=LIMIT_MS)
    names = await page.eval_on_selector_all("#lookup-result [data-component]",
                                            "rows => rows.map(r => r.dataset.component)")
    assert {"recency", "frequency", "monetary"} <= set(names)
    headline = await page.inner_text("#lookup-result .headline")
    assert f"tier {change['to_tier']}" in headline

    await page.wait_for_function("document.getElementById('tiers-total').textContent === '(4 customers)'",
                                 timeout=LIMIT_MS)  # the fresh customer too, for the screenshot
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert errors == []
    await page.close()
