"""Notebook rules, checked on every notebook without running it (issues 10 and 12).

- no assert depends on a timing (a laptop, a loaded CI machine or a GPU must not fail a cell);
- the setup cell picks the device with ``pick_device()`` and prints it under NBVAL_IGNORE_OUTPUT,
  and NBVAL_IGNORE_OUTPUT is always alone on the first line of its cell;
- committed executed, execution counts 1, 2, 3, ...;
- committed without an error output; an exercise's solution ends its own cell;
- notebook 01 names its own equations with words, so that they cannot be taken for the paper's
  Eq. 1-6, and the other notebooks number only the paper's;
- every figure is drawn for the course site's 688 px column (issue 23): shown there, an inch of
  it takes at least 90 px (10-pt text at 12 px or more), a width the output states (with its
  height) fits the column, and no PNG weighs over 400 KB.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import struct
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
TIMERS = {"perf_counter", "time", "monotonic", "process_time", "best_time", "best_ms"}
IGNORE = "# NBVAL_IGNORE_OUTPUT"
COLUMN = 688  # px: the site's text column at a 1280 px wide window


def _cells(path: Path, kind: str) -> list[dict]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [c for c in cells if c["cell_type"] == kind]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _python(cell: dict) -> ast.Module:
    lines = [ln for ln in _source(cell).splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _calls_a_timer(node: ast.AST) -> bool:
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            f = call.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in TIMERS:
                return True
    return False


def _free(node: ast.AST) -> set[str]:
    """Names an expression reads from outside (not those its comprehensions or lambdas bind)."""
    local = set()
    for n in ast.walk(node):
        if isinstance(n, ast.comprehension):
            local |= _names(n.target)
        elif isinstance(n, ast.Lambda):
            local |= {a.arg for a in n.args.args + n.args.kwonlyargs}
    return _names(node) - local


def _tainted(node: ast.AST | None, timed: set[str]) -> bool:
    return node is not None and (_calls_a_timer(node) or bool(_free(node) & timed))


def _bound(target: ast.AST) -> tuple[set[str], bool]:
    """(names a target binds, whether it replaces them): ``x`` and ``x, y`` do, ``x[k]`` not."""
    if isinstance(target, ast.Subscript | ast.Attribute):
        while isinstance(target, ast.Subscript | ast.Attribute):
            target = target.value
        return _names(target), False
    return _names(target), True


FILL = {"append", "extend", "insert", "update", "setdefault"}


def _follow(statements, timed: set[str], bad: list[str]) -> None:
    """Walk statements in order: names computed from a timer (or from such names) are timed;
    rebinding a name to something else clears it; an assert must use no timed name."""
    for s in statements:
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue  # a definition runs nothing here; its calls are followed where they are
        if isinstance(s, ast.Assert):
            bad += sorted(_free(s.test) & timed)
        elif isinstance(s, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.For):
            targets = s.targets if isinstance(s, ast.Assign) else [s.target]
            rhs = s.iter if isinstance(s, ast.For) else s.value
            for t in targets:
                names, replaces = _bound(t)
                if _tainted(rhs, timed) or (isinstance(s, ast.AugAssign) and names & timed):
                    timed |= names
                elif replaces:
                    timed -= names
        elif isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
            func = s.value.func
            if isinstance(func, ast.Attribute) and func.attr in FILL:
                if any(_tainted(a, timed) for a in s.value.args):
                    timed |= _bound(func.value)[0]
        for field in ("body", "orelse", "finalbody", "handlers"):
            _follow(getattr(s, field, []), timed, bad)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem[:2])
def test_no_assert_depends_on_a_timing(path):
    timed: set[str] = set()
    bad: list[str] = []
    for cell in _cells(path, "code"):
        _follow(_python(cell).body, timed, bad)
    assert not bad, f"{path.name}: asserts use timings {sorted(set(bad))}"


def test_the_timing_rule_catches_a_timing_assert():
    cells = [
        "t0 = time.perf_counter()\nrun()\nseconds = {}\nseconds['a'] = time.perf_counter() - t0",
        "for name in ('a',):\n    assert name\nratio = seconds['a'] / 2\nassert ratio < 1",
    ]
    timed: set[str] = set()
    bad: list[str] = []
    for code in cells:
        _follow(ast.parse(code).body, timed, bad)
    assert bad == ["ratio"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem[:2])
def test_setup_cell_picks_the_device_and_prints_it_once(path):
    code = _cells(path, "code")
    setup = _source(code[0])
    assert setup.splitlines()[0] == IGNORE
    assert "pick_device()" in setup and re.search(r"print\(.*device", setup)
    later = [c for c in code[1:] if "pick_device(" in _source(c)]
    assert not later, f"{path.name}: the device is picked again after the setup cell"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem[:2])
def test_nbval_ignore_output_is_alone_on_the_first_line(path):
    for cell in _cells(path, "code"):
        text = _source(cell)
        if "NBVAL_IGNORE_OUTPUT" in text:
            assert text.splitlines()[0] == IGNORE, text.splitlines()[0]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem[:2])
def test_committed_executed_in_order(path):
    counts = [c["execution_count"] for c in _cells(path, "code")]
    assert counts == list(range(1, len(counts) + 1))
    errors = [o for c in _cells(path, "code") for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{path.name}: committed with an error"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem[:2])
def test_solutions_end_their_own_cell(path):
    for cell in _cells(path, "markdown"):
        text = _source(cell)
        if "<details>" in text:
            assert text.rstrip().endswith("</details>"), text[:80]
            assert "### Exercise" not in text and "## Summary" not in text, text[:80]


def test_notebook_01_names_its_own_equations():
    markdown = "\n".join(_source(c) for c in _cells(PATHS[0], "markdown"))
    assert PATHS[0].name.startswith("01_")
    tags = re.findall(r"\\tag\{([^}]*)\}", markdown)
    assert tags, "notebook 01 names its equations with \\tag{...}"
    assert not [t for t in tags if re.fullmatch(r"[\d\s.]+", t)], tags
    assert not re.search(r"Eq\. \(\d", markdown), "numbered references are the paper's"


@pytest.mark.parametrize("path", PATHS[1:], ids=lambda p: p.stem[:2])
def test_the_paper_equations_keep_their_numbers(path):
    markdown = "\n".join(_source(c) for c in _cells(path, "markdown"))
    tags = re.findall(r"\\tag\{([^}]*)\}", markdown)
    assert all(t in {"1", "2", "3", "4", "5", "6"} for t in tags), tags


def _png_dpi_and_width(data: bytes) -> tuple[float, int]:
    """(dots per inch from the pHYs chunk, 100 without one; pixel width) of a PNG."""
    width = struct.unpack(">I", data[16:20])[0]
    at = data.find(b"pHYs")
    return (struct.unpack(">I", data[at + 4 : at + 8])[0] * 0.0254 if at > 0 else 100.0), width


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem[:2])
def test_figures_are_drawn_for_the_site_column(path):
    # shown width (the PNG's own, or its metadata's, at most the column) x dpi / pixel width:
    # the CSS px an inch of the figure takes on the page
    for cell in _cells(path, "code"):
        for out in cell["outputs"]:
            png = out.get("data", {}).get("image/png")
            if png is None:
                continue
            data = base64.b64decode("".join(png))
            dpi, width = _png_dpi_and_width(data)
            given = out.get("metadata", {}).get("image/png", {}).get("width")
            shown = min(given or width, COLUMN)
            where = f"{path.name}, cell {cell['execution_count']}"
            assert shown * dpi / width >= 90, f"{where}: {width} px at {dpi:.0f} dpi, too wide"
            # a width given in the metadata comes with a fixed height: the site must not
            # narrow it (its output images have 8 px of padding on each side)
            assert (given or 0) <= COLUMN - 16, f"{where}: {given} px wide, squeezed on the site"
            assert len(data) <= 400_000, f"{where}: a PNG of {len(data):,} bytes"
