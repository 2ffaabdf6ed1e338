"""Notebook 05 without running it: its exercise checks accept the solutions and reject wrong
answers (specific mistakes, beyond the generic ones of test_exercises.py), and the notebook
rules hold: setup cell, NBVAL markers, committed executed in order, no timing in asserts, a
committed picture beside every live widget, and the contract of the browser test.
"""

from __future__ import annotations

import ast
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

NOTEBOOK = (
    Path(__file__).resolve().parents[1] / "notebooks" / "05_attention_across_space_and_time.ipynb"
)
IGNORE = "# NBVAL_IGNORE_OUTPUT"
FENCE = re.compile(r"```python\n(.*?)```", re.S)
TIMERS = {"perf_counter", "time", "monotonic", "process_time"}
# the regex of tests/test_browser.py: where to click, and the query it gives
CLICK_TEXT = re.compile(
    r"click the canvas at \((?P<fx>[0-9.]+), (?P<fy>[0-9.]+)\).*to query \((?P<q>[0-9, ]+)\)"
)


def _cells(kind: str | None = None) -> list[dict]:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return [c for c in cells if kind is None or c["cell_type"] == kind]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _text(cell: dict) -> str:
    """The committed text outputs of a code cell."""
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            out.append("".join(o["text"]))
        elif "data" in o:
            out.append("".join(o["data"].get("text/plain", "")))
    return "\n".join(out)


# --------------------------------------------------------------------------- exercises


def _exercise(n: int) -> tuple[dict, callable]:
    """(the check cell's namespace, the solution's function) of exercise n."""
    cells = _cells()
    i = next(
        i
        for i, c in enumerate(cells)
        if "exercise-check" in c.get("metadata", {}).get("tags", [])
        and f"def check_exercise_{n}(" in _source(c)
    )
    namespace: dict = {}
    exec(_source(cells[i]), namespace)  # noqa: S102 - the notebook's own check
    details = next(
        _source(c)
        for c in cells[i + 1 :]
        if c["cell_type"] == "markdown" and "<details>" in _source(c)
    )
    solution: dict = {"np": np}
    exec(FENCE.search(details).group(1), solution)  # noqa: S102 - the notebook's own solution
    name = {1: "density_ratio", 2: "misses", 3: "disparity_map"}[n]
    return namespace, solution[name]


def test_exercise_1_accepts_the_density_ratio_and_rejects_mistakes():
    check, right = _exercise(1)
    check["check_exercise_1"](right)

    def signed(weights, cover_j, own):  # forgets that dot-product weights can be negative
        share = weights @ cover_j / weights.sum()
        others = np.arange(cover_j.shape[1]) != own
        area = cover_j.sum(0)
        return (share[own] / area[own]) / (share[others].sum() / area[others].sum())

    def no_area(weights, cover_j, own):  # a ratio of shares, not of densities
        p = np.clip(weights, 0, None)
        share = p @ cover_j / p.sum()
        return share[own] / (1 - share[own])

    for wrong in (signed, no_area, lambda *a: None):
        with pytest.raises(AssertionError):
            check["check_exercise_1"](wrong)


def test_exercise_2_accepts_the_misses_and_rejects_mistakes():
    check, right = _exercise(2)
    check["check_exercise_2"](right)

    def hits(weights, query_owner, key_owner):  # the complement
        return np.flatnonzero(key_owner[weights.argmax(1)] == query_owner)

    def smallest(weights, query_owner, key_owner):  # the top-1 is the largest weight
        return np.flatnonzero(key_owner[weights.argmin(1)] != query_owner)

    for wrong in (hits, smallest, lambda *a: None):
        with pytest.raises(AssertionError):
            check["check_exercise_2"](wrong)


def test_exercise_3_accepts_the_disparity_map_and_rejects_mistakes():
    check, right = _exercise(3)
    check["check_exercise_3"](right)

    def swapped(left, right_image, d_max, patch):  # matches x + delta instead of x - delta
        return right(right_image, left, d_max, patch)

    def largest(left, right_image, d_max, patch):  # the largest distance, not the smallest
        return np.full(left.shape, d_max)

    for wrong in (swapped, largest, lambda *a: None):
        with pytest.raises(AssertionError):
            check["check_exercise_3"](wrong)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_the_unanswered_stub_reads_as_not_attempted(n):
    """The stub raises NotImplementedError; the check turns it into an AssertionError caused
    by it, which the notebook's cell after the check prints as "not attempted yet"."""
    check, _ = _exercise(n)
    stub = next(
        _source(c)
        for c in _cells("code")
        if "NotImplementedError" in _source(c)
        and "check_exercise" not in _source(c)
        and _source(c).startswith(f"def {['density_ratio', 'misses', 'disparity_map'][n - 1]}(")
    )
    namespace: dict = {}
    exec(stub, namespace)  # noqa: S102 - the notebook's own stub
    fn = next(v for k, v in namespace.items() if callable(v) and not k.startswith("_"))
    with pytest.raises(AssertionError) as info:
        check[f"check_exercise_{n}"](fn)
    assert isinstance(info.value.__cause__, NotImplementedError)


# --------------------------------------------------------------------------- notebook rules


# (the rules of every notebook, device, NBVAL markers, order, errors: test_notebook_rules.py)


def test_no_timer_at_all():
    """Nothing here is timed, so no assert can depend on a timing."""
    for cell in _cells("code"):
        lines = [ln for ln in _source(cell).splitlines() if not ln.lstrip().startswith("%")]
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                assert name not in TIMERS, _source(cell)[:80]


def test_every_live_widget_has_a_committed_picture_of_its_state():
    """A displayed explorer stores a PNG of its state in its own output (a static page shows it
    in the widget's place), so no cell repeats it: a picture of an explorer after its display
    shows a state that code changed since, and no picture is committed twice."""
    code = _cells("code")
    shown = 0
    for cell in code:
        match = re.fullmatch(rf"{IGNORE}\n#[^\n]*\ndisplay\((\w+)\)", _source(cell).strip())
        if not match:
            continue
        shown += 1
        pictures = [o for o in cell["outputs"] if "image/png" in o.get("data", {})]
        assert len(pictures) == 1, f"display({match[1]}): expected its own picture"
    assert shown >= 2  # the tracking explorer, NLM beside it, the classification blocks
    pngs = [
        "".join(o["data"]["image/png"])
        for c in code
        for o in c["outputs"]
        if "image/png" in o.get("data", {})
    ]
    assert len(pngs) == len(set(pngs)), "a picture is committed twice (a static page shows both)"


def test_the_browser_test_finds_its_instructions():
    code = _cells("code")
    printed = [m for c in code if (m := CLICK_TEXT.search(_text(c)))]
    assert len(printed) == 1
    fx, fy = float(printed[0]["fx"]), float(printed[0]["fy"])
    assert 0 < fx < 1 and 0 < fy < 1
    assert "Exercise 3 not attempted" in _text(code[-1])
    # the notebook's own click leaves another query drawn: the browser's click must change it
    (clicked,) = [c for c in code if "the click selected" in _text(c)]
    selected = re.search(r"the click selected (\([0-9, ]+\))", _text(clicked))[1]
    assert selected != f"({printed[0]['q']})"


def test_solutions_end_their_own_cell_and_no_machine_path():
    for cell in _cells("markdown"):
        text = _source(cell)
        if "<details>" in text:
            assert text.rstrip().endswith("</details>"), text[:80]
            assert "### Exercise" not in text and "## Summary" not in text, text[:80]
    text = NOTEBOOK.read_text(encoding="utf-8")
    for local in {
        str(Path(__file__).resolve().parents[1]),
        str(Path.home()),
        tempfile.gettempdir(),
    }:
        assert local + "/" not in text, f"the notebook names a path of this machine: {local}"
