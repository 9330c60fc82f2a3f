"""`tierstream fit` learns the category affinity from a history with items; `tierstream evaluate` checks it on
held-out days (the synthetic stream, and a slice of Online Retail where the items are stock codes)."""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from streams.cli.main import main
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


def retail_slice(path: Path, keep: Callable[[str], bool]) -> Path:
    """Online Retail's rows of the customers `keep` takes (by CustomerID), written to `path` as plain CSV."""
    with gzip.open(online_retail(), "rt", newline="") as f, path.open("w", newline="") as out:
        rows, writer = csv.reader(f), csv.writer(out)
        header = next(rows)
        writer.writerow(header)
        customer = header.index("CustomerID")
        writer.writerows(r for r in rows if keep(r[customer]))
    return path


def test_on_online_retail_the_proposed_stock_code_beats_the_best_seller(tmp_path: Path, capsys) -> None:
    """Half of Online Retail's customers (an even last digit: the suite's time), stock codes as categories:
    fitted up to 2011-09-09, the proposed stock code is bought in the next 90 days more often than the best
    seller proposed to everyone, beyond the interval (measured on the whole file too: see the README)."""
    half = retail_slice(tmp_path / "half.csv", lambda customer: customer[-1:] in ("0", "2", "4", "6", "8"))
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


# --- replay, calibrate: the categories of a CSV's items reach the states and the proposition ---------------

NO_HYSTERESIS = "scoring:\n  tiering: absolute\n  hysteresis_margin: 0\n"  # batch and --exact then agree to the byte


@pytest.fixture(scope="module")
def small_stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """80 customers over 300 days as a CSV of purchase lines, a model fitted on them with their items, and a
    config under which a batch replay and `--exact` give the same tiers (no hysteresis, absolute cut points)."""
    folder = tmp_path_factory.mktemp("small")
    lines = folder / "lines.csv"
    with lines.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "occurred_at", "amount", "sku", "category"])
        for m in generate(5, 80, 300):
            if m.type == "purchase":
                for item in m.items or ():
                    out.writerow([m.customer_id, m.occurred_at.isoformat(), item.unit_price, item.sku, item.category])
    model = folder / "model.json"
    with pytest.raises(SystemExit) as done:
        main(["fit", str(lines), "--as-of", "2024-09-30", "--out", str(model), "--item-col", "sku",
              "--category-col", "category"])
    assert not done.value.code and load_model(model).affinity is not None
    config = folder / "tierstream.yaml"
    config.write_text(NO_HYSTERESIS)
    return lines, model, config


def replayed(argv: list[str], out: Path, capsys) -> list[dict[str, str]]:
    code, _, err = run_cli(["replay", *argv, "--out", str(out)], capsys)
    assert code == 0, err
    with out.open(newline="") as f:
        return list(csv.DictReader(f))


def test_replay_names_the_proposed_category_alike_on_every_path(
    small_stream: tuple[Path, Path, Path], tmp_path: Path, capsys
) -> None:
    """`--item-col/--category-col`: the categories reach every replay's states, so the proposition names a
    category (`proposition_category`) and the columnar batch, the per-row reader (`--jobs 1`) and `--exact`
    write the same bytes; without the options no category is named."""
    lines, model, config = small_stream
    common = [str(lines), "--as-of", "2024-10-31", "--model", str(model), "--config", str(config)]
    items = ["--item-col", "sku", "--category-col", "category"]
    outs = {}
    for name, extra in (("columnar", []), ("per_row", ["--jobs", "1"]), ("exact", ["--exact"])):
        outs[name] = tmp_path / f"{name}.csv"
        rows = replayed([*common, *items, *extra], outs[name], capsys)
    assert outs["columnar"].read_bytes() == outs["per_row"].read_bytes() == outs["exact"].read_bytes()
    named = [r for r in rows if r["proposition_category"]]
    assert len(named) >= 5 and {r["proposition"] for r in named} <= {"cross_sell", "upsell"}, rows
    assert all(r["proposition_category"] == "" for r in rows if r["proposition"] not in ("cross_sell", "upsell"))
    for extra in ([], ["--exact"]):
        plain = replayed([*common, *extra], tmp_path / "plain.csv", capsys)
        assert [r["proposition_category"] for r in plain] == [""] * len(plain)
        assert [r["proposition"] for r in plain] == [r["proposition"] for r in rows]  # the categories alone differ


def test_calibrate_takes_the_item_columns(small_stream: tuple[Path, Path, Path], tmp_path: Path, capsys) -> None:
    """A history's item columns change no calibration figure (they are not R, F or M): the same file with them."""
    lines, _, _ = small_stream
    cals = []
    for extra in ([], ["--item-col", "sku", "--category-col", "category"]):
        out = tmp_path / f"cal{len(extra)}.json"
        code, _, err = run_cli(["calibrate", str(lines), "--as-of", "2024-10-31", "--out", str(out), *extra], capsys)
        assert code == 0, err
        cals.append(json.loads(out.read_text()))
    assert cals[0] == cals[1]


def test_on_an_online_retail_slice_replay_proposes_stock_codes_alike_on_every_path(
    tmp_path: Path, capsys
) -> None:
    """126 of Online Retail's customers (ids ending 13, 31 or 71), stock codes as categories (`--item-col
    StockCode`): a model fitted on them to 2011-09-09 proposes stock codes at 2011-12-09, and the columnar
    replay, the per-row one and `--exact` (no hysteresis, so the same tiers) write the same bytes."""
    part = retail_slice(tmp_path / "part.csv", lambda customer: customer[-2:] in ("13", "31", "71"))
    layout = [*RETAIL, "--timezone", "Europe/London", "--item-col", "StockCode"]
    model = tmp_path / "model.json"
    code, _, err = run_cli(["fit", str(part), "--as-of", "2011-09-09", "--out", str(model), *layout], capsys)
    assert code == 0, err
    config = tmp_path / "tierstream.yaml"
    config.write_text(NO_HYSTERESIS)
    common = [str(part), "--as-of", "2011-12-09", "--model", str(model), "--config", str(config), *layout]
    outs = {name: tmp_path / f"{name}.csv" for name in ("columnar", "per_row", "exact")}
    for name, extra in (("columnar", []), ("per_row", ["--jobs", "1"]), ("exact", ["--exact"])):
        rows_out = replayed([*common, *extra], outs[name], capsys)
    assert outs["columnar"].read_bytes() == outs["per_row"].read_bytes() == outs["exact"].read_bytes()
    assert len(rows_out) == 126
    codes = model_codes(model)
    named = [r["proposition_category"] for r in rows_out if r["proposition_category"]]
    assert len(named) >= 30 and set(named) <= codes, named


def model_codes(model: Path) -> set[str]:
    """The stock codes the model's affinity relates."""
    affinity = load_model(model).affinity
    assert affinity is not None
    return set(affinity.related) | {b for related in affinity.related.values() for b, _ in related}
