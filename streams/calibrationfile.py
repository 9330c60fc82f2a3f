"""Calibration files: read (one-line errors naming the field), write atomically, check against a config.

The format is `scoring.calibration` (JSON, `format: 1`). A loader only raises:
the caller decides (a command exits 2; a worker keeps the calibration it has).
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from scoring.calibrate import stale_reasons
from scoring.calibration import Calibration, calibration_from_json
from scoring.config import ScoringConfig
from scoring.errors import CalibrationError, ConfigError


def load_calibration(path: Path) -> Calibration:
    """A calibration written by `tierstream calibrate` or `fit`; ConfigError (one line) when unreadable or bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"calibration: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"calibration: {path} is not UTF-8 text") from None
    try:
        return calibration_from_json(text)
    except CalibrationError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_calibration(calibration: Calibration, path: Path) -> None:
    """Write atomically (temp file + rename) so a watching worker never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(calibration.to_json(), encoding="utf-8")
    os.replace(tmp, path)


def applied(config: ScoringConfig, calibration: Calibration, path: Path) -> ScoringConfig:
    """`config` under the calibration of file `path`; ConfigError (one line) when it was made for other tiers
    or another window."""
    try:
        return config.calibrated(calibration)
    except CalibrationError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def calibration_for(config: ScoringConfig, path: Path | None, console: Console) -> Calibration | None:
    """The calibration a command was given (`--calibration`), checked against the config: None without one;
    ConfigError (one line) when bad or made for other tiers or another window. Says on `console` when it is
    ignored (absolute tiering) or may be stale."""
    if path is None:
        return None
    calibration = load_calibration(path)
    if config.tiering != "calibrated":
        console.print(f"{path}: not used: tiering is absolute", markup=False)
        return None
    applied(config, calibration, path)
    for reason in stale_reasons(config, calibration):
        console.print(f"{path}: note: {reason}", markup=False)
    return calibration
