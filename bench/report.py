"""Results: the JSON document, the on-screen table and bench/README.md's latest-results section."""

from __future__ import annotations

import math
import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), "loadavg": os.getloadavg()}


@dataclass(frozen=True)
class Row:
    part: str
    measure: str
    value: float | None
    unit: str = ""
    target: str = ""
    met: bool | None = None


def _fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("ms", "s"):
        return f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}".strip()


def _status(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def _at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None or math.isnan(value) else value <= limit


def _latency_rows(latency: dict[str, Any]) -> list[Row]:
    out = []
    for load, lat in latency.items():
        if load == "floor":  # bench.echo: the broker and clients alone, same settings (see bench/latency.py)
            out.append(Row("3 latency", f"{lat['load']} load through a forwarder that does no scoring: p50 / p95",
                           None, "", f"{lat['p50']:,.1f} / {lat['p95']:,.1f} ms"))
            out.append(Row("3 latency", f"{lat['load']} load through that forwarder: p99 (the floor)", lat["p99"],
                           "ms"))
            out.append(Row("3 latency", f"{lat['load']} load: the forwarder's CPU per event (aiokafka alone)",
                           lat["cpu_us_per_event"], "us"))
            continue
        target = load == "50%"
        out.append(Row("3 latency", f"{load} load ({lat['offered_per_s']:,.0f}/s): p50 / p95", None, "",
                       f"{lat['p50']:,.1f} / {lat['p95']:,.1f} ms"))
        out.append(Row("3 latency", f"{load} load: p99 ({lat['answered']}/{lat['probes']} probes)", lat["p99"], "ms",
                       "<= 50 ms" if target else "", _at_most(lat["p99"], 50) if target else None))
        if lat.get("cpu_us_per_event") is not None:
            out.append(Row("3 latency", f"{load} load: worker CPU per event", lat["cpu_us_per_event"], "us"))
    return out


def rows(r: dict[str, Any]) -> list[Row]:
    """The table's rows from a results document (missing parts are left out)."""
    out: list[Row] = []
    if "core_events_per_s" in r:
        d = r["details"]["core"]
        log = d["log"]
        out += [
            Row("1 core", f"fold, {log['rows']:,} rows / {log['customers']:,} customers", r["core_events_per_s"],
                "events/s", ">= 150,000", _at_least(r["core_events_per_s"], 150_000)),
            Row("1 core", "step (the stream's per-event path)", d["core_step_events_per_s"], "events/s"),
            Row("1 core", f"replay command, CSV in/out (in-process, {d.get('replay_jobs', 1)} processes)",
                r["replay_rows_per_s"], "rows/s", ">= 100,000", _at_least(r["replay_rows_per_s"], 100_000)),
            Row("1 core", "  same, one process (--jobs 1)", d.get("replay_one_process_rows_per_s"), "rows/s",
                ">= 100,000", _at_least(d.get("replay_one_process_rows_per_s"), 100_000)),
            Row("1 core", "replay --exact (steps like the stream)", d.get("replay_exact_rows_per_s"), "rows/s"),
        ]
        weekly = r["weekly_year_state_bytes"]
        out += [Row("1 core", "state, a year of weekly purchases (outbox expired)", weekly["stored_outbox_expired"],
                    "bytes", "< 1 KB", weekly["stored_outbox_expired"] < 1024),
                Row("1 core", "  same, right after an event (with outbox)", weekly["stored_after_event"], "bytes")]
    if "pipeline_events_per_s" in r:
        p = r["details"]["pipeline"]
        out += [
            Row("2 pipeline", f"aiokafka consumer ({p['events']:,} events)", r["aiokafka_consume_per_s"], "events/s"),
            Row("2 pipeline", "bare Faust agent (JSON decode)", r["bare_faust_events_per_s"], "events/s"),
            Row("2 pipeline", "bare Faust agent + Table write (changelog)", p["bare_faust_table"]["events_per_s"],
                "events/s"),
            Row("2 pipeline", f"tierstream worker ({p['customers']:,} customers)", r["pipeline_events_per_s"],
                "events/s"),
            Row("2 pipeline", "pipeline logic alone, no I/O (in-process)", p.get("logic_events_per_s"), "events/s"),
            Row("2 pipeline", "  its CPU per event", p.get("logic", {}).get("cpu_us_per_event"), "us"),
            Row("2 pipeline", "  records produced per event, interleaved partitions, flush every "
                f"{p['logic']['flush_every_events']:,} events",
                None, "", f"{p['logic']['outputs_per_event'] + p['logic']['state_writes_per_event']:.2f}, "
                f"{p['logic']['output_bytes_per_event'] + p['logic']['state_bytes_per_event']:,.0f} bytes"),
            *_produced_rows(p.get("produced")),
            Row("2 pipeline", "worker / bare Faust", r["pipeline_vs_bare_faust"], "x", ">= 0.8x",
                _at_least(r["pipeline_vs_bare_faust"], 0.8)),
            Row("2 pipeline", "worker / bare Faust + Table", p.get("vs_bare_faust_table"), "x"),
            Row("2 pipeline", "worker / aiokafka", p.get("vs_aiokafka"), "x"),
            Row("2 pipeline", "CPU per event: bare Faust", p["bare_faust"].get("cpu_us_per_event"), "us"),
            Row("2 pipeline", "CPU per event: bare Faust + Table", p["bare_faust_table"].get("cpu_us_per_event"),
                "us"),
            Row("2 pipeline", "CPU per event: worker", p.get("cpu_us_per_event"), "us"),
            Row("2 pipeline", "CPU-based: bare Faust / worker", p.get("cpu_vs_bare_faust"), "x"),
            Row("2 pipeline", "CPU per event, worker / bare Faust + Table", _inverse(p.get("cpu_vs_bare_faust_table")),
                "x", "<= 1.25x", _at_most(_inverse(p.get("cpu_vs_bare_faust_table")), 1.25)),
            Row("2 pipeline", "CPU per event, worker / bare Faust", _inverse(p.get("cpu_vs_bare_faust")), "x"),
            *_peer_rows(p),
        ]
    out += _latency_rows(r.get("latency_ms", {}))
    if "scaleout_speedup_2_workers" in r:
        s = r["details"]["scaleout"]
        out += [Row("4 scale-out", "two workers", s["events_per_s"], "events/s"),
                Row("4 scale-out", "one worker, started and fed the same way", s.get("one_worker_events_per_s"),
                    "events/s"),
                Row("4 scale-out", "CPU per event, two workers", s.get("cpu_us_per_event"), "us"),
                Row("4 scale-out", "CPU per event, one worker fed the same way", s.get("one_worker_cpu_us_per_event"),
                    "us"),
                Row("4 scale-out", "CPU per event, two workers / one", s.get("cpu_vs_one_worker"), "x", "<= 1.1x",
                    _at_most(s.get("cpu_vs_one_worker"), 1.1)),
                Row("4 scale-out", "speed-up, two workers / one", r["scaleout_speedup_2_workers"], "x", ">= 1.7x",
                    _at_least(r["scaleout_speedup_2_workers"], 1.7)),
                Row("4 scale-out", "CPU per event, two workers / part 2's worker (preloaded)",
                    s.get("cpu_vs_preloaded_one_worker"), "x")]
    if "state_bytes_per_customer" in r:
        sb = r["state_bytes_per_customer"]
        out.append(Row("5 memory", f"serialised state, mean of {sb['customers']:,} (p99 {sb['p99']:,})", sb["mean"],
                       "bytes"))
    for key, value in r.get("rss_bytes_per_customer", {}).items():
        kind, n = key.rsplit("_", 1)
        big = kind == "model" and int(n) >= 1_000_000
        out.append(Row("5 memory", f"RSS per customer, {kind} at {int(n):,}", value, "bytes",
                       "<= 2 KB" if big else "", _at_most(value, 2048) if big else None))
    reviews = r.get("details", {}).get("reviews", {})
    for size, rate in r.get("due_rescored_per_s", {}).items():
        out.append(Row("6 re-scoring", f"due customers re-scored, table of {int(size):,}", rate, "/s",
                       ">= 20,000/s", _at_least(rate, 20_000)))
        table = next((t for t in (reviews.get("small"), reviews.get("big")) if t and str(t["table"]) == size), None)
        if table and table.get("cpu_us_per_customer"):
            out.append(Row("6 re-scoring", "  the worker's CPU per re-scored customer", table["cpu_us_per_customer"],
                           "us"))
    if "logic_customers_per_s" in reviews:
        out.append(Row("6 re-scoring", "review logic alone, no I/O (in-process)", reviews["logic_customers_per_s"],
                       "/s"))
    for size, figs in reviews.get("index", {}).items():
        out.append(Row("6 re-scoring", f"DeadlineIndex.pop_due {figs['due']:,} of {int(size):,}",
                       figs["seconds"] * 1000, "ms"))
    if "recovery" in r.get("details", {}):
        rec = r["details"]["recovery"]
        if rec["complete"]:
            out.append(Row("7 recovery", f"rebuild {rec['customers']:,} customers, per 100k", r["recovery_s_per_100k"],
                           "s"))
        else:
            out.append(Row("7 recovery", f"FAILED: rebuilt {rec['rebuilt']:,} of {rec['customers']:,} customers "
                           f"({rec['recovery_errors']:,} recovery errors logged)", None, "", "all", False))
    return out


def _inverse(ratio: float | None) -> float | None:
    return 1 / ratio if ratio else None


def _produced_rows(produced: dict[str, Any] | None) -> list[Row]:
    """What the running worker produced, counted on its topics (outputs, changelog, forwarded events)."""
    if not produced:
        return []
    return [Row("2 pipeline", "  records produced per event by the worker (counted on its topics)", None, "",
                f"{produced['records_per_event']:.2f}, {produced['bytes_per_event']:,.0f} bytes",
                _at_most(produced["records_per_event"], 1.3))]


PEER_NAMES = {"quix": "Quix Streams", "bytewax": "bytewax"}


def _peer_rows(p: dict[str, Any]) -> list[Row]:
    """The peers of `--peers` (bench/peers/): the simple job's rate, CPU per event and check, the worker's ratios."""
    peers = dict(p.get("peers", {}))
    reference = peers.pop("reference", None)
    out = []
    for peer, f in peers.items():
        name = f"peer: {PEER_NAMES.get(peer, peer)}, the simple job"
        if "error" in f:
            out.append(Row("2 pipeline", f"{name}: not run ({f['error'][:80]})", None))
            continue
        out += [Row("2 pipeline", f"{name} ({f['tier_changes']:,} tier changes)", f["events_per_s"], "events/s",
                    f"= reference ({f['expected_tier_changes']:,})", f["correct"]),
                Row("2 pipeline", f"  CPU per event: {PEER_NAMES.get(peer, peer)}", f.get("cpu_us_per_event"), "us"),
                Row("2 pipeline", f"  worker / {PEER_NAMES.get(peer, peer)} (events/s)",
                    _ratio(p.get("events_per_s"), f["events_per_s"]), "x"),
                Row("2 pipeline", f"  CPU per event, worker / {PEER_NAMES.get(peer, peer)}",
                    _ratio(p.get("cpu_us_per_event"), f.get("cpu_us_per_event")), "x")]
    if reference:
        out += [Row("2 pipeline", "the simple job alone, no Kafka (in-process)", reference["events_per_s"], "events/s"),
                Row("2 pipeline", "  its CPU per event", reference["cpu_us_per_event"], "us")]
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def table(results: dict[str, Any]) -> Table:
    meta = results["meta"]
    t = Table(title=f"tierstream bench ({meta['sizes']}) {meta['date']}  {meta['machine']['nproc']} cores, "
                    f"{meta['machine']['cpu']}, Python {meta['machine']['python']}")
    for column in ("part", "measure", "value", "target", "status"):
        t.add_column(column, justify="right" if column == "value" else "left")
    for row in rows(results):
        value = _fmt(row.value, row.unit) if row.value is not None or row.unit else ""
        t.add_row(row.part, row.measure, value, row.target, _status(row.met))
    return t


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m = meta["machine"]
    lines = [BEGIN, f"Latest run: `{meta['command']}` on {meta['date']}; {m['nproc']} cores ({m['cpu']}), "
             f"Python {m['python']}; load average at start {m['loadavg'][0]:.1f}.", "",
             "| part | measure | value | target | status |", "|---|---|---:|---|---|"]
    for row in rows(results):
        value = _fmt(row.value, row.unit) if row.value is not None or row.unit else ""
        lines.append(f"| {row.part} | {row.measure} | {value} | {row.target} | {_status(row.met)} |")
    lines.append(END)
    return "\n".join(lines)


def update_readme(results: dict[str, Any], path: Path = README) -> None:
    """Replace the README's results section (between the markers) with this run's table."""
    text = path.read_text() if path.is_file() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        text += f"\n{BEGIN}\n{END}\n"
    path.write_text(pattern.sub(lambda _: markdown(results), text))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def show(results: dict[str, Any], console: Console | None = None) -> None:
    (console or Console()).print(table(results))
