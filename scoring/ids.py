"""Stable hashes and deterministic output ids (same input, same id, in any process)."""

from __future__ import annotations

from hashlib import blake2b


def hash64(text: str) -> int:
    """A 64-bit unsigned hash of `text`, stable across processes (unlike `hash`)."""
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big")


def output_id(customer_id: str, cause: str, kind: str, seq: int) -> str:
    """Deterministic id of the `seq`-th output of `kind` caused by `cause` for a customer.

    32 hex characters. Redelivering the cause reproduces the id, so subscribers
    deduplicate by it.
    """
    raw = f"{customer_id}\x1f{cause}\x1f{kind}\x1f{seq}".encode()
    return blake2b(raw, digest_size=16).hexdigest()
