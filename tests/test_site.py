"""The course's website: built from the committed notebooks, checked in a real browser.

Builds the site (site/build.py, what `make site` runs) into a temporary folder, serves it with
``python -m http.server`` on 127.0.0.1, under a sub-path as GitHub Pages does, and opens every
page in Debian's headless Chromium driven by Playwright for Python. Every request that leaves
the site is blocked and fails the test: the site must work offline. Checks, per notebook page:
no console error, one loaded <img> per image/png output of the .ipynb (same pixel sizes), math
typeset by MathJax with no error and no raw TeX left in the text, every exercise's solution
collapsed until clicked, a note (not the text fallback) for each widget, how to run it (clone,
``make lab``, the download needs ``nlviz``) and links to the previous and next notebooks; then
the landing page (a card per notebook, the developer sections on their own page), the
repository link on every page, the search, that every local href and src answers 200.
Reading: every page at 1280 and 390 px wide (a phone) does not scroll sideways, and no display
equation is clipped (a wide one scrolls in its own box); a screenshot of each is saved in the
test's tmp folder. Weight: no page loads more than 1.5 MB of scripts and styles, no figure is
over 400 kB, MathJax loads only where there is math. Figures: at 1280 px every figure shows its
10-pt text at 10 px or more; code cells' lines fit their box. The per-page table of
site/measure.py (bytes, figures, smallest text scale, load time) is printed at the end.
Run: ``make site-test`` (``.ci/run`` does, after ``make test``): it installs the site's
packages, then runs this file. Skips where chromium or playwright is missing (``.ci/run``
installs both); elsewhere, skips where the site's packages are missing, unless
NLVIZ_SITE_TEST is set, as `make site-test` does: then that fails.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import numpy as np
import pytest
from matplotlib.image import imread

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    """A module of site/ by its path (site/ is no package, and `site` is a module of Python's)."""
    spec = importlib.util.spec_from_file_location(f"site_{name}", ROOT / "site" / f"{name}.py")
    module = sys.modules.setdefault(f"site_{name}", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


measure = _load("measure")
courseinfo = _load("courseinfo")
REPOSITORY = courseinfo.repository_url()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
CHROMIUM, CHROMIUM_ARGS = measure.CHROMIUM, measure.CHROMIUM_ARGS  # one browser set-up
VIEWPORT = (1280, 900)
PHONE = (390, 844)
README_PAGES = measure.PAGES_FROM_README  # index.html, setup.html, developing.html
NOTEBOOK_PAGES = [f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS]
SCRIPTS_AND_STYLES_LIMIT = 1_500_000  # bytes a page may load in .js and .css
FIGURE_LIMIT = 400_000  # bytes of one figure
TEXT_PX = 10.0  # 10-pt text of a figure must show at least this tall (CSS px) at 1280 px
MEASURED: dict[str, dict] = {}  # page -> its row of site/measure.py's table
SITE_MODULES = ["sphinx", "myst_nb", "sphinx_book_theme"]  # site/requirements.txt
WIDGET = "application/vnd.jupyter.widget-view+json"
DATA_PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
WIDGET_TEXT = re.compile(r"\b[HV]?Box\(children=|Loading widget|IntSlider\(|FloatProgress\(")
# raw TeX in the text that a reader sees: a delimiter or a command that was not typeset
RAW_TEX = re.compile(r"\$|\\\(|\\\)|\\\[|\\\]|\\[A-Za-z]+")
VISIBLE_TEXT = """(root) => {
  const copy = root.cloneNode(true);
  copy.querySelectorAll("pre, code, mjx-container, script, style, .headerlink")
      .forEach((el) => el.remove());
  return copy.textContent;
}"""


def _png_size(b64: str | list[str]) -> tuple[int, int]:
    data = base64.b64decode("".join(b64) if isinstance(b64, list) else b64)
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _shown_pngs(data: dict) -> list[tuple[int, int]]:
    """Sizes of the pictures (PNG, SVG) a page shows for one output (myst-nb prefers HTML)."""
    html = "".join(data.get("text/html", ""))
    if WIDGET in data:  # the site shows the widget's own static picture, if it stored one
        if "image/png" in data:
            return [_png_size(data["image/png"])]
    if html:
        return [_png_size(b64) for b64 in DATA_PNG.findall(html)]
    if "image/svg+xml" in data:  # an exported SVG (notebook 05): its size in pt, shown at 96 dpi
        svg = "".join(data["image/svg+xml"])
        size = [re.search(rf'{k}="([0-9.]+)pt"', svg) for k in ("width", "height")]
        return [tuple(round(float(m[1]) * 96 / 72) for m in size)]
    return [_png_size(data["image/png"])] if "image/png" in data else []


def _expected(notebook: Path) -> dict:
    """What a notebook's page must show, from the .ipynb itself."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    outputs = [out for cell in nb["cells"] for out in cell.get("outputs", [])]
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return {
        "pngs": sorted(size for o in outputs for size in _shown_pngs(o.get("data", {}))),
        "widgets": sum(WIDGET in o.get("data", {}) for o in outputs),
        "math": bool(re.search(r"\$|\\\(|\\\[|\\begin\{", markdown)),
        "details": markdown.count("<details>"),
        "solutions": markdown.count("<details><summary>Solution</summary>"),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


class _Links(HTMLParser):
    """href and src values of a page, and its ids."""

    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append((tag, value))
            if name == "id" and value:
                self.ids.add(value)


@pytest.fixture(scope="module")
def sync_playwright():
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    api = pytest.importorskip("playwright.sync_api")
    return api.sync_playwright


@pytest.fixture(scope="module")
def site(tmp_path_factory, sync_playwright):
    """The site built from the committed notebooks into a fresh folder: its html folder."""
    missing = [m for m in SITE_MODULES if importlib.util.find_spec(m) is None]
    if not (ROOT / "site" / "node_modules" / "mathjax").is_dir():
        missing.append("MathJax (site/node_modules)")
    if missing:
        # `make test` runs before the site's packages are installed; `make site-test` installs
        # them, sets NLVIZ_SITE_TEST and so fails here if they are still missing
        why = f"the site's packages are missing ({', '.join(missing)}): run `make site-test`"
        if os.environ.get("NLVIZ_SITE_TEST"):
            pytest.fail(why)
        pytest.skip(why)
    out = tmp_path_factory.mktemp("site")
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "site" / "build.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"site build failed (make site-test installs its packages):\n{log[-4000:]}"
    )
    print(f"site built in {time.perf_counter() - t0:.1f} s")
    problems = [line for line in log.splitlines() if re.search(r"WARNING|ERROR|CRITICAL", line)]
    assert not problems, "the site build warned:\n" + "\n".join(problems[:30])
    return out / "html"


@pytest.fixture(scope="module")
def server(site):
    """python -m http.server in its own process group, with the site under a sub-path.

    GitHub Pages serves a project's site at https://<user>.github.io/<repository>/: the site
    is served here at /html/, so a link or a request to the host's root fails the tests."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(site.parent),
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/{site.name}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            if _get(url)[0] == 200:
                break
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "http.server did not start"
        time.sleep(0.2)
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(sync_playwright):
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """A page loaded offline: what it logged, what it asked for, what failed."""

    def __init__(self, browser, server: str, path: str, viewport=VIEWPORT):
        from playwright.sync_api import Error as PlaywrightError

        self.errors, self.outside, self.failed = [], [], []
        self.context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1
        )
        page = self.page = self.context.new_page()
        page.set_default_timeout(60_000)
        page.add_init_script("performance.setResourceTimingBufferSize(2000)")

        def route(r):
            if r.request.url.startswith(server):
                r.continue_()
            else:  # the site must not need anything from elsewhere
                self.outside.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.url} {r.status}"))
        page.goto(urljoin(server, path), wait_until="load")
        page.wait_for_function("() => [...document.images].every((img) => img.complete)")
        if page.evaluate("() => document.querySelector('.math') !== null"):  # MathJax typesets
            try:
                page.wait_for_function(
                    "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                    timeout=30_000,
                )
            except PlaywrightError as e:
                raise AssertionError(
                    f"MathJax did not start on {path}: requests that left the site: "
                    f"{self.outside}, failed requests: {self.failed}, errors: {self.errors}"
                ) from e
            page.evaluate("() => MathJax.startup.promise")
        self.ready = page.evaluate("() => performance.now() / 1000")  # s: loaded and typeset

    def assert_clean(self):
        self.page.wait_for_timeout(500)  # late requests (fonts, icons) report in too
        assert not self.outside, f"requests that left the site: {self.outside}"
        assert not self.failed, f"failed requests: {self.failed}"
        assert not self.errors, f"console errors: {self.errors}"

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def visit(browser, server):
    """Opens a page of the site, once per module (the screenshot reuses a notebook's page)."""
    opened: dict[tuple, Visit] = {}

    def open_page(path, viewport=VIEWPORT):
        if (path, viewport) not in opened:
            opened[path, viewport] = Visit(browser, server, path, viewport)
        return opened[path, viewport]

    yield open_page
    for v in opened.values():
        v.close()


def test_notebooks_are_there():
    assert len(NOTEBOOKS) >= 5, NOTEBOOKS


def test_landing_page(visit):
    """For students: what, for whom, how to run it, a card with a picture per notebook; the
    developer half of the README on a page of its own."""
    v = visit("index.html")
    v.assert_clean()
    page = v.page
    text = page.locator("article").inner_text()
    for needed in ("For whom", "make lab", "make test", "The notebooks", f"git clone {REPOSITORY}"):
        assert needed in text, needed
    headings = [h.strip() for h in page.locator("article h2, article h3").all_inner_texts()]
    for developer in ("Results in the repository", "Tests and benchmarks", "Developing the course"):
        assert developer not in headings, f"a developer section on the landing page: {developer}"
    # the notebook map and the navigation list every notebook page, in order
    order = [nb.stem for nb in NOTEBOOKS]
    nav = page.eval_on_selector_all(
        "nav.bd-docs-nav a.reference.internal", "els => els.map(e => e.getAttribute('href'))"
    )
    assert [Path(h).stem for h in nav if "notebooks/" in h] == order
    cards = page.locator(".nlviz-card")
    assert cards.count() == len(NOTEBOOKS)
    for k, stem in enumerate(order):
        card = cards.nth(k)
        hrefs = card.locator("a.reference.internal").evaluate_all(
            "els => els.map(e => e.getAttribute('href'))"
        )
        assert hrefs and {Path(h).stem for h in hrefs} == {stem}, hrefs
        img = card.locator("img")
        assert img.count() == 1, f"card {stem} has no picture"
        assert img.evaluate("e => e.complete && e.naturalWidth > 0"), f"card {stem}: not loaded"
    links = page.eval_on_selector_all("article a", "els => els.map(e => e.getAttribute('href'))")
    assert "developing.html" in links and "setup.html" in links, links


def test_developer_page(visit):
    v = visit("developing.html")
    v.assert_clean()
    text = v.page.locator("article").inner_text()
    for needed in ("Developing the course", "nlviz.utils", "Results in the repository"):
        assert needed in text, needed
    assert "[project.urls]" in text
    # the theme shortens a GitHub link's text to owner/name: look at where it points
    assert v.page.locator(f"article a[href='{REPOSITORY}']").count() >= 1


def test_readme_clones_the_published_repository():
    """README's clone command uses pyproject.toml's [project.urls] Repository, the one setting."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    clones = re.findall(r"git clone (\S+)", readme)
    assert clones and set(clones) == {REPOSITORY}, clones
    head = readme[: readme.index("## The notebooks")]
    assert "make lab" in head and "make test" in head


@pytest.mark.parametrize("path", README_PAGES + NOTEBOOK_PAGES)
def test_every_page_links_the_repository(visit, path):
    footer = visit(path).page.locator(".nlviz-run-footer")
    assert footer.count() == 1, "no run note in the footer"
    text = footer.inner_text()
    assert f"git clone {REPOSITORY}" in text and "make lab" in text, text
    assert footer.locator(f"a[href='{REPOSITORY}']").count() == 1


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_page(visit, notebook):
    expected = _expected(notebook)
    v = visit(f"notebooks/{notebook.stem}.html")
    v.assert_clean()
    page = v.page
    article = page.locator("article.bd-article")
    assert page.locator(".cell_input").count() > 0, "no code cells on the page"
    assert page.locator(".cell_input .highlight pre").count() > 0, "code is not highlighted"
    code = "\n".join(page.locator(".cell_input").all_inner_texts())
    assert "NBVAL_" not in code, "nbval's markers are shown to the reader"

    # one loaded <img> per PNG output, with the PNG's own size
    images = page.eval_on_selector_all(
        ".cell_output img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
    )
    assert all(complete and w > 0 for complete, w, _ in images), images
    assert sorted((w, h) for _, w, h in images) == expected["pngs"]

    # math: every math element typeset, no MathJax error, no raw TeX in the text
    n_math = page.locator(".math").count()
    typeset = page.locator(".math mjx-container").count()
    if expected["math"]:
        assert n_math > 0, "the notebook has math, the page none"
    assert typeset == n_math, f"{n_math - typeset} of {n_math} math elements not typeset"
    assert page.locator("mjx-merror").count() == 0, page.locator("mjx-merror").first.inner_text()
    text = article.evaluate(VISIBLE_TEXT)
    raw = [text[max(0, m.start() - 40) : m.end() + 40] for m in RAW_TEX.finditer(text)]
    assert not raw, f"raw TeX left in the text: {raw[:5]}"

    # widgets: a note each, never their text fallback, no widget manager
    notes = page.locator(".nlviz-widget-note").count()
    assert notes == expected["widgets"], f"{notes} widget notes for {expected['widgets']} widgets"
    everything = article.text_content()
    assert not WIDGET_TEXT.search(everything), WIDGET_TEXT.search(everything)
    scripts = page.eval_on_selector_all("script[src]", "els => els.map(e => e.src)")
    assert not [s for s in scripts if re.search(r"widget|require", s)], scripts

    # exercises: each solution (and each aside) collapsed until the reader opens it
    details = page.locator("article details:not(.hide)")  # .hide: myst-nb's hidden inputs
    assert details.count() == expected["details"], details.count()
    summaries = details.locator("summary").all_inner_texts()
    assert [t.strip() for t in summaries].count("Solution") == expected["solutions"], summaries
    for k in range(details.count()):
        body = details.nth(k).locator("pre, p").first
        assert details.nth(k).get_attribute("open") is None, f"shown open: {summaries[k]}"
        assert not body.is_visible(), f"collapsed, yet its text shows: {summaries[k]}"
        details.nth(k).locator("summary").click()
        assert body.is_visible(), f"does not open: {summaries[k]}"

    # how to run it: clone, make lab, and the notebook itself to download (it needs nlviz)
    note = page.locator(".admonition", has_text="Run this notebook")
    note_text = note.inner_text()
    for needed in ("make lab", f"git clone {REPOSITORY}", "nlviz"):
        assert needed in note_text, needed
    links = page.eval_on_selector_all("a.download", "els => els.map(e => e.getAttribute('href'))")
    assert any(h.endswith(f"/{notebook.name}") for h in links), links

    # the previous and the next notebook, from the run note and from the page's foot
    k = NOTEBOOKS.index(notebook)
    neighbours = [NOTEBOOKS[j].stem for j in (k - 1, k + 1) if 0 <= j < len(NOTEBOOKS)]
    in_note = note.locator("a.reference.internal").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))"
    )
    linked = sorted(Path(h).stem for h in in_note if h.endswith(".html"))
    assert linked == sorted(neighbours), in_note
    foot = page.eval_on_selector_all(
        ".prev-next-area a", "els => els.map(e => e.getAttribute('href'))"
    )
    if k + 1 < len(NOTEBOOKS):
        assert f"{NOTEBOOKS[k + 1].stem}.html" in foot, foot


def test_search_finds_the_notebooks(visit):
    v = visit("search.html?q=affinity")
    results = v.page.locator("ul.search li a")
    results.first.wait_for()
    hrefs = results.evaluate_all("els => els.map(e => e.getAttribute('href'))")
    v.assert_clean()
    assert any(h.startswith("notebooks/05_") for h in hrefs), hrefs


def test_local_links_resolve(site, server):
    """Every href and src of every page reachable from the landing page answers 200; only an
    <a> may point outside the site (a paper, the repository), never what a page loads."""
    todo, seen_pages, checked, broken = [server + "index.html"], set(), {}, []
    outside: set[str] = set()
    ids: dict[str, set[str]] = {}
    anchors: list[tuple[str, str, str]] = []
    while todo:
        page = todo.pop()
        if page in seen_pages:
            continue
        seen_pages.add(page)
        status, body = _get(page)
        assert status == 200, page
        parser = _Links()
        parser.feed(body.decode("utf-8"))
        ids[page] = parser.ids
        for tag, link in parser.links:
            target, fragment = urldefrag(urljoin(page, link))
            if urlparse(target).scheme not in ("http", "https"):
                continue  # mailto:, data:, javascript:
            if tag == "a" and not target.startswith(server):
                outside.add(target)  # a link for the reader to follow (papers, the repository)
                continue
            assert target.startswith(server), f"{page} loads from outside the site: {link}"
            if target not in checked:
                checked[target] = _get(target)[0]
                if checked[target] != 200:
                    broken.append(f"{page}: {link} -> {checked[target]}")
            if target.endswith(".html"):
                todo.append(target)
                if fragment:
                    anchors.append((page, target, fragment))
    assert not broken, broken
    for page, target, fragment in anchors:
        if target in ids:
            assert fragment in ids[target], f"{page}: #{fragment} is not on {target}"
    pages = {p[len(server) :] for p in seen_pages}
    assert {f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS} <= pages
    assert REPOSITORY in outside, "no page links the course's repository"
    assert len(checked) > 20


def test_screenshot_of_a_page(visit, tmp_path):
    v = visit(f"notebooks/{NOTEBOOKS[0].stem}.html")
    v.assert_clean()
    figure = v.page.locator(".cell_output img").first
    figure.scroll_into_view_if_needed()
    png = v.page.screenshot()
    (tmp_path / "page.png").write_bytes(png)
    rgb = imread(io.BytesIO(png), format="png")[..., :3]
    assert rgb.shape == (VIEWPORT[1], VIEWPORT[0], 3)
    ink = rgb.min(axis=-1) < 0.9
    assert ink.mean() > 0.05, f"nearly blank: {ink.mean():.3f} of the pixels are not white"
    colours = len(np.unique((rgb * 15).round().reshape(-1, 3), axis=0))
    assert colours > 50, f"only {colours} colours: no figure on screen"
    box = figure.bounding_box()
    assert box and box["width"] > 200 and 0 <= box["y"] < VIEWPORT[1], box


def _meta_widths(notebook: Path) -> dict[tuple[int, int], float]:
    """(width, height) of a PNG output -> the display width its metadata gives (retina)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    widths = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data, meta = out.get("data", {}), out.get("metadata", {})
            width = (meta.get("image/png") or {}).get("width")
            if "image/png" in data and width:
                widths[_png_size(data["image/png"])] = float(width)
    return widths


def _measured(visit, path: str) -> tuple[dict, list[dict]]:
    """site/measure.py's measurements of a page at 1280 px (and its row of the table)."""
    v = visit(path)
    v.assert_clean()
    m = v.page.evaluate(measure.MEASURE_JS)
    notebook = ROOT / "notebooks" / f"{Path(path).stem}.ipynb"
    widths = _meta_widths(notebook) if notebook.is_file() else {}
    scales = measure.figure_scales(m["figures"], widths)
    MEASURED[path] = {**measure.row(path, m, scales), "ready_s": v.ready}
    return m, scales


@pytest.mark.parametrize("path", README_PAGES + NOTEBOOK_PAGES)
def test_page_weight(visit, path):
    """At most 1.5 MB of scripts and styles (fonts apart), no figure over 400 kB, MathJax only
    on a page with math: sizes as the browser decoded them (the files as served)."""
    m, scales = _measured(visit, path)
    b = m["bytes"]
    heavy = sorted((r["bytes"], r["url"]) for r in m["resources"] if r["kind"] != "images")[-5:]
    assert b["scripts"] + b["styles"] <= SCRIPTS_AND_STYLES_LIMIT, (
        f"{(b['scripts'] + b['styles']) / 1e6:.2f} MB of scripts and styles; largest: {heavy}"
    )
    big = [f"{s['src'][-40:]}: {s['bytes'] / 1e3:.0f} kB" for s in scales if s["bytes"] > 4e5]
    big += [
        f"{r['url']}: {r['bytes'] / 1e3:.0f} kB"
        for r in m["resources"]
        if r["kind"] == "images" and r["bytes"] > FIGURE_LIMIT
    ]
    assert not big, f"figures over {FIGURE_LIMIT / 1e3:.0f} kB: {big}"
    assert m["mathjax"] == (m["math"] > 0), f"MathJax loaded: {m['mathjax']}, math: {m['math']}"


@pytest.mark.parametrize("path", NOTEBOOK_PAGES)
def test_figures_are_readable(visit, path):
    """At 1280 px, every figure shows 10-pt text at 10 px or more: displayed width x dpi /
    natural width >= 72 (dpi: the PNG's pHYs, else the output's width metadata, else 100)."""
    _, scales = _measured(visit, path)
    small = [
        f"{s['src'].rsplit('/', 1)[-1][:16]} ({s['natural']} px at {s['dpi']:.0f} dpi shown "
        f"{s['shown']:.0f} px wide): 10 pt at {s['text_px']:.1f} px"
        for s in scales
        if s["text_px"] < TEXT_PX - 1e-6
    ]
    assert not small, f"{len(small)} of {len(scales)} figures too small to read: {small}"


@pytest.mark.parametrize("path", NOTEBOOK_PAGES)
def test_code_lines_fit(visit, path):
    """At 1280 px a code cell's lines (88 characters) fit its box without scrolling."""
    m = visit(path).page.evaluate(measure.MEASURE_JS)
    assert not m["pre"], f"code cells whose lines overflow their box: {m['pre']}"


def _clipped_equations(m: dict) -> list[str]:
    """Display equations that stick out of their box or of the page, or overflow unscrolled."""
    bad = []
    for e in m["equations"]:
        why = []
        if e["contentLeft"] < e["left"] - 1:
            why.append(f"starts {e['left'] - e['contentLeft']:.0f} px left of its box")
        if e["left"] < -1 or e["right"] > m["viewport"] + 1:
            why.append(f"box spans {e['left']:.0f}..{e['right']:.0f} px of {m['viewport']}")
        if e["left"] < e["parentLeft"] - 1 or e["right"] > e["parentRight"] + 1:
            why.append("box wider than its paragraph")
        if e["scrollWidth"] > e["clientWidth"] + 1 and not e["scrolls"]:
            why.append(f"{e['scrollWidth']} px in {e['clientWidth']} px, not scrollable")
        if why:
            bad.append(f"{e['tex']!r}: {'; '.join(why)}")
    return bad


@pytest.mark.parametrize("width", [VIEWPORT, PHONE], ids=["1280px", "390px"])
@pytest.mark.parametrize("path", README_PAGES + NOTEBOOK_PAGES)
def test_reads_at_width(visit, path, width, tmp_path_factory):
    """No sideways scrolling of the page at 1280 px or on a 390 px phone (code and wide
    equations scroll in their own boxes), no display equation clipped; screenshots saved."""
    v = visit(path, width)
    v.assert_clean()
    m = v.page.evaluate(measure.MEASURE_JS)
    shots = tmp_path_factory.getbasetemp() / "screenshots"
    shots.mkdir(exist_ok=True)
    name = f"{width[0]}px_{Path(path).stem}"
    v.page.evaluate("() => window.scrollTo(0, 0)")
    v.page.screenshot(path=shots / f"{name}.png")
    figure = v.page.locator(".cell_output img, .nlviz-card img")
    if figure.count():  # the first figure, with the text around it
        figure.first.scroll_into_view_if_needed()
        v.page.screenshot(path=shots / f"{name}_figure.png")
    wide = v.page.locator('mjx-container[display="true"]')
    if wide.count():  # the widest equation, where a clipped one would show
        widths = wide.evaluate_all("els => els.map(e => e.scrollWidth)")
        target = wide.nth(int(np.argmax(widths)))
        target.scroll_into_view_if_needed()
        v.page.screenshot(path=shots / f"{name}_equation.png")
    assert m["scrollWidth"] <= width[0], (
        f"the page scrolls sideways: {m['scrollWidth']} px wide in a {width[0]} px window"
    )
    bad = _clipped_equations(m)
    assert not bad, f"{len(bad)} display equations clipped at {width[0]} px: {bad}"
    squashed = [
        f"{f['src'].rsplit('/', 1)[-1]}: shown {f['shown']:.0f} x {f['shownHeight']:.0f}, "
        f"natural {f['natural']} x {f['naturalHeight']}"
        for f in m["figures"]
        if f["natural"]
        and f["shownHeight"]
        and abs(f["shown"] / f["shownHeight"] * f["naturalHeight"] / f["natural"] - 1) > 0.02
    ]  # a figure narrowed to the column keeps its aspect ratio
    assert not squashed, f"figures distorted at {width[0]} px: {squashed}"


def test_measurements_table(tmp_path_factory, capsys):
    """Prints site/measure.py's table of the pages measured above (bytes, figures, the
    smallest 10-pt text height, load time) and saves it beside the screenshots."""
    rows = [MEASURED[p] for p in README_PAGES + NOTEBOOK_PAGES if p in MEASURED]
    if not rows:
        pytest.skip("no page was measured")
    text = measure.table(rows)
    out = tmp_path_factory.getbasetemp() / "site-measurements.md"
    out.write_text(text + "\n", encoding="utf-8")
    with capsys.disabled():  # shown without -s too: the table is this test's output
        print(f"\n{text}\n(1280 px wide, decoded sizes; saved in {out})")
