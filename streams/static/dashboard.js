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

// -- summary: worker, tiers, transitions, at-risk ---------------------------------------------
async function refresh() {
  try {
    const { body } = await getJSON("/dashboard/summary");
    renderWorker(body);
    renderTiers(body.tiers);
    renderTransitions(body.tiers.order, body.transitions.counts);
    renderAtRisk(body.at_risk);
    $("errors").textContent = `dead-lettered ${body.errors.dead_lettered} · Redis write errors ` +
      `${body.errors.redis_errors} · pending Redis writes ${body.errors.redis_pending_writes} · rules ${body.config_version}`;
  } catch (err) {
    $("worker").textContent = "summary unavailable: " + err.message;
  }
}

function renderWorker(body) {
  const w = body.worker;
  $("worker").textContent = `worker ${w.id} · ${w.app_id} · partitions [${w.partitions.join(", ")}] · ` +
    `${fmt.format(w.events_per_second)} events/s · ${w.events_total} handled`;
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
  body.replaceChildren(...rows.map((r) => el("tr", { "data-customer": r.customer_id },
    el("td", {}, customerLink(r.customer_id)), el("td", { text: r.tier }),
    el("td", { class: "num", text: money.format(r.annual_value) }),
    el("td", { class: "num", text: fmt.format(100 * r.at_risk_score) + "%" }))));
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

function feedItem(type, msg) {
  const when = new Date(msg.emitted_at).toLocaleTimeString([], { hour12: false });
  let badge, text;
  if (type === "tier_change") {
    badge = el("span", { class: "badge " + msg.direction, text: msg.direction });
    text = `${msg.from_tier || "(new)"} → ${msg.to_tier} · score ${fmt.format(msg.score)}`;
  } else {
    badge = el("span", { class: "badge alert", text: msg.kind.replace(/_/g, " ") });
    text = `${msg.tier} · ${money.format(msg.value_at_stake)} at stake · ${msg.reason}`;
  }
  return el("li", { class: "fresh", "data-kind": type, "data-customer": msg.customer_id },
    el("span", { class: "time", text: when }), badge,
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
  const risk = p.at_risk ? ` · at risk (${fmt.format(100 * p.at_risk_score)}%)` : "";
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
    el("div", { class: "muted", text: p.explanation }));
}

refresh();
setInterval(refresh, SUMMARY_EVERY_MS);
follow();
