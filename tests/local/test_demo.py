"""`tierstream demo` for real: embedded broker, Redis, worker and generator; then nothing left behind."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from pydantic import SecretStr
from rich.console import Console

from streams.local.demo import DemoState, interval_summary, on_output, render, stats_line, try_lines, worker_config
from streams.local.embedded import port_is_listening
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from streams.cli.main import main; main()"]


def demo_env() -> dict[str, str]:
    """The environment without service addresses: the demo starts its own broker and Redis."""
    drop = ("TIERSTREAM_", "KAFKA_BOOTSTRAP", "REDIS_URL")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def started(out: str) -> tuple[dict[str, int], dict[str, int]]:
    """(pids, ports) the demo printed: broker, redis, worker."""
    pids = {name: int(pid) for name, pid in re.findall(r"^(broker|redis|worker) .*?pid (\d+)", out, re.M)}
    ports = {"broker": int(re.search(r"^broker\s+127\.0\.0\.1:(\d+)", out, re.M).group(1)),  # type: ignore[union-attr]
             "redis": int(re.search(r"^redis\s+redis://127\.0\.0\.1:(\d+)", out, re.M).group(1)),  # type: ignore[union-attr]
             "worker": int(re.search(r"^query API: http://127\.0\.0\.1:(\d+)", out, re.M).group(1))}  # type: ignore[union-attr]
    return pids, ports


def is_gone(pid: int) -> bool:
    """True when no process `pid` runs (gone, or a zombie awaiting its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


def assert_cleaned_up(out: str) -> None:
    pids, ports = started(out)
    assert set(pids) == {"broker", "redis", "worker"}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(is_gone(p) for p in pids.values()):
        time.sleep(0.1)
    assert all(is_gone(p) for p in pids.values()), pids
    assert not any(port_is_listening(p) for p in ports.values()), ports
    assert "nothing listening on ports" in out


@pytest.mark.integration
def test_demo_runs_for_a_duration_then_stops_everything(tmp_path: Path) -> None:
    # it stops by itself (the timeout only guards a hang; how fast is not what a test says)
    done = subprocess.run([*CLI, "demo", "--duration", "12", "--no-live", "--customers", "300"], cwd=tmp_path,
                          env=demo_env(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    # A summary every few seconds, not a line per output.
    intervals = [parse_interval(m) for m in re.findall(r"^  last \d+ s: (.*)$", out, re.M)]
    assert len(intervals) >= 2, out[-3000:]
    assert sum(i["tier changes"] for i in intervals) >= 20
    assert sum(i.get("up", 0) + i.get("down", 0) for i in intervals) > 0  # customers move, not only get a tier
    assert len(out.splitlines()) < 20 + 6 * len(intervals)
    changes = re.findall(r"^tier +(C\d+) +(\S+) -> (\S+) +score \S+ +\((.+)\)$", out, re.M)
    assert changes and all(re.fullmatch(r"purchase \d+\.\d\d|return \d+\.\d\d|complaint, severity \d|enquiry"
                                        r"|no purchase for \d+ days?", why) for *_, why in changes), changes
    assert re.search(r"^alert +at_risk C\d+ tier \w+: \d+ days since last purchase", out, re.M)
    assert re.search(r"^action +\w+ C\d+ via \w+", out, re.M)
    assert re.search(r"^stats +simulated \d{4}-\d\d-\d\d +events [\d,]+", out, re.M)
    assert_cleaned_up(out)


def parse_interval(text: str) -> dict[str, int]:
    """"tier changes 12 (down 2, new 9, up 1), alerts 1 (at_risk 1), actions 3" -> counts by name."""
    counts = {name: int(n.replace(",", "")) for name, n in re.findall(r"(tier changes|alerts|actions) ([\d,]+)", text)}
    counts |= {name: int(n.replace(",", "")) for name, n in re.findall(r"(\w+) ([\d,]+)[,)]", text)
               if name not in ("changes", "alerts", "actions")}
    return counts


def printed_commands(out: str) -> dict[str, list[str]]:
    """The ready-to-paste commands the demo printed, by what they run (customer, generate, backfill, subscriber)."""
    found = {}
    for line in re.findall(r"^  (\S.*)$", out, re.M):
        argv = shlex.split(line)
        name = "subscriber" if argv[-1] == "--from-beginning" else argv[1] if len(argv) > 1 else ""
        found[name] = argv
    return found


@pytest.mark.integration
def test_the_printed_commands_work_then_sigterm_stops_everything(tmp_path: Path) -> None:
    proc = subprocess.Popen([*CLI, "demo", "--no-live", "--customers", "200"], cwd=tmp_path, env=demo_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("tier ") for line in seen) and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                assert proc.poll() is None, "".join(seen) + proc.stderr.read()  # type: ignore[union-attr]
        assert any(line.startswith("tier ") for line in seen), "".join(seen)
        check_printed_commands("".join(seen), tmp_path)
        check_worker_calibration("".join(seen))
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    while not lines.empty():
        seen.append(lines.get())
    assert_cleaned_up("".join(seen))


CALIBRATED = re.compile(r"^tiers +calibration (cal-[0-9a-f]{12}) from the generated history: ([\d,]+) active "
                        r"of ([\d,]+) customers as of (\d{4}-\d\d-\d\d) \(AAA >= ", re.M)


def check_worker_calibration(out: str) -> None:
    """The banner names the calibration computed from the generated history; the worker runs with it."""
    found = CALIBRATED.search(out)
    assert found, out
    version, active, customers = found.group(1), int(found.group(2)), int(found.group(3))
    assert 0 < active <= customers <= 200
    _, ports = started(out)
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['worker']}/health", timeout=5) as response:
        health = json.loads(response.read())
    assert health["calibration_version"] == version
    assert f"worker   ready, calibration in force: {version}" in out


def check_printed_commands(out: str, where: Path) -> None:
    """The broker line names the partitions, and the commands run as printed against the running demo."""
    bootstrap, partitions = re.search(r"^kafka +(\S+), (\d+) partitions", out, re.M).groups()  # type: ignore[union-attr]
    assert partitions == "4"
    commands = printed_commands(out)
    assert {"customer", "generate", "backfill", "subscriber"} <= set(commands), out
    assert commands["backfill"][-4:] == ["--bootstrap", bootstrap, "--partitions", partitions]
    assert "examples/subscriber.py" in commands["subscriber"][1] and bootstrap in commands["subscriber"]
    for name in ("customer", "generate", "backfill"):
        done = subprocess.run(commands[name], cwd=where, env=demo_env(), capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, (name, done.stdout[-2000:], done.stderr[-2000:])


# -- the view's pieces, without services --------------------------------------------------------


def test_outputs_feed_the_view() -> None:
    state = DemoState(("AAA", "A", "B", "C"))
    line = on_output(state, "tier_change", {"customer_id": "C1", "from_tier": None, "to_tier": "B", "score": 40.0,
                                            "direction": "new"})
    assert line == "tier     C1  new -> B  score 40.0"
    on_output(state, "tier_change", {"customer_id": "C1", "from_tier": "B", "to_tier": "A", "score": 61.0,
                                     "direction": "up", "cause": "g7-C1-4", "cause_text": "purchase 42.00"})
    on_output(state, "tier_change", {"customer_id": "C2", "from_tier": None, "to_tier": "C", "score": 5.0,
                                     "direction": "new"})
    assert state.tier_counts() == {"AAA": 0, "A": 1, "B": 0, "C": 1}
    alert = {"customer_id": "C1", "kind": "at_risk", "tier": "A", "reason": "40 days since last purchase",
             "value_at_stake": 1200.0}
    assert on_output(state, "alert", alert) == "alert    at_risk C1 tier A: 40 days since last purchase"
    on_output(state, "action", {"customer_id": "C1", "action_type": "retention_call", "channel": "phone",
                                "roi_decision": "approved", "priority": "urgent"})
    assert on_output(state, "score", {"customer_id": "C1"}) is None
    state.produced, state.sim_now_ms = 500, 1_700_000_000_000
    assert "tiers: AAA 0  A 1  B 0  C 1" in stats_line(state, time.monotonic())
    console = Console(file=io.StringIO(), width=160)
    console.print(render(state, [("query API", "http://127.0.0.1:1/customers/<id>")], time.monotonic()))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for part in ("tiers", "recent tier changes", "at-risk alerts (1)", "retention_call", "query API", "2023-11-14",
                 "purchase 42.00"):  # the why column: the cause in words, not its id
        assert part in text
    assert "g7-C1-4" not in text


def test_the_interval_summary_counts_outputs_and_shows_one_example_each() -> None:
    state = DemoState(("A", "B"))
    for i, direction in enumerate(["new", "up", "new", "down"]):
        on_output(state, "tier_change", {"customer_id": f"C{i}", "from_tier": None if direction == "new" else "B",
                                         "to_tier": "A", "score": 60.0, "direction": direction})
    on_output(state, "alert", {"customer_id": "C1", "kind": "at_risk", "tier": "A", "reason": "overdue"})
    on_output(state, "score", {"customer_id": "C1"})
    summary = interval_summary(state, 5)
    assert summary[0] == "last 5 s: tier changes 4 (down 1, new 2, up 1), alerts 1 (at_risk 1), actions 0"
    assert summary[1].startswith("tier     C3  B -> A")  # the latest move, rather than a first tier
    assert summary[2].startswith("alert    at_risk C1")
    assert len(summary) == 3
    assert interval_summary(state, 5) == ["last 5 s: tier changes 0, alerts 0, actions 0"]  # reset


def test_try_lines_are_commands_for_the_demos_broker_and_partitions() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:40001", partitions=4)
    lines = try_lines(settings, "http://127.0.0.1:40002")
    assert lines[0].startswith("kafka    127.0.0.1:40001, 4 partitions")
    commands = printed_commands("\n".join(lines))
    assert commands["backfill"][-4:] == ["--bootstrap", "127.0.0.1:40001", "--partitions", "4"]
    assert commands["customer"][-2:] == ["--url", "http://127.0.0.1:40002"]
    assert commands["subscriber"][0] == sys.executable


def test_events_per_second_over_a_window() -> None:
    state = DemoState(("A",), started=100.0)
    state.produced = 50
    assert state.events_per_s(110.0) == pytest.approx(5.0)
    state.produced = 150
    assert state.events_per_s(120.0) == pytest.approx(10.0)  # the oldest sample is dropped


def test_worker_config_keeps_what_the_user_set_and_applies_the_demo_knobs() -> None:
    user = Settings(redis_url=SecretStr("redis://:pw@example:6379/0"), partitions=16, scoring={"version": "mine"})
    doc = worker_config(user, {"partitions": 4, "clock": "wall"})
    assert doc["redis_url"] == "redis://:pw@example:6379/0"  # the secret, for the child's config file
    assert doc["partitions"] == 4 and doc["clock"] == "wall"
    assert doc["scoring"]["version"] == "mine"
    assert Settings(**doc).scoring.version == "mine"


def test_a_service_that_cannot_start_is_one_line_and_stops_the_rest(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from streams.local import demo

    started_brokers = []

    def no_redis(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("redis-server not found: install Debian's redis-server")

    real_tansu = demo.start_tansu

    def tansu(*args: object, **kwargs: object) -> object:
        broker = real_tansu()
        started_brokers.append(broker)
        return broker

    monkeypatch.setattr(demo, "start_redis", no_redis)
    monkeypatch.setattr(demo, "start_tansu", tansu)
    for name in ("KAFKA_BOOTSTRAP", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    out = io.StringIO()
    assert demo.run_demo(Settings(), demo.DemoOptions(duration=1, live=False), out) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "tierstream: demo failed: redis-server not found: install Debian's redis-server"]
    [broker] = started_brokers
    assert not broker.alive() and not port_is_listening(broker.port)
