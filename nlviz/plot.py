"""Static figures, each returning ``(fig, axes)``: weight maps, image grids, affinity maps. Weights:
magma, log by default (transparent under ``floor`` x max), or linear; diverging if signed."""

import functools
import os

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from nlviz import utils
from nlviz.utils import as_array, check_bool, check_choice, check_int, check_query, check_real

__all__ = ["SCALES", "FLOOR", "color_scale", "weight_cmap", "show_weights", "image_grid",
           "affinity_maps", "save_figure", "STYLE"]  # fmt: skip
SCALES = ("auto", "log", "linear", "signed")
STYLE = {"axes.titlesize": 10.5, "figure.titlesize": 11, "legend.fontsize": 9}  # notebooks' text
SAVE_RC = {"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "nlviz"}  # text as text
CMAP, SIGNED_CMAP, ALPHA, FLOOR = "magma", "RdBu_r", 0.85, 1e-3
NEAREST = {"interpolation": "nearest"}
QUERY = {"marker": "s", "ms": 9, "mfc": "none", "mec": "#00e5ff", "mew": 1.8, "ls": "none"}


@functools.lru_cache(maxsize=None, typed=True)  # one per kind, for each click; 1 is not True
def weight_cmap(signed: bool = False, overlay: bool = False) -> ListedColormap:
    """magma (``signed``: RdBu_r); ``overlay``: alpha grows with |w|, clear below; masked: clear."""
    name = SIGNED_CMAP if check_bool("signed", signed) else CMAP
    colours = matplotlib.colormaps[name](np.linspace(0, 1, 256))
    if check_bool("overlay", overlay):
        ramp = np.abs(np.linspace(-1, 1, 256)) if signed else np.linspace(0, 1, 256)
        colours[:, 3] = ALPHA * np.sqrt(ramp)
    under = (0, 0, 0, 0) if overlay else colours[0]
    return ListedColormap(colours, name=name).with_extremes(under=under, bad=(0, 0, 0, 0))


def color_scale(weights, scale: str = "auto", floor: float = FLOOR, top: float | None = None):
    """(norm, scale used, bar note); "auto": "signed" if any < 0 else "log"; ``top``: shared max."""
    check_choice("scale", scale, SCALES)
    floor = check_real("floor", floor, minimum=0, maximum=1, strict=True)
    top = None if top is None else check_real("top", top, minimum=0, strict=True)
    return _color_scale(as_array("weights", weights, (2, 3)), scale, floor, top)


def _color_scale(weights, scale: str, floor: float = FLOOR, top: float | None = None):
    """``color_scale`` unchecked (the explorer's click path)."""
    top = (float(np.abs(weights).max()) if top is None else top) or 1.0
    scale = ("signed" if np.min(weights) < 0 else "log") if scale == "auto" else scale
    if scale == "signed":
        return Normalize(-top, top), scale, " (signed)"
    if scale == "log":
        return LogNorm(top * floor, top), scale, f" (log, from {floor:g} x max)"
    return Normalize(0.0, top), scale, ""


def _image(image, name="image") -> np.ndarray:
    return as_array(name, image, (2,), channels=(3, 4))


def _text(**texts) -> None:  # each title or label: a str or None
    for name, value in texts.items():
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name}: expected a str, got {type(value).__name__} {value!r:.60}")


def show_weights(image, weights, query, ax=None, *, log=True, floor=1e-4, vmax=None,
                 patch_size=None, patch_distance=None, title=None, colorbar=True):  # fmt: skip
    """Draw the weights w(i, j) (H, W) of pixel i = ``query`` (y, x) over the grey ``image``, up to
    ``vmax`` (default: the largest but the query's own), with ``log`` none below ``floor`` times
    that; ``patch_size`` outlines the query's patch, ``patch_distance`` its window: (fig, ax)."""
    img = _image(image)
    w = as_array("weights", weights).astype(float)
    if w.shape != img.shape[:2] or (w < 0).any() or w.max() <= 0:
        raise ValueError(f"weights: expected {img.shape[:2]} weights >= 0, some > 0, got {w.shape}")
    (y, x), (h, wd) = check_query(query, w.shape), w.shape
    floor = check_real("floor", floor, minimum=0, maximum=1, strict=True)
    top = np.delete(w, y * w.shape[1] + x).max(initial=0) or w.max()  # all but the query's
    top = top if vmax is None else check_real("vmax", vmax, minimum=0, strict=True)
    norm, _, note = _color_scale(w, "log" if check_bool("log", log) else "linear", floor, top)
    utils.check_type("ax", ax, Axes | None, "a matplotlib Axes or None")
    _text(title=title)
    fig, ax = (ax.figure, ax) if ax else plt.subplots(figsize=(4.8, 4.2), layout="constrained")
    grey = img if img.ndim == 2 else img[..., :3] @ np.array([0.2125, 0.7154, 0.0721])
    ax.imshow(grey, cmap="gray", vmin=min(0, grey.min()), vmax=max(1, grey.max()) / 0.75, **NEAREST)
    ax.imshow(np.ma.masked_less_equal(w, 0), cmap=weight_cmap(overlay=True), norm=norm, **NEAREST)
    if patch_distance is not None:
        pd = check_int("patch_distance", patch_distance, minimum=0)
        y0, x0, y1, x1 = max(y - pd, 0), max(x - pd, 0), min(y + pd, h - 1), min(x + pd, wd - 1)
        box = {"fill": False, "ec": "white", "ls": "--", "lw": 1.0, "label": "search window"}
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, **box))
    if patch_size is not None:
        r = check_int("patch_size", patch_size, minimum=1, maximum=2 * max(h, wd) + 1) // 2
        box = {"fill": False, "ec": "#00e5ff", "lw": 1.2, "label": "query patch"}
        ax.add_patch(Rectangle((x - r - 0.5, y - r - 0.5), 2 * r + 1, 2 * r + 1, **box))
    ax.plot([x], [y], label="query pixel i", **QUERY)
    ax.set(xlim=(-0.5, wd - 0.5), ylim=(h - 0.5, -0.5), xlabel="x (pixel)", ylabel="y (pixel)")
    ax.set_title(title if title is not None else f"weights of pixel (y, x) = ({y}, {x})")
    if check_bool("colorbar", colorbar):
        bar = fig.colorbar(plt.cm.ScalarMappable(norm, weight_cmap()), ax=ax, shrink=0.85)
        bar.set_label("weight w(i, j)" + note)
    return fig, ax


def image_grid(images, titles=None, ncols=4, *, size=2.6, cmap="gray", vmin=0.0, vmax=1.0,
               suptitle=None, colorbar=False,
               colorbar_label="intensity (0 = black, 1 = white)"):  # fmt: skip
    """Images with titles, ``ncols`` per row, one shared ``colorbar``: ``(fig, axes)``, axes 2-D."""
    if isinstance(images, np.ndarray) or not isinstance(images, list | tuple):
        raise TypeError(f"images: expected a sequence of images, got {type(images).__name__}")
    imgs = [_image(im, f"images[{i}]") for i, im in enumerate(images)]
    if not imgs:
        raise ValueError("images: expected at least one image, got none")
    if titles is not None and (isinstance(titles, str) or not isinstance(titles, list | tuple)):
        raise TypeError(f"titles: expected a list of {len(imgs)} titles, got {titles!r:.60}")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"titles: expected {len(imgs)} titles (one per image), got {len(titles)}")
    if not isinstance(cmap, Colormap) and cmap not in list(matplotlib.colormaps):
        raise ValueError(f"cmap: expected a matplotlib colormap or its name, got {cmap!r:.60}")
    vmax = check_real("vmax", vmax, minimum=check_real("vmin", vmin), strict=True)
    size = check_real("size", size, minimum=0, maximum=100, strict=True)
    _text(suptitle=suptitle, colorbar_label=colorbar_label)
    ncols = min(check_int("ncols", ncols, minimum=1), len(imgs))
    nrows, aspect = -(-len(imgs) // ncols), np.mean([im.shape[0] / im.shape[1] for im in imgs])
    figsize = (size * ncols + 0.9 * check_bool("colorbar", colorbar), size * aspect * nrows + 0.5)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")
    mappable = None
    for i, ax in enumerate(axes.flat):
        ax.set_visible(i < len(imgs))
        if i < len(imgs):
            im = imgs[i]
            im = im if im.ndim == 2 else np.clip(im, 0, 255 ** (im.dtype.kind != "f"))
            shown = ax.imshow(im, cmap=cmap, vmin=vmin, vmax=vmax, **NEAREST)
            mappable = shown if im.ndim == 2 else mappable
            ax.set(xticks=[], yticks=[])
            ax.set_title(titles[i] if titles is not None else "", fontsize=10)
    if colorbar and mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, label=colorbar_label)
    if suptitle:
        fig.suptitle(suptitle)
    return fig, axes


def _stack(maps) -> np.ndarray:
    """``maps`` (K, H, W) or K maps (H, W), NumPy or torch, as float64 (K, H, W)."""
    if hasattr(maps, "detach") or isinstance(maps, np.ndarray):
        maps = list(as_array("maps", maps, (2, 3)).reshape(-1, *np.shape(maps)[-2:]))
    if isinstance(maps, str) or not isinstance(maps, list | tuple):
        raise TypeError(f"maps: expected (K, H, W) or a list of (H, W), got {type(maps).__name__}")
    if not maps:
        raise ValueError("maps: expected at least one (H, W) map, got none")
    arrays = [as_array(f"maps[{k}]", m, (2,)) for k, m in enumerate(maps)]
    for k, m in enumerate(arrays):
        if m.shape != arrays[0].shape:
            raise ValueError(f"maps[{k}]: expected {arrays[0].shape} like maps[0], got {m.shape}")
    return np.stack(arrays).astype(np.float64)


def affinity_maps(maps, titles=None, *, query=None, image=None, shared_scale=True, scale="auto",
                  colorbar_label="weight f(x_i, x_j) / C(x)", image_title="input", ncols=None,
                  panel_size=3.0, suptitle=None, axes=None):  # fmt: skip
    """(H, W) maps side by side (e.g. a query's weights per pairwise function), query (y, x) marked
    on each and on ``image`` (first); ``shared_scale``: one scale; ``scale`` as ``color_scale``."""
    stack = _stack(maps)
    k, h, w = stack.shape
    titles = [f"map {i}" for i in range(k)] if titles is None else titles
    if isinstance(titles, str) or not isinstance(titles, list | tuple):
        raise TypeError(f"titles: expected a list of {k} strings, got {type(titles).__name__}")
    if len(titles) != k:
        raise ValueError(f"titles: expected {k} titles (one per map), got {len(titles)}")
    query = None if query is None else check_query(query, (h, w))
    check_bool("shared_scale", shared_scale)
    check_choice("scale", scale, SCALES)
    panel_size = check_real("panel_size", panel_size, minimum=0, maximum=100, strict=True)
    _text(colorbar_label=colorbar_label, image_title=image_title, suptitle=suptitle)
    if image is not None and _image(image).shape[:2] != (h, w):
        raise ValueError(f"image: expected (H, W) = {(h, w)} like the maps, got {np.shape(image)}")
    n = k + (image is not None)
    if axes is None:
        ncols = n if ncols is None else min(check_int("ncols", ncols, minimum=1), n)
        rows = -(-n // ncols)
        size = (panel_size * ncols + 1.0, panel_size * h / w * rows + 0.6 + 0.3 * rows)
        fig, grid = plt.subplots(rows, ncols, figsize=size, squeeze=False, layout="constrained")
        for ax in grid.flat[n:]:
            ax.remove()
        axes = list(grid.flat[:n])
    else:
        axes = list(np.ravel(axes))
        if len(axes) != n:
            raise ValueError(f"axes: expected {n} axes (one per panel), got {len(axes)}")
        fig = axes[0].figure
    if image is not None:
        axes[0].imshow(_image(image), cmap="gray", **NEAREST)
        axes[0].set_title(image_title)
    shared = _color_scale(stack, scale) if shared_scale else None
    for ax, m, title in zip(axes[n - k :], stack, titles, strict=True):
        norm, used, note = shared or _color_scale(m, scale)
        m = np.ma.masked_less_equal(m, 0) if used == "log" else m
        shown = ax.imshow(m, cmap=weight_cmap(used == "signed"), norm=norm, **NEAREST)
        ax.set_title(title)
        if not shared_scale:
            fig.colorbar(shown, ax=ax, shrink=0.8, label=colorbar_label + note)
    if shared_scale:
        fig.colorbar(shown, ax=axes[n - k :], shrink=0.8, label=colorbar_label + note)
    for ax in axes:
        ax.set(xlabel="x (pixel)", ylabel="y (pixel)")
        if query is not None:
            ax.plot([query[1]], [query[0]], label="query i", **QUERY)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig, axes


def save_figure(fig, path, *, overwrite: bool = False, dpi: int = 150):
    """Save ``fig`` atomically as .png (``dpi``), .svg or .pdf (text as text, same bytes): path."""
    utils.check_type("fig", fig, Figure, "a matplotlib Figure")
    suffix = str(path).lower().rsplit(".", 1)[-1] if isinstance(path, str | os.PathLike) else ""
    if suffix not in ("png", "svg", "pdf"):
        raise ValueError(f"path: expected a .png, .svg or .pdf file name, got {path!r}")
    dpi = check_int("dpi", dpi, minimum=10, maximum=1200)
    meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(suffix)  # same bytes
    save = lambda fh: fig.savefig(fh, format=suffix, dpi=dpi, metadata=meta)  # noqa: E731
    with matplotlib.rc_context(SAVE_RC):
        return utils.atomic_write(path, save, overwrite=overwrite)
