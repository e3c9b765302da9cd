"""The tree shows the pipeline: a package per stage, imports pointing one way.

gobt is parse -> resolve -> rewrite -> emit/exec. Each stage's package may
import only itself, the stages it builds on, and the shared errors, cache,
record and paths modules; nothing imports in a circle; no module grows past
600 lines.
Imports inside functions count too: they are how a stage reaches another
lazily, and a lazy cycle is still a cycle.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = {"gobt", "gobt.errors", "gobt.cache", "gobt.record", "gobt.paths"}
# What each stage may import besides itself and SHARED.
ALLOWED = {
    "gobt.lang": set(),
    "gobt.abi": set(),
    "gobt.binary": {"gobt.abi"},
    "gobt.run": set(),
    "gobt.rewrite": {"gobt.lang", "gobt.binary", "gobt.abi"},
}

pytestmark = pytest.mark.bpftrace_independent


def _modules():
    out = {}
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "gobt")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__")] = path
    return out


def _imports(module, path, known):
    is_pkg = path.endswith("__init__.py")
    package = module if is_pkg else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in known and m != module}


def _graph():
    known = _modules()
    return {m: _imports(m, p, known) for m, p in known.items()}


def test_no_import_cycle():
    graph = _graph()
    done, path = set(), []

    def visit(m):
        if m in path:
            cycle = path[path.index(m):] + [m]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if m in done:
            return
        path.append(m)
        for n in sorted(graph[m]):
            # A package's __init__ is imported on the way to its modules;
            # a module importing its own package is not a cycle of code.
            if not m.startswith(n + "."):
                visit(n)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_stages_import_only_what_they_build_on():
    wrong = []
    for module, targets in _graph().items():
        stage = next((s for s in ALLOWED if module == s or module.startswith(s + ".")), None)
        if stage is None:
            continue
        for t in targets:
            if t in SHARED or t == stage or t.startswith(stage + "."):
                continue
            if any(t == a or t.startswith(a + ".") for a in ALLOWED[stage]):
                continue
            wrong.append(f"{module} imports {t}")
    assert not wrong, "\n".join(sorted(wrong))


def test_shared_modules_import_no_stage():
    graph = _graph()
    for module in sorted(SHARED - {"gobt"}):
        assert not {t for t in graph[module] if t not in SHARED}, module


@pytest.mark.parametrize("folder", ["gobt", "bench"])
def test_no_module_over_600_lines(folder):
    long = []
    for sub, _dirs, files in os.walk(os.path.join(ROOT, folder)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(sub, name)
                n = sum(1 for _ in open(path))
                if n > 600:
                    long.append(f"{os.path.relpath(path, ROOT)}: {n} lines")
    assert not long, "\n".join(long)
