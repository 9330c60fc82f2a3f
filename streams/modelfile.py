"""Value model files: load, and notice when a new one (or any watched file) is written (picked up without a restart)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from scoring.errors import ConfigError

if TYPE_CHECKING:  # the value model needs numpy and scipy (seconds to import): loaded with the first model file
    from scoring.valuemodel.model import ValueModel

T = TypeVar("T")


def load_model(path: Path) -> ValueModel:
    """A model written by `tierstream fit`; ConfigError (one line) when unreadable."""
    from scoring.valuemodel.errors import ValueModelError  # noqa: PLC0415 - see the TYPE_CHECKING import
    from scoring.valuemodel.model import ValueModel  # noqa: PLC0415

    try:
        return ValueModel.from_dict(json.loads(path.read_text()))
    except OSError as exc:
        raise ConfigError(f"model: cannot read {path}: {exc.strerror}") from None
    except (ValueError, ValueModelError) as exc:
        raise ConfigError(f"model: {path} is not a tierstream value model: {str(exc)[:200]}") from None


def save_model(model: ValueModel, path: Path) -> None:
    """Write atomically (temp file + rename) so a watching worker never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(model.to_dict(), indent=2) + "\n")
    os.replace(tmp, path)


class FileWatcher(Generic[T]):
    """Reloads a file (a value model, a calibration) when it is replaced or rewritten.

    A change is any difference in (inode, modification time in ns, size):
    `save_model` replaces the file by rename, which gives a new inode even
    when the new model has the same size and lands within the same clock tick.
    """

    def __init__(self, path: Path, load: Callable[[Path], T]) -> None:
        self.path = path
        self.load = load
        self._seen: tuple[int, int, int] | None = None

    def poll(self) -> T | None:
        """The new content when the file changed since the last poll, else None.

        A bad file raises ConfigError once; it is not read again until it changes.
        """
        try:
            stat = self.path.stat()
        except OSError:
            return None
        mark = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if mark == self._seen:
            return None
        self._seen = mark
        return self.load(self.path)


class ModelWatcher(FileWatcher["ValueModel"]):
    """Reloads the value model file when it changes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, load_model)
