"""Static figures the notebooks share (matplotlib): weight maps over an image, image grids.

Every function returns ``(fig, ax)`` or ``(fig, axes)`` and draws into ``ax`` when
one is given, so figures can be combined and reused in slides.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.patches import Rectangle

from nlviz._checks import check_choice, check_finite, check_int, check_positive, check_query

__all__ = ["show_weights", "image_grid"]


def _as_display_image(image, name: str = "image") -> np.ndarray:
    """A 2-D grayscale or (H, W, 3|4) colour array, finite; raises naming ``name``."""
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4))):
        raise ValueError(
            f"{name}: expected a (H, W) grayscale or (H, W, 3) colour image, got shape {arr.shape}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return arr


def show_weights(
    image,
    weights,
    query: tuple[int, int],
    ax=None,
    *,
    log: bool = False,
    floor: float = 1e-4,
    alpha: float = 0.9,
    dim: float = 0.75,
    exclude_query: bool = True,
    cmap: str = "magma",
    patch_size: int | None = None,
    patch_distance: int | None = None,
    title: str | None = None,
    colorbar: bool = True,
):
    """Draw the weights w(i, j) of the query pixel i over the image (in gray).

    image: (H, W) or (H, W, 3); weights: (H, W), e.g. from ``nlviz.nlm.nlm_weights``;
    query: (y, x), marked with a cross. The image is dimmed to ``dim`` of its
    brightness; each weight is drawn in ``cmap`` with an opacity that grows with it
    (up to ``alpha``), so pixels with weight 0 (outside the search window) show the
    image only. The colour scale ends at the largest weight of a pixel other than
    the query (``exclude_query=False``: at the query's own weight, the largest).
    ``log=True`` uses a logarithmic colour scale and hides weights below ``floor``
    times that top. ``patch_size`` draws the query's patch,
    ``patch_distance`` its search window. Returns ``(fig, ax)``.
    """
    img = _as_display_image(image)
    w = np.asarray(weights, dtype=float)
    if w.shape != img.shape[:2]:
        raise ValueError(
            f"weights: expected shape {img.shape[:2]} (the image's height and width), got {w.shape}"
        )
    if not np.isfinite(w).all() or (w < 0).any() or w.max() <= 0:
        raise ValueError("weights: expected finite, non-negative values, not all zero")
    H, W = w.shape
    y, x = check_query(query, (H, W))
    if not 0 < floor < 1:
        raise ValueError(f"floor: expected a number in (0, 1), got {floor}")

    if ax is None:
        fig, ax = plt.subplots(figsize=(4.8, 4.2), layout="constrained")
    else:
        fig = ax.figure
    gray = img if img.ndim == 2 else img[..., :3] @ np.array([0.2125, 0.7154, 0.0721])
    lo, hi = min(0.0, gray.min()), max(1.0, gray.max())
    ax.imshow(gray, cmap="gray", vmin=lo, vmax=lo + (hi - lo) / dim, interpolation="nearest")

    # The query's own weight (exp(0), the largest) would squash the scale: by default
    # the scale tops at the largest weight of any other pixel.
    others = w.copy()
    others[y, x] = 0.0
    top = others.max() if exclude_query and others.max() > 0 else w.max()
    if log:
        norm = LogNorm(vmin=top * floor, vmax=top)
        label = "weight w(i, j) (fraction of the estimate, log scale)"
    else:
        norm = Normalize(vmin=0.0, vmax=top)
        label = "weight w(i, j) (fraction of the estimate)"
    # Colour by weight, opacity growing with the weight: small weights let the image show.
    level = np.clip(np.ma.filled(norm(np.ma.masked_less_equal(w, 0.0)), 0.0), 0.0, 1.0)
    if log:
        level[w < top * floor] = 0.0
    rgba = plt.get_cmap(cmap)(level)
    rgba[..., 3] = alpha * np.sqrt(level)
    ax.imshow(rgba, interpolation="nearest")
    im = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    if patch_distance is not None:
        pd = int(patch_distance)
        ax.add_patch(
            Rectangle(
                (max(x - pd, 0) - 0.5, max(y - pd, 0) - 0.5),
                min(x + pd, W - 1) - max(x - pd, 0) + 1,
                min(y + pd, H - 1) - max(y - pd, 0) + 1,
                fill=False,
                ec="white",
                ls="--",
                lw=1.0,
                label="search window",
            )
        )
    if patch_size is not None:
        r = int(patch_size) // 2
        ax.add_patch(
            Rectangle(
                (x - r - 0.5, y - r - 0.5),
                2 * r + 1,
                2 * r + 1,
                fill=False,
                ec="#00e5ff",
                lw=1.2,
                label="query patch",
            )
        )
    ax.plot([x], [y], marker="+", ms=11, mew=2.2, color="#00e5ff", ls="none", label="query pixel i")
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    ax.set_xlabel("x (pixel)")
    ax.set_ylabel("y (pixel)")
    ax.set_title(title if title is not None else f"weights of pixel (y, x) = ({y}, {x})")
    if colorbar:
        cb = fig.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label(label)
    return fig, ax


def image_grid(
    images: Sequence,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    *,
    size: float = 2.6,
    cmap: str = "gray",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    suptitle: str | None = None,
    colorbar: bool = False,
    colorbar_label: str = "intensity (0 = black, 1 = white)",
):
    """Show images side by side with titles, ``ncols`` per row, axes off.

    images: a sequence of (H, W) or (H, W, 3) arrays, drawn with ``cmap``, ``vmin``,
    ``vmax`` (grayscale ones). ``colorbar=True`` adds one colorbar shared by the
    grid. Returns ``(fig, axes)`` with ``axes`` a 2-D array (unused cells hidden).
    """
    if isinstance(images, np.ndarray) and images.ndim in (2, 3) and images.dtype != object:
        if images.ndim == 2 or images.shape[-1] in (3, 4):
            raise TypeError("images: expected a sequence of images, got a single array")
    imgs = [_as_display_image(im, f"images[{i}]") for i, im in enumerate(images)]
    if not imgs:
        raise ValueError("images: expected at least one image, got none")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"titles: expected {len(imgs)} titles (one per image), got {len(titles)}")
    if isinstance(ncols, bool) or not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"ncols: expected an integer >= 1, got {ncols!r}")
    ncols = min(int(ncols), len(imgs))
    nrows = -(-len(imgs) // ncols)
    aspect = np.mean([im.shape[0] / im.shape[1] for im in imgs])
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(size * ncols + (0.9 if colorbar else 0.0), size * aspect * nrows + 0.5),
        squeeze=False,
        layout="constrained",
    )
    mappable = None
    for i, ax in enumerate(axes.flat):
        if i >= len(imgs):
            ax.set_visible(False)
            continue
        im = imgs[i]
        if im.ndim == 2:
            mappable = ax.imshow(im, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        else:
            ax.imshow(np.clip(im, 0, 1) if im.dtype.kind == "f" else im, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    if colorbar and mappable is not None:
        cb = fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8)
        cb.set_label(colorbar_label)
    if suptitle:
        fig.suptitle(suptitle)
    return fig, axes


# --- affinity maps: several maps side by side (notebooks 02, 05)

__all__ += ["affinity_maps"]


def _affinity_stack(maps) -> np.ndarray:
    """``maps`` (a (K, H, W) array or a sequence of (H, W) arrays/tensors) as float64 (K, H, W)."""

    if hasattr(maps, "detach"):  # a torch tensor
        maps = maps.detach().cpu().numpy()
    if isinstance(maps, np.ndarray):
        items = list(maps) if maps.ndim == 3 else [maps]
    elif isinstance(maps, (list, tuple)):
        items = list(maps)
    else:
        raise TypeError(
            "maps: expected a (K, H, W) array or a sequence of (H, W) arrays, "
            f"got {type(maps).__name__}"
        )
    if not items:
        raise ValueError("maps: expected at least one (H, W) map, got none")
    arrays = []
    for k, m in enumerate(items):
        if hasattr(m, "detach"):
            m = m.detach().cpu().numpy()
        m = np.asarray(m)
        if m.dtype.kind not in "biuf":
            raise TypeError(f"maps[{k}]: expected a real numeric (H, W) array, got dtype {m.dtype}")
        if m.ndim != 2:
            raise ValueError(f"maps[{k}]: expected a 2-D (H, W) map, got shape {m.shape}")
        if arrays and m.shape != arrays[0].shape:
            raise ValueError(
                f"maps[{k}]: expected the shape of maps[0] {arrays[0].shape}, got {m.shape}"
            )
        arrays.append(m.astype(np.float64))
    stack = np.stack(arrays)
    check_finite("maps", stack)
    return stack


def _affinity_limits(values: np.ndarray, signed: str) -> tuple[float, float, bool]:
    """Colour limits (vmin, vmax) for ``values`` and whether the diverging map is used."""
    lo, hi = float(values.min()), float(values.max())
    if signed == "always" or (signed == "auto" and lo < 0):
        top = max(abs(lo), abs(hi)) or 1.0
        return -top, top, True
    if signed == "auto":  # non-negative weights: the scale starts at 0, not at the smallest
        lo = 0.0
    return lo, (hi if hi > lo else lo + 1.0), False


def affinity_maps(
    maps,
    titles: Sequence[str] | None = None,
    *,
    query: tuple[int, int] | None = None,
    image=None,
    shared_scale: bool = True,
    cmap: str = "viridis",
    diverging_cmap: str = "RdBu_r",
    signed: str = "auto",
    colorbar_label: str = "weight f(x_i, x_j) / C(x)",
    image_title: str = "input",
    ncols: int | None = None,
    panel_size: float = 3.0,
    suptitle: str | None = None,
    axes=None,
):
    """Several (H, W) affinity maps side by side, the query pixel marked on each.

    maps: a (K, H, W) array or a sequence of K (H, W) arrays (NumPy or torch), e.g. the
    weights f(x_i, x_j) / C(x) of one query i over all positions j, reshaped to the image.
    titles: K strings. query: (y, x), marked with a cross on every panel. image: an (H, W) or
    (H, W, 3) picture of the maps' height and width, drawn first with the query.
    shared_scale: one colour scale and one colorbar for all maps, so colours compare across
    panels (use it for maps of one kind, e.g. one pairwise function on several frames);
    ``False``: each map its own scale and colorbar (maps of different kinds).

    Signed maps (the dot product, Eq. 4, gives negative weights): with ``signed="auto"`` a
    scale whose values go below 0 uses ``diverging_cmap`` with limits symmetric about 0, so
    white is 0 and the sign is never hidden by a shifted scale; a non-negative one uses
    ``cmap`` from 0 up. ``"always"`` forces the diverging map, ``"never"`` uses ``cmap`` from
    the minimum to the maximum. ``ncols``: panels per row (default: one row). ``axes``: draw
    into these (one per panel) instead of a new figure.
    Returns ``(fig, axes)``: the list of panel axes, the image panel first when given.
    """

    stack = _affinity_stack(maps)
    k, h, w = stack.shape
    if titles is None:
        titles = [f"map {i}" for i in range(k)]
    if isinstance(titles, str) or not isinstance(titles, Sequence):
        raise TypeError(f"titles: expected a sequence of {k} strings, got {type(titles).__name__}")
    if len(titles) != k:
        raise ValueError(f"titles: expected {k} titles (one per map), got {len(titles)}")
    if query is not None:
        query = check_query(query, (h, w))
    check_choice("signed", signed, ("auto", "always", "never"))
    if not isinstance(shared_scale, bool):
        raise TypeError(f"shared_scale: expected True or False, got {shared_scale!r}")
    panel_size = check_positive("panel_size", panel_size)
    if image is not None:
        if hasattr(image, "detach"):
            image = image.detach().cpu().numpy()
        image = _as_display_image(image)
        if image.shape[:2] != (h, w):
            raise ValueError(
                f"image: expected height and width {(h, w)} like the maps, got shape {image.shape}"
            )
    n_panels = k + (image is not None)
    if axes is None:
        ncols = n_panels if ncols is None else min(check_int("ncols", ncols, minimum=1), n_panels)
        nrows = -(-n_panels // ncols)
        fig, grid = plt.subplots(
            nrows,
            ncols,
            figsize=(panel_size * ncols + 1.0, panel_size * h / w * nrows + 0.6 + 0.3 * nrows),
            squeeze=False,
            layout="constrained",
        )
        for ax in grid.flat[n_panels:]:
            ax.remove()
        axes = list(grid.flat[:n_panels])
    else:
        axes = list(np.ravel(axes))
        if len(axes) != n_panels:
            raise ValueError(f"axes: expected {n_panels} axes (one per panel), got {len(axes)}")
        fig = axes[0].figure

    panels = axes
    if image is not None:
        axes[0].imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
        axes[0].set_title(image_title)
        panels = axes[1:]
    shared = _affinity_limits(stack, signed) if shared_scale else None
    for ax, m, title in zip(panels, stack, titles, strict=True):
        vmin, vmax, diverging = shared or _affinity_limits(m, signed)
        im = ax.imshow(
            m,
            cmap=diverging_cmap if diverging else cmap,
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
        )
        ax.set_title(title)
        if not shared_scale:
            fig.colorbar(im, ax=ax, shrink=0.8, label=colorbar_label)
    if shared_scale:
        fig.colorbar(im, ax=panels, shrink=0.8, label=colorbar_label)
    for ax in axes:
        ax.set_xlabel("x (pixel)")
        ax.set_ylabel("y (pixel)")
        if query is not None:
            y, x = query
            ax.plot([x], [y], marker="+", ms=12, mew=4.0, color="black", ls="none")
            ax.plot(
                [x], [y], marker="+", ms=11, mew=2.2, color="#00e5ff", ls="none", label="query i"
            )
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig, axes


# --- Figure 3: arrows across frames (notebook 05); the code lives in nlviz.figure3
from nlviz.figure3 import affinity_strip, compare_sources, figure3, save_figure  # noqa: E402

__all__ += ["affinity_strip", "compare_sources", "figure3", "save_figure"]
