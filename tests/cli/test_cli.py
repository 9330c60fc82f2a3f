"""The `tierstream` command line: help with examples, one-line errors, and the issue-4 commands end to end."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.cli.main import app, main
from streams.local.generator import generate, to_json
from streams.partitioning import canonical_partition

ROOT = Path(__file__).resolve().parents[2]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `tierstream argv` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def all_commands() -> list[list[str]]:
    """Every leaf command's path, e.g. ['topics', 'create']."""
    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)  # a group (typer vendors its own click)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        else:
            found.append(path)

    walk(root, [])
    return found


@pytest.mark.parametrize("path", all_commands(), ids=" ".join)
def test_every_command_has_help_with_examples(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli([*path, "--help"], capsys)
    assert code == 0
    assert "Example" in out, f"tierstream {' '.join(path)} --help has no examples"


def command_at(path: list[str]) -> object:
    command: object = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


@pytest.mark.parametrize("path", all_commands(), ids=" ".join)
def test_help_examples_are_shown_as_written(path: list[str], capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Example command lines are never re-wrapped mid-command (click's \\b blocks), on an 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    epilog = getattr(command_at(path), "epilog", None) or ""
    examples = [line.strip() for line in epilog.splitlines() if line.strip().startswith(("tierstream ", "--", "#"))]
    assert examples, epilog
    _, out, _ = run_cli([*path, "--help"], capsys)
    shown = {line.strip() for line in out.splitlines()}
    assert [line for line in examples if line not in shown] == []


@pytest.mark.parametrize("group", [[], ["topics"], ["schemas"]], ids=lambda g: " ".join(["tierstream", *g]))
def test_command_summaries_are_whole_sentences(group: list[str], capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = run_cli([*group, "--help"], capsys)
    commands = out.split("Commands:")[1].strip().splitlines()
    assert commands and all(line.rstrip().endswith(".") and not line.rstrip().endswith("...") for line in commands)


@pytest.mark.parametrize("argv", [
    ["generate", "--customers", "0"],
    ["generate", "--start", "yesterday"],
    ["generate", "--rate", "5"],
    ["generate", "--bootstrap", "127.0.0.1:1", "--out", "x.jsonl"],
    ["generate", "--end-now", "--start", "2024-01-01"],
    ["backfill", "/no/such/history.csv"],
    ["backfill", "-", "--strict"],
    ["backfill", str(ROOT / "pyproject.toml"), "--rate", "0"],
    ["customer"],
    ["customer", "C1", "--url", "ftp://example"],
    ["topics", "bogus"],
    ["topics", "check", "--partitions", "0"],
    ["demo", "--customers", "0"],
    ["demo", "--day-seconds", "0"],
    ["demo", "--no-such-option"],
])
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tierstream: "), err


def test_a_bad_argument_in_a_real_process() -> None:
    argv = [sys.executable, "-c", "from streams.cli.main import main; main()", "generate", "--days", "-1"]
    done = subprocess.run(argv,
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "--days" in done.stderr


# Loaded only by the commands that use them (seconds of start-up for every command, every worker otherwise).
HEAVY = {"cli": {"faust", "mode", "aiokafka", "redis", "numpy", "scipy", "polars"},
         "worker": {"numpy", "scipy", "polars"}}


@pytest.mark.parametrize(("what", "modules"), [("cli", "streams.cli.main"),
                                               ("worker", "streams.cli.main, streams.worker.run")])
def test_starting_loads_no_library_it_does_not_use(what: str, modules: str) -> None:
    code = f"import sys, {modules}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          check=True)
    assert HEAVY[what].isdisjoint(done.stdout.split()), done.stdout


# -- generate ----------------------------------------------------------------------------------


def test_generate_writes_deterministic_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["generate", "--customers", "30", "--days", "60", "--seed", "5"], capsys)
    assert code == 0
    expected = [to_json(m) for m in generate(5, 30, 60)]
    assert out.splitlines() == expected
    target = tmp_path / "events.jsonl"
    code, _, _ = run_cli(["generate", "--customers", "30", "--days", "60", "--seed", "5", "--out", str(target)],
                         capsys)
    assert code == 0 and target.read_text().splitlines() == expected


def test_generate_start_moves_the_period(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_cli(["generate", "--customers", "5", "--days", "40", "--start", "20300101"], capsys)
    first = json.loads(out.splitlines()[0])
    assert first["occurred_at"].startswith("2030-0")


# -- customer ----------------------------------------------------------------------------------

PROFILE = {
    "customer_id": "C000042", "as_of": "2024-06-30", "tier": "A", "stored_tier": "A", "score": 64.5,
    "segment": "active", "r_score": 5, "f_score": 3, "m_score": 4, "recency_days": 3, "frequency": 6,
    "monetary": 1250.0, "returns_amount": 0.0, "complaints": 1, "tenure_days": 200, "annual_value": 1250.0,
    "at_risk": False, "at_risk_score": 0.0, "typical_gap_days": 14.25,
    "components": [{"name": "recency", "value": 5, "points": 35.0}, {"name": "complaints", "value": 1.0,
                                                                      "points": -2.0}],
    "explanation": "recency +35.0; complaints -2.0", "btyd": None, "next_review_at": "2024-07-14T00:00:00+00:00",
    "config_version": "rules-1",
}


@pytest.fixture
def fake_worker() -> Iterator[str]:
    """A stand-in for a worker's web API: C000042 exists, nobody else does."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/customers/C000042"
            body = json.dumps(PROFILE if found else {"error": "unknown customer"}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_customer_prints_profile_and_explanation(fake_worker: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["customer", "C000042", "--url", fake_worker], capsys)
    assert code == 0
    for text in ("C000042", "tier A", "64.5", "recency +35.0; complaints -2.0", "14.25", "1,250"):
        assert text in out


def test_customer_json(fake_worker: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["customer", "C000042", "--url", fake_worker, "--json"], capsys)
    assert code == 0 and json.loads(out) == PROFILE


def test_unknown_customer_is_one_line_exit_1(fake_worker: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["customer", "NOBODY", "--url", fake_worker], capsys)
    assert code == 1 and out == ""
    assert err.strip().splitlines() == ["tierstream: customer 'NOBODY' not found"]


def test_unreachable_worker_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    from streams.local.embedded import free_port

    code, _, err = run_cli(["customer", "C1", "--url", f"http://127.0.0.1:{free_port()}"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "cannot reach" in err


# -- topics and backfill against the test broker ---------------------------------------------------


@pytest.fixture
def kafka_config(tmp_path: Path, kafka_bootstrap: str, make_topic_names: Callable[..., list[str]]) -> Path:
    """A tierstream.yaml with this test's own topic names and app id on the session broker."""
    keys = ["purchases", "returns", "complaints", "enquiries", "events", "tier_changes", "actions",
            "alerts", "scores", "dlq", "metrics"]
    names = make_topic_names(*keys)
    config = tmp_path / "tierstream.yaml"
    config.write_text(yaml.safe_dump({
        "kafka_bootstrap": kafka_bootstrap, "partitions": 3, "app_id": names[0].replace("purchases", "app"),
        "topics": dict(zip(keys, names, strict=True)),
    }))
    return config


def topic_names(config: Path) -> dict[str, str]:
    return dict(yaml.safe_load(config.read_text())["topics"])


def test_topics_create_then_check(kafka_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["topics", "check", "-c", str(kafka_config)], capsys)
    assert code == 2 and "missing topics" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(["topics", "create", "-c", str(kafka_config)], capsys)
    assert code == 0, err
    names = topic_names(kafka_config)
    for name in names.values():
        assert name in out
    assert "14 created" in err  # 13 topics and the table changelog
    code, out, _ = run_cli(["topics", "check", "-c", str(kafka_config)], capsys)
    assert code == 0 and "created" not in out and names["events"] in out
    code, _, err = run_cli(["topics", "check", "-c", str(kafka_config), "--partitions", "5"], capsys)
    assert code == 2 and "co-partitioned" in err and len(err.strip().splitlines()) == 1


def test_topics_unreachable_broker_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    from streams.local.embedded import free_port

    code, _, err = run_cli(["topics", "check", "--bootstrap", f"127.0.0.1:{free_port()}"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Kafka at" in err


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 20.0) -> list:
    """Every record of `topic` (waits until `expected` arrived)."""

    async def read() -> list:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()  # loads metadata
            parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            records: list = []
            deadline = time.monotonic() + timeout_s
            while len(records) < expected and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=300)).values():
                    records.extend(batch)
            return records
        finally:
            await consumer.stop()

    return asyncio.run(read())


BAD_CSV = """customer_id,occurred_at,amount,type
A1,2024-01-01,10.50,purchase
A2,not-a-date,5,purchase
A1,2024-01-03,abc,purchase
A1,2024-01-04,3,return
A3,2024-01-05,0,gift
A1,2024-01-06,0,complaint
"""


def test_backfill_publishes_in_order_keyed_by_customer(kafka_config: Path, kafka_bootstrap: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "events.jsonl"
    lines = [to_json(m) for m in generate(9, 40, 90)]
    history.write_text("\n".join(lines) + "\n")
    bad = tmp_path / "mixed.csv"
    bad.write_text(BAD_CSV)
    code, _, err = run_cli(["backfill", str(history), str(bad), "-c", str(kafka_config), "--type-col", "type"],
                           capsys)
    assert code == 0, err
    for line, reason in ((3, "not-a-date"), (4, "not a number"), (6, "unknown event type")):
        assert f"mixed.csv: line {line}: " in err and reason in err
    good = len(lines) + 3
    assert f"rows read {len(lines) + 6:,}; published {good:,}" in err and "skipped 3 bad rows" in err

    records = read_topic(kafka_bootstrap, topic_names(kafka_config)["events"], good)
    assert len(records) == good
    by_customer: dict[str, list[str]] = {}
    for r in records:
        doc = json.loads(r.value)
        assert r.key == doc["customer_id"].encode()
        assert r.partition == canonical_partition(doc["customer_id"], 3)
        by_customer.setdefault(doc["customer_id"], []).append(doc["event_id"])
    expected: dict[str, list[str]] = {}
    for text in lines:
        doc = json.loads(text)
        expected.setdefault(doc["customer_id"], []).append(doc["event_id"])
    expected["A1"] = [f"{bad}:2", f"{bad}:5", f"{bad}:7"]
    assert by_customer == expected  # every customer's events in file order
    originals = {json.loads(t)["event_id"]: json.loads(t) for t in lines}
    published = {json.loads(r.value)["event_id"]: json.loads(r.value) for r in records}
    assert all(published[k] == v for k, v in originals.items())  # JSONL goes out as it came in


def history_options(command: str) -> dict[str, str | None]:
    """The history-file options of a command (the fields `csv_layout` reads) -> their help."""
    from streams.cli.options import csv_layout

    fields = set(inspect.signature(csv_layout).parameters)
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    return {p.name: getattr(p, "help", None) for p in params if p.name in fields}


@pytest.mark.parametrize("command", ["backfill", "bootstrap", "fit", "evaluate", "calibrate"])
def test_every_history_command_takes_the_history_options_of_replay(command: str) -> None:
    """One set of history options (streams.cli.options): backfill once had its own copy and lost `none`; every
    command takes the item and category columns (a purchase's categories reach the states everywhere)."""
    replay = history_options("replay")
    assert {"item_col", "category_col"} <= set(replay)
    shared = {name: text for name, text in replay.items() if name != "severity_col" or command in {
        "backfill", "bootstrap", "calibrate"}}
    assert history_options(command) == shared


def test_backfill_reads_a_log_without_amounts(kafka_config: Path, kafka_bootstrap: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "visits.csv"
    history.write_text("customer_id,occurred_at\nA1,2024-01-01\nA2,2024-01-02\n")
    code, _, err = run_cli(["backfill", str(history), "-c", str(kafka_config), "--amount-col", "none"], capsys)
    assert code == 0, err
    records = read_topic(kafka_bootstrap, topic_names(kafka_config)["events"], 2)
    docs = sorted((json.loads(r.value) for r in records), key=lambda d: d["customer_id"])
    assert [(d["customer_id"], Decimal(d["amount"])) for d in docs] == [("A1", 0), ("A2", 0)]


def test_backfill_publishes_a_csv_rows_items(kafka_config: Path, kafka_bootstrap: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--item-col/--category-col: each purchase goes out with its category as a line item, so the worker's core
    event carries the categories replay's reader gives the row (a refund carries none)."""
    from schemas.inputs import parse_input
    from streams.convert import to_core
    from streams.offline.history import CsvLayout, Row, read_history

    history = tmp_path / "lines.csv"
    history.write_text("customer_id,occurred_at,amount,StockCode,cat\nA1,2024-01-01,10.50,85123A,kitchen\n"
                       "A1,2024-01-02,3,22423,\nA2,2024-01-03,-4,85123A,kitchen\nA2,2024-01-04,2,,\n")
    code, _, err = run_cli(["backfill", str(history), "-c", str(kafka_config), "--item-col", "StockCode",
                            "--category-col", "cat"], capsys)
    assert code == 0, err
    records = read_topic(kafka_bootstrap, topic_names(kafka_config)["events"], 4)
    published = {event.event_id: event for event in (to_core(parse_input(r.value)) for r in records)}
    rows = [r for r in read_history(history, CsvLayout(item="StockCode", category="cat")) if isinstance(r, Row)]
    assert {r.event.event_id: r.event.categories for r in rows} == {
        key: event.categories for key, event in published.items()}
    assert [r.event.categories for r in rows] == [("kitchen",), ("22423",), (), ()]


def test_backfill_per_type_and_strict(kafka_config: Path, kafka_bootstrap: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "mixed.csv"
    bad.write_text(BAD_CSV)
    code, _, err = run_cli(["backfill", str(bad), "-c", str(kafka_config), "--type-col", "type", "--strict"], capsys)
    assert code == 1 and "nothing published" in err
    good = tmp_path / "good.csv"
    good.write_text("".join(line + "\n" for i, line in enumerate(BAD_CSV.splitlines()) if i in (0, 1, 4, 6)))
    code, _, err = run_cli(["backfill", str(good), "-c", str(kafka_config), "--type-col", "type", "--per-type",
                            "--strict", "--rate", "50"], capsys)
    assert code == 0, err
    names = topic_names(kafka_config)
    for key, event_type in (("purchases", "purchase"), ("returns", "return"), ("complaints", "complaint")):
        [record] = read_topic(kafka_bootstrap, names[key], 1)
        assert json.loads(record.value)["type"] == event_type


def test_generate_to_kafka_live(kafka_config: Path, kafka_bootstrap: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    expected = sum(1 for _ in generate(4, 20, 20))
    started = time.monotonic()
    code, _, err = run_cli(["generate", "-c", str(kafka_config), "--topic-mode", "mixed", "--customers", "20",
                            "--days", "20", "--seed", "4", "--rate", str(expected)], capsys)
    elapsed = time.monotonic() - started
    assert code == 0, err
    assert f"produced {expected:,} events" in err and "a simulated day every" in err
    assert elapsed > 0.5  # paced over about a second, not at once
    records = read_topic(kafka_bootstrap, topic_names(kafka_config)["events"], expected)
    assert len(records) == expected


def test_log_redaction_masks_whole_passwords_and_tracebacks() -> None:
    import io
    import logging

    from streams.logging_setup import RedactSecrets, redact

    assert redact("redis://:p@ss@w0rd@host:6379/0 down") == "redis://:***@host:6379/0 down"
    assert redact("url='redis://user:s3cr3t@redis:6379'") == "url='redis://user:***@redis:6379'"
    log = logging.getLogger("tierstream.test-redaction")
    handler = logging.StreamHandler(out := io.StringIO())
    handler.addFilter(RedactSecrets())
    log.addHandler(handler)
    try:
        raise ConnectionError("cannot reach redis://:hunter2@x:1")
    except ConnectionError:
        log.exception("connect to redis://:hunter2@x:1 failed")
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    assert "hunter2" not in text, text
    assert "ConnectionError: cannot reach redis://:***@x:1" in text


def test_a_password_in_redis_url_on_the_command_line_is_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    from streams.cli.base import settings_from

    settings_from(None, redis_url="redis://:s3cret@127.0.0.1:6379/0")
    assert "process list" in capsys.readouterr().err
    settings_from(None, redis_url="redis://127.0.0.1:6379/0")
    settings_from(None)
    assert capsys.readouterr().err == ""


def test_plan_report_reads_outcomes_and_flags(tmp_path, capsys) -> None:
    """Outcomes of a rule that costs 40 and changes nothing: its net value interval is below zero."""
    import json as _json

    lines = []
    for i in range(400):
        held = i % 2 == 0
        bought = (i // 2) % 3 == 0
        lines.append(_json.dumps({
            "type": "ContactOutcome", "id": f"{i:032x}", "customer_id": f"c{i}", "cause": "e1",
            "event_time": "2024-01-01T00:00:00Z", "emitted_at": "2024-03-01T00:00:00Z", "config_version": "r",
            "action_id": f"{i:032x}", "rule": "voucher", "action_type": "discount", "channel": "mail",
            "group": "held_out" if held else "treated", "tier": "C", "started_at": "2024-01-01T00:00:00Z",
            "window_days": 60, "purchases": int(bought), "revenue": 30.0 if bought else 0.0, "returns": 0.0,
            "cost": 0.0 if held else 40.0, "tier_after": "C", "tier_move": "same", "churned": False}))
    lines.append(lines[-1])  # a redelivered copy: counted once
    lines.append(_json.dumps({"type": "TierChanged", "id": "x"}))  # other outputs are skipped
    path = tmp_path / "outputs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(["plan-report", str(path), "--format", "json"], capsys)
    assert code == 0, err
    rows = [_json.loads(line) for line in out.splitlines()]
    whole = next(r for r in rows if r["tier"] == "*")
    assert (whole["treated"], whole["held_out"]) == (200, 200)
    assert whole["flag"] == "costs more than it brings" and whole["net_high"] < 0
    assert "flagged: voucher" in err
    path.write_text("not json\n")
    code, _, err = run_cli(["plan-report", str(path)], capsys)
    assert code == 1 and "line 1: not valid JSON" in err and "Traceback" not in err
