"""Malformed math in the notebooks' markdown: unbalanced or empty delimiters, dollars that pair
up wrongly, and TeX that MathJax rejects (the MathJax 3 of the website, run with node).

The checker is site/mathcheck.py (``python site/mathcheck.py`` prints what it finds); MathJax
comes from site/node_modules, which `make unit` and `make site` install with npm. Skips only
where node is missing.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# site/ is no package (and `site` is a module of Python's own): load the file by its path
_spec = importlib.util.spec_from_file_location("site_mathcheck", ROOT / "site" / "mathcheck.py")
mathcheck = sys.modules.setdefault("site_mathcheck", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(mathcheck)

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

# A paragraph whose dollars lost their variables: it reads as prose in math and TeX outside it.
BROKEN = (
    r"a ReLU of a *sum* \theta^\top \theta_i + w_\phi^\top \phi_j$, cannot be large exactly "
    "when the colours of $ and $ match"
)
GOOD = [
    "plain prose, no math",
    r"$x$ and $y$",
    r"a ReLU of a *sum* $w_\theta^\top \theta_i + w_\phi^\top \phi_j$, cannot be large exactly "
    "when the colours of $i$ and $j$ match",
    r"$$\sum_{\forall j} f(x_i, x_j)\, g(x_j)$$",
    "$$\ny_i = \\frac{1}{\\mathcal{C}(x)} \\sum_j f(x_i, x_j) g(x_j)\n$$",
    r"inline \(a + b\) and display \[a^2\]",
    "\\begin{align}\na &= b \\\\\nc &= d\n\\end{align}",
    r"$\text{softmax over all keys}(x)$ and $\lVert v(N_i) - v(N_j) \rVert^2 / h^2$",
    r"a price of \$5, escaped, and $\{x\}$",
    "code is no math: `$HOME` and `a $ b`, ``a `$` b``",
    "```python\nprint('$ not math', r'\\theta')\n```\nthen $x$",
    "<pre>$ not $ math</pre> <code>\\theta</code>",
    "two paragraphs,\n\n$x$ each $y$",
    r"$\boldsymbol{x}$, $\color{red}{x}$ (extensions MathJax loads itself)",
]
BAD = {
    "tex outside math": [BROKEN, r"weights \theta and \phi"],
    "prose in math": [BROKEN, "we take $x and then the y$ here"],
    "space at edge": [BROKEN, "from $ x$ to $y $"],
    "unbalanced": [
        "one $x dollar",
        "a $$display that never ends",
        r"\(a + b",
        r"a \) alone",
        "\\begin{align}a &= b",
        "math stops at a blank line $a +\n\nb$",
        r"$\frac{a}{b$ (inside braces a dollar does not close, as in JupyterLab)",
    ],
    "dollar in braces": [r"$\text{a $b$ c}$"],
    "empty": ["$$$$", "nothing in $ $ here", r"\(\)"],
    "tex error": [
        r"$\frac{a}$",
        r"$\thetaa$",
        r"$x_1_2$",
        r"$$\begin{matrix} a \end{pmatrix}$$",
        r"$a }$",
    ],
}


def test_scan_finds_each_kind_of_math():
    found, problems = mathcheck.scan(
        "$a$, $$b$$, \\(c\\), \\[d\\], \\begin{align}e\\end{align} and `$f$`"
    )
    assert problems == []
    assert [(m.tex, m.display) for m in found] == [
        ("a", False),
        ("b", True),
        ("c", False),
        ("d", True),
        ("\\begin{align}e\\end{align}", True),
    ]


@pytest.mark.parametrize("text", GOOD)
def test_scan_accepts_good_math(text):
    found, problems = mathcheck.scan(text)
    assert problems == [], [str(p) for p in problems]


SCANNED_BAD = [(kind, text) for kind, texts in BAD.items() if kind != "tex error" for text in texts]


@pytest.mark.parametrize("kind, text", SCANNED_BAD)
def test_scan_reports_bad_math(kind, text):
    _, problems = mathcheck.scan(text)
    assert kind in {p.kind for p in problems}, [str(p) for p in problems]


def test_the_broken_example_is_reported_where_it_breaks():
    _, problems = mathcheck.scan(BROKEN)
    outside = [p for p in problems if p.kind == "tex outside math"]
    assert len(outside) == 1 and "`\\theta`, `\\top`, `\\phi`" in outside[0].message
    assert "\\theta^\\top" in outside[0].snippet
    edges = [p.snippet for p in problems if p.kind == "space at edge"]
    assert any("colours of $ and $ match" in snippet for snippet in edges)


@needs_node
def test_mathjax_accepts_good_tex_and_rejects_bad_tex():
    good = [m for text in GOOD for m in mathcheck.scan(text)[0]]
    bad = [m for text in BAD["tex error"] for m in mathcheck.scan(text)[0]]
    assert len(bad) == len(BAD["tex error"])
    errors = mathcheck.tex_errors(good + bad)
    assert errors[: len(good)] == [None] * len(good)
    assert all(errors[len(good) :]), errors[len(good) :]
    assert "Undefined control sequence" in errors[len(good) + 1]  # \thetaa: no red text


@needs_node
def test_check_texts_reports_tex_errors_with_the_text_around_them():
    (problems,) = mathcheck.check_texts([r"fine $x$, broken $\sqrt{a}^2^3$ here"])
    assert [p.kind for p in problems] == ["tex error"]
    assert "Double exponent" in problems[0].message
    assert r"\sqrt{a}^2^3" in problems[0].snippet


def test_notebooks_are_found():
    assert len([nb for nb in NOTEBOOKS if nb.name[0].isdigit()]) >= 5


@needs_node
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_math_is_well_formed(notebook):
    problems = mathcheck.check_notebooks([notebook])[notebook.name]
    assert not problems, f"{len(problems)} math problem(s), cells counted from 0:\n" + "\n".join(
        map(str, problems)
    )


def test_the_site_typesets_with_the_tex_input_checked_here():
    """The website loads MathJax's parts itself (site/courseinfo.py, not the tex-chtml bundle):
    its TeX input must be the component that site/mathcheck.js checks with, set up alike."""
    info = (ROOT / "site" / "courseinfo.py").read_text(encoding="utf-8")
    conf = (ROOT / "site" / "conf.py").read_text(encoding="utf-8")
    check = (ROOT / "site" / "mathcheck.js").read_text(encoding="utf-8")
    found = re.search(r"^MATHJAX_COMPONENTS = (\[.*\])$", info, re.M)
    assert found, "site/courseinfo.py names the MathJax components in MATHJAX_COMPONENTS"
    components = json.loads(found[1])
    assert "input/tex" in components and 'load: ["input/tex"]' in check
    assert "mathjax-tex.json" in conf and "mathjax-tex.json" in check
    es5 = ROOT / "site" / "node_modules" / "mathjax" / "es5"
    if es5.is_dir():  # each one a file that site/build.py can copy
        missing = [c for c in components if not (es5 / f"{c}.js").is_file()]
        assert not missing, missing
