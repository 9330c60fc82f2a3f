"""`tierstream fit` learns the category affinity from a history with items; `tierstream evaluate` checks it on
held-out days (the synthetic stream, and a slice of Online Retail where the items are stock codes)."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import pytest
import yaml

from streams.local.generator import generate, to_json
from streams.modelfile import load_model
from tests.cli.test_model_cli import RETAIL, run_cli
from tests.kits.data import online_retail


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """400 customers over 300 days: as JSONL events, and as a CSV of purchase lines (one row per item)."""
    folder = tmp_path_factory.mktemp("stream")
    messages = list(generate(5, 400, 300))
    jsonl = folder / "events.jsonl"
    jsonl.write_text("".join(to_json(m) + "\n" for m in messages))
    lines = folder / "lines.csv"
    with lines.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "occurred_at", "amount", "sku", "category"])
        for m in messages:
            if m.type == "purchase":
                for item in m.items or ():
                    out.writerow([m.customer_id, m.occurred_at.isoformat(), item.unit_price, item.sku, item.category])
    return jsonl, lines


def test_fit_keeps_the_affinity_in_the_model_file(stream: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    jsonl, lines = stream
    for history, extra in ((jsonl, []), (lines, ["--item-col", "sku", "--category-col", "category"])):
        out = tmp_path / f"{history.stem}.json"
        code, _, err = run_cli(["fit", str(history), "--as-of", "2024-09-30", "--out", str(out), *extra], capsys)
        assert code == 0, err
        affinity = load_model(out).affinity
        assert affinity is not None and affinity.customers > 300 and "kitchen" in affinity.related
        assert json.loads(out.read_text())["affinity"]["format"] == "tierstream.affinity/1"
        assert re.search(r"category affinity: \d+ of \d+\+ categories related", err), err
    out = tmp_path / "plain.json"  # the lines without the item columns: no affinity
    code, _, err = run_cli(["fit", str(lines), "--as-of", "2024-09-30", "--out", str(out)], capsys)
    assert code == 0, err
    assert load_model(out).affinity is None and "category affinity" not in err


def test_evaluate_prints_the_affinity_check(stream: tuple[Path, Path], capsys) -> None:
    jsonl, lines = stream
    code, out, err = run_cli(["evaluate", str(jsonl), "--cal-end", "2024-07-31", "--bootstrap", "0"], capsys)
    assert code == 0, err
    assert "Potential, held out 90 days" in out and "Category affinity, held out 90 days" in out
    assert re.search(r"proposed \(affinity\): bought by [\d,]+ of [\d,]+", out)
    assert re.search(r"best seller \w+ to everyone: bought by", out)
    code, out, err = run_cli(["evaluate", str(lines), "--cal-end", "2024-07-31", "--bootstrap", "0",
                              "--potential-days", "0"], capsys)
    assert code == 0, err
    assert "Category affinity: not checked (no items: give --item-col or --category-col)" in out


@pytest.mark.parametrize(("bad", "field"), [({"categories_kept": 0}, "affinity.categories_kept"),
                                            ({"excluded": "POST"}, "affinity.excluded")])
def test_a_bad_affinity_setting_is_one_line_naming_the_field(
    bad: dict, field: str, stream: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    config = tmp_path / "tierstream.yaml"
    config.write_text(yaml.safe_dump({"scoring": {"affinity": bad}}))
    code, _, err = run_cli(["fit", str(stream[0]), "--as-of", "2024-09-30", "--out", str(tmp_path / "m.json"),
                            "--config", str(config)], capsys)
    assert code == 2, err
    assert field in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_on_online_retail_the_proposed_stock_code_beats_the_best_seller(tmp_path: Path, capsys) -> None:
    """Half of Online Retail's customers (an even last digit: the suite's time), stock codes as categories:
    fitted up to 2011-09-09, the proposed stock code is bought in the next 90 days more often than the best
    seller proposed to everyone, beyond the interval (measured on the whole file too: see the README)."""
    half = tmp_path / "half.csv"
    with gzip.open(online_retail(), "rt", newline="") as f, half.open("w", newline="") as out:
        rows, writer = csv.reader(f), csv.writer(out)
        header = next(rows)
        writer.writerow(header)
        customer = header.index("CustomerID")
        writer.writerows(r for r in rows if r[customer][-1:] in ("0", "2", "4", "6", "8"))
    code, out, err = run_cli(["evaluate", str(half), "--cal-end", "2011-09-09", "--bootstrap", "0",
                              "--potential-days", "0", "--item-col", "StockCode", "--timezone", "Europe/London",
                              *RETAIL], capsys)
    assert code == 0, err
    rates = dict(re.findall(r"  (proposed \(affinity\)|best seller \S+ to everyone|most popular not yet bought): "
                            r"bought by [\d,]+ of [\d,]+ \(([\d.]+)%", out))
    assert len(rates) == 3, out
    proposed = float(rates.pop("proposed (affinity)"))
    assert all(proposed > float(rate) for rate in rates.values()), out
    for name in ("best seller", "most popular not yet bought"):
        found = re.search(rf"difference proposed - {name}: ([+-][\d.]+)% \(95% CI ([+-][\d.]+)% to", out)
        assert found is not None and 0 < float(found.group(2)) < float(found.group(1)), out
