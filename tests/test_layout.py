"""The packages depend on each other in one direction: no cycle among codec's subpackages, entropy and bitstream."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("codec.data", "codec.training", "codec.toy", "codec.evaluation", "entropy", "bitstream")


def package_of(module: str) -> str | None:
    for package in PACKAGES:
        if module == package or module.startswith(package + "."):
            return package
    return None


def imports() -> dict[str, set[str]]:
    """Package -> the other packages its modules import (at any depth, lazily or not)."""
    graph: dict[str, set[str]] = {package: set() for package in PACKAGES}
    for package in PACKAGES:
        for path in (ROOT / package.replace(".", "/")).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                for name in names:
                    target = package_of(name)
                    if target and target != package:
                        graph[package].add(target)
    return graph


def test_no_package_imports_one_that_imports_it_back():
    graph = imports()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    cycles = [package for package in PACKAGES if reaches(package, package, {package})]
    assert not cycles, f"import cycles through {cycles}: {graph}"
    assert "codec.toy" not in graph["codec.training"]  # training gets its samples through codec.data
