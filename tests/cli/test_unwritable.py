"""An output path that cannot be written is one line and exit 2, found before any long work, even where the
access bits say yes (root, /proc, a read-only mount, a name too long); a file error later is one line too."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from streams.cli.base import check_writable
from streams.cli.main import main

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow" / "CDNOW_sample.txt"
CDNOW_LAYOUT = ["--delimiter", "whitespace", "--columns", "customer_id,id,occurred_at,quantity,amount"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.fixture
def unopenable(tmp_path: Path) -> Path:
    """A path in a writable directory that no one can create: its name is longer than any file system allows."""
    return tmp_path / ("x" * 300)


def test_the_check_opens_the_file(unopenable: Path) -> None:
    with pytest.raises(typer.BadParameter, match=r"cannot write .*: File name too long"):
        check_writable(unopenable, "--out")


def test_the_check_opens_the_file_where_access_bits_say_yes() -> None:
    """/proc: root may write to the directory by its bits, yet no file can be made there."""
    with pytest.raises(typer.BadParameter, match=r"cannot write /proc/tierstream-out\.csv: "):
        check_writable(Path("/proc/tierstream-out.csv"), "--out")


def test_the_check_keeps_a_file_that_is_there_and_leaves_none_behind(tmp_path: Path) -> None:
    kept, new = tmp_path / "kept.csv", tmp_path / "new.csv"
    kept.write_text("yesterday's scores\n")
    check_writable(kept, "--out")
    check_writable(new, "--out")
    assert kept.read_text() == "yesterday's scores\n" and not new.exists()


@pytest.mark.parametrize(("argv", "option"), [
    (["generate", "--customers", "2", "--out"], "--out"),
    (["schemas", "export", "--asyncapi"], "--asyncapi"),
    (["evaluate", str(CDNOW), "--cal-end", "19970930", *CDNOW_LAYOUT, "--json"], "--json"),
    (["fit", str(CDNOW), "--as-of", "19970930", *CDNOW_LAYOUT, "--calibration-out"], "--calibration-out"),
], ids=["generate --out", "schemas export --asyncapi", "evaluate --json", "fit --calibration-out"])
def test_an_unopenable_output_is_refused_before_the_work(argv: list[str], option: str, unopenable: Path,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # schemas export writes ./schemas/json, fit ./model.json: neither may appear
    code, out, err = run_cli([*argv, str(unopenable)], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"tierstream: error: Invalid value for {option}: cannot write ") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_file_error_after_the_checks_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import streams.cli.generate

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device", "events.jsonl")

    monkeypatch.setattr(streams.cli.generate, "_write", full_disk)
    code, _, err = run_cli(["generate", "--out", str(tmp_path / "events.jsonl")], capsys)
    assert (code, err) == (1, "tierstream: error: events.jsonl: No space left on device\n")


def test_an_os_error_without_a_file_keeps_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.cli.generate

    def broken(*args: object) -> None:
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(streams.cli.generate, "_write", broken)
    with pytest.raises(ConnectionResetError):
        main(["generate", "--out", str(tmp_path / "events.jsonl")])
