// tierstream dashboard: polls /dashboard/summary, follows /events/stream, looks up /customers/{id}.
// Plain DOM, no libraries. Every value from the server is set as text, never as HTML.
"use strict";

const SUMMARY_EVERY_MS = 3000;
const FEED_MAX = 100;
const TOKEN_KEY = "tierstream.token";
const $ = (id) => document.getElementById(id);

// -- token: "#token=..." once, then kept for this tab only -------------------------------
(function takeTokenFromHash() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

async function getJSON(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (response.status === 401) { $("token-form").hidden = false; throw new Error("unauthorized"); }
  return { status: response.status, body: await response.json() };
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value);
  $("token-form").hidden = true;
  refresh();
  restartStream();
});

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

const fmt = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
const money = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });

// -- summary: worker, versions, charts, lag, tiers, transitions, at-risk -------------------------
async function refresh() {
  try {
    const { body } = await getJSON("/dashboard/summary");
    renderWorker(body);
    renderVersions(body.versions);
    renderCharts(body.tiers.order, body.history);
    renderLag(body.lag);
    renderTiers(body.tiers);
    renderValue(body.value);
    renderTransitions(body.tiers.order, body.transitions.counts);
    renderAtRisk(body.at_risk);
    renderPlan(body.plan);
    $("errors").textContent = `dead-lettered ${body.errors.dead_lettered} · Redis write errors ` +
      `${body.errors.redis_errors} · pending Redis writes ${body.errors.redis_pending_writes}`;
  } catch (err) {
    $("worker").textContent = "summary unavailable: " + err.message;
  }
}

function renderWorker(body) {
  const w = body.worker;
  $("worker").textContent = `worker ${w.id} · ${w.app_id} · partitions [${w.partitions.join(", ")}] · ` +
    `${fmt.format(w.events_per_second)} events/s · ${w.events_total} handled`;
}

function renderVersions(v) {
  const part = (label, value) => [label + " ", el("b", { text: value || "none" })];
  $("versions").replaceChildren("in force: ", ...part("rules", v.config), " · ", ...part("value model", v.model),
    " · ", ...part("calibration", v.calibration));
  $("versions").dataset.config = v.config;
}

function renderLag(lag) {
  $("lag-total").textContent = `(${lag.total} records in total)`;
  $("lag-empty").hidden = lag.partitions.length > 0;
  $("lag").querySelector("tbody").replaceChildren(...lag.partitions.map((p) =>
    el("tr", { "data-partition": String(p.partition) }, el("td", { text: String(p.partition) }),
      el("td", { class: "num", text: String(p.records) }))));
}

// -- charts over time: inline SVG from the worker's heartbeat intervals -------------------------
const SVG_NS = "http://www.w3.org/2000/svg";
const BOX = { w: 600, h: 170, left: 48, right: 10, top: 22, bottom: 22 };
const PALETTE = ["#3b6fd8", "#1f9d55", "#d98a00", "#d64545", "#7c4dce", "#0f9fb0", "#6b7280"];

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = Math.pow(10, Math.floor(Math.log10(value)));
  return [1, 2, 5, 10].map((m) => m * step).find((top) => top >= value);
}

function clock(epochSeconds) { return new Date(epochSeconds * 1000).toTimeString().slice(0, 8); }

function renderCharts(order, history) {
  const samples = history.samples;
  const times = samples.map((s) => s.at);
  const minutes = samples.length ? (times[times.length - 1] - times[0]) / 60 : 0;
  $("chart-span").textContent = `(last ${fmt.format(minutes)} min, a point every ${history.interval_seconds} s)`;
  drawChart($("chart-events"), times, [{ name: "events/s", values: samples.map((s) => s.events_per_second) }]);
  drawChart($("chart-lag"), times, [{ name: "lag", values: samples.map((s) => s.lag) }]);
  const known = samples.filter((s) => s.tiers);
  drawChart($("chart-tiers"), known.map((s) => s.at),
    order.map((tier) => ({ name: tier, values: known.map((s) => s.tiers[tier] || 0) })), { stacked: true });
  drawChart($("chart-outputs"), times, [
    { name: "tier changes", values: samples.map((s) => s.tier_changes) },
    { name: "alerts", values: samples.map((s) => s.alerts) },
    { name: "dead letters", values: samples.map((s) => s.dead_lettered) }]);
}

// series: [{name, values}] aligned with `times` (epoch seconds); stacked: areas on top of each other.
function drawChart(box, times, series, { stacked = false } = {}) {
  const { w, h, left, right, top, bottom } = BOX;
  const n = times.length;
  box.dataset.samples = String(n);
  box.dataset.values = series.map((s) => s.values.join(",")).join("|");
  box.dataset.series = series.map((s) => s.name).join("|");
  box.dataset.times = times.join(",");
  const parts = [svg("line", { class: "axis", x1: left, y1: h - bottom, x2: w - right, y2: h - bottom })];
  if (n < 2) {
    parts.push(svg("text", { x: left + 8, y: h / 2 }, "collecting… (a point per heartbeat)"));
    box.replaceChildren(...parts);
    return;
  }
  const levels = stacked ? stackedLevels(series) : series.map((s) => s.values);
  const peak = niceMax(Math.max(0, ...levels.flat()));
  const span = Math.max(1e-9, times[n - 1] - times[0]);
  const x = (i) => left + (w - left - right) * (times[i] - times[0]) / span;
  const y = (v) => h - bottom - (h - top - bottom) * v / peak;
  parts.push(svg("line", { class: "grid", x1: left, y1: y(peak), x2: w - right, y2: y(peak) }),
    svg("line", { class: "grid", x1: left, y1: y(peak / 2), x2: w - right, y2: y(peak / 2) }),
    svg("text", { x: left - 6, y: y(peak) + 4, "text-anchor": "end" }, fmt.format(peak)),
    svg("text", { x: left - 6, y: y(peak / 2) + 4, "text-anchor": "end" }, fmt.format(peak / 2)),
    svg("text", { x: left - 6, y: h - bottom + 4, "text-anchor": "end" }, "0"),
    svg("text", { x: left, y: h - 6 }, clock(times[0])),
    svg("text", { x: w - right, y: h - 6, "text-anchor": "end" }, clock(times[n - 1])));
  levels.forEach((values, k) => {
    const color = PALETTE[k % PALETTE.length];
    const line = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    if (stacked) {
      const below = k ? levels[k - 1] : values.map(() => 0);
      const base = below.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).reverse();
      parts.push(svg("polygon", { points: [...line, ...base].join(" "), fill: color, "fill-opacity": 0.75,
        "data-series": series[k].name }));
    } else {
      parts.push(svg("polyline", { class: "line", points: line.join(" "), stroke: color,
        "data-series": series[k].name }));
    }
    const last = series[k].values[n - 1];
    parts.push(svg("text", { class: "legend", x: w - right - 110 * (series.length - k) + 14, y: 12 },
      `${series[k].name} ${fmt.format(last)}`),
      svg("rect", { x: w - right - 110 * (series.length - k), y: 3, width: 10, height: 10, fill: color }));
  });
  box.replaceChildren(...parts);
}

function stackedLevels(series) {
  const levels = [];
  series.forEach((s, k) => levels.push(s.values.map((v, i) => v + (k ? levels[k - 1][i] : 0))));
  return levels;
}

function renderTiers(tiers) {
  const box = $("tiers");
  if (!tiers.counts) { box.replaceChildren(el("p", { class: "error", text: "Redis unreachable" })); return; }
  const total = tiers.order.reduce((sum, t) => sum + (tiers.counts[t] || 0), 0);
  const top = Math.max(1, ...tiers.order.map((t) => tiers.counts[t] || 0));
  $("tiers-total").textContent = `(${total} customers)`;
  box.replaceChildren(...tiers.order.map((tier) => {
    const n = tiers.counts[tier] || 0;
    const fill = el("div", { class: "fill" });
    fill.style.width = (100 * n / top).toFixed(1) + "%";
    const share = total ? ` ${Math.round(100 * n / total)}%` : "";
    return el("div", { class: "row", "data-tier": tier, "data-count": String(n) },
      el("span", { class: "label", text: tier }), el("div", { class: "track" }, fill),
      el("span", { class: "count", text: n + share }));
  }));
}

// The best tiers should bring a share of the revenue well above their share of the customers (lift > 1).
function renderValue(rows) {
  const body = $("value").querySelector("tbody");
  if (rows === null || rows === undefined) {
    $("value-empty").hidden = false; $("value-empty").textContent = "Redis unreachable"; body.replaceChildren(); return;
  }
  $("value-empty").hidden = true;
  const pct = (share) => share === null ? "–" : Math.round(100 * share) + "%";
  body.replaceChildren(...rows.map((r) => el("tr", { "data-tier": r.tier, "data-lift": String(r.lift) },
    el("th", { text: r.tier }), el("td", { class: "num", text: `${r.customers} (${pct(r.customer_share)})` }),
    el("td", { class: "num", text: `${money.format(r.revenue)} (${pct(r.revenue_share)})` }),
    el("td", { class: "num", text: r.lift === null ? "–" : fmt.format(r.lift) + "×" }))));
}

// plan-report's rows (rates 0-1, money in base currency); a flagged row (its interval entirely below zero) is marked.
function renderPlan(plan) {
  const body = $("plan").querySelector("tbody");
  const rows = plan ? plan.rows : [];
  $("plan-empty").hidden = rows.length > 0;
  $("plan-total").textContent = plan && plan.outcomes ? `(${plan.outcomes} outcomes)` : "";
  const pts = (v) => (v === "" ? "–" : (v >= 0 ? "+" : "") + (100 * v).toFixed(1));
  const cur = (v) => (v === "" ? "–" : (v >= 0 ? "+" : "") + v.toFixed(2));
  const interval = (lo, hi, f) => (lo === "" ? "n/a" : `[${f(lo)}, ${f(hi)}]`);
  body.replaceChildren(...rows.map((r) => el("tr", {
    class: r.flag ? "flagged" : "", "data-rule": r.rule, "data-tier": r.tier, "data-flag": r.flag },
  el("th", { text: r.rule }), el("td", { text: r.tier === "*" ? "all" : r.tier }),
  el("td", { class: "num", text: String(r.treated) }), el("td", { class: "num", text: String(r.held_out) }),
  el("td", { class: "num", text: `${(100 * r.purchase_rate_t).toFixed(1)} / ${(100 * r.purchase_rate_h).toFixed(1)}` }),
  el("td", { class: "num", text: `${pts(r.purchase_uplift)} ${interval(r.purchase_low, r.purchase_high, pts)}` }),
  el("td", { class: "num", text: `${cur(r.net_value)} ${interval(r.net_low, r.net_high, cur)}` }),
  el("td", { text: r.flag ? "⚑ " + r.flag : "" }))));
}

function renderTransitions(order, counts) {
  const box = $("transitions");
  if (!counts.length) { box.replaceChildren(el("p", { class: "muted", text: "no tier changes in the last hour" })); return; }
  const cell = new Map(counts.map((c) => [c.from + "→" + c.to, c.count]));
  const peak = Math.max(...counts.map((c) => c.count));
  const head = el("tr", {}, el("th", { text: "from \\ to" }), ...order.map((t) => el("th", { text: t })));
  const rows = ["none", ...order].map((from) => el("tr", {}, el("th", { text: from === "none" ? "(new)" : from }),
    ...order.map((to) => {
      const n = cell.get(from + "→" + to) || 0;
      const td = el("td", { class: n ? "" : "zero", text: String(n), "data-from": from, "data-to": to });
      if (n) td.style.background = `rgba(59, 111, 216, ${(0.12 + 0.5 * n / peak).toFixed(2)})`;
      return td;
    })));
  box.replaceChildren(el("table", { class: "matrix" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function renderAtRisk(rows) {
  const body = $("at-risk").querySelector("tbody");
  if (rows === null) { $("at-risk-empty").textContent = "Redis unreachable"; body.replaceChildren(); return; }
  $("at-risk-empty").hidden = rows.length > 0;
  body.replaceChildren(...rows.map((r) => el("tr", { "data-customer": r.customer_id, "data-basis": r.risk_basis },
    el("td", {}, customerLink(r.customer_id)), el("td", { text: r.tier }),
    el("td", { class: "num", text: money.format(r.annual_value) }),
    el("td", { class: "num risk", text: riskText(r.risk_basis, r.at_risk_score, r.recency_days) }))));
  const rules = rows.some((r) => r.risk_basis === "rules");
  $("at-risk-basis").textContent = rules ? "rules: at risk when the days since the last purchase exceed a " +
    "multiple of the customer's typical gap (no probability without a value model)" : "";
}

// A value model gives a probability of having stopped buying; the rules only an overdue index: no "%".
function riskText(basis, score, recencyDays) {
  if (basis === "model") return fmt.format(100 * score) + "%";
  return recencyDays === null || recencyDays === undefined ? "overdue" : `${recencyDays} d no purchase`;
}

function customerLink(id) {
  const a = el("a", { class: "customer", text: id, href: "#" });
  a.addEventListener("click", (e) => { e.preventDefault(); $("lookup-input").value = id; lookup(id); });
  return a;
}

// -- live feed: server-sent events read with fetch (EventSource cannot send a token) ---------
let lastEventId = "";
let streamAbort = null;

function restartStream() { if (streamAbort) streamAbort.abort(); }

async function follow() {
  for (;;) {
    streamAbort = new AbortController();
    try {
      const headers = { ...authHeaders(), Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await fetch("/events/stream", { headers, signal: streamAbort.signal, cache: "no-store" });
      if (response.status === 401) $("token-form").hidden = false;
      if (!response.ok) throw new Error("HTTP " + response.status);
      setLive(true);
      await readEvents(response.body.getReader());
    } catch (err) { /* reconnect below */ }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function readEvents(reader) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      onEvent(parseEvent(buffer.slice(0, cut)));
      buffer = buffer.slice(cut + 2);
    }
  }
}

function parseEvent(block) {
  const event = { id: "", type: "message", data: "" };
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    if (colon === 0) continue; // a comment (keepalive)
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") event.id = value; else if (field === "event") event.type = value;
    else if (field === "data") event.data += (event.data ? "\n" : "") + value;
  }
  return event;
}

const seen = new Set();

function onEvent(event) {
  if (event.id) lastEventId = event.id;
  if (!event.data || (event.type !== "tier_change" && event.type !== "alert")) return;
  const msg = JSON.parse(event.data);
  if (seen.has(msg.id)) return; // outputs are resent after a crash with the same id
  seen.add(msg.id);
  const feed = $("feed");
  feed.prepend(feedItem(event.type, msg));
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
  $("feed-empty").hidden = true;
}

// "2024-05-01 09:30:12": the date too, since outputs of one stream may carry days far apart.
function stamp(iso) {
  const d = new Date(iso);
  const pad = (v) => String(v).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${d.toTimeString().slice(0, 8)}`;
}

function feedItem(type, msg) {
  const when = stamp(msg.emitted_at);
  let badge, text;
  if (type === "tier_change") {
    badge = el("span", { class: "badge " + msg.direction, text: msg.direction });
    text = `${msg.from_tier || "(new)"} → ${msg.to_tier} · score ${fmt.format(msg.score)}` +
      (msg.cause_text ? ` · ${msg.cause_text}` : "");
  } else {
    badge = el("span", { class: "badge alert", text: msg.kind.replace(/_/g, " ") });
    text = `${msg.tier} · ${money.format(msg.value_at_stake)} at stake · ${msg.reason}`;
  }
  return el("li", { class: "fresh", "data-kind": type, "data-customer": msg.customer_id },
    el("span", { class: "time", text: when, title: msg.emitted_at }), badge,
    el("span", {}, customerLink(msg.customer_id), " " + text));
}

function setLive(on) { $("live").className = "live " + (on ? "on" : "off"); }

// -- customer lookup --------------------------------------------------------------------------
$("lookup-form").addEventListener("submit", (e) => { e.preventDefault(); lookup($("lookup-input").value.trim()); });

async function lookup(id) {
  const box = $("lookup-result");
  if (!id) return;
  box.replaceChildren(el("p", { class: "muted", text: "looking up…" }));
  try {
    const { status, body } = await getJSON("/customers/" + encodeURIComponent(id));
    if (status !== 200) { box.replaceChildren(el("p", { class: "error", text: body.error || "HTTP " + status })); return; }
    box.replaceChildren(profileView(body));
  } catch (err) {
    box.replaceChildren(el("p", { class: "error", text: "lookup failed: " + err.message }));
  }
}

function profileView(p) {
  const basis = p.model_version ? "model" : "rules";
  const risk = p.at_risk ? ` · at risk (${riskText(basis, p.at_risk_score, p.recency_days)})` : "";
  const peak = Math.max(1, ...p.components.map((c) => Math.abs(c.points)));
  const rows = p.components.map((c) => {
    const points = Math.round(c.points * 10) / 10 || 0; // no "-0"
    const fill = el("div", { class: "fill " + (c.points < 0 ? "neg" : "pos") });
    fill.style.width = (50 * Math.abs(c.points) / peak).toFixed(1) + "%";
    return el("div", { class: "row", "data-component": c.name },
      el("span", { text: c.name }), el("div", { class: "track" }, el("div", { class: "mid" }), fill),
      el("span", { class: "num", text: (points > 0 ? "+" : "") + fmt.format(points) }));
  });
  return el("div", { class: "profile", "data-customer": p.customer_id },
    el("div", { class: "headline" }, el("b", { text: p.customer_id }),
      ` · tier ${p.tier} · score ${fmt.format(p.score)} · ${p.segment}${risk}`),
    el("div", { class: "muted", text: `RFM ${p.r_score}-${p.f_score}-${p.m_score} · ${p.frequency} purchase${p.frequency === 1 ? "" : "s"}, ` +
      `${money.format(p.monetary)} spent, ${money.format(p.annual_value)} a year · as of ${p.as_of}` }),
    el("div", { class: "components" }, ...rows),
    el("div", { class: "muted", text: p.explanation }),
    ...offeringView(p));
}

function offeringView(p) { // value x potential cell, satisfaction and the next best proposition
  if (!p.proposition) return [];
  return [
    el("div", { class: "offering", "data-proposition": p.proposition },
      el("b", { text: "propose " + p.proposition + (p.proposition_category ? " " + p.proposition_category : "") }),
      ` · ${p.proposition_reason}`),
    el("div", { class: "muted", text: `cell ${p.value_potential_cell} (potential ${fmt.format(p.potential)}, ` +
      `${p.potential_basis}) · ${p.satisfaction_explanation}` }),
  ];
}

refresh();
setInterval(refresh, SUMMARY_EVERY_MS);
follow();
