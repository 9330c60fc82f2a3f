"""Evidence files (`scoring.evidence`): read (one-line errors naming the field), write atomically.

A loader only raises: the caller decides (a command exits 2; a worker keeps the evidence it has).
"""

from __future__ import annotations

import os
from pathlib import Path

from scoring.errors import ConfigError
from scoring.evidence import Evidence, EvidenceError, evidence_from_json


def load_evidence(path: Path) -> Evidence:
    """Evidence written by `tierstream plan-report --evidence-out`; ConfigError (one line) when unreadable or bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"evidence: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"evidence: {path} is not UTF-8 text") from None
    try:
        return evidence_from_json(text)
    except EvidenceError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_evidence(evidence: Evidence, path: Path) -> None:
    """Write atomically (temp file + rename) so a watching worker never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(evidence.to_json(), encoding="utf-8")
    os.replace(tmp, path)
