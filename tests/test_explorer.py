"""AffinityExplorer: clicks and sliders map to the right query and weights; bad input; the
static Figure-3 helpers. Agg backend, simulated clicks (public MouseEvent + callbacks)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.backend_bases import MouseEvent  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402

from nlviz import AffinityExplorer, NonLocalBlock  # noqa: E402
from nlviz.attention import Geometry  # noqa: E402
from nlviz.explorer import ERROR_CLASS, STATUS_CLASS  # noqa: E402
from nlviz.figure3 import _top_k, figure3  # noqa: E402
from nlviz.nlm import nlm_weights  # noqa: E402
from nlviz.pairwise import PAIRWISE  # noqa: E402
from nlviz.plot import save_figure, weight_cmap  # noqa: E402

T, C, GRID_H, GRID_W, STRIDE = 3, 8, 7, 5, 4  # odd grid: the pooled last row/column is cut


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def make_block(pairwise: str = "embedded_gaussian", **kwargs) -> NonLocalBlock:
    torch.manual_seed(0)
    return NonLocalBlock(C, pairwise=pairwise, **kwargs).eval()


def make_inputs(t: int = T) -> tuple[torch.Tensor, np.ndarray]:
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(1, C, t, GRID_H, GRID_W, generator=gen)
    frames = np.random.default_rng(2).random((t, GRID_H * STRIDE, GRID_W * STRIDE))
    return features, frames


def click(explorer, t: int, py: float, px: float, button: int = 1, row: int = 0) -> None:
    """Press at display pixel (py, px) of frame t (of row ``row``), as a user would."""
    fig = explorer.fig
    fig.draw_without_rendering()  # applies the axes' aspect, as a draw on screen would
    x, y = explorer.strips[row].axes[t].transData.transform((px, py))
    event = MouseEvent("button_press_event", fig.canvas, x, y, button=button)
    fig.canvas.callbacks.process("button_press_event", event)


def heat_data(explorer) -> list[np.ndarray]:
    return [np.ma.getdata(w).copy() for w in explorer.strips[0].shown]


def arrows(ax) -> list:
    """The tips (x, y) of the arrows drawn in ``ax`` (one polygon each, the tip its 4th point)."""
    fans = [c for c in ax.collections if c.get_gid() == "arrows" and c.get_visible()]
    return [tuple(path.vertices[3]) for fan in fans for path in fan.get_paths()]


def colours(weights, norm, signed=False) -> np.ndarray:
    """The RGBA bytes a heatmap shows for ``weights`` under ``norm``."""
    return weight_cmap(signed, overlay=True)(norm(weights.reshape(-1)), bytes=True).reshape(
        *weights.shape, 4
    )


# --------------------------------------------------------------------------- clicks


@pytest.mark.parametrize("pairwise", PAIRWISE)
def test_clicks_on_every_frame_give_the_cell_and_block_attention(pairwise):
    block = make_block(pairwise)
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(block, features, frames)
    assert len(explorer.frame_axes) == T
    # pixel centres, cell corners and the last pixel; cell = pixel // stride
    pixels = [(0, 0), (3, 3), (4, 4), (13.4, 6.6), (27, 19), (STRIDE * 5 + 1, STRIDE * 2 + 3)]
    for t in range(T):
        for py, px in pixels:
            click(explorer, t, py, px)
            expected = (t, int(round(py)) // STRIDE, int(round(px)) // STRIDE)
            assert explorer.query == expected
            with torch.no_grad():
                reference = block.attention(features, expected)[0].numpy()
            assert explorer.weights.shape == reference.shape == (T, 4, 3)
            np.testing.assert_allclose(explorer.weights, reference, rtol=1e-4, atol=1e-6)
            assert pairwise in explorer.fig.get_suptitle()
            assert f"({expected[0]}, {expected[1]}, {expected[2]})" in explorer.status.value


def test_select_draws_what_it_returns():
    block = make_block()
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(block, features, frames, k=7, scale="linear")
    weights = explorer.select(2, 6, 4)
    assert weights is explorer.weights
    for t, data in enumerate(heat_data(explorer)):
        np.testing.assert_array_equal(data, weights[t])
    # shared scale: one colour range for all frames, ending at the largest weight; the colour
    # bar gives it as a fraction of the largest (printed above the frames)
    top = weights.max()
    for t, im in enumerate(explorer.heatmaps):
        np.testing.assert_array_equal(im.get_array(), colours(weights[t], Normalize(0, top)))
    assert explorer.colorbar.mappable.get_clim() == pytest.approx((0, 1))
    assert "÷ its max" in explorer.colorbar.ax.get_ylabel()
    assert f"largest weight {top:.3g}" in explorer.fig.texts[-1].get_text()
    # the query sits at the centre of cell (6, 4): a filled star in frame 2, hollow elsewhere
    centre = [4 * STRIDE + 1.5, 6 * STRIDE + 1.5]
    for t, star in enumerate(explorer.strips[0].stars):
        assert star.get_xydata().tolist() == [centre]
        assert (star.get_markerfacecolor() == "none") == (t != 2)
    # 7 arrows to the 7 largest weights, each inside the frame it ends in, from the query's place
    assert len(explorer.arrows) == 7
    tt, yk, xk, _ = _top_k(weights, 7)
    order = np.argsort(-weights.reshape(-1), kind="stable")[:7]
    assert sorted(np.ravel_multi_index((tt, yk, xk), weights.shape)) == sorted(order)
    for arrow, t in zip(explorer.arrows, tt, strict=True):
        assert arrow[0] == t and arrow[1] == tuple(centre)
    fans = explorer.strips[0].fans  # one polygon per arrow, in the frame it ends in
    assert [len(fans[t].get_paths()) for t in range(T)] == [int((tt == t).sum()) for t in range(T)]


def test_per_frame_scale_and_k():
    block = make_block()
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(
        block, features, frames, shared_scale=False, scale="linear"
    )
    w = explorer.select(1, 2, 2)
    for t, im in enumerate(explorer.heatmaps):
        np.testing.assert_array_equal(im.get_array(), colours(w[t], Normalize(0, w[t].max())))
    assert "each frame" in explorer.colorbar.ax.get_ylabel()
    explorer.shared_scale = True
    np.testing.assert_array_equal(
        explorer.heatmaps[0].get_array(), colours(w[0], Normalize(0, w.max()))
    )
    assert "each frame" not in explorer.colorbar.ax.get_ylabel()
    explorer.scale = "log"  # the default for non-negative weights: a floor below the maximum
    norm = LogNorm(1e-3 * w.max(), w.max())
    np.testing.assert_array_equal(explorer.heatmaps[0].get_array(), colours(w[0], norm))
    assert "log" in explorer.colorbar.ax.get_ylabel()
    assert explorer.colorbar.mappable.get_clim() == pytest.approx((1e-3, 1))
    explorer.k = 0
    assert explorer.arrows == []
    explorer.k = 5
    assert len(explorer.arrows) == 5


def test_key_cells_cover_two_feature_cells():
    """Pooled cell (y', x') covers feature cells 2y'..2y'+1: its arrow lands there."""
    geo = Geometry.create((T, GRID_H * STRIDE, GRID_W * STRIDE), (GRID_H, GRID_W), (2, 2))
    assert geo.j_shape == (T, 4, 3)
    assert geo.j_extent == (-0.5, -0.5 + 3 * 8, -0.5 + 4 * 8, -0.5)
    for yk in range(4):
        for xk in range(3):
            py, px = geo.pixel_of_j(yk, xk)
            y, x = geo.cell_of_pixel(float(py), float(px))
            assert (y // 2, x // 2) == (yk, xk)
    # the last row of an odd grid is a pool of one feature row: its centre is that row's
    py, _ = geo.pixel_of_j(3, 0)
    assert float(py) == pytest.approx(geo.pixel_of_cell(6, 0)[0])

    def one_hot(t, y, x):
        w = np.zeros(geo.j_shape)
        w[0, 3, 2] = 1.0
        return w

    explorer = AffinityExplorer(
        np.zeros(geo.frames_shape), one_hot, grid_shape=(GRID_H, GRID_W), pool=(2, 2), k=1
    )
    (target,) = explorer.strips[0].circles[0].get_offsets()
    assert explorer.geometry.cell_of_pixel(target[1], target[0]) == (6, 4)


def test_no_arrows_to_keys_tied_at_the_minimum():
    frames = np.zeros((2, 4, 4))
    weights = np.zeros((2, 4, 4))
    explorer = AffinityExplorer(frames, lambda t, y, x: weights, k=5)
    assert explorer.arrows == []  # an all-zero map (a dead ReLU) ranks nothing
    weights[1, 2, 3], weights[0, 0, 0] = 0.5, 0.25
    explorer.select(0, 1, 1)
    assert len(explorer.arrows) == 2


def test_click_fraction_is_where_a_click_lands():
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(make_block(), features, frames)
    fx, fy = explorer.click_fraction(2, 5, 1)
    assert 0 < fx < 1 and 0 < fy < 1
    width, height = explorer.fig.canvas.get_width_height()
    event = MouseEvent(
        "button_press_event", explorer.fig.canvas, fx * width, (1 - fy) * height, button=1
    )
    explorer.fig.canvas.callbacks.process("button_press_event", event)
    assert explorer.query == (2, 5, 1)


def test_other_buttons_and_other_axes_are_ignored():
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(make_block(), features, frames)
    before = explorer.query
    click(explorer, 0, 5, 5, button=3)
    assert explorer.query == before
    x, y = explorer.colorbar.ax.transAxes.transform((0.5, 0.5))
    explorer.fig.canvas.callbacks.process(
        "button_press_event", MouseEvent("button_press_event", explorer.fig.canvas, x, y, button=1)
    )
    assert explorer.query == before


# --------------------------------------------------------------------------- widgets


def test_sliders_drive_the_same_path():
    block = make_block("dot_product")
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(block, features, frames)
    widget = explorer.widget
    controls = explorer.controls
    assert STATUS_CLASS in explorer.status._dom_classes
    assert explorer.status in widget.children
    controls.t.value, controls.y.value, controls.x.value = 2, 6, 0
    assert explorer.query == (2, 6, 0)
    with torch.no_grad():
        reference = block.attention(features, (2, 6, 0))[0].numpy()
    np.testing.assert_allclose(explorer.weights, reference, rtol=1e-4, atol=1e-6)
    controls.k.value = 3
    assert explorer.k == 3 and len(explorer.arrows) == 3
    controls.scale.value = "linear"
    assert explorer.scale == "linear"
    # a click moves the sliders with it
    click(explorer, 1, 9, 17)
    assert (controls.t.value, controls.y.value, controls.x.value) == (1, 2, 4)


def test_a_failing_query_keeps_the_last_good_state():
    frames = np.random.default_rng(0).random((2, 6, 6))

    def fussy(t, y, x):
        if (y, x) == (0, 0):
            return np.full((2, 6, 6), np.nan)
        w = np.zeros((2, 6, 6))
        w[t, y, x] = 1.0
        return w

    explorer = AffinityExplorer(frames, fussy, query=(1, 3, 3))
    assert explorer.widget is not None  # builds the sliders
    controls = explorer.controls
    drawn = heat_data(explorer)
    click(explorer, 0, 0, 0)  # the source returns NaN there: no exception, a message
    assert explorer.query == (1, 3, 3)
    assert explorer.status.value.startswith("error") and "finite" in explorer.status.value
    assert ERROR_CLASS in explorer.status._dom_classes
    for before, after in zip(drawn, heat_data(explorer), strict=True):
        np.testing.assert_array_equal(before, after)
    controls.y.value = 0  # (1, 0, 3): fine
    assert explorer.query == (1, 0, 3)
    controls.x.value = 0  # (1, 0, 0): NaN again, through the sliders
    assert explorer.query == (1, 0, 3)
    assert (controls.y.value, controls.x.value) == (0, 3)  # sliders back on the drawn query
    assert ERROR_CLASS in explorer.status._dom_classes
    click(explorer, 0, 5, 4)  # a good click clears the error
    assert explorer.query == (0, 5, 4)
    assert ERROR_CLASS not in explorer.status._dom_classes


def test_click_outside_the_frame_is_reported():
    frames = np.zeros((1, 8, 8))
    explorer = AffinityExplorer(frames, lambda t, y, x: np.ones((1, 8, 8)) / 64)
    explorer.frame_axes[0].set_xlim(-10, 20)  # zoomed out: the axes show more than the frame
    before = explorer.query
    click(explorer, 0, 3, 15)
    assert explorer.query == before
    assert "outside" in explorer.status.value


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_naming_the_argument():
    block = make_block()
    features, frames = make_inputs()
    with pytest.raises(ValueError, match="features.*T=3"):
        AffinityExplorer.from_block(block, features[:, :, :2], frames)
    with pytest.raises(ValueError, match="features.*aspect"):
        AffinityExplorer.from_block(block, features, frames[:, :, :-4])
    bad = features.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="features.*finite"):
        AffinityExplorer.from_block(block, bad, frames)
    with pytest.raises(ValueError, match="features.*channels"):
        AffinityExplorer.from_block(block, features[:, :4], frames)
    with pytest.raises(TypeError, match="features"):
        AffinityExplorer.from_block(block, features.numpy(), frames)
    with pytest.raises(TypeError, match="block"):
        AffinityExplorer.from_block("block", features, frames)
    with pytest.raises(ValueError, match="frames"):
        AffinityExplorer.from_block(block, features, frames[..., None, None])
    with pytest.raises(ValueError, match="frames.*finite"):
        AffinityExplorer(np.full((1, 4, 4), np.inf), lambda t, y, x: np.ones((1, 4, 4)))
    with pytest.raises(TypeError, match="affinity_fn"):
        AffinityExplorer(frames, "not callable")
    with pytest.raises(ValueError, match="affinity_fn.*shape"):
        AffinityExplorer(frames, lambda t, y, x: np.ones((T, 3, 3)))
    with pytest.raises(ValueError, match="k"):
        AffinityExplorer.from_block(block, features, frames, k=-1)


def test_query_outside_the_grid_raises_and_keeps_the_drawing():
    block = make_block()
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(block, features, frames)
    weights, query, drawn = explorer.weights, explorer.query, heat_data(explorer)
    for bad, name in [((T, 0, 0), "t"), ((0, GRID_H, 0), "y"), ((0, 0, -1), "x")]:
        with pytest.raises(ValueError, match=f"^{name}: expected an integer"):
            explorer.select(*bad)
    with pytest.raises(TypeError, match="^y: expected an integer"):
        explorer.select(0, 1.5, 0)
    with pytest.raises(ValueError, match="^py: expected a number <="):
        explorer.select_pixel(0, 100.0, 3.0)
    assert explorer.weights is weights and explorer.query == query
    for before, after in zip(drawn, heat_data(explorer), strict=True):
        np.testing.assert_array_equal(before, after)


# --------------------------------------------------------------------------- other sources


def test_from_nlm_matches_nlm_weights_on_the_query_frame():
    rng = np.random.default_rng(3)
    video = rng.random((2, 20, 20))
    explorer = AffinityExplorer.from_nlm(
        video, patch_size=3, patch_distance=4, h=0.3, per_frame=True
    )
    click(explorer, 1, 7, 12)
    assert explorer.query == (1, 7, 12)
    expected = nlm_weights(video[1], query=(7, 12), patch_size=3, patch_distance=4, h=0.3)
    np.testing.assert_allclose(explorer.weights[1], expected)
    assert np.all(explorer.weights[0] == 0)
    assert explorer.weights.sum() == pytest.approx(1.0)
    image = AffinityExplorer.from_nlm(video[0], patch_size=3, patch_distance=4, h=0.3)
    assert image.geometry.frames_shape == (1, 20, 20)
    with pytest.raises(ValueError, match="patch_size"):
        AffinityExplorer.from_nlm(video, patch_size=4)


def test_compare_sends_one_pixel_to_both_grids():
    block = make_block()
    features, frames = make_inputs()
    learned = AffinityExplorer.from_block(block, features, frames)
    nlm = AffinityExplorer.from_nlm(frames, patch_size=3, patch_distance=3, h=0.5, per_frame=True)
    both = AffinityExplorer.compare(learned, nlm)
    assert isinstance(both, AffinityExplorer) and len(both.strips) == 2
    w_block = both.select(1, 3, 2)  # cell (3, 2) of the feature grid, stride 4
    w_nlm = both.all_weights[1]
    # its centre, pixel (13.5, 9.5), is the corner of 4 pixels: the lower-right one is taken
    assert both.queries == [(1, 3, 2), (1, 14, 10)]
    with torch.no_grad():
        np.testing.assert_allclose(
            w_block, block.attention(features, (1, 3, 2))[0].numpy(), rtol=1e-4, atol=1e-6
        )
    np.testing.assert_allclose(
        w_nlm[1], nlm_weights(frames[1], query=(14, 10), patch_size=3, patch_distance=3, h=0.5)
    )
    click(both, 2, 26, 3, row=1)  # a click on the NLM row moves the learned one too
    assert both.queries == [(2, 6, 0), (2, 26, 3)]
    assert STATUS_CLASS in both.status._dom_classes and "(2, 6, 0)" in both.status.value
    with pytest.raises(ValueError, match="explorers: expected frames"):
        AffinityExplorer.compare(learned, AffinityExplorer.from_nlm(frames[:2], per_frame=True))


def _saved_model(path, **model_config):
    """A fresh VideoNet (seed 0), saved as a checkpoint at ``path``; returns the model."""
    from nlviz.checkpoint import FORMAT
    from nlviz.train import save_checkpoint
    from nlviz.video import VideoNet

    torch.manual_seed(0)
    model = VideoNet(**model_config).eval()
    checkpoint = {
        "format": FORMAT,
        "model": model_config,
        "state_dict": model.state_dict(),
        "config": {},
        "metrics": {"val_acc": 0.5},
    }
    save_checkpoint(checkpoint, path)
    return model


def test_from_checkpoint_explores_the_trained_block(tmp_path):
    from nlviz.video import generate, to_tensor

    path = tmp_path / "model.pt"
    model = _saved_model(path, variant="spacetime", pairwise="dot_product", blocks=1, width=4)
    video = generate(1, split="test", frames=4, size=32).videos[0]
    explorer = AffinityExplorer.from_checkpoint(path, video)
    captured = {}
    block = model.nonlocal_blocks()[0].block
    handle = block.register_forward_pre_hook(lambda m, inputs: captured.update(x=inputs[0]))
    with torch.no_grad():
        model(to_tensor(video[None]))
        handle.remove()
    h, w = captured["x"].shape[-2:]
    assert explorer.sources[0].geometry.grid_shape == (h, w)
    assert explorer.sources[0].geometry.stride == (32 / h, 32 / w)  # the backbone's stride
    query = (3, h - 1, w // 2)
    with torch.no_grad():
        reference = block.attention(captured["x"], query)[0].numpy()
    np.testing.assert_allclose(explorer.select(*query), reference, rtol=1e-4, atol=1e-6)
    assert "dot_product" in explorer.sources[0].name
    with pytest.raises(ValueError, match="video"):
        AffinityExplorer.from_checkpoint(path, video.astype(np.float32))
    with pytest.raises(FileNotFoundError):
        AffinityExplorer.from_checkpoint(tmp_path / "missing.pt", video)


# --------------------------------------------------------------------------- static helpers


def test_static_helpers_save_and_refuse_to_overwrite(tmp_path):
    block = make_block()
    features, frames = make_inputs()
    explorer = AffinityExplorer.from_block(block, features, frames)
    fig, rows = figure3(explorer, [(0, 1, 1), (2, 5, 3)], k=4)
    assert len(rows) == 2 and all(len(r) == T for r in rows)
    png = save_figure(fig, tmp_path / "fig3.png")
    pdf = save_figure(fig, tmp_path / "fig3.pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    content = png.read_bytes()
    fig2, (axes,) = figure3(explorer, [(1, 1, 1)], k=2)
    assert len(axes) == T
    with pytest.raises(FileExistsError, match="overwrite"):
        save_figure(fig2, png)
    assert png.read_bytes() == content
    save_figure(fig2, png, overwrite=True)
    assert png.read_bytes() != content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig3.pdf", "fig3.png"]  # no temp files
    with pytest.raises(ValueError, match="path"):
        save_figure(fig, tmp_path / "fig3.jpg")
    with pytest.raises(ValueError, match="query"):
        figure3(explorer, [(0, 99, 0)])
    with pytest.raises(TypeError, match="explorer"):
        figure3("explorer", [(0, 0, 0)])


def test_compare_draws_one_row_per_source():
    features, frames = make_inputs()
    learned = AffinityExplorer.from_block(make_block(), features, frames, k=3)
    dot = AffinityExplorer.from_block(make_block("dot_product"), features, frames, k=3)
    nlm = AffinityExplorer.from_nlm(frames, patch_size=3, patch_distance=3, h=0.5, per_frame=True)
    three = AffinityExplorer.compare(learned, dot, nlm)
    three.select(1, 3, 2)
    assert len(three.strips) == 3  # 3 arrows per row, each inside the frame it ends in
    assert [sum(len(arrows(ax)) for ax in s.axes) for s in three.strips] == [3, 3, 3]
    w = nlm.affinity(1, 14, 10)  # the NLM row shows these weights, on a log scale
    norm = LogNorm(1e-3 * w.max(), w.max())
    np.testing.assert_array_equal(three.strips[2].heat[1].get_array(), colours(w[1], norm))
    with pytest.raises(ValueError, match="explorers: expected frames"):
        AffinityExplorer.compare(learned, AffinityExplorer.from_nlm(frames[:2], per_frame=True))


def test_from_checkpoint_numbers_blocks_in_network_order(tmp_path):
    from nlviz.video import generate

    path = tmp_path / "three.pt"
    _saved_model(path, variant="spacetime", pairwise="embedded_gaussian", blocks=3, width=4)
    video = generate(1, split="test", frames=4, size=32).videos[0]
    # blocks 0, 1 after res3.0, res3.1 (8x8 grid, stride 4); block 2 after res4.0 (4x4, stride 8)
    for block, grid, place in [(0, 8, "res3.0"), (1, 8, "res3.1"), (2, 4, "res4.0")]:
        explorer = AffinityExplorer.from_checkpoint(path, video, block=block)
        assert explorer.sources[0].geometry.grid_shape == (grid, grid)
        assert explorer.sources[0].geometry.j_shape == (4, grid // 2, grid // 2)
        assert f"block {block} after {place}" in explorer.sources[0].name
        explorer.close()
    with pytest.raises(ValueError, match="block"):
        AffinityExplorer.from_checkpoint(path, video, block=3)


def test_peaked_softmax_keeps_the_ranking_of_its_keys():
    """Rows are computed in float64: where float32 rounds a peaked softmax to exact zeros (ties
    that rank nothing), the explorer still ranks every key, in the order of the logits."""
    block = make_block()
    features, frames = make_inputs()
    features = features * 20  # logits spread by ~550: exp underflows in float32, not float64
    query = (1, 3, 2)
    with torch.no_grad():
        single = block.attention(features, query)[0].numpy()
    assert (single == 0).sum() > single.size // 2  # the float32 row is mostly ties at 0
    explorer = AffinityExplorer.from_block(block, features, frames, k=20)
    weights = explorer.affinity(*query)
    assert weights.dtype == np.float64 and (weights > 0).all()
    np.testing.assert_allclose(weights, single, atol=1e-6)  # the same weights, to float32
    with torch.no_grad():
        theta, phi, _ = block.embed(features)
    i = (query[0] * GRID_H + query[1]) * GRID_W + query[2]
    logits = (theta[0, i].double() @ phi[0].double().T).numpy().reshape(weights.shape)
    order = np.argsort(-logits.ravel(), kind="stable")[:20]
    tt, yk, xk, _ = _top_k(weights, 20)
    assert np.ravel_multi_index((tt, yk, xk), weights.shape).tolist() == order.tolist()
    explorer.select(*query)
    # marked: the top 20 that one can see, weight >= 1e-3 of the largest (not ranks at 1e-24)
    visible = int((weights >= 1e-3 * weights.max()).sum())
    assert len(explorer.arrows) == min(20, visible) >= 1
