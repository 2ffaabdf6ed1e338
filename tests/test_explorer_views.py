"""The explorer's click path, export, mass view and keys (issue: fast clicks, save, mass view,
keyboard): the cached weights equal ``NonLocalBlock.attention`` exactly, a click validates and
embeds nothing, a redraw paints what a full draw paints, exports hold what the widget shows."""

from __future__ import annotations

import copy
import io
import re
import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.backend_bases import KeyEvent  # noqa: E402
from matplotlib.image import imread  # noqa: E402
from test_explorer import _saved_model, click, make_block, make_inputs  # noqa: E402

import nlviz.attention  # noqa: E402
import nlviz.explorer  # noqa: E402
import nlviz.figure3  # noqa: E402
import nlviz.nlm  # noqa: E402
import nlviz.plot  # noqa: E402
from nlviz import AffinityExplorer, NonLocalBlock  # noqa: E402
from nlviz.attention import Source  # noqa: E402
from nlviz.controls import _Controls  # noqa: E402
from nlviz.mass import _describe, _outline, mass_set  # noqa: E402
from nlviz.pairwise import PAIRWISE  # noqa: E402

T, SVG = 3, "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    matplotlib.pyplot.close("all")


def canvas_pixels(explorer) -> np.ndarray:
    return np.asarray(explorer.fig.canvas.buffer_rgba())[..., :3].copy()


def png_pixels(data: bytes) -> np.ndarray:
    return (imread(io.BytesIO(data))[..., :3] * 255).round().astype(np.uint8)


def press(explorer, key: str) -> None:
    canvas = explorer.fig.canvas
    canvas.callbacks.process("key_press_event", KeyEvent("key_press_event", canvas, key))


# --------------------------------------------------------------------------- the cached path


@pytest.mark.parametrize("pairwise", PAIRWISE)
@pytest.mark.parametrize("dim", [2, 3])
def test_cached_rows_equal_block_attention_exactly(pairwise, dim):
    torch.manual_seed(0)
    block = NonLocalBlock(8, pairwise=pairwise, dim=dim, scale=pairwise == "dot_product").eval()
    features, frames = make_inputs()
    if dim == 2:
        features, frames = features[:, :, 0], frames[0]
    source = Source.from_block(block, features, frames)
    block64, x64 = copy.deepcopy(block).double(), features.double()
    t_count = 1 if dim == 2 else T
    for t, y, x in [(0, 0, 0), (t_count - 1, 6, 4), (t_count // 2, 3, 1)]:
        with torch.no_grad():
            reference = block64.attention(x64, (t, y, x) if dim == 3 else (y, x))[0].numpy()
        cached = source._weights((t, y, x))
        assert np.array_equal(cached, reference.reshape(cached.shape))  # bit for bit


def test_a_click_checks_and_embeds_nothing(monkeypatch):
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(make_block(), features, frames)
    nlm = AffinityExplorer.from_nlm(frames, patch_size=3, patch_distance=2, h=0.3)
    calls = []
    for module in (nlviz.attention, nlviz.explorer, nlviz.figure3, nlviz.nlm, nlviz.plot):
        for name in ("check_int", "check_real", "check_bool", "check_choice", "check_query",
                     "check_finite", "check_tensor", "_check_tensor", "as_array"):  # fmt: skip
            if hasattr(module, name):
                monkeypatch.setattr(module, name, lambda *a, _n=name, **k: calls.append(_n))
    monkeypatch.setattr(NonLocalBlock, "embed", lambda *a: calls.append("embed"))
    monkeypatch.setattr(torch, "isfinite", lambda *a: calls.append("isfinite"))
    for e in (explorer, nlm):
        click(e, 2, 13.0, 9.0)
        press(e, "left")
        press(e, "m")
    assert explorer.query == nlm.query[:1] + (3, 1) and calls == []
    assert nlm.query == (2, 13, 8) and nlm.mass == 0.6


# --------------------------------------------------------------------------- redraw and export


@pytest.mark.parametrize(
    "options", [{}, {"mass": 0.6}, {"scale": "linear", "shared_scale": False}, {"ncols": 2}]
)
def test_redraw_paints_what_a_full_draw_paints(options):
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(make_block(), features, frames, k=5, **options)
    explorer.fig.canvas.draw()
    for query in [(0, 1, 1), (2, 6, 4), (1, 3, 0)]:
        explorer.select(*query)
        explorer.redraw()
        fast = canvas_pixels(explorer)
        assert np.array_equal(fast, png_pixels(explorer.png()))  # a fresh full draw
    explorer.mass = 0.3  # a new view: the fixed part is drawn again
    explorer.redraw()
    assert np.array_equal(canvas_pixels(explorer), png_pixels(explorer.png()))


def test_a_redraw_changes_only_the_frames_and_the_query_line():
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(make_block(), features, frames, k=5)
    explorer.fig.canvas.draw()
    before = canvas_pixels(explorer)
    explorer.select(0, 0, 0)
    explorer.redraw()
    changed = (canvas_pixels(explorer) != before).any(-1)
    bar = explorer.colorbar.ax.get_window_extent()
    h = changed.shape[0]
    assert changed.any()  # the new query is drawn ...
    assert not changed[int(h - bar.y1) : int(h - bar.y0), int(bar.x0) : int(bar.x1)].any()


def test_save_writes_png_svg_pdf_of_the_drawn_state(tmp_path):
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(make_block(), features, frames, k=5)
    explorer.select(2, 6, 4)
    explorer.fig.canvas.draw()
    shown = canvas_pixels(explorer)
    png = explorer.save(tmp_path / "view.png", dpi=int(explorer.fig.dpi))
    assert np.array_equal(png_pixels(png.read_bytes()), shown)
    big = explorer.save(tmp_path / "big.png")  # 200 dpi by default, for slides
    assert png_pixels(big.read_bytes()).shape[1] == 2 * shown.shape[1]
    explorer.select(1, 1, 1)  # the canvas after a save: a click still redraws it right
    explorer.redraw()
    assert np.array_equal(canvas_pixels(explorer), png_pixels(explorer.png()))
    root = ET.parse(explorer.save(tmp_path / "view.svg")).getroot()
    images = root.findall(f".//{SVG}image")
    assert len(images) == T + 1  # each frame (picture and weights) as one image, the colour bar
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "query (t, y, x) = (1, 1, 1)" in texts and "embedded_gaussian" in texts  # as text
    assert "÷ its max" in texts  # the colour bar's label
    assert len(root.findall(f".//{SVG}g[@id='arrows']")) == T  # the top-k marks
    again = explorer.save(tmp_path / "again.svg").read_bytes()  # no date, fixed ids: same bytes
    assert again == (tmp_path / "view.svg").read_bytes()
    (tmp_path / "again.svg").unlink()
    pdf = explorer.save(tmp_path / "view.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1
    with pytest.raises(FileExistsError, match="overwrite"):
        explorer.save(tmp_path / "view.png")
    explorer.save(tmp_path / "view.png", overwrite=True)
    with pytest.raises(ValueError, match="path"):
        explorer.save(tmp_path / "view.jpg")
    with pytest.raises(ValueError, match="dpi"):
        explorer.save(tmp_path / "other.png", dpi=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "big.png", "view.pdf", "view.png", "view.svg"
    ]  # fmt: skip


def test_compare_mode_exports_every_row(tmp_path):
    features, frames = make_inputs()
    learned = AffinityExplorer.from_block(make_block(), features, frames, name="learned")
    nlm = AffinityExplorer.from_nlm(frames, patch_size=3, patch_distance=3, h=0.5)
    both = AffinityExplorer.compare(learned, nlm)
    root = ET.parse(both.save(tmp_path / "both.svg")).getroot()
    assert len(root.findall(f".//{SVG}image")) == 2 * T + 2
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "learned" in texts and "non-local means" in texts  # each row named


@pytest.mark.parametrize("t", [1, 3, 4, 8])
def test_figures_fit_the_course_column_with_readable_text(t):
    # the course site shows notebooks in a 688 px column, an output image in 672 px of it
    # (6.5 in at 100 px per inch, with room): a wider figure is shrunk, and its text with it
    features, frames = make_inputs(t)
    learned = AffinityExplorer.from_block(make_block(), features, frames, name="learned")
    nlm = AffinityExplorer.from_nlm(frames, patch_size=3, patch_distance=3, h=0.5)
    fig3, _ = nlviz.figure3.figure3(learned, [(0, 1, 1), (t - 1, 2, 2)])
    for fig in (learned.fig, AffinityExplorer.compare(learned, nlm).fig, fig3):
        fig.draw_without_rendering()
        assert fig.get_size_inches()[0] <= 6.5
        sizes = [x.get_fontsize() for x in fig.findobj(matplotlib.text.Text) if x.get_text()]
        assert min(sizes) >= 9, sorted(set(sizes))


def test_the_save_button_writes_into_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(make_block(), features, frames, name="my block")
    controls = _Controls(explorer)
    explorer.controls = controls
    controls.save.click()
    controls.format.value = "svg"
    controls.save.click()
    controls.format.value = "png"
    controls.save.click()  # a second png: a new name, nothing overwritten
    names = sorted(p.name for p in tmp_path.iterdir())
    stem = "my-block_t1_y3_x2"
    assert names == [f"{stem}-2.png", f"{stem}.png", f"{stem}.svg"]
    assert f"saved {stem}-2.png" in explorer.status.value and str(tmp_path) in explorer.status.value


# --------------------------------------------------------------------------- the mass view


def test_mass_set_is_the_smallest_set_holding_the_share():
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = rng.random((3, 4, 5)) ** 4
        share = float(rng.uniform(0.05, 1))
        mask, inside = mass_set(w, share)
        held = w[mask].sum() / w.sum()
        assert held >= share - 1e-12 and inside.sum() == pytest.approx(held)
        assert held - w[mask].min() / w.sum() < share  # without its smallest: not enough
        assert w[mask].min() >= w[~mask].max(initial=0)  # the largest weights, no gaps
    assert mass_set(w, 1.0)[0].all()
    mask, inside = mass_set(np.zeros((2, 3, 3)), 0.6)
    assert not mask.any() and np.isnan(inside).all()  # a dead ReLU: no mass
    signed = np.array([[[0.5, -2.0, 0.1]]])  # the dot product: counted by |w|
    assert mass_set(signed, 0.5)[0].tolist() == [[[False, True, False]]]
    assert "|w|" in _describe(*mass_set(signed, 0.5), 0.5, True)
    assert _describe(None, None, None, False) == ""


def test_outline_goes_around_the_cells():
    assert len(_outline(np.array([[1]]))) == 4
    assert len(_outline(np.array([[1, 1], [0, 0]]))) == 6
    assert len(_outline(np.array([[1, 0], [0, 1]]))) == 8  # two cells touching at a corner
    assert len(_outline(np.zeros((3, 3)))) == 0


@pytest.mark.parametrize("pairwise", PAIRWISE)
def test_mass_view_draws_only_the_set(pairwise):
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(make_block(pairwise), features, frames)
    w = explorer.select(1, 3, 2, mass=0.6)
    strip = explorer.strips[0]
    assert explorer.mass == 0.6
    if not np.abs(w).any():  # concatenation may leave a query no weight at all
        assert "no weight" in explorer.status.value and not strip.mask.any()
        return
    assert np.array_equal(strip.mask, mass_set(w, 0.6)[0])
    for t, (im, ax) in enumerate(zip(explorer.heatmaps, explorer.frame_axes, strict=True)):
        assert (im.get_array()[~strip.mask[t], 3] == 0).all()  # transparent outside the set
        assert ax.get_title() == f"t={t}: {strip.inside[t]:.0%} in mask"
        assert strip.outlines[t].get_visible() == bool(strip.mask[t].any())
    assert "mass view" in explorer.status.value and "mass view" in explorer.fig.texts[-1].get_text()
    explorer.select(1, 3, 2, mass=0)
    assert explorer.mass is None and strip.mask is None
    assert not any(o.get_visible() for o in strip.outlines)
    with pytest.raises(ValueError, match="mass"):
        explorer.select(0, 0, 0, mass=1.5)
    with pytest.raises(TypeError, match="mass"):
        explorer.mass = "most"


def test_mass_view_for_nlm_and_checkpoints(tmp_path):
    from nlviz.video import generate

    _, frames = make_inputs()
    nlm = AffinityExplorer.from_nlm(frames, patch_size=3, patch_distance=2, h=0.3, mass=0.5)
    assert nlm.strips[0].mask.sum() >= 1 and "mass view" in nlm.status.value
    path = tmp_path / "model.pt"
    _saved_model(path, variant="spacetime", pairwise="embedded_gaussian", blocks=1, width=4)
    video = generate(1, split="test", frames=4, size=32).videos[0]
    trained = AffinityExplorer.from_checkpoint(path, video, mass=0.9)
    assert trained.strips[0].inside.sum() >= 0.9 - 1e-9
    assert "model.pt" in trained.fig.get_suptitle()  # which model and block, in the title


# --------------------------------------------------------------------------- keys


def test_keys_move_the_query_change_the_frame_and_toggle_the_mass_view():
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(make_block(), features, frames, query=(1, 3, 2))
    moves = [("right", (1, 3, 3)), ("down", (1, 4, 3)), ("left", (1, 4, 2)), ("up", (1, 3, 2)),
             ("]", (2, 3, 2)), ("]", (2, 3, 2)), ("[", (1, 3, 2)), ("[", (0, 3, 2)),
             ("[", (0, 3, 2))]  # fmt: skip
    for key, expected in moves:  # one cell of the query grid at a time, stopping at the edges
        press(explorer, key)
        assert explorer.query == expected, key
        assert f"({expected[0]}, {expected[1]}, {expected[2]})" in explorer.status.value
    for _ in range(10):
        press(explorer, "right")
    assert explorer.query == (0, 3, 4)
    press(explorer, "m")
    assert explorer.mass == 0.6 and "mass view" in explorer.status.value
    press(explorer, "m")
    assert explorer.mass is None
    explorer.mass = 0.3
    press(explorer, "m")
    press(explorer, "m")
    assert explorer.mass == 0.3  # m turns back on the share last used
    press(explorer, "l")  # matplotlib's own keys are off: "l" would make the y axis log
    press(explorer, "k")
    assert explorer.frame_axes[0].get_yscale() == "linear" and explorer.query == (0, 3, 4)
