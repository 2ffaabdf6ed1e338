"""``AffinityExplorer``: click a pixel of any frame, see where it attends in every frame
(notebook 05).

For a query position i (Eq. 1), the explorer draws the normalised weights
``f(x_i, x_j) / C(x)`` over all positions j of all T frames as heatmaps, marks i, and draws
arrows from i to its top-k j as in the paper's Figure 3. Sources of weights:

- any function ``affinity_fn(t, y, x) -> (T', h', w')`` (the generic constructor);
- a ``NonLocalBlock`` and its input features (``from_block``): theta, phi are computed once
  by ``block.embed`` and cached, so a click costs one row of the affinity, O(N'), not a pass
  of the block over the video;
- non-local means (``from_nlm``): the weights one pixel averages with (Buades 2005);
- a trained checkpoint in ``data/checkpoints/`` (``from_checkpoint``).

Coordinates: ``select(t, y, x)`` and the sliders use the *query grid* (the block's input
feature grid, or the pixels for NLM); clicks arrive in display pixels and are mapped to it.
``nlviz.figure3.FrameGeometry`` holds the conversions (stride, pooled key grid).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator

from nlviz._checks import check_int
from nlviz.figure3 import (
    WEIGHT_CMAP,
    AffinityStrip,
    FrameGeometry,
    as_frames,
    heat_cmap,
    layout_rows,
    strip_figsize,
)

STATUS_CLASS = "nlviz-explorer-status"
ERROR_CLASS = "nlviz-explorer-error"
_SCALES = ("shared", "per frame")


def _label(value: str = ""):
    import ipywidgets as widgets

    label = widgets.Label(value=value)
    label.add_class(STATUS_CLASS)
    return label


def _set_status(label, text: str, error: bool) -> None:
    label.value = text
    if error:
        label.add_class(ERROR_CLASS)
    else:
        label.remove_class(ERROR_CLASS)


def _canvas_view(fig):
    """The figure's ipympl canvas (a widget) or an Output showing a static image of it."""
    import ipywidgets as widgets

    if isinstance(fig.canvas, widgets.DOMWidget):  # ipympl: clicks work
        fig.canvas.header_visible = False
        return fig.canvas, None
    out = widgets.Output()
    return out, out


def _interactive(canvas) -> bool:
    """True for canvases with their own draw_idle (ipympl, Qt...); Agg's would draw at once."""
    return type(canvas).draw_idle is not FigureCanvasBase.draw_idle


def _refresh_output(fig, out) -> None:
    if out is None:
        return
    from IPython.display import display

    with out:
        out.clear_output(wait=True)
        display(fig)


class _Controls:
    """Sliders t, y, x (query grid), k, and the colour-scale switch, driving ``target``."""

    def __init__(self, target, geometry: FrameGeometry, k: int, shared: bool, query) -> None:
        import ipywidgets as widgets

        t_count = geometry.frames_shape[0]
        h, w = geometry.grid_shape
        layout = widgets.Layout(width="240px")
        opts = {"layout": layout, "continuous_update": False}  # redraw on release, not per step
        self.t = widgets.IntSlider(query[0], 0, t_count - 1, description="t", **opts)
        self.y = widgets.IntSlider(query[1], 0, h - 1, description="y", **opts)
        self.x = widgets.IntSlider(query[2], 0, w - 1, description="x", **opts)
        n_keys = int(np.prod(geometry.key_shape))
        self.k = widgets.IntSlider(k, 0, min(100, n_keys), description="top-k", **opts)
        self.scale = widgets.ToggleButtons(
            options=_SCALES, value=_SCALES[0] if shared else _SCALES[1], description="colours"
        )
        self.syncing = False
        self.target = target
        for s in (self.t, self.y, self.x):
            s.observe(self._on_query, names="value")
        self.k.observe(self._on_k, names="value")
        self.scale.observe(self._on_scale, names="value")
        self.box = widgets.VBox(
            [widgets.HBox([self.t, self.y, self.x]), widgets.HBox([self.k, self.scale])]
        )

    def _on_query(self, _change) -> None:
        if not self.syncing:
            self.target._widget_select(self.t.value, self.y.value, self.x.value)

    def _on_k(self, change) -> None:
        if not self.syncing:
            self.target._widget_set(k=change["new"])

    def _on_scale(self, change) -> None:
        if not self.syncing:
            self.target._widget_set(shared_scale=change["new"] == _SCALES[0])

    def sync(self, query, k: int, shared: bool) -> None:
        self.syncing = True
        try:
            self.t.value, self.y.value, self.x.value = (int(q) for q in query)
            self.k.value = k
            self.scale.value = _SCALES[0] if shared else _SCALES[1]
        finally:
            self.syncing = False


class AffinityExplorer:
    """T frames in a row; a click at (t, y, x) draws that query's weights over every frame.

    Args:
        frames: (T, H, W) or (T, H, W, 3) display frames; an image (H, W[, 3]) is one frame.
        affinity_fn: ``affinity_fn(t, y, x) -> (T', h', w')`` weights of query (t, y, x) of
            the query grid over the key grid.
        grid_shape: (h, w) of the query grid (default: the pixels, (H, W)); it must have the
            aspect of the frames, its stride is H / h display pixels.
        pool: pooling (ceil mode) of the key grid relative to the query grid, (2, 2) for a
            subsampling block: h' = ceil(h / 2).
        source: the name shown in the title (e.g. the pairwise function).
        k: arrows to the top-k weights (Figure 3 draws 20).
        shared_scale: one colour range for all frames (True) or one per frame.
        query: the first query (default: centre of the middle frame).
        cmap, alpha: colour map of the weights and the opacity of the highest weights
            (low weights are nearly transparent, so the frames show through).

    Attributes: ``fig``, ``frame_axes`` (one Axes per frame, display pixel coordinates),
    ``colorbar``, ``weights`` (the (T', h', w') weights drawn), ``query``, ``heatmaps``,
    ``arrows``, ``status``
    (an ipywidgets Label with CSS class ``nlviz-explorer-status``), ``widget`` (canvas,
    sliders, label: display it).

    Interactive canvases (ipympl) redraw by themselves after a change; under Agg (scripts,
    tests) ``select`` updates the artists and ``fig.canvas.draw()`` or ``fig.savefig`` renders.
    """

    def __init__(
        self,
        frames,
        affinity_fn: Callable[[int, int, int], np.ndarray],
        *,
        grid_shape: Sequence[int] | None = None,
        pool: Sequence[int] = (1, 1),
        source: str = "affinity",
        weight_label: str = "weight f(x_i, x_j) / C(x)",
        k: int = 20,
        shared_scale: bool = True,
        query: Sequence[int] | None = None,
        cmap: str = WEIGHT_CMAP,
        alpha: float = 0.85,
        _grid_name: str = "grid_shape",
    ) -> None:
        self.frames = as_frames(frames)
        if not callable(affinity_fn):
            raise TypeError(
                f"affinity_fn: expected a callable (t, y, x) -> weights, "
                f"got {type(affinity_fn).__name__}"
            )
        self.geometry = FrameGeometry.create(
            self.frames.shape, grid_shape, pool, grid_name=_grid_name
        )
        self._fn = affinity_fn
        self.source = str(source)
        self.weight_label = str(weight_label)
        self._k = check_int("k", k, minimum=0)
        if not isinstance(shared_scale, bool):
            raise TypeError(f"shared_scale: expected True or False, got {shared_scale!r}")
        self._shared = shared_scale
        h, w = self.geometry.grid_shape
        t_count = self.geometry.frames_shape[0]
        query = (t_count // 2, h // 2, w // 2) if query is None else query
        query = self.geometry.check_query(query)
        first = self.affinity(*query)  # fail here, before any figure exists

        with plt.ioff():
            self.fig = plt.figure(figsize=strip_figsize(self.geometry.frames_shape))
        rows, bars = layout_rows(self.fig, 1, t_count)
        self.frame_axes = rows[0]
        self._strip = AffinityStrip(
            self.fig, self.frame_axes, self.frames, self.geometry, cmap=cmap, alpha=alpha
        )
        self._mappable = ScalarMappable(Normalize(0.0, 1.0), heat_cmap(cmap, alpha))
        self.colorbar = self.fig.colorbar(self._mappable, cax=bars[0])
        self.colorbar.ax.tick_params(labelsize=7)
        self.colorbar.locator = MaxNLocator(4)
        self._title = self.fig.suptitle("", fontsize=10)
        self.status = _label()
        self.weights: np.ndarray | None = None
        self.query: tuple[int, int, int] | None = None
        self._controls: _Controls | None = None
        self._widget = None
        self._output = None
        self._handle_query = self._widget_select  # a CompareExplorer re-routes clicks
        self._cid = self.fig.canvas.mpl_connect("button_press_event", self._on_press)
        self._draw(first, query)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_block(cls, block, features, frames, **kwargs) -> AffinityExplorer:
        """Explore a ``NonLocalBlock`` on its input ``features`` (1, C, T, h, w) shown over
        ``frames`` (T, H, W[, 3]). theta and phi are computed once (``block.embed``); each
        query's row of weights is computed in float64."""
        import torch

        from nlviz.block import NonLocalBlock
        from nlviz.pairwise import affinity

        if not isinstance(block, NonLocalBlock):
            raise TypeError(f"block: expected an nlviz.NonLocalBlock, got {type(block).__name__}")
        if block.dim not in (2, 3):
            raise ValueError(f"block: expected dim 2 (images) or 3 (video), got dim={block.dim}")
        if not isinstance(features, torch.Tensor):
            raise TypeError(f"features: expected a torch.Tensor, got {type(features).__name__}")
        layout = "(1, C, T, h, w)" if block.dim == 3 else "(1, C, h, w)"
        if features.ndim != block.dim + 2 or features.shape[0] != 1:
            raise ValueError(
                f"features: expected {layout} for a dim={block.dim} block, "
                f"got shape {tuple(features.shape)}"
            )
        if features.shape[1] != block.in_channels:
            raise ValueError(
                f"features: expected C={block.in_channels} channels (the block's in_channels), "
                f"got shape {tuple(features.shape)}"
            )
        if not bool(torch.isfinite(features).all()):
            raise ValueError("features: expected finite values, got NaN or inf")
        spatial = tuple(features.shape[2:]) if block.dim == 3 else (1, *features.shape[2:])
        frames = as_frames(frames)
        if frames.shape[0] != spatial[0]:
            raise ValueError(
                f"features: expected T={frames.shape[0]} frames to match frames "
                f"{frames.shape[:3]}, got T={spatial[0]} in shape {tuple(features.shape)}"
            )
        with torch.no_grad():
            theta, phi, _ = block.embed(features)
            w_f = block.w_f_vector
            w_f = None if w_f is None else w_f.detach().double()
        # float64 rows: a trained softmax can be so peaked that float32 rounds most weights to
        # exactly 0, and the ranking of the keys (the arrows) would be lost in the ties.
        theta, phi = theta.detach().double(), phi.detach().double()
        _, h, w = spatial
        key_shape = (spatial[0], *block.pooled_shape(features.shape[2:])[-2:])

        def block_affinity(t: int, y: int, x: int) -> np.ndarray:
            i = (t * h + y) * w + x
            with torch.no_grad():
                row = affinity(block.pairwise, theta[:, i : i + 1], phi, w_f=w_f, scale=block.scale)
            return row.reshape(key_shape).cpu().numpy()

        kwargs.setdefault("source", f"{block.pairwise} non-local block")
        pool = (2, 2) if block.subsample else (1, 1)
        return cls(
            frames, block_affinity, grid_shape=(h, w), pool=pool, _grid_name="features", **kwargs
        )

    @classmethod
    def from_nlm(cls, image, **kwargs) -> AffinityExplorer:
        """Non-local means weights (``nlviz.nlm.nlm_weights``) of each pixel.

        ``image`` (H, W[, 3]) is a 1-frame video; a video (T, H, W[, 3]) is filtered frame by
        frame (classic NLM searches one image), so frames other than the query's get weight 0.
        Keyword arguments of ``nlm_weights`` (patch_size, patch_distance, h, sigma) are passed
        on; the rest go to the constructor.
        """
        from nlviz.nlm import nlm_weights

        frames = as_frames(image, "image")
        nlm_keys = ("patch_size", "patch_distance", "h", "sigma")
        params = {key: kwargs.pop(key) for key in nlm_keys if key in kwargs}
        if frames.ndim == 4:
            params["channel_axis"] = -1
        nlm_weights(frames[0], query=(0, 0), **params)  # reject bad parameters up front

        def nlm_affinity(t: int, y: int, x: int) -> np.ndarray:
            weights = np.zeros(frames.shape[:3])
            weights[t] = nlm_weights(frames[t], query=(y, x), **params)
            return weights

        shown = ", ".join(f"{key}={value}" for key, value in params.items() if key in nlm_keys)
        kwargs.setdefault("source", f"non-local means ({shown})" if shown else "non-local means")
        kwargs.setdefault("weight_label", "NLM weight w(i, j)")
        return cls(frames, nlm_affinity, **kwargs)

    @classmethod
    def from_checkpoint(cls, path, video, *, block: int = 0, **kwargs) -> AffinityExplorer:
        """Explore non-local block number ``block`` of a trained spacetime ``VideoNet``
        checkpoint (``nlviz.train``, e.g. in ``data/checkpoints/``) on ``video``
        (T, H, W, 3) uint8, as ``nlviz.video.generate`` makes them.

        Blocks are numbered in network order (``model.nonlocal_blocks()``), not in the order
        ``nlviz.video.PLACES`` adds them: in a 3-block model, 0 and 1 follow res3.0 and res3.1
        (an 8x8 grid for 32-pixel frames, stride 4), 2 follows res4.0 (4x4, stride 8).

        The block's input features come from a forward pass of the model on the video (a
        forward pre-hook on the block). Sets ``explorer.model`` (eval mode, CPU),
        ``explorer.checkpoint`` and ``explorer.logits`` (the model's output on the video).
        """
        import torch

        from nlviz.train import load_checkpoint
        from nlviz.video import to_tensor

        model, checkpoint = load_checkpoint(path)
        blocks = model.nonlocal_blocks()
        if not blocks:
            raise ValueError(f"path: {path} holds a model without non-local blocks (C2D)")
        if model.variant != "spacetime":
            raise ValueError(
                f"path: expected a spacetime model (one dim=3 block), got variant "
                f"{model.variant!r} in {path}"
            )
        block = check_int("block", block, minimum=0)
        if block >= len(blocks):
            raise ValueError(f"block: expected 0 <= block < {len(blocks)}, got {block}")
        video = np.asarray(video)
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(
                f"video: expected a (T, H, W, 3) uint8 array, got {video.dtype} {video.shape}"
            )
        captured = {}

        def grab(_module, inputs):
            captured["x"] = inputs[0].detach()

        handle = blocks[block].block.register_forward_pre_hook(grab)
        try:
            with torch.no_grad():
                logits = model(to_tensor(video[None]))
        finally:
            handle.remove()
        nl = blocks[block].block
        places = [p[3:] for p in model.places if p.startswith("nl@")]  # "nl@res3.0" -> "res3.0"
        which = f", block {block} after {places[block]}" if len(blocks) > 1 else ""
        kwargs.setdefault("source", f"{nl.pairwise} (trained{which})")
        explorer = cls.from_block(nl, captured["x"], video, **kwargs)
        explorer.model, explorer.checkpoint, explorer.logits = model, checkpoint, logits[0]
        return explorer

    @classmethod
    def compare(cls, first: AffinityExplorer, second: AffinityExplorer) -> CompareExplorer:
        """The same query under two sources, one above the other (see ``CompareExplorer``)."""
        return CompareExplorer(first, second)

    # ------------------------------------------------------------------ from code

    def affinity(self, t: int, y: int, x: int) -> np.ndarray:
        """The source's weights (T', h', w') for query (t, y, x), checked; draws nothing."""
        query = self.geometry.check_query((t, y, x))
        return self.geometry.check_weights(self._fn(*query), "affinity_fn(t, y, x)")

    def select(self, t: int, y: int, x: int) -> np.ndarray:
        """Draw query (t, y, x) of the query grid; return the weights drawn (T', h', w').

        Raises ValueError (naming ``query``) outside the grid; the drawing then stays as it was.
        """
        query = self.geometry.check_query((t, y, x))
        self._draw(self.affinity(*query), query)
        return self.weights

    def select_pixel(self, t: int, py: float, px: float) -> np.ndarray:
        """Like ``select`` for a display pixel (py, px) of frame t."""
        t = check_int("t", t)
        if not self.geometry.contains_pixel(py, px):
            _, height, width = self.geometry.frames_shape
            raise ValueError(
                f"query: expected a pixel inside the {height}x{width} frames, got ({py}, {px})"
            )
        return self.select(t, *self.geometry.cell_of_pixel(py, px))

    @property
    def k(self) -> int:
        """Number of arrows (top-k weights)."""
        return self._k

    @k.setter
    def k(self, value: int) -> None:
        self._k = check_int("k", value, minimum=0)
        self._redraw()

    @property
    def shared_scale(self) -> bool:
        """One colour range for all frames (True) or one per frame (False)."""
        return self._shared

    @shared_scale.setter
    def shared_scale(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"shared_scale: expected True or False, got {value!r}")
        self._shared = value
        self._redraw()

    @property
    def heatmaps(self) -> list:
        """The T heatmap images (``AxesImage``), one per frame; ``get_array()`` is what is drawn."""
        return list(self._strip.heat)

    @property
    def arrows(self) -> list:
        """The arrows drawn (``ConnectionPatch``), query -> top-k keys, largest weight first."""
        return list(self._strip.arrows)

    def click_fraction(self, t: int, y: int, x: int) -> tuple[float, float]:
        """Where query cell (t, y, x) is on the canvas, as fractions (from left, from top)."""
        t, y, x = self.geometry.check_query((t, y, x))
        self.fig.draw_without_rendering()  # applies the axes' aspect; no canvas.draw (ipympl 472)
        py, px = self.geometry.pixel_of_cell(y, x)
        fx, fy = self.fig.transFigure.inverted().transform(
            self.frame_axes[t].transData.transform((px, py))
        )
        return float(fx), float(1.0 - fy)

    def close(self) -> None:
        """Close the figure (pyplot keeps it otherwise)."""
        plt.close(self.fig)

    # ------------------------------------------------------------------ widget

    @property
    def widget(self):
        """The canvas (ipympl) or a static view, the status label and the sliders."""
        if self._widget is None:
            import ipywidgets as widgets

            view, self._output = _canvas_view(self.fig)
            self._controls = _Controls(self, self.geometry, self._k, self._shared, self.query)
            self._widget = widgets.VBox([self.status, view, self._controls.box])
            _refresh_output(self.fig, self._output)
        return self._widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _on_press(self, event) -> None:
        """Matplotlib click: map display pixel -> query cell; errors go to ``status``."""
        if event.button != 1 or event.inaxes not in self.frame_axes or event.xdata is None:
            return
        toolbar = getattr(self.fig.canvas, "toolbar", None)
        if toolbar is not None and getattr(toolbar, "mode", ""):
            return  # pan/zoom active: the click is theirs
        t = self.frame_axes.index(event.inaxes)
        if not self.geometry.contains_pixel(event.ydata, event.xdata):
            _, height, width = self.geometry.frames_shape
            _set_status(
                self.status,
                f"error: click at ({event.ydata:.1f}, {event.xdata:.1f}) "
                f"is outside the {height}x{width} frame",
                error=True,
            )
            return
        y, x = self.geometry.cell_of_pixel(event.ydata, event.xdata)
        self._handle_query(t, y, x)

    def _widget_select(self, t: int, y: int, x: int) -> bool:
        """select() for clicks and sliders: never raises, reports errors in ``status``."""
        try:
            self.select(t, y, x)
        except Exception as err:  # noqa: BLE001 - the event loop must not see it
            self._report(err)
            return False
        return True

    def _widget_set(self, **settings) -> None:
        try:
            for name, value in settings.items():
                setattr(self, name, value)
        except Exception as err:  # noqa: BLE001
            self._report(err)

    def _report(self, err: Exception) -> None:
        _set_status(
            self.status, f"error: {err} (the drawing shows the last good query)", error=True
        )
        if self._controls is not None and self.query is not None:
            self._controls.sync(self.query, self._k, self._shared)

    # ------------------------------------------------------------------ drawing

    def _draw(self, weights: np.ndarray, query: tuple[int, int, int]) -> None:
        vmin, vmax = self._strip.update(weights, query, self._k, self._shared)
        self._mappable.set_clim(vmin, vmax)
        scale = "" if self._shared else f"\n(scale of frame t={query[0]})"
        self.colorbar.set_label(self.weight_label + scale, fontsize=8)
        t, y, x = query
        py, px = self.geometry.pixel_of_cell(y, x)
        self._title.set_text(f"{self.source}, query (t, y, x) = ({t}, {y}, {x})")
        text = (
            f"{self.source}: query (t, y, x) = ({t}, {y}, {x}), "
            f"pixel (y, x) = ({py:.0f}, {px:.0f}); top-{self._k} arrows"
        )
        self.weights, self.query = weights, query
        _set_status(self.status, f"{text}; max weight {weights.max():.3g}", error=False)
        if self._controls is not None:
            self._controls.sync(query, self._k, self._shared)
        if _interactive(self.fig.canvas):
            self.fig.canvas.draw_idle()  # ipympl & co. redraw later; Agg: the caller draws
        _refresh_output(self.fig, self._output)

    def _redraw(self) -> None:
        if self.weights is not None:
            self._draw(self.weights, self.query)


class CompareExplorer:
    """The same query under two sources, one explorer above the other (e.g. non-local means
    vs a learned block, or embedded Gaussian vs dot product).

    Both explorers show frames of the same size; a query travels between them as a display
    pixel, so their query grids may differ (pixels for NLM, features for a block).
    ``select(t, y, x)`` uses the first explorer's grid and returns both weights.
    """

    def __init__(self, first: AffinityExplorer, second: AffinityExplorer) -> None:
        for name, e in (("first", first), ("second", second)):
            if not isinstance(e, AffinityExplorer):
                raise TypeError(f"{name}: expected an AffinityExplorer, got {type(e).__name__}")
        if first.geometry.frames_shape != second.geometry.frames_shape:
            raise ValueError(
                f"second: expected frames of shape (T, H, W) = {first.geometry.frames_shape} "
                f"like the first explorer's, got {second.geometry.frames_shape}"
            )
        self.explorers = (first, second)
        self.status = _label()
        self._controls: _Controls | None = None
        self._widget = None
        for e in self.explorers:
            e._handle_query = self._click_from(e)
        self.select(*first.query)

    @property
    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        return tuple(e.weights for e in self.explorers)

    def select(self, t: int, y: int, x: int) -> tuple[np.ndarray, np.ndarray]:
        """Query cell (t, y, x) of the first explorer's grid, in both; returns both weights."""
        first = self.explorers[0]
        query = first.geometry.check_query((t, y, x))
        return self._select_pixel(query[0], *first.geometry.pixel_of_cell(*query[1:]))

    def _select_pixel(self, t: int, py: float, px: float):
        queries = [(t, *e.geometry.cell_of_pixel(py, px)) for e in self.explorers]
        weights = [e.affinity(*q) for e, q in zip(self.explorers, queries, strict=True)]
        for e, w, q in zip(self.explorers, weights, queries, strict=True):
            e._draw(w, q)  # both computed before either is drawn: all or nothing
        text = " | ".join(e.status.value.split("; max")[0] for e in self.explorers)
        _set_status(self.status, text, error=False)
        if self._controls is not None:
            first = self.explorers[0]
            self._controls.sync(first.query, first.k, first.shared_scale)
        return self.weights

    def _click_from(self, member: AffinityExplorer):
        def handle(t: int, y: int, x: int) -> bool:
            try:
                self._select_pixel(t, *member.geometry.pixel_of_cell(y, x))
            except Exception as err:  # noqa: BLE001 - the event loop must not see it
                self._report(err)
                return False
            return True

        return handle

    def _widget_select(self, t: int, y: int, x: int) -> bool:
        try:
            self.select(t, y, x)
        except Exception as err:  # noqa: BLE001
            self._report(err)
            return False
        return True

    def _widget_set(self, **settings) -> None:
        try:
            for e in self.explorers:
                for name, value in settings.items():
                    setattr(e, name, value)
        except Exception as err:  # noqa: BLE001
            self._report(err)

    def _report(self, err: Exception) -> None:
        _set_status(
            self.status, f"error: {err} (the drawing shows the last good query)", error=True
        )
        first = self.explorers[0]
        if self._controls is not None:
            self._controls.sync(first.query, first.k, first.shared_scale)

    @property
    def widget(self):
        if self._widget is None:
            import ipywidgets as widgets

            first = self.explorers[0]
            views = []
            for e in self.explorers:
                view, e._output = _canvas_view(e.fig)
                views.append(view)
                _refresh_output(e.fig, e._output)
            self._controls = _Controls(
                self, first.geometry, first.k, first.shared_scale, first.query
            )
            self._widget = widgets.VBox([self.status, *views, self._controls.box])
        return self._widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def close(self) -> None:
        for e in self.explorers:
            e.close()
