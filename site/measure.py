"""What each page of the built website costs a reader, measured in headless Chromium.

    python site/measure.py [HTML_DIR] [--width 1280]    (default: site/_build/html; `make site`)

Serves the built site on 127.0.0.1, opens every page (the landing page, the other pages made
from the README, each notebook) in Debian's Chromium through Playwright, as tests/test_site.py
does, and prints one row per page:

- bytes the page loaded, from the browser's resource timing (decoded body sizes, so the sizes
  of the files as served, before any compression a web host adds): scripts and styles (.js,
  .css), fonts, images (files; figures inlined as data: URIs count in the page's HTML), and in
  all, the HTML included;
- figures: the images of the notebook's outputs (and the landing page's card pictures);
- 10 pt at: the smallest displayed text scale over the page's output figures, the height in CSS
  px at which 10-pt text of a figure shows: displayed width x dpi / natural width / 72 x 10.
  The dpi is the PNG's pHYs chunk where it has one, else matplotlib's 100 (an SVG: 96 CSS px
  per inch); 10 px or more reads as body text does (scale >= 72 dpi);
- load: seconds from navigation to the load event; ready: until MathJax finished typesetting.

tests/test_site.py imports this file for the same measurements and asserts on them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

SITE = Path(__file__).resolve().parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_DPI = 100.0  # matplotlib's figure.dpi, where a PNG says nothing
SVG_DPI = 96.0  # an SVG's natural size is in CSS px, 96 to the inch
PAGES_FROM_README = ["index.html", "setup.html", "developing.html"]

# In the page: what it loaded, its figures, its code boxes and its display equations.
MEASURE_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const ready = performance.now();
  const kind = (url) => {
    const path = url.split(/[?#]/)[0].toLowerCase();
    if (/\\.(js|mjs)$/.test(path)) return "scripts";
    if (/\\.css$/.test(path)) return "styles";
    if (/\\.(woff2?|ttf|otf|eot)$/.test(path)) return "fonts";
    if (/\\.(png|jpe?g|gif|svg|webp)$/.test(path)) return "images";
    return "other";
  };
  const bytes = {scripts: 0, styles: 0, fonts: 0, images: 0, other: 0, html: 0};
  const nav = performance.getEntriesByType("navigation")[0];
  bytes.html = nav ? nav.decodedBodySize : 0;
  const resources = performance.getEntriesByType("resource").map((e) => ({
    url: e.name, kind: kind(e.name), bytes: e.decodedBodySize, transfer: e.transferSize}));
  resources.forEach((r) => { bytes[r.kind] += r.bytes; });
  const figures = [...document.querySelectorAll(".cell_output img")].map((img) => ({
    src: img.currentSrc || img.src, shown: img.getBoundingClientRect().width,
    shownHeight: img.getBoundingClientRect().height,
    natural: img.naturalWidth, naturalHeight: img.naturalHeight}));
  const cards = document.querySelectorAll(".nlviz-card img").length;
  const pre = [...document.querySelectorAll(".cell_input pre")].filter(
      (p) => p.scrollWidth > p.clientWidth + 1).map((p) => {
    const lines = p.textContent.split("\\n");
    const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
    return `${longest.length} chars: ${longest.trim().slice(0, 60)}`;
  });
  const viewport = document.documentElement.clientWidth;
  const equations = [...document.querySelectorAll('mjx-container[display="true"]')].map((box) => {
    const r = box.getBoundingClientRect();
    let left = Infinity;
    box.querySelectorAll("*").forEach((el) => {
      if (el.closest("mjx-assistive-mml")) return;  // hidden MathML for screen readers
      const e = el.getBoundingClientRect();
      if (e.width > 0 && e.height > 0) left = Math.min(left, e.left);
    });
    const style = getComputedStyle(box);
    const scrolls = ["auto", "scroll"].includes(style.overflowX);
    const parent = box.parentElement.getBoundingClientRect();
    return {tex: box.textContent.slice(0, 40), left: r.left, right: r.right, contentLeft: left,
      parentLeft: parent.left, parentRight: parent.right,
      scrollWidth: box.scrollWidth, clientWidth: box.clientWidth, scrolls};
  });
  return {bytes, resources, figures, cards, pre, equations, viewport,
    scrollWidth: document.scrollingElement.scrollWidth,
    mathjax: Boolean(window.MathJax && MathJax.startup),
    math: document.querySelectorAll(".math").length,
    load: nav ? nav.loadEventEnd / 1000 : null, ready: ready / 1000};
}"""


def png_dpi(data: bytes) -> float | None:
    """The horizontal dpi in a PNG's pHYs chunk, None where it has none (or no metre unit)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"pHYs" and length == 9:
            x, _, unit = struct.unpack(">IIB", data[pos + 8 : pos + 17])
            return x * 0.0254 if unit == 1 else None
        if kind in (b"IDAT", b"IEND"):
            return None  # pHYs comes before the image data
        pos += 12 + length
    return None


def image_bytes(src: str) -> tuple[bytes, str]:
    """The bytes of an <img> source (a URL on the site, or a data: URI) and its MIME type."""
    if src.startswith("data:"):
        head, _, payload = src.partition(",")
        mime = head[5:].split(";")[0]
        raw = base64.b64decode(payload) if ";base64" in head else payload.encode()
        return raw, mime
    with urllib.request.urlopen(src, timeout=10) as r:
        return r.read(), r.headers.get_content_type()


def figure_dpi(data: bytes, mime: str, natural: int, meta_width: float | None = None) -> float:
    """The dpi a figure was drawn at: pHYs, else from the output's width metadata (retina),
    else matplotlib's default; an SVG's natural size is in CSS px (96 dpi)."""
    if "svg" in mime:
        return SVG_DPI
    dpi = png_dpi(data)
    if dpi:
        return dpi
    if meta_width:  # shown at meta_width px as a figure of meta_width / 100 inches
        return DEFAULT_DPI * natural / meta_width
    return DEFAULT_DPI


def text_px(shown: float, dpi: float, natural: float) -> float:
    """The CSS px height at which 10-pt text of a figure shows."""
    return shown * dpi / natural / 72 * 10


def figure_scales(figures: list[dict], meta_widths: dict | None = None) -> list[dict]:
    """Each figure of MEASURE_JS's list with its dpi and its 10-pt text height in px."""
    rows = []
    for fig in figures:
        data, mime = image_bytes(fig["src"])
        meta = (meta_widths or {}).get((fig["natural"], fig["naturalHeight"]))
        dpi = figure_dpi(data, mime, fig["natural"], meta)
        px = text_px(fig["shown"], dpi, fig["natural"]) if fig["natural"] else 0.0
        rows.append({**fig, "dpi": dpi, "text_px": px, "bytes": len(data), "mime": mime})
    return rows


def row(page: str, m: dict, scales: list[dict]) -> dict:
    """The table's row of one page from MEASURE_JS's result and figure_scales."""
    b = m["bytes"]
    return {
        "page": page,
        "scripts+styles": b["scripts"] + b["styles"],
        "fonts": b["fonts"],
        "images": b["images"],
        "total": sum(b.values()),
        "figures": len(m["figures"]) + m["cards"],
        "10pt_px": min((s["text_px"] for s in scales), default=None),
        "load_s": m["load"],
        "ready_s": m["ready"],
    }


def table(rows: list[dict]) -> str:
    """Rows as a markdown table (kB = 1000 bytes)."""
    head = (
        "| page | scripts+styles kB | fonts kB | images kB | total kB | figures "
        "| 10 pt shows at (px) | load s | ready s |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        px = "-" if r["10pt_px"] is None else f"{r['10pt_px']:.1f}"
        lines.append(
            f"| {r['page']} | {r['scripts+styles'] / 1e3:.0f} | {r['fonts'] / 1e3:.0f} "
            f"| {r['images'] / 1e3:.0f} | {r['total'] / 1e3:.0f} | {r['figures']} | {px} "
            f"| {r['load_s']:.2f} | {r['ready_s']:.2f} |"
        )
    return "\n".join(lines)


def pages(html: Path) -> list[str]:
    """The pages to measure: those made from the README, then every notebook's."""
    found = [p for p in PAGES_FROM_README if (html / p).is_file()]
    return found + [f"notebooks/{p.name}" for p in sorted((html / "notebooks").glob("*.html"))]


def open_page(browser, url: str, width: int, height: int = 900):
    """A fresh context and page at url, at width x height CSS px, device scale 1."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, device_scale_factor=1
    )
    page = context.new_page()
    page.add_init_script("performance.setResourceTimingBufferSize(2000)")
    page.goto(url, wait_until="load")
    page.wait_for_function("() => [...document.images].every((img) => img.complete)")
    return context, page


def _serve(html: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(html)]
        + [str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(150):
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("http.server did not start")


def measure(html: Path, width: int = 1280) -> list[dict]:
    from playwright.sync_api import sync_playwright

    proc, server = _serve(html)
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for name in pages(html):
                context, page = open_page(browser, urljoin(server, name), width)
                m = page.evaluate(MEASURE_JS)
                rows.append(row(name, m, figure_scales(m["figures"])))
                context.close()
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", nargs="?", type=Path, default=SITE / "_build" / "html")
    parser.add_argument("--width", type=int, default=1280, help="viewport width, CSS px")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        sys.exit(f"no site in {args.html}: run `make site` first")
    rows = measure(args.html.resolve(), args.width)
    print(json.dumps(rows, indent=1) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
