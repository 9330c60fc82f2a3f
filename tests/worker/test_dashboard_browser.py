"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright.

A worker with a bearer token serves /dashboard; real events go through Kafka. The page
must show the tiers Redis holds, receive a tier change produced after it loaded over
the live feed (with its cause in words and a date), list the at-risk customer (rules:
no "%"), show the versions in force and the consumer lag, look a customer up with the
score's components, and draw charts over time from the worker's heartbeats that change
as events arrive. Screenshots are left in tests/artifacts/ (CI keeps them).

Needs /usr/bin/chromium (Debian package `chromium`) and the `playwright` Python package;
Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.kits.stream import ROOT, StartStream, StreamGroup, Upstream, eventually, http_json, purchase, uid
from tests.worker.test_plan_panel import panel, published_plan

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHARTS = ("chart-events", "chart-lag", "chart-tiers", "chart-outputs")
TOKEN = f"dash-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT_MS = 30_000  # a limit for the page to get there, not a timing check


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("dashboard", web_token=TOKEN, clock="wall", clock_control=True,
                            review_interval_seconds=0.2, heartbeat_seconds=0.5) as group:
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


async def chart_values(page: Page) -> dict[str, str]:
    """Each chart's drawn data (its series' values, as the page set them on the SVG)."""
    return {name: await page.get_attribute(f"#{name}", "data-values") or "" for name in CHARTS}


async def drawn_since(page: Page, after: float) -> dict[str, list[float]]:
    """Series name -> the values the events and per-interval charts drew for intervals ending after `after`."""
    found: dict[str, list[float]] = {}
    for chart in ("chart-events", "chart-outputs"):
        # one read of the three attributes: the page redraws between separate reads
        raw_times, raw_names, raw_values = await page.eval_on_selector(
            f"#{chart}", "e => [e.dataset.times || '', e.dataset.series || '', e.dataset.values || '']")
        times = [float(x) for x in raw_times.split(",") if x]
        names, series = raw_names.split("|"), raw_values.split("|")
        for name, values in zip(names, series, strict=True):
            found[name] = [float(v) for at, v in zip(times, values.split(","), strict=True) if at > after]
    return found


async def last_drawn(page: Page) -> float:
    times = (await page.get_attribute("#chart-events", "data-times") or "").split(",")
    return float(times[-1])


async def shoot(page: Page, n: int) -> bytes:
    """Full page and charts-only screenshots into tests/artifacts/; returns the charts' PNG."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"dashboard-{n}.png"), full_page=True)
    return await page.locator("#charts").screenshot(path=str(ARTIFACTS / f"dashboard-charts-{n}.png"))


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

    # Value concentration: a row per tier, in order, with the lift /tiers computes from Redis.
    await page.wait_for_selector("#value tr[data-tier]", timeout=LIMIT_MS)
    shown = await page.eval_on_selector_all("#value tr[data-tier]", "rows => rows.map(r => r.dataset.tier)")
    assert shown == list(stream.settings.scoring.tier_names)

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
    assert errors == []
    await page.close()


async def test_feed_shows_causes_in_words_and_dates_and_rules_risk_is_no_percentage(
        stream: StreamGroup, upstream: Upstream, browser: Browser) -> None:
    out, t = stream.outputs, stream.topics
    risky = uid("lapsing")
    await upstream.send(t.purchases, purchase(risky, 1000, await shift_clock(stream, 0) - timedelta(days=1)))
    await out.wait_for(lambda: out.tiers(risky), "the lapsing customer's tier")
    now = await shift_clock(stream, 125)
    await out.wait_for(lambda: out.alerts(risky, kind="at_risk"), "the at-risk alert")
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(f"{stream.worker.web_url}/dashboard#token={TOKEN}")
    await page.wait_for_selector("#live.on", timeout=LIMIT_MS)
    buyer = uid("buyer")
    await upstream.send(t.purchases, purchase(buyer, 42, now - timedelta(hours=1)))
    change = (await out.wait_for(lambda: out.tiers(buyer), "the buyer's first tier"))[0]
    assert change["cause_text"] == "purchase 42.00" and change["cause"] != change["cause_text"]
    item = await page.wait_for_selector(f"#feed li[data-kind='tier_change'][data-customer='{buyer}']",
                                        timeout=LIMIT_MS)
    assert item is not None
    assert "purchase 42.00" in await item.inner_text()
    when = await item.eval_on_selector(".time", "e => e.textContent")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", when), when  # a date, not only a time of day

    # The at-risk table: no value model here, so the risk is days without a purchase, not a probability.
    await page.wait_for_selector(f"#at-risk tr[data-customer='{risky}']", timeout=LIMIT_MS)
    rows = await page.eval_on_selector_all(
        "#at-risk tr[data-customer]", "rows => rows.map(r => [r.dataset.basis, r.querySelector('.risk').textContent])")
    assert rows and all(basis == "rules" and "%" not in text and re.fullmatch(r"\d+ d no purchase", text)
                        for basis, text in rows), rows
    assert "no probability" in await page.inner_text("#at-risk-basis")

    # What is in force, and the consumer lag of every owned partition (what /metrics has).
    assert await page.get_attribute("#versions", "data-config") == stream.settings.scoring.version
    assert "value model none" in await page.inner_text("#versions")
    await page.wait_for_selector("#lag tr[data-partition]", timeout=LIMIT_MS)
    shown = await page.eval_on_selector_all("#lag tr[data-partition]", "rows => rows.map(r => +r.dataset.partition)")
    status, summary = await http_json("GET", f"{stream.worker.web_url}/dashboard/summary", headers=AUTH)
    assert status == 200 and set(shown) <= set(summary["worker"]["partitions"])
    assert summary["lag"]["total"] == sum(p["records"] for p in summary["lag"]["partitions"])
    await page.close()


async def test_charts_over_time_change_between_two_screenshots(
        stream: StreamGroup, upstream: Upstream, browser: Browser) -> None:
    out, t = stream.outputs, stream.topics
    now = await shift_clock(stream, 0)
    page = await browser.new_page(viewport={"width": 1400, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{stream.worker.web_url}/dashboard#token={TOKEN}")
    await page.wait_for_function("Number(document.getElementById('chart-events').dataset.samples) >= 2",
                                 timeout=LIMIT_MS)
    first_values, first_png = await chart_values(page), await shoot(page, 1)
    shot_at = await last_drawn(page)

    batch = [uid("chart") for _ in range(12)]
    await upstream.send_all(t.purchases, [purchase(c, 300, now - timedelta(hours=2)) for c in batch])
    await out.wait_for(lambda: all(out.tiers(c) for c in batch), "the batch's tiers")

    async def burst_drawn() -> dict[str, list[float]] | None:  # the burst's intervals are on the charts
        since = await drawn_since(page, shot_at)
        # both charts past the shot: they are read one after the other, and the page may redraw in between
        return since if sum(since["tier changes"]) >= len(batch) and since["events/s"] else None

    since = await eventually(burst_drawn, "the charts to draw the burst's tier changes")
    assert max(since["events/s"]) > 0
    second_values, second_png = await chart_values(page), await shoot(page, 2)
    assert second_png != first_png
    assert all(second_values[c] != first_values[c] for c in CHARTS)
    assert errors == []
    await page.close()


async def test_the_contact_plan_panel_shows_plan_reports_rows_and_marks_flagged_rules(
        stream: StreamGroup, browser: Browser) -> None:
    """The worker's summary carries the plan table (empty here: its rules have no control group); the page
    draws the table `Ops.plan` makes of published outcomes (a 40.00 voucher that changes nothing, served in
    place of the empty one), the flagged rule marked."""
    status, summary = await http_json("GET", f"{stream.worker.web_url}/dashboard/summary", headers=AUTH)
    assert status == 200 and summary["plan"]["unit"] == "outcome window"
    plan = panel(published_plan()[0])
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    async def with_plan(route: Any) -> None:
        response = await route.fetch()
        body = await response.json()
        await route.fulfill(response=response, body=json.dumps(body | {"plan": plan}))

    await page.route("**/dashboard/summary", with_plan)
    await page.goto(f"{stream.worker.web_url}/dashboard#token={TOKEN}")
    await page.wait_for_selector("#plan tr.flagged[data-rule='hello'][data-tier='*']", timeout=LIMIT_MS)
    shown = await page.eval_on_selector_all(
        "#plan tbody tr", "rows => rows.map(r => [r.dataset.rule, r.dataset.tier, r.dataset.flag])")
    assert shown == [[r["rule"], r["tier"], r["flag"]] for r in plan["rows"]]
    assert "costs more than it brings" in await page.inner_text("#plan tr.flagged")
    assert await page.is_hidden("#plan-empty") and errors == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.locator("#plan-card").screenshot(path=str(ARTIFACTS / "dashboard-plan.png"))
    await page.close()
