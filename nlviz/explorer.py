"""``AffinityExplorer``: click a pixel of any frame, see where it attends in every frame
(notebook 05). One row of frames per source of weights (``nlviz.attention.Source``); with
several rows (``compare``) a click queries them all at the same display pixel.

Clicks need ipympl (``%matplotlib widget``); the sliders and ``select(t, y, x)`` take the same
path everywhere. Displayed in a notebook, the explorer also carries a PNG of its state, which
static viewers (a repository page, the course site) show in place of the widget.
"""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.backend_bases import FigureCanvasBase

from nlviz.attention import Source
from nlviz.figure3 import SCALES, Strip, colorbar, frame_grid, sources_of
from nlviz.utils import check_bool, check_choice, check_int

__all__ = ["AffinityExplorer", "STATUS_CLASS", "ERROR_CLASS"]

STATUS_CLASS, ERROR_CLASS = "nlviz-explorer-status", "nlviz-explorer-error"
SOURCE_KEYS = ("name", "label", "grid_shape", "pool", "patch_size", "patch_distance", "h", "sigma",
               "per_frame", "block")  # fmt: skip


def _option(name: str, check):
    """A property whose new value is checked, then drawn."""

    def set_value(self, value):
        setattr(self, f"_{name}", check(name, value))
        self._draw(self.queries, self.all_weights)

    return property(lambda self: getattr(self, f"_{name}"), set_value)


class AffinityExplorer:
    """Frames in a row per source; a click at (t, y, x) draws that query's weights everywhere.

    Parameters
    ----------
    frames : array (T, H, W[, 3]) or an image
    affinity_fn : callable
        ``affinity_fn(t, y, x) -> (T, h', w')``: the weights of query (t, y, x) of the query
        grid (``grid_shape``, default the pixels) over the grid of j (pooled by ``pool``).
    k : int
        How many top positions j are marked (Figure 3 draws 20).
    scale : str
        "auto" (signed if a weight is < 0, else log), "log", "linear" or "signed".
    shared_scale : bool
        One colour range for all frames (True) or one per frame.
    query : (t, y, x), optional
        The first query (default: the centre of the middle frame).

    Attributes: ``fig``, ``sources``, ``strips`` (one per row), ``frame_axes``, ``query`` and
    ``weights`` of the first row, ``queries`` and ``all_weights`` of every row, ``status`` (a
    Label of CSS class ``nlviz-explorer-status``), ``widget`` (display it), ``controls``.
    """

    k = _option("k", lambda n, v: check_int(n, v, minimum=0, maximum=1000))
    scale = _option("scale", lambda n, v: check_choice(n, v, SCALES))
    shared_scale = _option("shared_scale", check_bool)

    def __init__(self, frames, affinity_fn, *, grid_shape=None, pool=(1, 1), name="affinity",
                 label="weight f(x_i, x_j) / C(x)", **options) -> None:  # fmt: skip
        kw = {"grid_shape": grid_shape, "pool": pool, "name": name, "label": label}
        self._setup([Source.create(frames, affinity_fn, **kw)], **options)

    @classmethod
    def from_sources(cls, sources, **options) -> AffinityExplorer:
        """An explorer with one row per ``Source`` (on frames of one shape)."""
        explorer = cls.__new__(cls)
        explorer._setup(sources_of(sources), **options)
        return explorer

    @classmethod
    def _from(cls, make, *args, **kwargs) -> AffinityExplorer:
        source = make(*args, **{k: v for k, v in kwargs.items() if k in SOURCE_KEYS})
        return cls.from_sources(
            [source], **{k: v for k, v in kwargs.items() if k not in SOURCE_KEYS}
        )

    @classmethod
    def from_block(cls, block, features, frames, **kwargs) -> AffinityExplorer:
        """A ``NonLocalBlock`` on its input features (``Source.from_block``)."""
        return cls._from(Source.from_block, block, features, frames, **kwargs)

    @classmethod
    def from_nlm(cls, video, **kwargs) -> AffinityExplorer:
        """Non-local means weights of each pixel (``Source.from_nlm``)."""
        return cls._from(Source.from_nlm, video, **kwargs)

    @classmethod
    def from_checkpoint(cls, path, batch, index=0, *, block=0, **kwargs) -> AffinityExplorer:
        """A trained block on video ``index`` of ``batch`` (``Source.from_checkpoint``); sets
        ``model``, ``checkpoint`` and ``logits`` (the model's output on the video)."""
        explorer = cls._from(Source.from_checkpoint, path, batch, index, block=block, **kwargs)
        source = explorer.sources[0]
        explorer.model, explorer.checkpoint, explorer.logits = (
            source.model,
            source.checkpoint,
            source.output,
        )
        return explorer

    @classmethod
    def compare(cls, *explorers, **options) -> AffinityExplorer:
        """One explorer with the rows of all ``explorers`` (e.g. NLM, a tracking block and a
        classification block): a click queries every row at the same display pixel."""
        sources = [s for e in explorers for s in sources_of(e)]
        shape = sources[0].geometry.frames_shape
        for s in sources[1:]:
            if s.geometry.frames_shape != shape:
                raise ValueError(
                    f"second: expected frames {shape} like the first, got {s.geometry.frames_shape}"
                )
        return cls.from_sources(sources, **{"k": getattr(explorers[0], "k", 20), **options})

    def _setup(self, sources, *, k=20, scale="auto", shared_scale=True, query=None, ncols=None):
        self.sources, self.queries, self.all_weights = sources, None, None
        self._k = check_int("k", k, minimum=0, maximum=1000)
        self._scale = check_choice("scale", scale, SCALES)
        self._shared_scale = check_bool("shared_scale", shared_scale)
        geo = sources[0].geometry
        (t_count, *_), (h, w) = geo.frames_shape, geo.grid_shape
        queries = self._queries(*((t_count // 2, h // 2, w // 2) if query is None else query))
        weights = [s.weights(*q) for s, q in zip(sources, queries, strict=True)]  # before drawing
        ncols = check_int("ncols", ncols or min(t_count, 4), minimum=1)
        with plt.ioff():
            self.fig = plt.figure()
        rows, self._bars = frame_grid(self.fig, geo.frames_shape, len(sources), ncols)
        self.strips = [Strip(self.fig, axes, s) for axes, s in zip(rows, sources, strict=True)]
        self.frame_axes, self.controls, self._widget, self._output = rows[0], None, None, None
        self.status = widgets.Label()
        self.status.add_class(STATUS_CLASS)
        self.fig.canvas.mpl_connect("button_press_event", self._on_press)
        self._draw(queries, weights)

    # ------------------------------------------------------------------ from code

    @property
    def query(self) -> tuple[int, int, int]:
        return self.queries[0]

    @property
    def weights(self):
        """The weights drawn in the first row, (T, h', w')."""
        return self.all_weights[0]

    @property
    def geometry(self):
        return self.sources[0].geometry

    @property
    def heatmaps(self) -> list:
        return list(self.strips[0].heat)

    @property
    def arrows(self) -> list:
        """The first row's arrows to the top-k positions j, largest weight first."""
        return list(self.strips[0].arrows)

    @property
    def colorbar(self):
        return self.colorbars[0]

    def affinity(self, t: int, y: int, x: int):
        """The first source's weights of query (t, y, x), checked; draws nothing."""
        return self.sources[0].weights(t, y, x)

    def _queries(self, t, y, x) -> list[tuple[int, int, int]]:
        """Query (t, y, x) of the first grid, and the same display pixel on the other grids."""
        t, y, x = self.sources[0].geometry.check_query((t, y, x))
        py, px = self.sources[0].geometry.pixel_of_cell(y, x)
        return [(t, y, x)] + [(t, *s.geometry.cell_of_pixel(py, px)) for s in self.sources[1:]]

    def select(self, t: int, y: int, x: int):
        """Draw query (t, y, x) of the first grid and return its weights; a bad query raises
        and leaves the drawing as it was."""
        queries = self._queries(t, y, x)
        self._draw(queries, [s.weights(*q) for s, q in zip(self.sources, queries, strict=True)])
        return self.weights

    def select_pixel(self, t: int, py: float, px: float):
        """Like ``select`` for the display pixel (py, px) of frame t, in every row."""
        t = check_int("t", t)
        queries = [(t, *s.geometry.cell_of_pixel(py, px)) for s in self.sources]
        self._draw(queries, [s.weights(*q) for s, q in zip(self.sources, queries, strict=True)])
        return self.weights

    def click_fraction(self, t: int, y: int, x: int) -> tuple[float, float]:
        """Where query cell (t, y, x) is on the canvas, as fractions (from left, from top)."""
        t, y, x = self.geometry.check_query((t, y, x))
        self.fig.draw_without_rendering()  # applies the aspect; not canvas.draw (ipympl 472)
        point = self.frame_axes[t].transData.transform(self.geometry.pixel_of_cell(y, x)[::-1])
        fx, fy = self.fig.transFigure.inverted().transform(point)
        return float(fx), float(1.0 - fy)

    def png(self) -> bytes:
        """The current picture as PNG bytes."""
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=100)
        return buf.getvalue()

    def close(self) -> None:
        plt.close(self.fig)

    # ------------------------------------------------------------------ widget

    @property
    def widget(self):
        """The status label, the canvas (ipympl) or a picture of it, and the sliders."""
        if self._widget is None:
            view = (
                self.fig.canvas
                if isinstance(self.fig.canvas, widgets.DOMWidget)
                else widgets.Output()
            )
            self._output = None if view is self.fig.canvas else view
            self.fig.canvas.header_visible = False
            self.controls = self._sliders()
            self._widget = widgets.VBox([self.status, view, self.controls.box])
            self._refresh()
        return self._widget

    def _sliders(self) -> SimpleNamespace:
        (t, y, x), geo = self.query, self.geometry
        opts = {"layout": widgets.Layout(width="240px"), "continuous_update": False}
        c = SimpleNamespace(syncing=False)
        c.t = widgets.IntSlider(t, 0, geo.frames_shape[0] - 1, description="t", **opts)
        c.y = widgets.IntSlider(y, 0, geo.grid_shape[0] - 1, description="y", **opts)
        c.x = widgets.IntSlider(x, 0, geo.grid_shape[1] - 1, description="x", **opts)
        c.k = widgets.IntSlider(self._k, 0, 100, description="top-k", **opts)
        c.scale = widgets.ToggleButtons(options=SCALES, value=self._scale, description="scale")
        for s in (c.t, c.y, c.x):
            s.observe(
                lambda _: c.syncing or self._safe(self.select, c.t.value, c.y.value, c.x.value),
                "value",
            )
        c.k.observe(lambda ch: c.syncing or self._safe(setattr, self, "k", ch["new"]), "value")
        c.scale.observe(
            lambda ch: c.syncing or self._safe(setattr, self, "scale", ch["new"]), "value"
        )
        c.box = widgets.VBox([widgets.HBox([c.t, c.y, c.x]), widgets.HBox([c.k, c.scale])])
        return c

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        bundle["text/plain"] = f"AffinityExplorer: {self.status.value}"
        bundle["image/png"] = base64.b64encode(self.png()).decode()
        return bundle

    def _on_press(self, event) -> None:
        """A click: display pixel -> the query cell of every row; errors go to ``status``."""
        axes = [ax for s in self.strips for ax in s.axes]
        if event.button != 1 or event.inaxes not in axes or event.xdata is None:
            return
        if getattr(getattr(self.fig.canvas, "toolbar", None), "mode", ""):
            return  # pan or zoom is on: the click is theirs
        t = axes.index(event.inaxes) % len(self.frame_axes)
        self._safe(self.select_pixel, t, event.ydata, event.xdata)

    def _safe(self, fn, *args) -> None:
        """Run ``fn`` for a click or a slider: never raise, report errors in ``status``."""
        try:
            fn(*args)
        except Exception as err:  # noqa: BLE001 - the event loop must not see it
            self.status.value = f"error: {err} (the drawing shows the last good query)"
            self.status.add_class(ERROR_CLASS)
            self._sync()

    def _sync(self) -> None:
        """Sliders back on the drawn state, without triggering them."""
        if (c := self.controls) is not None:
            c.syncing = True
            (c.t.value, c.y.value, c.x.value), c.k.value, c.scale.value = (
                self.query,
                self._k,
                self._scale,
            )
            c.syncing = False

    # ------------------------------------------------------------------ drawing

    def _draw(self, queries, weights) -> None:
        self.colorbars = []
        for strip, bar, source, q, w in zip(
            self.strips, self._bars, self.sources, queries, weights, strict=True
        ):
            norm, used = strip.update(w, q, self._k, self._scale, self._shared_scale)
            bar.clear()
            label = source.label + ("" if self._shared_scale else f", frame t={q[0]}")
            self.colorbars.append(colorbar(self.fig, bar, norm, used, label))
        self.queries, self.all_weights = queries, weights
        (t, y, x), names = queries[0], " | ".join(s.name for s in self.sources)
        py, px = self.geometry.pixel_of_cell(y, x)
        self.fig.suptitle(f"{names}: query (t, y, x) = ({t}, {y}, {x})", fontsize=10)
        self.status.value = (f"{names}: query (t, y, x) = ({t}, {y}, {x}), pixel (y, x) = "
                             f"({py:.0f}, {px:.0f}); top-{self._k} j, "
                             f"max weight {weights[0].max():.3g}")  # fmt: skip
        self.status.remove_class(ERROR_CLASS)
        self._sync()
        if type(self.fig.canvas).draw_idle is not FigureCanvasBase.draw_idle:
            self.fig.canvas.draw_idle()  # ipympl and co. redraw later; under Agg the caller draws
        self._refresh()

    def _refresh(self) -> None:
        if self._output is not None:
            with self._output:
                self._output.clear_output(wait=True)
                display(self.fig)
