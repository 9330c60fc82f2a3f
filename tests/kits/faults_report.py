"""Print the faults table from the fault tests' JSON lines report.

    python -m tests.kits.faults_report [PATH] [--all]

PATH defaults to $TIERSTREAM_FAULTS_REPORT or tests/artifacts/faults.jsonl (each fault test
appends one row per run, see tests/worker/tests/kits/faults.py). Without --all, only the latest row of
each test is shown.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT = Path(__file__).resolve().parents[1] / "artifacts" / "faults.jsonl"
COLUMNS = (  # (row key, heading)
    ("result", "result"), ("test", "test"), ("fault", "fault"), ("faults_injected", "faults"),
    ("events_produced", "produced"),
    ("scored", "scored"), ("dead_lettered", "dead-lettered"), ("outputs_expected", "outputs expected"),
    ("outputs_found", "outputs found"), ("duplicates", "duplicates"), ("recovery_s", "recovery s"),
)


def load(path: Path, everything: bool = False) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if everything:
        return rows
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["test"]] = row
    return list(latest.values())


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table (readable as plain text too)."""
    head = [title for _, title in COLUMNS]
    body = [[cell(row.get(key)) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    numeric = [i >= 2 for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if n else c.ljust(w)
                                 for c, w, n in zip(cells, widths, numeric, strict=True)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2))
                          for w, n in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([line(head), rule, *(line(r) for r in body)])


def main(argv: list[str]) -> int:
    everything = "--all" in argv
    args = [a for a in argv if a != "--all"]
    path = Path(args[0]) if args else Path(os.environ.get("TIERSTREAM_FAULTS_REPORT") or DEFAULT)
    if not path.is_file():
        print(f"no faults report at {path}: run the fault tests first (./dev faults)", file=sys.stderr)
        return 1
    rows = load(path, everything)
    print(table(rows))
    print(f"\n{len(rows)} rows from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
