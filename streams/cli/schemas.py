"""`tierstream schemas export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli.base import check_writable, err, schemas_app


@schemas_app.command("export", epilog=(
    "Example:\n\n  tierstream schemas export --dir schemas/json --asyncapi docs/asyncapi.yaml"))
def schemas_export(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the JSON Schema files.")] = Path(
        "schemas/json"),
    asyncapi: Annotated[Path | None, typer.Option(help="Also write the AsyncAPI document here.")] = None,
) -> None:
    """Write the JSON Schema of every message.

    With --asyncapi, the AsyncAPI document too."""
    from schemas.asyncapi import asyncapi_yaml
    from schemas.export import json_schemas
    from streams.settings import TopicNames

    if asyncapi is not None:
        check_writable(asyncapi, "--asyncapi")
    schemas = json_schemas()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in {p.name for p in directory.glob("*.json")} - set(schemas):
            (directory / stale).unlink()  # a message that no longer exists
        for name, text in schemas.items():
            (directory / name).write_text(text)
        if asyncapi is not None:
            asyncapi.write_text(asyncapi_yaml(TopicNames().model_dump()))
    except OSError as exc:
        hint = "--asyncapi" if asyncapi is not None and exc.filename == str(asyncapi) else "--dir"
        raise typer.BadParameter(f"cannot write {exc.filename}: {exc.strerror}", param_hint=hint) from None
    err.print(f"wrote {len(schemas)} schemas to {directory}" + (f" and {asyncapi}" if asyncapi else ""))
