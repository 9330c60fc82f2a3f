"""`python -m bench.history [--runs N] [--out FILE]`: a history's summary, whole processes, against lifetimes.

Times `tierstream replay` (the columnar batch path, and `--jobs 1`: the per-row reader, once) and
lifetimes' `summary_data_from_transaction_data` (pandas `read_csv`, then the summary) on the same CSV,
each as a whole process (interpreter start and imports included), best of `--runs`, alternating, so the
ratio is of one run on one box. Logs: CDNOW (tests/fixtures/cdnow, 69,659 rows) and ~1.6 M rows (the
purchases of ../shared/data/online_retail, four times under new customer ids). Also times `tierstream fit`
on the large log. lifetimes is not a dependency: without it its figures are left out. Writes the JSON
(default bench/history_results.json).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CDNOW = ROOT / "tests" / "fixtures" / "cdnow" / "CDNOW_master.txt.gz"
RETAIL = next((p / "shared" / "data" / "online_retail" / "online_retail.csv.gz" for p in ROOT.parents
               if (p / "shared" / "data" / "online_retail").is_dir()), ROOT / "online_retail.csv.gz")
COPIES = 4
LIFETIMES = """
import sys
import pandas as pd
from lifetimes.utils import summary_data_from_transaction_data
path, end, cdnow = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if cdnow:
    tx = pd.read_csv(path, sep=r"\\s+", header=None, skiprows=1, names=["customer_id", "date", "n", "amount"],
                     dtype={"customer_id": str, "date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
else:
    tx = pd.read_csv(path, dtype={"customer_id": str})
    tx["date"] = pd.to_datetime(tx["occurred_at"])
summary = summary_data_from_transaction_data(tx, "customer_id", "date", monetary_value_col="amount",
                                             observation_period_end=end)
print(len(summary))
"""


def large_log(folder: Path) -> Path:
    """The purchases of the online retail log (positive quantity and price, a customer), `COPIES` times under
    new customer ids: customer_id, occurred_at, amount."""
    out = folder / "retail_x4.csv"
    rows = []
    with gzip.open(RETAIL, "rt", newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            if r["CustomerID"] and float(r["Quantity"]) > 0 and float(r["UnitPrice"]) > 0:
                rows.append((r["CustomerID"], r["InvoiceDate"], f"{float(r['Quantity']) * float(r['UnitPrice']):.2f}"))
    with out.open("w", newline="") as handle:
        handle.write("customer_id,occurred_at,amount\n")
        for copy in range(COPIES):
            handle.writelines(f"{copy}{c},{t},{a}\n" for c, t, a in rows)
    return out


def timed(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def has_lifetimes() -> bool:
    probe = [sys.executable, "-c", "import lifetimes, pandas"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def compare(
    name: str, path: Path, replay: list[str], end: str, cdnow: bool, runs: int, folder: Path,
) -> dict[str, Any]:
    cli = [sys.executable, "-m", "streams.cli.main", "replay", str(path), *replay, "-o", str(folder / "out.csv")]
    ours, theirs = [], []
    with_lifetimes = has_lifetimes()
    for _ in range(runs):
        ours.append(timed(cli))
        if with_lifetimes:
            theirs.append(timed([sys.executable, "-c", LIFETIMES, str(path), end, "1" if cdnow else "0"]))
    per_row = timed([*cli, "--jobs", "1"])
    rows = sum(1 for _ in path.open()) - 1
    result: dict[str, Any] = {"rows": rows, "replay_s": min(ours), "replay_per_row_jobs1_s": per_row,
                              "lifetimes_s": min(theirs) if theirs else None}
    result["ratio_to_lifetimes"] = result["replay_s"] / result["lifetimes_s"] if theirs else None
    nan = float("nan")
    print(f"{name}: {rows:,} rows; replay {result['replay_s']:.2f} s (per-row --jobs 1: {per_row:.2f} s); "
          f"lifetimes {result['lifetimes_s'] or nan:.2f} s; ratio {result['ratio_to_lifetimes'] or nan:.2f}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("history_results.json"))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cdnow = folder / "CDNOW_master.txt"
        cdnow.write_bytes(gzip.decompress(CDNOW.read_bytes()))
        results["cdnow"] = compare("CDNOW", cdnow, ["--as-of", "19980630", "--delimiter", "whitespace", "--columns",
                                                    "customer_id,occurred_at,n,amount"], "1998-06-30", True,
                                   args.runs, folder)
        large = large_log(folder)
        results["retail_x4"] = compare("online retail x4", large, ["--as-of", "2011-12-09"], "2011-12-09", False,
                                       args.runs, folder)
        fit = [sys.executable, "-m", "streams.cli.main", "fit", str(large), "--as-of", "2011-12-09", "--out",
               str(folder / "model.json")]
        results["retail_x4"]["fit_s"] = timed(fit)
        print(f"fit on {results['retail_x4']['rows']:,} rows: {results['retail_x4']['fit_s']:.2f} s")
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
