"""Part 5 at sizes a 2-core box cannot load through Kafka: the worker's per-customer data, built directly.

`python -m bench.memory_model --customers N --states FILE` holds what a worker
holds per customer in memory: the table's dict of customer id -> serialised
state (distinct bytes objects, sizes cycled from real states in FILE) and the
DeadlineIndex entry (a dict item and a heap tuple per customer). It prints the
RSS growth as JSON. Faust's memory store keeps the table as a plain dict of
the objects set, so this is the table's own cost; what the model leaves out is
per-process (code, buffers), measured on a real worker.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import struct
from pathlib import Path

from bench.services import rss_bytes
from streams.partitioning import canonical_partition
from streams.worker.deadlines import DeadlineIndex

PARTITIONS = 4


def read_states(path: Path) -> list[bytes]:
    """States written by `write_states`: 4-byte big-endian length, then the bytes."""
    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        (size,) = struct.unpack_from(">I", data, pos)
        out.append(data[pos + 4:pos + 4 + size])
        pos += 4 + size
    return out


def write_states(path: Path, states: list[bytes]) -> None:
    path.write_bytes(b"".join(struct.pack(">I", len(s)) + s for s in states))


def build(customers: int, states: list[bytes], today: int) -> tuple[dict[str, bytes], DeadlineIndex]:
    table: dict[str, bytes] = {}
    index = DeadlineIndex()
    for i in range(customers):
        customer = f"C{i:09d}"
        table[customer] = bytes(bytearray(states[i % len(states)]))  # a distinct object, as each decode makes
        index.set(canonical_partition(customer, PARTITIONS), customer, today + i % 400)
    return table, index


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_model")
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--states", type=Path, required=True)
    args = parser.parse_args()
    states = read_states(args.states)
    gc.collect()
    before = rss_bytes(os.getpid())
    table, index = build(args.customers, states, 20_000)
    gc.collect()
    after = rss_bytes(os.getpid())
    mean_state = sum(len(table[k]) for k in list(table)[:len(states)]) / min(len(states), len(table))
    print(json.dumps({"customers": args.customers, "rss_before": before, "rss_after": after,
                      "bytes_per_customer": (after - before) / args.customers, "mean_state_bytes": mean_state,
                      "deadlines": index.size()}))


if __name__ == "__main__":
    main()
