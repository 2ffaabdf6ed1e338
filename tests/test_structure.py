"""nlviz's shape: layered imports (no cycle, nothing upward, function-level imports included),
``__all__`` in every module, imports at the top, and the size budget of a teaching package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nlviz"
# A module imports only modules of lower layers: utils <- nlm, pairwise <- block <- video <-
# train <- experiments; the static figures (plot, figure3) never reach the widget (explorer).
LAYERS = {
    "utils": 0,
    "fingerprint": 1,
    "checkpoint": 1,
    "nlm": 1,
    "pairwise": 1,
    "plot": 1,
    "mass": 1,
    "blit": 1,
    "block": 2,
    "spacetime": 3,
    "nets": 4,
    "video": 5,
    "train": 6,
    "experiments": 7,
    "denoise": 7,
    "attention": 7,
    "figure3": 8,
    "controls": 9,
    "explorer": 10,
}
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _tree(name: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{name}.py").read_text())


def _imports(name: str) -> set[str]:
    """nlviz modules that ``name`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nlviz"):
            found.add(node.module.split(".")[1] if "." in node.module else node.names[0].name)
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("nlviz.")}
    return found - {name}


def test_every_module_has_a_layer():
    assert set(MODULES) == set(LAYERS), "add new modules to LAYERS (and to the README's map)"


@pytest.mark.parametrize("name", MODULES)
def test_imports_go_down_the_layers_only(name):
    upward = {m for m in _imports(name) if LAYERS[m] >= LAYERS[name]}
    assert not upward, f"nlviz.{name} imports {sorted(upward)} from its own layer or above"


def test_static_figures_never_reach_the_widget():
    def reach(name, seen):
        for m in _imports(name) - seen:
            seen.add(m)
            reach(m, seen)
        return seen

    for static in ("plot", "figure3", "mass", "blit"):
        assert not {"explorer", "controls"} & reach(static, set())


@pytest.mark.parametrize("name", MODULES)
def test_all_and_imports_at_the_top(name):
    tree = _tree(name)
    names = [
        t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if hasattr(t, "id")
    ]
    assert "__all__" in names, f"nlviz.{name} has no __all__"
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom) and not isinstance(node, ast.Module):
                raise AssertionError(f"nlviz.{name}:{child.lineno} imports inside a function")


# The budget of the developers' guide: nlviz <= 4,000 lines, modules <= 400, functions < 60.
TOTAL_LINES = 4000


def test_size_budget():
    lengths = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert sum(lengths.values()) <= TOTAL_LINES, lengths
    assert max(lengths.values()) <= 400, lengths
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                assert node.end_lineno - node.lineno < 60, f"{path.name}:{node.lineno} {node.name}"
