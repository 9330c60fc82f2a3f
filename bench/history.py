"""`python -m bench.history [options]`: histories at columnar speed.

Options: [--runs N] [--out FILE] [--memory-rows N] [--no-compare] [--fit-only] [--fit-baseline REV].

Times `tierstream replay` (the columnar batch path, and `--jobs 1`: the per-row reader, once) and
lifetimes' `summary_data_from_transaction_data` (pandas `read_csv`, then the summary) on the same CSV,
each as a whole process (interpreter start and imports included), best of `--runs`, alternating, so the
ratio is of one run on one box. Logs: CDNOW (tests/fixtures/cdnow, 69,659 rows) and ~1.6 M rows (the
purchases of ../shared/data/online_retail, four times under new customer ids). Also times `tierstream fit`
on the large log, columnar and `--per-row` (the reference reader) in the same run, and checks that both
fit the same parameters (to 1e-6); `--fit-baseline REV` also times the fit of git revision REV (its tree
from `git archive`) on the same log, best of `--runs` alternating with ours, and checks that its model and
calibration files hold the same numbers (to 1e-6): the speed-up "than before" once shared code (the
optimisers) got faster, which `--per-row` alone no longer shows. `--fit-only` runs only the fit part.
lifetimes is not a dependency: without it its figures are left out.

`--memory-rows N` (e.g. 20000000) also writes a synthetic purchases log of N rows (`synthetic_log`) and
replays it as a whole process, reporting rows/s and the process's peak RSS (the replay spills its rows to
disk by customer when the text is larger than `streams.offline.spill.CHUNK_BYTES`), then calibrates from it
(`tierstream calibrate`, spilled alike: its seconds and peak RSS) and fits the model to it (`tierstream fit`,
spilled alike: its seconds and the peak RSS of its largest process); the log is deleted after. Writes the
JSON (default bench/history_results.json; the results of parts not run stay as they were).
The processes write bytecode to a folder of the bench (see `bench_env`), as an installed program has it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import os
import shutil
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


def synthetic_log(path: Path, rows: int, seed: int = 16, block: int = 2_000_000) -> Path:
    """A purchases log of `rows` rows (customer_id, occurred_at to the minute over 2024-2025, amount; 3 % of
    them refunds), ~10 rows per customer on average, skewed (customer k of n buys ~ (k/n)^(-1/3) as often),
    written with Polars a block at a time (~33 bytes a row)."""
    import numpy as np  # noqa: PLC0415 (only this part of the bench needs them)
    import polars as pl  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    customers = max(1, rows // 10)
    start = 1_704_067_200  # 2024-01-01T00:00:00Z, seconds
    cents = pl.col("cents")
    with path.open("wb") as handle:
        handle.write(b"customer_id,occurred_at,amount\n")
        done = 0
        while done < rows:
            n = min(block, rows - done)
            frame = pl.DataFrame({
                "who": np.minimum((rng.random(n) ** 1.5 * customers).astype(np.int64), customers - 1),
                "at": rng.integers(0, 730 * 1440, n) * 60 + start,
                "cents": np.maximum(1, rng.lognormal(8.0, 1.0, n).astype(np.int64)) * np.where(
                    rng.random(n) < 0.03, -1, 1),
            })
            frame.select(
                pl.format("C{}", pl.col("who").cast(pl.String).str.pad_start(8, "0")).alias("customer_id"),
                pl.from_epoch("at", time_unit="s").dt.strftime("%Y-%m-%d %H:%M").alias("occurred_at"),
                pl.format("{}{}.{}", pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit("")), cents.abs() // 100,
                          (cents.abs() % 100).cast(pl.String).str.pad_start(2, "0")).alias("amount"),
            ).write_csv(handle, include_header=False)
            done += n
    return path


PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def timed_with_peak(args: list[str]) -> tuple[float, int]:
    """Seconds of a whole process, and its peak RSS in bytes (of the largest process it waited for: measured
    by a parent that runs nothing else)."""
    env = bench_env()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, *args], check=True, env=env, capture_output=True,
                          text=True)
    return time.perf_counter() - started - python_start(), int(done.stdout.split()[-1]) * 1024


def python_start() -> float:
    """Seconds an interpreter takes to start and end (the measuring parent's share of `timed_with_peak`)."""
    return timed([sys.executable, "-c", "pass"])


def memory(rows: int, folder: Path) -> dict[str, Any]:
    """Write a synthetic log of `rows` rows, replay it as a whole process: seconds, rows/s, peak RSS."""
    need = rows * 40 * 3  # the log, the replay's spill files and its output, with room
    free = shutil.disk_usage(folder).free
    if free < need:
        raise SystemExit(f"bench.history: {folder} has {free / 1e9:.1f} GB free; {need / 1e9:.1f} GB needed")
    started = time.perf_counter()
    log = synthetic_log(folder / "synthetic.csv", rows)
    written = time.perf_counter() - started
    size = log.stat().st_size
    cli = [sys.executable, "-m", "streams.cli.main", "replay", str(log), "--as-of", "2025-12-31", "-o",
           str(folder / "synthetic_out.csv")]
    seconds, peak = timed_with_peak(cli)
    customers = sum(1 for _ in (folder / "synthetic_out.csv").open()) - 1
    calibrate_s, calibrate_peak = timed_with_peak([*cli[:3], "calibrate", str(log), "--as-of", "2025-12-31", "-o",
                                                   str(folder / "synthetic_calibration.json")])
    fit_s, fit_peak = timed_with_peak([*cli[:3], "fit", str(log), "--as-of", "2025-12-31", "-o",
                                       str(folder / "synthetic_model.json")])
    log.unlink()
    result = {"rows": rows, "bytes": size, "customers": customers, "write_log_s": written, "replay_s": seconds,
              "rows_per_s": rows / seconds, "peak_rss_bytes": peak, "peak_rss_target_bytes": 2 << 30,
              "calibrate_s": calibrate_s, "calibrate_peak_rss_bytes": calibrate_peak,
              "fit_s": fit_s, "fit_peak_rss_bytes": fit_peak}
    print(f"synthetic log: {rows:,} rows ({size / 1e6:,.0f} MB, {customers:,} customers): replay {seconds:.1f} s, "
          f"{rows / seconds:,.0f} rows/s, peak RSS {peak / 2**20:,.0f} MiB (target <= 2048 MiB); "
          f"calibrate {calibrate_s:.1f} s, peak RSS {calibrate_peak / 2**20:,.0f} MiB; "
          f"fit {fit_s:.1f} s, peak RSS {fit_peak / 2**20:,.0f} MiB")
    return result


def same_parameters(a: Path, b: Path, tolerance: float = 1e-6) -> bool:
    """Two model files hold the same numbers (relative and absolute `tolerance`), whatever their versions."""

    def numbers(value: Any, where: str = "") -> dict[str, float]:
        if isinstance(value, dict):
            kept = ((key, item) for key, item in value.items() if key != "version")
            return {k: v for key, item in kept for k, v in numbers(item, f"{where}.{key}").items()}
        if isinstance(value, list):
            return {k: v for n, item in enumerate(value) for k, v in numbers(item, f"{where}[{n}]").items()}
        return {where: float(value)} if isinstance(value, int | float) and not isinstance(value, bool) else {}

    left, right = numbers(json.loads(a.read_text())), numbers(json.loads(b.read_text()))
    return left.keys() == right.keys() and all(
        math.isclose(left[k], right[k], rel_tol=tolerance, abs_tol=tolerance) for k in left)


def fit_both(large: Path, folder: Path, baseline: str | None = None, runs: int = 1) -> dict[str, Any]:
    """`tierstream fit` on the large log in this run: --per-row once, the columnar default best of `runs`; with
    `baseline` (a git revision) also the fit of that revision (`git archive` of it into the folder, run with it
    on the path), best of `runs`, alternating with ours. Seconds, ratios, and whether the model files hold
    the same numbers (to 1e-6)."""
    fit = ["-m", "streams.cli.main", "fit", str(large), "--as-of", "2011-12-09"]
    load_before = os.getloadavg()[0]
    timed([sys.executable, "-c", "import scipy.optimize, scoring.valuemodel, streams.offline.batch"])  # bytecode
    per_row = timed([sys.executable, *fit, "--per-row", "--out", str(folder / "model_per_row.json")])
    base_tree = _baseline_tree(baseline, folder) if baseline else None
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(timed([sys.executable, *fit, "--out", str(folder / "model.json")]))
        if base_tree:
            theirs.append(timed([sys.executable, *fit, "--out", str(folder / "model_baseline.json")], base_tree))
    columnar = min(ours)
    same = same_parameters(folder / "model.json", folder / "model_per_row.json")
    result: dict[str, Any] = {"fit_s": columnar, "fit_per_row_s": per_row, "fit_speedup": per_row / columnar,
                              "fit_same_parameters_1e-6": same, "fit_runs": runs,
                              "fit_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "fit_commit": _commit(),
                              "fit_load_1min": [load_before, os.getloadavg()[0]]}
    line = f"fit: {columnar:.2f} s; --per-row {per_row:.2f} s; {per_row / columnar:.2f}x; same parameters: {same}"
    if base_tree:
        base_same = all(same_parameters(folder / f"model_baseline{suffix}", folder / f"model{suffix}")
                        for suffix in (".json", ".calibration.json"))
        result.update({"fit_baseline_rev": baseline, "fit_baseline_s": min(theirs),
                       "fit_baseline_speedup": min(theirs) / columnar,
                       "fit_baseline_same_parameters_1e-6": base_same})
        line += (f"; baseline {baseline}: {min(theirs):.2f} s, {min(theirs) / columnar:.2f}x; same model and "
                 f"calibration as the baseline: {base_same}")
    print(line)
    return result


def _commit() -> str:
    """This tree's commit (short), "+changes" when its tracked files differ from it."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                          text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD"], check=False).returncode != 0
    return head.stdout.strip() + ("+changes" if dirty else "")


def _baseline_tree(revision: str, folder: Path) -> Path:
    """The source tree of `revision` of this repository (`git archive`), its bytecode written."""
    tree = folder / f"baseline-{revision}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    timed([sys.executable, "-c", "import polars, scipy.optimize, scoring.valuemodel, streams.cli.main"], tree)
    return tree


_PYCACHE: list[Path] = []  # where the processes keep their bytecode (set by `main`)


def bench_env(tree: Path = ROOT) -> dict[str, str]:
    """The processes' environment: this tree (or `tree`) on the path, and bytecode written (to a folder of the
    bench's own, not the tree or the venv) so that their imports are those of an installed program: a session
    with PYTHONDONTWRITEBYTECODE would otherwise compile every imported module in every process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    if _PYCACHE:
        env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE[0])
    return env


def timed(args: list[str], tree: Path = ROOT) -> float:
    env = bench_env(tree)
    started = time.perf_counter()
    subprocess.run(args, check=True, env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    parser.add_argument("--memory-rows", type=int, default=0, help="also replay a synthetic log of N rows")
    parser.add_argument("--no-compare", action="store_true", help="skip CDNOW, the large log and fit")
    parser.add_argument("--fit-only", action="store_true", help="only `tierstream fit` on the large log")
    parser.add_argument("--replay-only", action="store_true", help="only the replays against lifetimes (no fit)")
    parser.add_argument("--fit-baseline", metavar="REV",
                        help="also time the fit of this git revision (e.g. 1d5b7ad) on the same log")
    args = parser.parse_args(argv)
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}  # parts not run stay
    if not args.fit_only:  # the fit part has its own time stamp (fit_at)
        results.update({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count()})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _PYCACHE[:] = [folder / "pycache"]
        timed([sys.executable, "-c", "import polars, streams.cli.main, streams.offline.batch"])  # their bytecode
        if args.memory_rows:
            results["synthetic"] = memory(args.memory_rows, folder)
        if args.no_compare:
            args.out.write_text(json.dumps(results, indent=2) + "\n")
            return
        if args.fit_only:
            large = large_log(folder)
            results.setdefault("retail_x4", {}).update(fit_both(large, folder, args.fit_baseline, args.runs))
            args.out.write_text(json.dumps(results, indent=2) + "\n")
            return
        cdnow = folder / "CDNOW_master.txt"
        cdnow.write_bytes(gzip.decompress(CDNOW.read_bytes()))
        results["cdnow"] = compare("CDNOW", cdnow, ["--as-of", "19980630", "--delimiter", "whitespace", "--columns",
                                                    "customer_id,occurred_at,n,amount"], "1998-06-30", True,
                                   args.runs, folder)
        large = large_log(folder)
        results.setdefault("retail_x4", {}).update(  # (a run without the fit keeps the fit's figures)
            compare("online retail x4", large, ["--as-of", "2011-12-09"], "2011-12-09", False, args.runs, folder))
        if not args.replay_only:
            results["retail_x4"].update(fit_both(large, folder, args.fit_baseline, args.runs))
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
