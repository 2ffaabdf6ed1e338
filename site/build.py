"""Build the course's website from the committed notebooks, without running them.

    python site/build.py [--out DIR]    (default: site/_build; `make site` runs this)

Writes DIR/src (what Sphinx reads: the landing page made from README.md and a copy of every
notebooks/[0-9]*.ipynb, in order), DIR/html (the static site) and DIR/doctrees. Sphinx with
myst-nb renders the stored outputs; nothing is executed and nothing is fetched: MathJax is
served from site/node_modules (npm), the theme's files come with its Python package.

Live widgets (ipywidgets) need a kernel, so the copies trade each widget output for a short
note that says how to run it (`make lab`), and keep the static images the notebook shows
beside it; they also drop nbval's `# NBVAL_...` marker lines from the code. A source file is
rewritten only when its content changes, so a second build re-reads nothing that did not change.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import sys
from pathlib import Path

import mathcheck  # site/mathcheck.py: how the notebooks' markdown holds its math

SITE = Path(__file__).resolve().parent
ROOT = SITE.parent
MATHJAX = SITE / "node_modules" / "mathjax"
WIDGET = "application/vnd.jupyter.widget-view+json"
# relative link targets in README.md: [text](target) and <img src="target">
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?:#[^)\s]*)?\)")
# nbval's markers (``# NBVAL_IGNORE_OUTPUT``): for the test suite, not for a reader
NBVAL_MARKER = re.compile(r"^# NBVAL_[A-Z_]+[ \t]*\n?", re.M)


def notebooks(root: Path = ROOT) -> list[Path]:
    """The course's notebooks in order (the template is not one of them)."""
    return sorted((root / "notebooks").glob("[0-9]*.ipynb"))


def _write(path: Path, text: str) -> None:
    """Write text unless the file already holds it (keeps mtimes for incremental builds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)


def _widget_models(model_id: str, state: dict) -> set[str]:
    """Model names of a widget and of every widget it contains (from the saved state)."""
    names, todo, seen = set(), [model_id], set()
    while todo:
        mid = todo.pop()
        if mid in seen or mid not in state:
            continue
        seen.add(mid)
        model = state[mid]
        names.add(model.get("model_name", ""))
        for value in model.get("state", {}).values():
            refs = value if isinstance(value, list) else [value]
            todo += [r[len("IPY_MODEL_") :] for r in refs if str(r).startswith("IPY_MODEL_")]
    return names


def widget_note(kind: str, name: str, has_image: bool) -> str:
    """The HTML that stands for a live widget on the static page."""
    shown = (
        " The image in this cell shows it as the notebook was committed."
        if has_image
        else " The static figures of this notebook show what it draws."
    )
    return (
        '<div class="nlviz-widget-note" role="note"><p><strong>Live widget</strong> '
        f"({html.escape(kind)}): it needs a running kernel, so this static page cannot show "
        f"it.{shown} To use it, run the notebook on your machine: <code>make lab</code> in "
        f"the repository, then open <code>notebooks/{html.escape(name)}</code>.</p></div>"
    )


def _kind(models: set[str]) -> str:
    if "MPLCanvasModel" in models:
        return "an interactive figure with its controls"
    if models & {"FloatProgressModel", "IntProgressModel"}:
        return "a progress bar"
    return "an interactive control"


def dollar_math(markdown: str) -> str:
    """markdown with \\(...\\) and \\[...\\] written as $...$ and $$...$$.

    JupyterLab renders all four; myst's dollarmath parses only the dollars (to CommonMark,
    a backslash before a parenthesis or a bracket only escapes it)."""
    found, _ = mathcheck.scan(markdown)
    for math in reversed(found):
        if math.delim in ("\\(", "\\["):
            dollars = "$" if math.delim == "\\(" else "$$"
            end = math.start + 2 + len(math.tex) + 2
            tex = markdown[math.start + 2 : end - 2]
            markdown = f"{markdown[: math.start]}{dollars}{tex}{dollars}{markdown[end:]}"
    return markdown


def static_picture(data: dict) -> dict:
    """The static picture in an output bundle: its PNG, or HTML that holds an <img>."""
    if "image/png" in data:
        return {"image/png": data["image/png"]}
    html_text = "".join(data.get("text/html", ""))
    return {"text/html": data["text/html"]} if "<img" in html_text else {}


def static_notebook(nb: dict, name: str) -> tuple[dict, int]:
    """A copy of notebook nb whose widget outputs are notes; returns it and how many."""
    nb = json.loads(json.dumps(nb))  # deep copy
    widgets = nb.get("metadata", {}).pop("widgets", {})
    state = widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    count = 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = dollar_math("".join(cell["source"]))
        if cell["cell_type"] != "code":
            continue
        cell["source"] = NBVAL_MARKER.sub("", "".join(cell["source"]))
        pictures = [static_picture(out.get("data", {})) for out in cell.get("outputs", [])]
        has_image = any(pictures)
        outputs = []
        for out, picture in zip(cell.get("outputs", []), pictures, strict=True):
            data = out.get("data", {})
            if WIDGET in data:
                count += 1
                models = _widget_models(data[WIDGET].get("model_id", ""), state)
                note = widget_note(_kind(models), name, has_image)
                outputs.append(
                    {"output_type": "display_data", "metadata": {}, "data": {"text/html": note}}
                )
                if picture:  # the picture the widget stored beside itself (ipympl does)
                    meta = out.get("metadata", {})
                    outputs.append(
                        {"output_type": "display_data", "metadata": meta, "data": picture}
                    )
                continue
            outputs.append(out)
        cell["outputs"] = outputs
    return nb, count


def run_note(name: str) -> dict:
    """A markdown cell for the top of each notebook page: how to run it."""
    text = (
        "```{admonition} Run this notebook\n"
        ":class: tip\n"
        "This page shows the notebook as committed, with its outputs; nothing runs here. To run "
        "it, do the exercises and use its interactive figures: in a copy of the repository, "
        f"`make lab` sets up everything and opens JupyterLab; then open `notebooks/{name}`. "
        f"{{download}}`Download this notebook </_orig/{name}>`.\n"
        "```\n"
    )
    return {"cell_type": "markdown", "id": "nlviz-site-run", "metadata": {}, "source": text}


def landing_page(src: Path, root: Path = ROOT) -> str:
    """README.md with the notebooks as the site's table of contents."""
    readme = (root / "README.md").read_text(encoding="utf-8")
    for match in LINK.finditer(readme):  # README's own links to repository files
        target = match["target"]
        if "://" in target or target.startswith("mailto:") or target.endswith(".ipynb"):
            continue
        path = (root / target).resolve()
        if path.is_file() and root in path.parents:
            _copy(path, src / path.relative_to(root))  # myst links to it as a download
    docs = "\n".join(f"notebooks/{nb.stem}" for nb in notebooks(root))
    return f"{readme.rstrip()}\n\n```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{docs}\n```\n"


def prepare(src: Path, root: Path = ROOT) -> dict[str, int]:
    """Write the Sphinx sources into src; returns the widget outputs replaced per notebook."""
    replaced, wanted = {}, {src / "index.md"}
    for path in notebooks(root):
        nb = json.loads(path.read_text(encoding="utf-8"))
        static, replaced[path.name] = static_notebook(nb, path.name)
        static["cells"].insert(1, run_note(path.name))
        page = src / "notebooks" / path.name
        _write(page, json.dumps(static, indent=1, ensure_ascii=False) + "\n")
        _copy(path, src / "_orig" / path.name)  # the download: the committed file as it is
        wanted.add(page)
    _write(src / "index.md", landing_page(src, root))
    for old in (src / "notebooks").glob("*.ipynb"):  # a notebook renamed or removed
        if old not in wanted:
            old.unlink()
    return replaced


def copy_mathjax(static: Path) -> None:
    """MathJax 3 from npm into the site: the TeX-to-HTML bundle and what it loads lazily."""
    es5 = MATHJAX / "es5"
    if not (es5 / "tex-chtml.js").is_file():
        sys.exit("MathJax is missing: run `make site` (it runs npm ci in site/)")
    target = static / "mathjax"
    for part in ["input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y", "sre"]:
        shutil.copytree(es5 / part, target / part, dirs_exist_ok=True)
    _copy(es5 / "tex-chtml.js", target / "tex-chtml.js")
    _copy(MATHJAX / "LICENSE", target / "LICENSE")


def build(out: Path) -> int:
    from sphinx.cmd.build import build_main

    src = out / "src"
    replaced = prepare(src)
    print(f"{len(replaced)} notebooks, widget outputs replaced by notes: {replaced}")
    args = ["-b", "html", "-c", str(SITE), "-d", str(out / "doctrees"), "-q"]
    rc = build_main([*args, str(src), str(out / "html")])
    if rc == 0:
        copy_mathjax(out / "html" / "_static")
        print(f"site: {out / 'html' / 'index.html'}")
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SITE / "_build", help="build folder")
    return build(parser.parse_args(argv).out.resolve())


if __name__ == "__main__":
    sys.exit(main())
