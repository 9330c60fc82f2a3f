"""`tierstream schemas export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli import err, schemas_app


@schemas_app.command("export", epilog="Example:\n\n  tierstream schemas export --dir schemas/json")
def schemas_export(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the JSON Schema files.")] = Path(
        "schemas/json"),
) -> None:
    """Write the JSON Schema of every message (and the AsyncAPI document) to a directory."""
    from schemas.export import json_schemas

    directory.mkdir(parents=True, exist_ok=True)
    schemas = json_schemas()
    for stale in {p.name for p in directory.glob("*.json")} - set(schemas):
        (directory / stale).unlink()  # a message that no longer exists
    for name, text in schemas.items():
        (directory / name).write_text(text)
    err.print(f"wrote {len(json_schemas())} schemas to {directory}")
