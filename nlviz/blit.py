"""Redraw only what changes (matplotlib's blitting), the explorer's click path: the fixed
parts of a figure are drawn once and kept as pixels, a redraw puts them back and draws the
changing artists over them in the order of a full draw (so the picture is the same)."""

from __future__ import annotations

from matplotlib.text import Text

__all__ = []  # used by nlviz.explorer only


class _Blitter:
    """The fixed part of ``fig``, with ``changing`` (artists, in drawing order) drawn over it;
    ``invalidate()`` after a change to the fixed part (a new canvas size or dpi does it too)."""

    def __init__(self, fig, changing) -> None:
        self.fig, self.changing, self._saved = fig, list(changing), None

    def invalidate(self) -> None:
        self._saved = None

    def redraw(self) -> None:
        """Draw the changing artists over the fixed part and show the result (``blit``)."""
        canvas = self.fig.canvas
        key = (canvas.get_width_height(physical=True), self.fig.dpi)
        if self._saved is None or self._saved[0] != key:
            self._saved = (key, self._fixed_part())
        canvas.restore_region(self._saved[1])
        for artist in self.changing:
            self.fig.draw_artist(artist)
        canvas.blit(self.fig.bbox)

    def _fixed_part(self):
        """A full draw without the changing artists, into the canvas's own renderer (not
        ``canvas.draw()``: ipympl would send that half picture to the browser). Texts are
        emptied rather than hidden: Axes.draw moves a hidden title (matplotlib 3.11)."""
        old = [(a, a.get_text() if isinstance(a, Text) else a.get_visible()) for a in self.changing]
        for artist, _ in old:
            artist.set_text("") if isinstance(artist, Text) else artist.set_visible(False)
        try:
            renderer = self.fig.canvas.get_renderer()
            renderer.clear()
            self.fig.draw(renderer)
            return self.fig.canvas.copy_from_bbox(self.fig.bbox)
        finally:
            for artist, was in old:
                artist.set_text(was) if isinstance(artist, Text) else artist.set_visible(was)
