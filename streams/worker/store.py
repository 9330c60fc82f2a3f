"""The customers table as the worker uses it: read a state's bytes, write them to a partition.

Faust writes a table key only inside stream iteration (it takes the partition from the current
event); the worker writes states in batches at a flush, outside any event, so it addresses the
partition itself: the store below, and the changelog records it produces itself (and awaits:
Faust's own buffered `send_soon` may still hold records when a commit has flushed the producer).
Keys are customer ids (str, written raw), values the state bytes of `scoring.codec`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol


class _TP(NamedTuple):
    topic: str
    partition: int


class TableStore(Protocol):
    """What the worker needs of the table's local store."""

    def get(self, customer: str) -> bytes | None: ...

    def put(self, partition: int, customer: str, value: bytes | None) -> None:
        """Write (None: delete) a customer's state in `partition`'s store."""

    def items(self) -> Iterator[tuple[str, bytes]]: ...

    def __len__(self) -> int: ...


class FaustTableStore:
    """A Faust table's store (memory or RocksDB), written by partition."""

    def __init__(self, table: Any) -> None:
        self.table = table

    @property
    def _data(self) -> Any:
        return self.table.data

    def get(self, customer: str) -> bytes | None:
        value = self._data.get(customer)
        return None if value is None else bytes(value)

    def put(self, partition: int, customer: str, value: bytes | None) -> None:
        data = self._data
        if hasattr(data, "_db_for_partition"):  # RocksDB: one database per partition
            key = data._encode_key(customer)
            db = data._db_for_partition(partition)
            if value is None:
                db.delete(key)
                data._key_index.pop(key, None)
            else:
                db.put(key, data._encode_value(value))
                data._key_index[key] = partition
        elif value is None:
            data.data.pop(customer, None)
        else:
            data.data[customer] = value

    def items(self) -> Iterator[tuple[str, bytes]]:
        for customer, value in self._data.items():
            yield customer, bytes(value)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def changelog_topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def persisted(self, partition: int, offset: int) -> None:
        """The changelog holds this partition's writes up to `offset`: a RocksDB store remembers it, so a
        restart reads only the changelog after it (Faust's own table writes do the same)."""
        data = self._data
        if hasattr(data, "set_persisted_offset"):
            data.set_persisted_offset(_TP(self.changelog_topic, partition), offset)


class DictStore:
    """An in-memory store for tests and benchmarks of the handler (no Faust)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.changelog: list[tuple[int, str, bytes | None]] = []

    def get(self, customer: str) -> bytes | None:
        return self.data.get(customer)

    def put(self, partition: int, customer: str, value: bytes | None) -> None:
        if value is None:
            self.data.pop(customer, None)
        else:
            self.data[customer] = value

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(list(self.data.items()))

    def __len__(self) -> int:
        return len(self.data)
