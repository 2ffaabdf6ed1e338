"""The controls of ``AffinityExplorer.widget``; each calls the explorer's public methods."""

import re
from pathlib import Path

import ipywidgets as widgets

from nlviz.plot import SCALES

__all__ = []  # used by nlviz.explorer only


class _Controls:
    """The widgets under an explorer's canvas (``box``, in ``widget``); ``sync`` shows its state."""

    def __init__(self, explorer) -> None:
        self.explorer, self.syncing, canvas = explorer, False, explorer.fig.canvas
        live = isinstance(canvas, widgets.DOMWidget)  # ipympl; else a picture of the figure
        self.picture = None if live else widgets.Output()
        canvas.header_visible = False
        (t, y, x), geo = explorer.query, explorer.geometry
        opts = {"layout": widgets.Layout(width="240px"), "continuous_update": False}
        self.t = widgets.IntSlider(t, 0, geo.frames_shape[0] - 1, description="t", **opts)
        self.y = widgets.IntSlider(y, 0, geo.grid_shape[0] - 1, description="y", **opts)
        self.x = widgets.IntSlider(x, 0, geo.grid_shape[1] - 1, description="x", **opts)
        self.k = widgets.IntSlider(explorer.k, 0, 100, description="top-k", **opts)
        self.scale = widgets.ToggleButtons(options=SCALES, value=explorer.scale,
                                           description="scale")  # fmt: skip
        self.mass = widgets.ToggleButton(explorer.mass is not None, description="mass view (m)")
        share = {"min": 0.05, "max": 1.0, "step": 0.05, "description": "share"}
        self.share = widgets.FloatSlider(explorer.last_mass, **share, **opts)
        self.format = widgets.Dropdown(options=("png", "svg", "pdf"), layout={"width": "70px"})
        self.save = widgets.Button(description="Save", icon="download", tooltip="into this folder")
        query = (self.t, self.y, self.x)
        for s in query:
            s.observe(lambda _: self._call(explorer.select, *(q.value for q in query)), "value")
        self.k.observe(lambda ch: self._call(setattr, explorer, "k", ch["new"]), "value")
        self.scale.observe(lambda ch: self._call(setattr, explorer, "scale", ch["new"]), "value")
        self.mass.observe(lambda ch: self._call(setattr, explorer, "mass", self.shown), "value")
        self.share.observe(lambda ch: self._call(setattr, explorer, "mass", self.shown), "value")
        self.save.on_click(lambda _: explorer._safe(self._save))
        rows = [*query], [self.k, self.scale], [self.mass, self.share, self.save, self.format]
        self.box = widgets.VBox([widgets.HBox(row) for row in rows])
        self.widget = widgets.VBox([explorer.status, canvas if live else self.picture, self.box])

    @property
    def shown(self) -> float | None:
        return self.share.value if self.mass.value else None

    def _call(self, fn, *args) -> None:
        if not self.syncing:  # a change made by ``sync`` is not the user's
            self.explorer._safe(fn, *args)

    def _save(self) -> None:  # into the working folder (the notebook's), under a new name
        e = self.explorer
        name = re.sub(r"[^a-z0-9]+", "-", e.sources[0].name.lower()).strip("-")[:40]
        stem = "{}_t{}_y{}_x{}".format(name or "explorer", *e.query)
        stem += f"_mass{round(100 * e.mass)}" if e.mass else ""
        path, n = Path.cwd() / f"{stem}.{self.format.value}", 1
        while path.exists():  # a name no file has yet: stem-2, stem-3, ...
            n += 1
            path = path.with_name(f"{stem}-{n}.{self.format.value}")
        path = e.save(path)
        size = path.stat().st_size / 1024
        e.status.value += f" | saved {path.name} ({size:.0f} KB) in {path.parent}"

    def sync(self) -> None:  # show the explorer's state, without acting on it
        e, self.syncing = self.explorer, True
        try:
            (self.t.value, self.y.value, self.x.value), self.k.value = e.query, e.k
            self.scale.value, self.mass.value = e.scale, e.mass is not None
            self.share.value = e.last_mass
        finally:
            self.syncing = False
