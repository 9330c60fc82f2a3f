"""Helpers for the deployment tests: settings from an environment, CLI argument parsing without running."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from streams.cli.main import app
from streams.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
ENV_ALIASES = {"KAFKA_BOOTSTRAP", "REDIS_URL"}


def settings_env_names() -> set[str]:
    """Every environment variable Settings reads."""
    return {f"TIERSTREAM_{name.upper()}" for name in Settings.model_fields} | ENV_ALIASES


def settings_from_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, config: Path | None = None) -> Settings:
    """Settings as a process with exactly `env` (and `config`) would load them."""
    import os

    for name in list(os.environ):
        if name.startswith("TIERSTREAM_") or name in ENV_ALIASES:
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return load_settings(config)


def parse_cli(args: list[str]) -> dict[str, Any]:
    """Parse `tierstream args` the way the CLI does, without running it; returns the leaf's parameters."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("tierstream", list(args), resilient_parsing=False)
    while getattr(command, "commands", None):
        protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
        name, sub, rest = command.resolve_command(ctx, [*protected, *ctx.args])
        command = sub
        ctx = sub.make_context(name, rest, parent=ctx)
    return dict(ctx.params)


def readme_pip_installs() -> list[str]:
    """`pip install ...` commands in the README's code blocks, normalised (no --no-cache-dir, single quotes)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    found = []
    for block in blocks:
        for line in block.splitlines():
            command = line.split("#")[0].strip()
            if command.startswith(("pip install", "python -m pip install")):
                found.append(normalise_pip(command))
    return found


def normalise_pip(command: str) -> str:
    command = command.replace("python -m pip", "pip").replace('"', "'")
    return " ".join(part for part in command.split() if part not in ("--no-cache-dir", "--quiet", "-q"))
