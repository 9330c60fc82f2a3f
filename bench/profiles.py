"""Summarise py-spy profiles (collapsed stacks, `--profile DIR`): who spends the CPU, ours or the framework's.

`python -m bench.profiles DIR` prints, per profile, the share of samples by
owner (our code and what it calls, Faust/mode, aiokafka, redis-py, the asyncio
loop) and the heaviest functions of ours. Samples are taken while the thread
holds the GIL, so they follow Python CPU time.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

OURS = re.compile(r"(^|/)(streams|scoring|schemas)/")
NOT_OURS = re.compile(r"(^|/)(streams/worker\.py|bench/)")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):\d+\)$")


def frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame)
        out.append((match["func"], match["file"]) if match else (frame, frame))
    return out


def is_ours(file: str) -> bool:
    return bool(OURS.search(file)) and not NOT_OURS.search(file)


def owner(stack: list[tuple[str, str]]) -> str:
    """Who a sample's time belongs to: the innermost of our frames decides, else the library at the leaf."""
    ours = [i for i, (_, file) in enumerate(stack) if is_ours(file)]
    if ours:
        if ours[-1] == len(stack) - 1:
            return "ours: own code"
        callee = stack[ours[-1] + 1][1]
        for lib in ("pydantic", "json", "faust", "mode/", "aiokafka", "redis"):
            if lib in callee:
                return f"ours -> {lib.strip('/')}"
        return "ours -> other"
    files = " ".join(file for _, file in stack)
    for lib in ("redis", "aiohttp"):
        if f"/{lib}/" in files:
            return lib
    leaf = stack[-1][1]
    for lib in ("aiokafka", "faust", "mode/", "asyncio", "selectors"):
        if lib in leaf or any(lib in file for _, file in stack[-3:]):
            return {"mode/": "faust", "selectors": "asyncio"}.get(lib, lib)
    return "other"


def summarise(path: Path, top: int = 12) -> str:
    owners: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        n = int(count)
        stack = frames(stack_text)
        total += n
        owners[owner(stack)] += n
        for func, file in {f for f in stack if is_ours(f[1])}:
            ours[f"{func} ({file})"] += n
    lines = [f"== {path.name}: {total} samples"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in owners.most_common()]
    lines.append("  heaviest of ours (inclusive):")
    lines += [f"  {n / total:6.1%}  {name}" for name, n in ours.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for path in sorted(folder.glob("*.txt")):
        print(summarise(path))


if __name__ == "__main__":
    main()
