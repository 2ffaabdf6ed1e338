"""Tests of nlviz.plot's static helpers: show_weights and image_grid."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from nlviz.nlm import nlm_weights
from nlviz.plot import image_grid, show_weights


@pytest.fixture(autouse=True)
def _agg_and_close():
    backend = plt.get_backend()
    plt.switch_backend("agg")
    yield
    plt.close("all")
    plt.switch_backend(backend)


def _image(shape=(24, 30)):
    rng = np.random.default_rng(0)
    return np.clip(0.5 + 0.1 * rng.standard_normal(shape), 0, 1)


def _colorbar_axes(fig, ax):
    return [a for a in fig.axes if a is not ax]


def test_show_weights_draws_image_weights_query_and_colorbar():
    image = _image()
    q = (10, 12)
    w = nlm_weights(image, q, 3, 4, 0.2)
    fig, ax = show_weights(image, w, q, patch_size=3, patch_distance=4, log=False)
    assert ax.figure is fig
    assert len(ax.images) == 2  # the image and the weights over it
    (marker,) = [ln for ln in ax.lines if ln.get_label() == "query pixel i"]
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (12, 10)  # x, y
    labels = {p.get_label() for p in ax.patches}
    assert {"search window", "query patch"} <= labels
    (window,) = [p for p in ax.patches if p.get_label() == "search window"]
    assert (window.get_width(), window.get_height()) == (9, 9)
    (cax,) = _colorbar_axes(fig, ax)
    assert "weight" in cax.get_ylabel()
    assert ax.get_xlabel() == "x (pixel)" and ax.get_ylabel() == "y (pixel)"
    assert "(10, 12)" in ax.get_title()
    # opacity is 0 where the weight is 0 (outside the window), so the image shows there
    im = ax.images[1]
    rgba = im.to_rgba(im.norm(im.get_array()))
    assert rgba.shape == (*image.shape, 4)
    assert np.all(rgba[..., 3][w == 0] == 0)
    assert np.all(rgba[..., 3][w > 0] > 0)
    # the query is marked by an open square around it, so the pixel itself stays visible
    assert marker.get_marker() == "s" and marker.get_markerfacecolor() == "none"


def test_show_weights_log_scale_and_existing_axes():
    image = _image()
    q = (0, 0)  # a corner: the window is clipped
    w = nlm_weights(image, q, 3, 5, 0.1)
    fig, axes = plt.subplots(1, 2)
    out_fig, out_ax = show_weights(image, w, q, ax=axes[1], log=True, title="corner")
    assert out_fig is fig and out_ax is axes[1]
    assert out_ax.get_title() == "corner"
    cbar_axes = [a for a in fig.axes if a not in axes]
    assert len(cbar_axes) == 1 and "log" in cbar_axes[0].get_ylabel()
    assert cbar_axes[0].get_yscale() == "log"


def test_show_weights_scale_excludes_the_query_by_default():
    image = _image()
    q = (12, 15)
    w = nlm_weights(image, q, 3, 4, 0.05)
    others = w.copy()
    others[q] = 0
    for vmax, top in ((None, others.max()), (w.max(), w.max())):
        fig, ax = show_weights(image, w, q, vmax=vmax)
        (cax,) = _colorbar_axes(fig, ax)
        assert cax.get_ylim()[1] == pytest.approx(top)


def test_show_weights_colour_image():
    image = np.stack([_image(), _image() * 0.5, _image() * 0.2], axis=-1)
    w = nlm_weights(image, (5, 5), 3, 3, 0.2, channel_axis=-1)
    fig, ax = show_weights(image, w, (5, 5), colorbar=False)
    assert len(fig.axes) == 1
    assert ax.images[0].get_array().shape == image.shape[:2]  # drawn in gray


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"weights": np.ones((5, 5))}, ValueError, "weights"),
        ({"weights": -np.ones((24, 30))}, ValueError, "weights"),
        ({"weights": np.zeros((24, 30))}, ValueError, "weights"),
        ({"query": (24, 0)}, ValueError, "query"),
        ({"query": (0.5, 1)}, TypeError, "query"),
        ({"image": np.ones((24, 30, 2))}, ValueError, "image"),
        ({"image": np.full((24, 30), np.nan)}, ValueError, "image"),
        ({"floor": 0.0}, ValueError, "floor"),
    ],
)
def test_show_weights_bad_input(kwargs, error, name):
    args = {"image": _image(), "weights": np.ones((24, 30)) / 720, "query": (1, 2)}
    args.update(kwargs)
    with pytest.raises(error, match=rf"^{name}:"):
        show_weights(args.pop("image"), args.pop("weights"), args.pop("query"), **args)


def test_image_grid_layout_titles_and_colorbar():
    images = [_image(), _image() * 0.5, np.dstack([_image()] * 3), _image()]
    titles = ["a", "b", "c", "d"]
    fig, axes = image_grid(images, titles, ncols=3, colorbar=True)
    assert axes.shape == (2, 3)
    visible = [ax for ax in axes.flat if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == titles
    assert not axes[1, 2].get_visible()
    assert all(len(ax.images) == 1 for ax in visible)
    assert all(ax.get_xticks().size == 0 for ax in visible)
    cbar_axes = [a for a in fig.axes if a not in axes.flat]
    assert len(cbar_axes) == 1 and "intensity" in cbar_axes[0].get_ylabel()


def test_image_grid_single_row_without_titles():
    fig, axes = image_grid([_image(), _image()], ncols=5)
    assert axes.shape == (1, 2)  # ncols is capped at the number of images
    assert len(fig.axes) == 2


@pytest.mark.parametrize(
    "images, kwargs, error, name",
    [
        ([], {}, ValueError, "images"),
        (np.zeros((4, 4)), {}, TypeError, "images"),
        ([np.zeros((4, 4)), np.zeros(4)], {}, ValueError, r"images\[1\]"),
        ([np.zeros((4, 4))], {"titles": ["a", "b"]}, ValueError, "titles"),
        ([np.zeros((4, 4))], {"ncols": 0}, ValueError, "ncols"),
    ],
)
def test_image_grid_bad_input(images, kwargs, error, name):
    with pytest.raises(error, match=rf"^{name}:"):
        image_grid(images, **kwargs)
