"""The scoring core is pure: no streaming/IO libraries, no clock, no environment."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import scoring

SCORING_DIR = Path(scoring.__file__).resolve().parent
SOURCES = sorted(SCORING_DIR.rglob("*.py"))
FORBIDDEN_MODULES = {"os", "asyncio", "faust", "aiokafka", "redis", "time", "mode", "subprocess", "socket"}
FORBIDDEN_CALLS = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "perf_counter"),
}


def test_import_scoring_pulls_no_streaming_or_async_module():
    code = ("import scoring, sys; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'faust','aiokafka','redis','mode','asyncio'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_importing_every_scoring_module_pulls_no_streaming_module():
    names = sorted(
        "scoring." + ".".join(p.relative_to(SCORING_DIR).with_suffix("").parts)
        for p in SOURCES if p.name != "__init__.py"
    )
    code = ("import importlib, sys\n"
            f"for n in {names!r}: importlib.import_module(n)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'faust','aiokafka','redis','mode','asyncio'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _violations(source: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                owner = func.value
                owner_name = owner.id if isinstance(owner, ast.Name) else (
                    owner.attr if isinstance(owner, ast.Attribute) else None)
                if (owner_name, func.attr) in FORBIDDEN_CALLS:
                    found.append(f"call {owner_name}.{func.attr}()")
            elif isinstance(func, ast.Name) and func.id in {"now", "utcnow", "getenv", "open", "input"}:
                found.append(f"call {func.id}()")
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and (node.value.id, node.attr) in {("os", "environ"), ("sys", "argv"), ("sys", "stdin")}):
            found.append(f"uses {node.value.id}.{node.attr}")
    return found


def test_sources_found():
    assert {p.name for p in SOURCES} >= {
        "config.py", "events.py", "state.py", "codec.py", "fold.py", "rfm.py", "tiers.py", "lifecycle.py",
        "plan.py", "review.py", "step.py", "btyd.py", "decisions.py", "ids.py"}


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(SCORING_DIR)) for p in SOURCES])
def test_no_io_or_clock_in_source(path):
    assert _violations(path.read_text()) == [], path


@pytest.mark.parametrize(("source", "expected"), [
    ("import os", ["import os"]),
    ("import asyncio.tasks", ["import asyncio.tasks"]),
    ("from time import time", ["from time import ..."]),
    ("from faust import App", ["from faust import ..."]),
    ("import redis as r", ["import redis"]),
    ("from datetime import datetime\nx = datetime.now()", ["call datetime.now()"]),
    ("import datetime\nx = datetime.datetime.utcnow()", ["call datetime.utcnow()"]),
    ("x = time.time()", ["call time.time()"]),
    ("from datetime import date\nx = date.today()", ["call date.today()"]),
    ("from os import environ", ["from os import ..."]),
    ("x = os.environ['A']", ["uses os.environ"]),
    ("from datetime import UTC, datetime\nx = datetime(2020, 1, 1, tzinfo=UTC)", []),
    ("from scoring.events import to_ms", []),
])
def test_the_scan_catches_what_it_should(source, expected):
    assert _violations(source) == expected
