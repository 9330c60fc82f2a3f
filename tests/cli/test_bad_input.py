"""A newcomer's bad inputs, each run through the real `tierstream` console script of this interpreter: a
one-line message (no traceback) and the exit code. The table of them is docs/bad-input.md; this test
checks the committed file matches (rewrite it with `python -m tests.cli.test_bad_input`).

Nothing here starts a service: "Kafka unreachable" is 127.0.0.1:1, where nothing listens.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "bad-input.md"
TIERSTREAM = Path(sys.executable).parent / "tierstream"
NO_KAFKA = "127.0.0.1:1"

HISTORY = "customer_id,occurred_at,amount\nA,2024-01-05,10\nB,2024-02-01,20\nA,2024-03-01,5\n"
BAD_CONFIG = "partitons: 4\nweb_port: abc\nscoring:\n  window_dayz: 30\n"
BAD_AMOUNTS = ('{"type":"purchase","event_id":"e1","customer_id":"A","occurred_at":"2024-01-05T00:00:00Z",'
               '"amount":"-5","currency":"USD","order_id":"o1"}\n')
FILES = {"history.csv": HISTORY, "bad.yaml": BAD_CONFIG, "events.jsonl": BAD_AMOUNTS, "not-a-dir": ""}


@dataclass(frozen=True)
class Case:
    what: str
    argv: list[str]
    exit_code: int
    words: str  # the message says this
    env: dict[str, str] = field(default_factory=dict)
    lines: int = 1  # lines starting with "tierstream:" (a warning may come before the error)


CASES = [
    Case("Kafka unreachable: worker", ["worker", "--bootstrap", NO_KAFKA], 1, "cannot connect to any broker"),
    Case("Kafka unreachable: redis-resync", ["redis-resync", "--bootstrap", NO_KAFKA], 1,
         "cannot connect to any broker"),
    Case("unwritable path: generate", ["generate", "--customers", "3", "--out", "not-a-dir/events.jsonl"], 2,
         "cannot write not-a-dir/events.jsonl"),
    Case("unwritable path: schemas export", ["schemas", "export", "--dir", "not-a-dir/json"], 2,
         "cannot write not-a-dir/json"),
    Case("unwritable path: fit (checked before fitting)",
         ["fit", "history.csv", "--as-of", "2024-12-31", "-o", "not-a-dir/model.json"], 2,
         "cannot write not-a-dir/model.json"),
    Case("every row bad: wrong --date-format",
         ["replay", "history.csv", "--as-of", "2024-12-31", "--date-format", "%d/%m/%Y"], 2, "--date-format"),
    Case("every row bad: wrong --amount-col",
         ["replay", "history.csv", "--as-of", "2024-12-31", "--amount-col", "customer_id"], 2,
         "amount is not a number"),
    Case("every row bad: calibrate", ["calibrate", "history.csv", "--as-of", "2024-12-31", "--date-format",
                                      "%d/%m/%Y", "-o", "cal.json"], 2, "no row could be read"),
    Case("config file: misspelt and bad values", ["topics", "check", "-c", "bad.yaml"], 2,
         "did you mean partitions?"),
    Case("environment: a bad value", ["topics", "check"], 2, "env TIERSTREAM_WEB_PORT",
         env={"TIERSTREAM_WEB_PORT": "abc"}),
    Case("environment: a misspelt name (warning), then Kafka unreachable", ["topics", "check", "--bootstrap",
                                                                           NO_KAFKA], 1,
         "did you mean TIERSTREAM_PARTITIONS?", env={"TIERSTREAM_PARTITONS": "3"}, lines=2),
    Case("too little data: fit", ["fit", "history.csv", "--as-of", "2024-12-31", "-o", "model.json"], 1,
         "at least 10 customers"),
    Case("too little data: evaluate", ["evaluate", "history.csv", "--cal-end", "2024-02-15"], 1,
         "at least 10 customers"),
    Case("an amount the worker refuses (-5), --strict",
         ["backfill", "events.jsonl", "--strict", "--bootstrap", NO_KAFKA], 1, "nothing published"),
]


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    messages: list[str]  # the lines starting with "tierstream:" or a file's name (a bad row's report)
    stderr: str


def run(case: Case, workdir: Path) -> Outcome:
    for name, text in FILES.items():
        (workdir / name).write_text(text)
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("TIERSTREAM_") and k not in {"KAFKA_BOOTSTRAP", "REDIS_URL"}}
    env |= {"COLUMNS": "120", **case.env}
    done = subprocess.run([str(TIERSTREAM), *case.argv], capture_output=True, text=True, cwd=workdir, env=env,
                          timeout=120, check=False)
    shown = ("tierstream:", *(f"{name}:" for name in FILES))  # errors, and reports naming a bad row of a file
    messages = [line for line in done.stderr.splitlines() if line.startswith(shown)]
    return Outcome(done.returncode, messages, done.stderr)


def table(rows: list[tuple[Case, Outcome]]) -> str:
    head = ["# Bad input: what tierstream says", "",
            "Each row is run through the real CLI by `tests/cli/test_bad_input.py`, which checks this file",
            "(regenerate it with `python -m tests.cli.test_bad_input`). Files: `history.csv` has 3 rows of 2",
            "customers; `not-a-dir` is a file; `bad.yaml` misspells `partitions` and `scoring.window_days`.", "",
            "| input | command | message (stderr) | exit |", "|---|---|---|---|"]
    body = [f"| {case.what} | `{_env(case)}tierstream {' '.join(case.argv)}` | "
            f"{'<br>'.join(_cell(m) for m in outcome.messages)} | {outcome.exit_code} |" for case, outcome in rows]
    return "\n".join([*head, *body]) + "\n"


def _env(case: Case) -> str:
    return "".join(f"{k}={v} " for k, v in case.env.items())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Case, Outcome]]:
    assert TIERSTREAM.exists(), f"no console script {TIERSTREAM}: pip install -e . in this environment"
    dirs = [tmp_path_factory.mktemp("bad-input") for _ in CASES]
    with ThreadPoolExecutor(4) as pool:  # each case is a CLI process, mostly interpreter start and imports
        return list(zip(CASES, pool.map(run, CASES, dirs), strict=True))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.what for c in CASES])
def test_a_bad_input_is_a_one_line_message_and_an_exit_code(outcomes: list[tuple[Case, Outcome]],
                                                           index: int) -> None:
    case, outcome = outcomes[index]
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.exit_code == case.exit_code, outcome.stderr
    errors = [line for line in outcome.messages if line.startswith("tierstream:")]
    assert len(errors) == case.lines, outcome.stderr
    assert case.words in errors[0] + errors[-1]


def test_the_committed_table_is_what_the_cli_says(outcomes: list[tuple[Case, Outcome]]) -> None:
    assert TABLE.read_text() == table(outcomes), "docs/bad-input.md is stale: python -m tests.cli.test_bad_input"


def test_version() -> None:
    from importlib.metadata import version

    done = subprocess.run([str(TIERSTREAM), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, f"tierstream {version('tierstream')}\n")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for i, case in enumerate(CASES):
            (Path(tmp) / str(i)).mkdir()
            rows.append((case, run(case, Path(tmp) / str(i))))
    TABLE.write_text(table(rows))
    print(f"wrote {TABLE}")
