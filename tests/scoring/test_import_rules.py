"""The import rules between tierstream's packages, read from the source with `ast` (nothing is imported).

1. `scoring/` (the pure core) imports nothing from `schemas/` or `streams/`.
2. `schemas/` (message models) imports nothing from `streams/`.
3. `streams/offline/` (history readers, replay) imports no faust, aiokafka or redis: it runs without a broker.
4. Nothing imports `streams.cli` but the CLI itself (the console script `tierstream` names
   `streams.cli.main:main` in pyproject.toml).
5. `streams/worker/` (the production worker) is imported by no other product: `serving/`, `offline/`,
   `local/` and the shared modules at the top of `streams/` (only the CLI's `worker` command runs it).
6. No import cycles between the parts of `streams/` (the subpackages and the shared top-level modules),
   nor between modules.

Imports under `if TYPE_CHECKING:` count too: a type-only cycle is still a cycle for a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("scoring", "schemas", "streams")
IO_LIBRARIES = {"faust", "aiokafka", "redis", "mode"}
OTHER_PRODUCTS = {"streams", "streams.serving", "streams.offline", "streams.local"}  # may not import the worker


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module named by an import statement in `source` (relative imports resolved)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return found


def load_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    paths = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    modules = {module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        named = imports_of(path.read_text(), name, path.name == "__init__.py")
        graph[name] = {m for m in named if m in modules and m != name}
        graph[name] |= {m for m in named if m.split(".")[0] in IO_LIBRARIES}
    return graph


GRAPH = load_graph()


def part(module: str) -> str:
    """The part of the code a module belongs to: `streams.worker`, `streams` (shared top level), `scoring`..."""
    bits = module.split(".")
    if bits[0] == "streams" and len(bits) > 2:
        return ".".join(bits[:2])
    if bits[0] == "streams" and len(bits) == 2 and (ROOT / "streams" / bits[1]).is_dir():
        return module
    return bits[0]


def violations(rule: str) -> list[str]:
    """`importer -> imported` for every import that breaks `rule`."""
    out = []
    for importer, imported in sorted(GRAPH.items()):
        for target in sorted(imported):
            if breaks(rule, importer, target):
                out.append(f"{importer} -> {target}")
    return out


def breaks(rule: str, importer: str, target: str) -> bool:
    top = target.split(".", maxsplit=1)[0]
    if rule == "scoring":
        return importer.startswith("scoring") and top in {"schemas", "streams"}
    if rule == "schemas":
        return importer.startswith("schemas") and top == "streams"
    if rule == "offline":
        return importer.startswith("streams.offline") and top in IO_LIBRARIES
    if rule == "cli":
        return target.startswith("streams.cli") and not importer.startswith("streams.cli")
    if rule == "worker":
        return target.startswith("streams.worker") and part(importer) in OTHER_PRODUCTS
    raise ValueError(rule)


@pytest.mark.parametrize("rule", ["scoring", "schemas", "offline", "cli", "worker"])
def test_import_rule(rule: str) -> None:
    assert violations(rule) == []


def test_the_console_script_is_the_only_way_into_the_cli() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'tierstream = "streams.cli.main:main"' in pyproject


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of `graph` as [a, b, ..., a], or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for importer, imported in GRAPH.items():
        if not importer.startswith("streams"):
            continue
        graph.setdefault(part(importer), set()).update(
            part(t) for t in imported if t.startswith("streams") and part(t) != part(importer))
    return graph


def test_no_cycle_between_the_parts_of_streams() -> None:
    assert find_cycle(part_graph()) == []


def test_no_cycle_between_modules() -> None:
    project = {m: {t for t in ts if t.split(".")[0] in PACKAGES} for m, ts in GRAPH.items()}
    assert find_cycle(project) == []


def test_the_parts_are_what_the_rules_talk_about() -> None:
    parts = {part(m) for m in GRAPH if m.startswith("streams.")}
    assert parts >= {"streams", "streams.worker", "streams.serving", "streams.offline", "streams.local",
                     "streams.cli"}


# -- the scan itself -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "module", "expected"), [
    ("import faust", "streams.offline.replay", {"faust"}),
    ("from redis.asyncio import Redis", "streams.offline.replay", {"redis.asyncio", "redis.asyncio.Redis"}),
    ("from . import history", "streams.offline.replay", {"streams.offline", "streams.offline.history"}),
    ("from ..worker import app", "streams.offline.replay", {"streams.worker", "streams.worker.app"}),
    ("from .base import app", "streams.cli", {"streams.cli.base", "streams.cli.base.app"}),
    ("if TYPE_CHECKING:\n    from streams.cli import main", "x", {"streams.cli", "streams.cli.main"}),
])
def test_the_scan_sees_every_kind_of_import(source: str, module: str, expected: set[str]) -> None:
    assert imports_of(source, module, is_package=module == "streams.cli") == expected


def test_a_cycle_is_found() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(("rule", "importer", "target"), [
    ("scoring", "scoring.step", "streams.profile"),
    ("scoring", "scoring.valuemodel.model", "schemas.base"),
    ("schemas", "schemas.asyncapi", "streams.settings"),
    ("offline", "streams.offline.replay", "aiokafka"),
    ("cli", "streams.local.demo", "streams.cli.base"),
    ("worker", "streams.serving.resync", "streams.worker.store"),
    ("worker", "streams.profile", "streams.worker.handler"),
    ("worker", "streams.local.demo", "streams.worker.run"),
])
def test_each_rule_catches_its_violation(rule: str, importer: str, target: str) -> None:
    assert breaks(rule, importer, target)


@pytest.mark.parametrize(("rule", "importer", "target"), [
    ("cli", "streams.cli.main", "streams.cli.base"),
    ("worker", "streams.cli.worker", "streams.worker.run"),
    ("worker", "streams.worker.app", "streams.worker.handler"),
    ("offline", "streams.offline.replay", "scoring.step"),
])
def test_what_the_rules_allow(rule: str, importer: str, target: str) -> None:
    assert not breaks(rule, importer, target)
