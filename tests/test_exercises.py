"""Every exercise's check accepts the correct answer and rejects wrong ones.

The convention, in every notebook: an exercise asks for a function; a code cell tagged
``exercise-check`` defines ``check_exercise_<n>(fn)``, self-contained (its own imports, its own
test data), which raises AssertionError for a wrong ``fn``; the solution is the first
```` ```python ```` block of the next markdown cell holding ``<details>``, which defines the
function. Here each check runs on the solution (it must pass) and on wrong answers: a function
that returns None, and one whose results are all a little off (both must fail).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))
FENCE = re.compile(r"```python\n(.*?)```", re.S)


def _exercises():
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        for i, cell in enumerate(cells):
            if "exercise-check" not in cell.get("metadata", {}).get("tags", []):
                continue
            check = "".join(cell["source"])
            name = re.search(r"def (check_exercise_\w+)\(", check).group(1)
            later = [c for c in cells[i + 1 :] if c["cell_type"] == "markdown"]
            details = next(
                "".join(c["source"]) for c in later if "<details>" in "".join(c["source"])
            )
            yield pytest.param(
                check, name, FENCE.search(details).group(1), id=f"{path.stem[:2]}-{name}"
            )


def _off(value):
    """``value`` a little off: numbers scaled and shifted, containers element by element."""
    if (
        isinstance(value, torch.Tensor | np.ndarray)
        or isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return value * 1.1 + 0.1
    if isinstance(value, tuple | list):
        return type(value)(_off(v) for v in value)
    if isinstance(value, dict):
        return {k: _off(v) for k, v in value.items()}
    return None if value is not None else 0


def _solution(code: str, namespace: dict):
    before = set(namespace)
    exec(code, namespace)  # noqa: S102 - the notebook's own solution
    (fn,) = [
        v for k, v in namespace.items() if k not in before and callable(v) and not k.startswith("_")
    ]
    return fn


EXERCISES = list(_exercises())


@pytest.mark.skipif(not EXERCISES, reason="no tagged exercise checks")
@pytest.mark.parametrize(("check", "name", "solution"), EXERCISES)
def test_check_accepts_the_solution_and_rejects_wrong_answers(check, name, solution):
    namespace: dict = {}
    exec(check, namespace)  # noqa: S102 - the notebook's own check
    checker = namespace[name]
    right = _solution(solution, dict(namespace))
    checker(right)  # the solution passes
    for wrong in (
        lambda *args, **kwargs: None,
        lambda *args, **kwargs: _off(right(*args, **kwargs)),
    ):
        with pytest.raises(AssertionError):
            checker(wrong)


def test_every_notebook_with_exercises_tags_its_checks():
    for path in NOTEBOOKS:
        text = path.read_text()
        if "### Exercise" in text:
            assert "exercise-check" in text, f"{path.name}: exercises without tagged checks"
