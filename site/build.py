"""Build the course's website from the committed notebooks, without running them.

    python site/build.py [--out DIR]    (default: site/_build; `make site` runs this)

Writes DIR/src (what Sphinx reads: three pages made from README.md, and a copy of every
notebooks/[0-9]*.ipynb, in order), DIR/html (the static site) and DIR/doctrees. Sphinx with
myst-nb renders the stored outputs; nothing is executed and nothing is fetched: MathJax is
served from site/node_modules (npm), the theme's files come with its Python package.

README.md is split by its "## " sections: the landing page is the student half (what the
course is, for whom, how to run it, the notebook map as cards with a picture each: the first
figure of the notebook's outputs, or the output of a code cell tagged ``site-card``); the
sections in SETUP make the page "Setup and troubleshooting"; "Developing the course" and what
follows it make a page of their own.

Figures: the copies carry each PNG re-encoded without loss (an alpha channel that is opaque
everywhere dropped, a palette where a figure has at most 256 colours, zlib at its best); a
figure still over FIGURE_LIMIT bytes is quantised to 256 colours. Pixel sizes and the pHYs dpi
stay as they were; the notebooks themselves are never modified.

Live widgets (ipywidgets) need a kernel, so the copies trade each widget output for a short
note that says how to run it (`make lab`), and keep the static images the notebook shows
beside it; they also drop nbval's `# NBVAL_...` marker lines from the code. A source file is
rewritten only when its content changes, so a second build re-reads nothing that did not change.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import io
import json
import re
import shutil
import sys
from pathlib import Path

import courseinfo  # site/courseinfo.py: the repository's URL, from pyproject.toml
import mathcheck  # site/mathcheck.py: how the notebooks' markdown holds its math
import numpy as np
from PIL import Image

SITE = Path(__file__).resolve().parent
ROOT = SITE.parent
MATHJAX = SITE / "node_modules" / "mathjax"
WIDGET = "application/vnd.jupyter.widget-view+json"
# relative link targets in README.md: [text](target) and <img src="target">
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?:#[^)\s]*)?\)")
# nbval's markers (``# NBVAL_IGNORE_OUTPUT``): for the test suite, not for a reader
NBVAL_MARKER = re.compile(r"^# NBVAL_[A-Z_]+[ \t]*\n?", re.M)
DATA_PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=\s]+)")
FIGURE_LIMIT = 400_000  # bytes: a figure larger than this after lossless re-encoding is quantised
CARD_WIDTH = 560  # px: the landing page's pictures
CARD_TAG = "site-card"  # a code cell with this tag gives its notebook's card picture
SETUP = ("The conda route", "GPU notes", "Troubleshooting")  # README sections: the setup page
DEVELOPING = "Developing the course"  # this README section and all after it: their own page
# a row of README's notebook map: | 01 | [title](notebooks/01_....ipynb) | what | time |
MAP_ROW = re.compile(
    r"^\|\s*(?P<num>\d+)\s*\|\s*\[(?P<title>[^\]]+)\]\((?P<path>notebooks/[^)]+\.ipynb)\)\s*\|"
    r"(?P<what>[^|]*)\|(?P<time>[^|]*)\|\s*$",
    re.M,
)


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


def _png_bytes(image: Image.Image, dpi) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=True, **({"dpi": dpi} if dpi else {}))
    return buf.getvalue()


def _compact(data: bytes) -> bytes:
    """data, a PNG, as small as it goes without loss; quantised only above FIGURE_LIMIT."""
    image = Image.open(io.BytesIO(data))
    image.load()
    dpi = image.info.get("dpi")
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")  # matplotlib writes RGBA; its figures are opaque
    if image.mode == "RGB":
        pixels = np.asarray(image).reshape(-1, 3)
        codes = (pixels[:, 0].astype(np.uint32) << 16) | (pixels[:, 1].astype(np.uint32) << 8)
        colours, index = np.unique(codes | pixels[:, 2], return_inverse=True)
        if len(colours) <= 256:  # a palette holds every colour exactly
            palette = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1)
            image = Image.fromarray(index.reshape(image.height, image.width).astype(np.uint8), "P")
            image.putpalette(palette.astype(np.uint8).ravel().tolist())
    best = min(data, _png_bytes(image, dpi), key=len)
    if len(best) > FIGURE_LIMIT and image.mode == "RGB":
        quantised = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        best = min(best, _png_bytes(quantised, dpi), key=len)
    return best


class Figures:
    """Re-encodes the notebooks' PNGs (base64, as notebooks hold them), cached by content."""

    def __init__(self, cache: Path):
        self.cache = cache
        self.before = self.after = 0

    def png(self, b64: str | list[str]) -> str:
        data = base64.b64decode("".join(b64) if isinstance(b64, list) else b64)
        path = self.cache / f"{hashlib.sha256(data).hexdigest()}.png"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_compact(data))
        small = path.read_bytes()
        self.before, self.after = self.before + len(data), self.after + len(small)
        return base64.b64encode(small).decode("ascii") + "\n"

    def html(self, text: str | list[str]) -> str:
        """HTML with every PNG data URI in it re-encoded (ipympl's static fallbacks)."""
        text = "".join(text) if isinstance(text, list) else text
        return DATA_PNG.sub(lambda m: f"data:image/png;base64,{self.png(m[1]).strip()}", text)

    def outputs(self, cell: dict) -> None:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                data["image/png"] = self.png(data["image/png"])
            if "text/html" in data and "data:image/png" in "".join(data["text/html"]):
                data["text/html"] = self.html(data["text/html"])


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
    shown = " The image in this cell shows it as the notebook was committed." if has_image else ""
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


def static_notebook(nb: dict, name: str, figures: Figures | None = None) -> tuple[dict, int]:
    """A copy of notebook nb whose widget outputs are notes; returns it and how many.

    With figures, its PNGs are re-encoded too (Figures)."""
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
        if figures is not None:
            figures.outputs(cell)
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


def _title(nb: dict, fallback: str) -> str:
    """The notebook's title: the first "# " heading of its first markdown cell."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            found = re.search(r"^# (.+)$", "".join(cell["source"]), re.M)
            return found[1].strip() if found else fallback
    return fallback


def run_note(name: str, repository: str, neighbours: dict[str, tuple[str, str]]) -> dict:
    """A markdown cell for the top of each notebook page: how to run it, where to go next.

    neighbours maps "Previous" and "Next" to (file name, title) where there is one."""
    steps = "\n".join(
        f"- {label} notebook: [{title}]({target})" for label, (target, title) in neighbours.items()
    )
    text = (
        "````{admonition} Run this notebook\n"
        ":class: tip\n"
        "This page shows the notebook as committed, with its outputs; nothing runs here. To run "
        "it, do the exercises and use its interactive figures, get the course's repository and "
        "open it in JupyterLab:\n\n"
        f"```bash\n{courseinfo.run_commands(repository)}\n```\n\n"
        f"then open `notebooks/{name}`. `make lab` sets up everything the notebooks import, the "
        "course's own helper package `nlviz` included. "
        f"{{download}}`Download this notebook </_orig/{name}>` to read it as a file: it imports "
        "`nlviz`, so it runs inside a clone of the repository (in its `notebooks/` folder, after "
        "`make lab`), not on its own.\n\n"
        f"{steps}\n"
        "````\n"
    )
    return {"cell_type": "markdown", "id": "nlviz-site-run", "metadata": {}, "source": text}


def _copy_linked(markdown: str, src: Path, root: Path) -> None:
    """Copy the repository files that markdown links to (myst links them as downloads)."""
    for match in LINK.finditer(markdown):
        target = match["target"]
        if "://" in target or target.startswith("mailto:") or target.endswith(".ipynb"):
            continue
        path = (root / target).resolve()
        if path.is_file() and root in path.parents:
            _copy(path, src / path.relative_to(root))


def readme_sections(readme: str) -> tuple[str, list[tuple[str, str]]]:
    """README's text before its first "## " heading, and its (title, text) sections."""
    parts = re.split(r"^## (.+)$", readme, flags=re.M)
    pairs = zip(parts[1::2], parts[2::2], strict=True)
    return parts[0].strip(), [(title.strip(), body.strip()) for title, body in pairs]


def card_picture(nb: dict) -> bytes | None:
    """The picture for a notebook's card: the first PNG of the cell tagged CARD_TAG, else the
    first PNG of any output."""
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in cells if CARD_TAG in c.get("metadata", {}).get("tags", [])]
    for cell in tagged + cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                return base64.b64decode("".join(data["image/png"]))
            found = DATA_PNG.search("".join(data.get("text/html", "")))
            if found:
                return base64.b64decode(found[1])
    return None


def card_image(data: bytes) -> bytes:
    """A figure scaled to CARD_WIDTH pixels wide, in 256 colours: a picture, not for reading."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if image.width > CARD_WIDTH:
        height = round(image.height * CARD_WIDTH / image.width)
        image = image.resize((CARD_WIDTH, height), Image.Resampling.LANCZOS)
    return _png_bytes(image.quantize(256, method=Image.Quantize.MEDIANCUT), None)


def notebook_cards(section: str, src: Path, root: Path) -> str:
    """The notebook map's table in a README section, as cards with a picture each."""
    rows = list(MAP_ROW.finditer(section))
    if not rows:
        sys.exit("README.md: the notebook map (| 01 | [title](notebooks/....ipynb) | ...) is gone")
    cards = []
    for row in rows:
        path = root / row["path"]
        picture = card_picture(json.loads(path.read_text(encoding="utf-8")))
        image = ""
        if picture is not None:
            target = src / "cards" / f"{path.stem}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            png = card_image(picture)
            if not target.is_file() or target.read_bytes() != png:
                target.write_bytes(png)
            alt = f"A figure of notebook {row['num']}"
            image = f"[![{alt}](cards/{path.stem}.png)]({row['path']})\n\n"
        cards.append(
            "```{container} nlviz-card\n"
            f"{image}**{row['num']} [{row['title']}]({row['path']})**\n\n"
            f"{row['what'].strip()}\n\n"
            f"*On a 2-core CPU: {row['time'].strip()}*\n"
            "```\n"
        )
    start, end = rows[0].start(), rows[-1].end()
    table_start = section.rfind("\n|", 0, start)  # the header rows above the first card row
    table_start = section.rfind("\n\n", 0, table_start) + 1 if table_start >= 0 else start
    grid = "````{container} nlviz-cards\n" + "\n".join(cards) + "````"
    return f"{section[:table_start].rstrip()}\n\n{grid}\n{section[end:]}"


def readme_pages(src: Path, root: Path = ROOT) -> dict[str, str]:
    """The three pages made from README.md: {file name in src: markdown}."""
    readme = (root / "README.md").read_text(encoding="utf-8")
    _copy_linked(readme, src, root)
    intro, sections = readme_sections(readme)
    titles = [t for t, _ in sections]
    missing = [t for t in (*SETUP, DEVELOPING) if t not in titles]
    if missing:
        sys.exit(f"README.md has no section {missing}: site/build.py splits it by these")
    first_dev = titles.index(DEVELOPING)
    landing, setup = [intro], ["# Setup and troubleshooting"]
    for title, body in sections[:first_dev]:
        if title in SETUP:
            setup.append(f"## {title}\n\n{body}")
        elif MAP_ROW.search(body):
            landing.append(f"## {title}\n\n{notebook_cards(body, src, root)}")
        else:
            landing.append(f"## {title}\n\n{body}")
    developing = [f"# {DEVELOPING}\n\n{sections[first_dev][1]}"]
    for title, body in sections[first_dev + 1 :]:
        developing.append(f"## {title}\n\n{body}")
    developing = [re.sub(r"^### ", "## ", part, flags=re.M) for part in developing]
    repository = courseinfo.repository_url(root)
    more = (
        "## More about the course\n\n"
        "- [Setup and troubleshooting](setup.md): the conda route, GPUs, what to do when a "
        "widget does not show.\n"
        f"- [{DEVELOPING}](developing.md): the helper package `nlviz`, the results and how "
        "they were made, the tests, this website.\n"
        f"- The repository: <{repository}>.\n"
    )
    references = [i for i, part in enumerate(landing) if part.startswith("## References")]
    landing.insert(references[0] if references else len(landing), more)
    docs = [f"notebooks/{nb.stem}" for nb in notebooks(root)] + ["setup", "developing"]
    toctree = "```{toctree}\n:hidden:\n:maxdepth: 1\n\n" + "\n".join(docs) + "\n```\n"
    return {
        "index.md": "\n\n".join(landing) + "\n\n" + toctree,
        "setup.md": "\n\n".join(setup) + "\n",
        "developing.md": "\n\n".join(developing) + "\n",
    }


def prepare(src: Path, root: Path = ROOT, figures: Figures | None = None) -> dict[str, int]:
    """Write the Sphinx sources into src; returns the widget outputs replaced per notebook."""
    repository = courseinfo.repository_url(root)
    paths = notebooks(root)
    books = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    titles = [_title(nb, path.stem) for nb, path in zip(books, paths, strict=True)]
    replaced, wanted = {}, set()
    for k, (path, nb) in enumerate(zip(paths, books, strict=True)):
        static, replaced[path.name] = static_notebook(nb, path.name, figures)
        neighbours = {}
        if k > 0:
            neighbours["Previous"] = (paths[k - 1].name, titles[k - 1])
        if k + 1 < len(paths):
            neighbours["Next"] = (paths[k + 1].name, titles[k + 1])
        static["cells"].insert(1, run_note(path.name, repository, neighbours))
        page = src / "notebooks" / path.name
        _write(page, json.dumps(static, indent=1, ensure_ascii=False) + "\n")
        _copy(path, src / "_orig" / path.name)  # the download: the committed file as it is
        wanted.add(page)
    for name, text in readme_pages(src, root).items():
        _write(src / name, text)
    for old in (src / "notebooks").glob("*.ipynb"):  # a notebook renamed or removed
        if old not in wanted:
            old.unlink()
    return replaced


def copy_mathjax(static: Path) -> None:
    """MathJax 3 from npm into the site: its loader and the components that courseinfo.py
    names, what they need (core, the TeX font's data), the TeX extensions it loads lazily and
    the CommonHTML fonts."""
    es5 = MATHJAX / "es5"
    if not (es5 / f"{courseinfo.MATHJAX_LOADER}.js").is_file():
        sys.exit("MathJax is missing: run `make site` (it runs npm ci in site/)")
    target = static / "mathjax"
    for part in ["input/tex/extensions", "output/chtml/fonts/woff-v2"]:
        shutil.copytree(es5 / part, target / part, dirs_exist_ok=True)
    needed = [courseinfo.MATHJAX_LOADER, "core", "output/chtml/fonts/tex"]
    for name in needed + courseinfo.MATHJAX_COMPONENTS:
        _copy(es5 / f"{name}.js", target / f"{name}.js")
    _copy(MATHJAX / "LICENSE", target / "LICENSE")


def _site_inputs() -> str:
    """A digest of what every page depends on besides its source."""
    digest = hashlib.sha256()
    files = [*sorted((SITE / "_static").rglob("*")), *sorted((SITE / "_templates").rglob("*"))]
    files += [SITE / "conf.py", SITE / "courseinfo.py", SITE / "mathjax-tex.json"]
    for path in [f for f in files if f.is_file()] + [ROOT / "pyproject.toml"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build(out: Path) -> int:
    from sphinx.cmd.build import build_main

    src = out / "src"
    figures = Figures(out / "figures")
    replaced = prepare(src, figures=figures)
    print(f"{len(replaced)} notebooks, widget outputs replaced by notes: {replaced}")
    print(f"figures: {figures.before / 1e6:.2f} MB in the notebooks, {figures.after / 1e6:.2f} MB")
    args = ["-b", "html", "-c", str(SITE), "-d", str(out / "doctrees"), "-q"]
    # Sphinx rewrites only the pages whose source changed, and with none it copies no static
    # file either: a change to the site's CSS, templates or configuration rewrites every page.
    stamp, inputs = out / "site-inputs.sha256", _site_inputs()
    if not stamp.is_file() or stamp.read_text() != inputs:
        args.append("-a")
    rc = build_main([*args, str(src), str(out / "html")])
    if rc == 0:
        stamp.write_text(inputs)
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
