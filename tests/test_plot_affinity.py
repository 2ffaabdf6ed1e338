"""nlviz.plot.affinity_maps: several affinity maps side by side (notebooks 02, 05)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from nlviz.plot import affinity_maps

H, W = 6, 9


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def maps(k=3, signed=False, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.random((k, H, W))
    if signed:
        m = m - 0.7
    return m * np.arange(1, k + 1)[:, None, None]  # different ranges per map


def images_of(ax):
    return ax.get_images()


def query_marks(ax):
    return [line for line in ax.get_lines() if line.get_label() == "query i"]


def test_figure_axes_and_titles():
    fig, axes = affinity_maps(maps(3), ["a", "b", "c"], query=(2, 4))
    assert len(axes) == 3
    assert [ax.get_title() for ax in axes] == ["a", "b", "c"]
    assert all(len(images_of(ax)) == 1 for ax in axes)
    assert len(fig.axes) == 4  # three panels + one shared colorbar
    assert axes[0].get_xlabel() == "x (pixel)" and axes[0].get_ylabel() == "y (pixel)"


def test_shared_scale_gives_one_colour_range():
    m = maps(3)
    fig, axes = affinity_maps(m, ["a", "b", "c"], shared_scale=True, scale="linear")
    clims = {images_of(ax)[0].get_clim() for ax in axes}
    assert clims == {(0.0, m.max())}
    _, axes = affinity_maps(m, ["a", "b", "c"])  # log by default, the floor below the maximum
    assert {images_of(ax)[0].get_clim() for ax in axes} == {(1e-3 * m.max(), m.max())}


def test_separate_scales_one_colorbar_each():
    m = maps(3)
    fig, axes = affinity_maps(list(m), ["a", "b", "c"], shared_scale=False, scale="linear")
    assert [images_of(ax)[0].get_clim() for ax in axes] == [(0.0, mk.max()) for mk in m]
    assert len(fig.axes) == 6  # a colorbar per panel


def test_query_marked_on_every_panel_including_the_image():
    image = np.random.default_rng(1).random((H, W, 3))
    fig, axes = affinity_maps(maps(2), ["a", "b"], query=(3, 5), image=image)
    assert len(axes) == 3 and axes[0].get_title() == "input"
    for ax in axes:
        (mark,) = query_marks(ax)
        assert list(mark.get_xdata()) == [5] and list(mark.get_ydata()) == [3]
    np.testing.assert_array_equal(images_of(axes[0])[0].get_array(), image)


def test_no_query_no_mark():
    _, axes = affinity_maps(maps(2), ["a", "b"])
    assert all(not query_marks(ax) for ax in axes)


def test_signed_maps_use_a_diverging_scale_centred_on_zero():
    m = maps(2, signed=True)
    assert m.min() < 0
    _, axes = affinity_maps(m, ["a", "b"], shared_scale=True)
    top = np.abs(m).max()
    for ax in axes:
        im = images_of(ax)[0]
        assert im.get_clim() == (-top, top)
        assert im.get_cmap().name == "RdBu_r"


def test_mixed_signs_with_separate_scales():
    m = np.stack([maps(1)[0], maps(1, signed=True)[0]])
    _, axes = affinity_maps(m, ["positive", "signed"], shared_scale=False)
    assert images_of(axes[0])[0].get_cmap().name == "magma"
    assert images_of(axes[0])[0].get_clim()[0] == pytest.approx(1e-3 * m[0].max())  # log
    assert images_of(axes[1])[0].get_cmap().name == "RdBu_r"
    lo, hi = images_of(axes[1])[0].get_clim()
    assert lo == -hi


def test_linear_and_signed_on_request():
    m = maps(1, signed=True)
    _, (ax,) = affinity_maps(m, ["s"], scale="linear")
    assert images_of(ax)[0].get_clim() == (0.0, np.abs(m).max())
    assert images_of(ax)[0].get_cmap().name == "magma"
    p = maps(1)
    _, (ax,) = affinity_maps(p, ["p"], scale="signed")
    assert images_of(ax)[0].get_clim() == (-p.max(), p.max())


def test_torch_maps_and_grid_layout():
    t = torch.from_numpy(maps(5))
    fig, axes = affinity_maps(t, list("abcde"), ncols=3)
    assert len(axes) == 5
    rows = {round(ax.get_position().y0, 3) for ax in axes}
    assert len(rows) == 2


def test_draws_into_given_axes():
    fig, given = plt.subplots(1, 2)
    out_fig, axes = affinity_maps(maps(2), ["a", "b"], axes=given)
    assert out_fig is fig and axes == list(given)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"maps": []}, ValueError, "maps: expected at least one"),
        ({"maps": "abc"}, TypeError, "maps: expected .* got str"),
        ({"maps": [np.zeros((H, W)), np.zeros((H, W + 1))]}, ValueError, r"maps\[1\].*like maps"),
        ({"maps": [np.zeros((H, W, 2))]}, ValueError, r"maps\[0\]: expected 2 dims"),
        ({"maps": [np.full((H, W), np.nan)]}, ValueError, "maps.*finite"),
        ({"titles": ["only one"]}, ValueError, "titles: expected 2"),
        ({"titles": "ab"}, TypeError, "titles"),
        ({"query": (H, 0)}, ValueError, "query.*0 <= y < 6"),
        ({"query": (1.5, 2)}, TypeError, "query: expected a tuple of integers"),
        ({"query": 3}, TypeError, "query"),
        ({"image": np.zeros((H + 1, W))}, ValueError, "image: expected \\(H, W\\) ="),
        ({"image": np.zeros((H, W, 5))}, ValueError, "image"),
        ({"scale": "maybe"}, ValueError, "scale: expected one of"),
        ({"shared_scale": "yes"}, TypeError, "shared_scale"),
        ({"ncols": 0}, ValueError, "ncols"),
        ({"panel_size": -1.0}, ValueError, "panel_size"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"maps": maps(2), "titles": ["a", "b"], **kwargs}
    if "maps" in kwargs and "titles" not in kwargs:
        args["titles"] = None
    with pytest.raises(error, match=match):
        affinity_maps(args.pop("maps"), args.pop("titles"), **args)


def test_wrong_number_of_axes():
    _, given = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="axes: expected 2"):
        affinity_maps(maps(2), ["a", "b"], axes=given)
