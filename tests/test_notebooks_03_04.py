"""Notebooks 03 and 04, checked without running them (the rules of every notebook are in
test_notebook_rules.py): every exercise check against its solution and plausible wrong answers.

- each ``check_exercise_<n>`` accepts the notebook's solution, rejects the usual mistakes, and
  turns the unanswered stub's NotImplementedError into an AssertionError caused by it (the
  notebook's "not attempted yet" cell relies on that);
- every count that notebook 04's prose used to state by hand is now printed by a cell, and the
  sentences without a cell behind them are gone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_notebook_rules import _cells, _source

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NB03 = NOTEBOOKS / "03_nonlocal_block.ipynb"
NB04 = NOTEBOOKS / "04_video_training.ipynb"
PATHS = [NB03, NB04]
FENCE = re.compile(r"```python\n(.*?)```", re.S)


def _all_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


# ---- the exercise checks ---------------------------------------------------------------------


def _exercise(path: Path, n: int):
    """(check function, solution function, stub function) of exercise ``n`` of a notebook."""
    cells = _all_cells(path)
    name = f"check_exercise_{n}"
    (k,) = [i for i, c in enumerate(cells) if f"def {name}(" in _source(c)]
    assert "exercise-check" in cells[k]["metadata"].get("tags", []), f"{name} is not tagged"
    namespace: dict = {}
    exec(_source(cells[k]), namespace)  # noqa: S102 - the notebook's own check
    stub_cell = cells[k - 1]
    assert "NotImplementedError" in _source(stub_cell), "the cell before a check is the stub"
    details = next(_source(c) for c in cells[k + 1 :] if "<details>" in _source(c))
    solution = _defined(FENCE.search(details).group(1), namespace)
    stub = _defined(_source(stub_cell), namespace)
    return namespace[name], solution, stub


def _defined(code: str, namespace: dict):
    scope = dict(namespace)
    before = set(scope)
    exec(code, scope)  # noqa: S102 - the notebook's own code
    (fn,) = [v for k, v in scope.items() if k not in before and callable(v)]
    return fn


def _accepts_and_rejects(check, right, stub, wrongs):
    check(right)
    with pytest.raises(AssertionError) as caught:
        check(stub)
    assert isinstance(caught.value.__cause__, NotImplementedError)
    for wrong in wrongs:
        with pytest.raises(AssertionError):
            check(wrong)


def test_03_exercise_1_parameters():
    check, right, stub = _exercise(NB03, 1)

    def no_w_f(c, c_, pairwise):
        return right(c, c_, "dot_product" if pairwise == "concatenation" else pairwise)

    def theta_phi_always(c, c_, pairwise):
        return right(c, c_, "dot_product" if pairwise == "gaussian" else pairwise)

    def no_batchnorm(c, c_, pairwise):
        return right(c, c_, pairwise) - 2 * c

    _accepts_and_rejects(check, right, stub, [no_w_f, theta_phi_always, no_batchnorm])


def test_03_exercise_2_dot_product_row():
    check, right, stub = _exercise(NB03, 2)

    def over_n(block, x, query):  # C = N (all positions), not N' (the pooled ones)
        return right(block, x, query) / 4

    def softmax(block, x, query):  # the embedded Gaussian's normalisation
        row = right(block, x, query)
        return torch.softmax(row.flatten(1), dim=1).reshape(row.shape)

    def unpooled(block, x, query):  # phi before the pooling: the wrong grid
        t, yy, xx = query
        theta_i = block.theta(x)[:, :, t, yy, xx]
        phi = block.phi(x)
        return torch.einsum("bc,bcthw->bthw", theta_i, phi) / phi[0, 0].numel()

    def by_attention(block, x, query):  # not by hand: the check's probe refuses it
        return block.attention(x, query)

    _accepts_and_rejects(check, right, stub, [over_n, softmax, unpooled, by_attention])


def test_03_exercise_3_crossing():
    check, right, stub = _exercise(NB03, 3)

    def the_limit_itself(c, subsample):  # N = 8C is a tie, not past it
        return 8 * c if subsample else 2 * c

    def ignores_subsampling(c, subsample):
        return right(c, True)

    def one_too_far(c, subsample):
        return right(c, subsample) + 4

    _accepts_and_rejects(check, right, stub, [the_limit_itself, ignores_subsampling, one_too_far])


def test_04_exercise_1_swap_halves():
    check, right, stub = _exercise(NB04, 1)

    def halves_swapped(p, q):  # first half of q, second half of p
        return right(q, p)

    def as_float(p, q):
        return right(p, q).astype(np.float32)

    def off_by_one(p, q):
        half = len(p) // 2 + 1
        return np.concatenate([p[:half], q[half:]])

    _accepts_and_rejects(check, right, stub, [halves_swapped, as_float, off_by_one])


def test_04_exercise_2_reverse_frames():
    check, right, stub = _exercise(NB04, 2)

    def unchanged(video):
        return video.copy()

    def rows_reversed(video):
        return np.ascontiguousarray(video[:, ::-1])

    def rolled(video):  # a cyclic shift is not a reversal
        return np.roll(video, 1, axis=0)

    _accepts_and_rejects(check, right, stub, [unchanged, rows_reversed, rolled])


def test_04_exercise_3_block_parameters():
    check, right, stub = _exercise(NB04, 3)

    def no_batchnorm(c):
        return right(c) - 2 * c

    def no_biases(c):
        return right(c) - 3 * (c // 2) - c

    def full_width(c):  # no bottleneck: C' = C
        return 4 * c * c + 3 * c + 3 * c + 2 * c

    _accepts_and_rejects(check, right, stub, [no_batchnorm, no_biases, full_width])


# ---- notebook 04: counts come from cells -----------------------------------------------------


def test_04_states_no_count_without_a_cell():
    markdown = "\n".join(_source(c) for c in _cells(NB04, "markdown"))
    for stale in ("18 of the 20", "9 of 20", "all live or all dead together"):
        assert stale not in markdown, stale


def test_04_ablation_figure_shows_every_seed_and_chance():
    code = "\n".join(_source(c) for c in _cells(NB04, "code"))
    assert "errorbar" not in code, "per-seed points, not mean and std bars"
    assert "per_seed(" in code and "chance" in code
