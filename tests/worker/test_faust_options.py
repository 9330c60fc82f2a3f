"""The Faust app options the worker derives from its settings (no broker)."""

from __future__ import annotations

import pytest

from streams.settings import Settings
from streams.worker.faust_options import faust_options


@pytest.mark.parametrize(("store", "checked"), [("memory", False), ("rocksdb", True)])
def test_the_recovery_consistency_check_guards_rocksdb_files_only(store: str, checked: bool) -> None:
    # The memory store persists no offsets; Faust's check then compared offsets read in an earlier recovery
    # with a short ListOffsets answer and crashed the worker (seen on the test broker after a kill -9).
    options = faust_options(Settings(store=store))
    assert options["recovery_consistency_check"] is checked
    assert options["store"] == f"{store}://"
