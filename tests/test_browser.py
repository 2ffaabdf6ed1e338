"""A real browser clicks the explorer of notebook 05: JupyterLab on 127.0.0.1, Debian's headless
Chromium driven by Playwright for Python.

Runs all cells of a copy of the notebook, clicks a frame of the first explorer canvas where the
notebook says (it prints the fraction of the canvas), and checks that the explorer's status
label (CSS class ``nlviz-explorer-status``) names the clicked query and that the canvas picture
changed; then presses keys on the canvas (an arrow, another, ``]``, ``m``) and checks the label
and the picture after each. Skips where chromium or playwright is missing (``.ci/run``
installs both).
Run: ``pytest -m browser tests``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_attention_across_space_and_time.ipynb"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLICK_TEXT = re.compile(
    r"click the canvas at \((?P<fx>[0-9.]+), (?P<fy>[0-9.]+)\).*to query \((?P<q>[0-9, ]+)\)"
)


def _pixels(png: bytes) -> np.ndarray:
    return imread(io.BytesIO(png), format="png")[..., :3]


def _drawn(png: bytes) -> bool:
    """The canvas shows a figure (a blank canvas is white or transparent)."""
    rgb = _pixels(png)
    return float((rgb.min(axis=-1) < 0.9).mean()) > 0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def sync_playwright():
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    api = pytest.importorskip("playwright.sync_api")
    return api.sync_playwright


@pytest.fixture(scope="module")
def lab(tmp_path_factory, sync_playwright):
    """JupyterLab in its own process group, with temporary root and JUPYTER_* dirs."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    env = dict(os.environ)
    for var, name in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
        ("IPYTHONDIR", "ipython"),
    ]:
        (base / name).mkdir()
        env[var] = str(base / name)
    labconfig = base / "config" / "labconfig"
    labconfig.mkdir()
    disabled = {"@jupyterlab/apputils-extension:announcements": True}
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    port = _free_port()
    log = (base / "lab.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--allow-root",
            f"--ServerApp.root_dir={root}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: kernels die with it
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited: {(base / 'lab.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        _wait_until(up, 60, "JupyterLab to answer")
        yield url, root
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
        log.close()


def test_click_in_the_browser_updates_label_and_canvas(lab, sync_playwright):
    url, root = lab
    name = f"explorer_{uuid.uuid4().hex[:8]}.ipynb"  # a fresh kernel, no shared state
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:  # what the page shows must come from this run
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    (root / name).write_text(json.dumps(nb))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1700, "height": 1000}, device_scale_factor=1)
            page.set_default_timeout(60_000)
            page.goto(f"{url}/lab/tree/{name}?reset")
            page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for()
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            # the notebook prints where to click; the canvas is the first on the page
            printed = page.locator(".jp-OutputArea-output", has_text="click the canvas at")
            printed.first.wait_for(state="attached")
            match = CLICK_TEXT.search(printed.first.text_content())
            assert match, printed.first.text_content()
            fx, fy = float(match["fx"]), float(match["fy"])
            query = f"({match['q']})"
            # the last cell done: the kernel is free to handle the click
            last = page.locator(".jp-OutputArea-output", has_text="Exercise 3 not attempted")
            last.first.wait_for(state="attached")
            label = page.locator(".nlviz-explorer-status").first
            assert "query (t, y, x)" in label.text_content()
            assert query not in label.text_content()  # the notebook left another query drawn
            canvas = page.locator(".jupyter-matplotlib-canvas-div").first
            canvas.scroll_into_view_if_needed()
            _wait_until(
                lambda: (canvas.bounding_box() or {}).get("width", 0) > 100,
                30,
                "the canvas to have a size (ipympl issue 472)",
            )
            before = _wait_until(
                lambda: (lambda png: png if _drawn(png) else None)(canvas.screenshot()),
                30,
                "ipympl to draw the figure on the canvas",
            )
            box = canvas.bounding_box()
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])

            _wait_until(lambda: query in label.text_content(), 30, f"the label to show {query}")
            text = label.text_content()
            assert "error" not in text, text

            def redrawn(share=0.01):  # another figure: heatmaps, arrows and title moved
                after, first = _pixels(canvas.screenshot()), _pixels(before)
                if after.shape != first.shape:
                    return False
                return float((np.abs(after - first).max(axis=-1) > 0.1).mean()) > share

            _wait_until(redrawn, 30, "the canvas to show the new query")

            # keys on the focused canvas: an arrow moves the query one cell, ] goes to the next
            # frame, m turns the mass view on; none of them reaches JupyterLab's own shortcuts
            # (m would turn the current cell into markdown)
            t, y, x = (int(v) for v in match["q"].split(","))
            markdown_cells = page.locator(".jp-MarkdownCell").count()
            for key, expected in [
                ("ArrowRight", f"({t}, {y}, {x + 1})"),
                ("ArrowDown", f"({t}, {y + 1}, {x + 1})"),
                ("BracketRight", f"({t + 1}, {y + 1}, {x + 1})"),
                ("m", "mass view"),
            ]:
                before = canvas.screenshot()
                page.keyboard.press(key)
                _wait_until(lambda e=expected: e in label.text_content(), 30, f"{key}: {expected}")
                assert "error" not in label.text_content(), label.text_content()
                # a move of one cell may keep the map: at least the star moved (~1e-4 of it)
                _wait_until(lambda: redrawn(5e-5), 30, f"the canvas to change after {key}")
            assert page.locator(".jp-MarkdownCell").count() == markdown_cells
        finally:
            browser.close()
