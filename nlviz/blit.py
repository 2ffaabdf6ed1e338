"""Redraw only what changes (blitting), the explorer's click path: the fixed part kept as pixels."""

from matplotlib.text import Text

__all__ = []  # used by nlviz.explorer only


class _Blitter:
    """``fig``'s fixed part under ``changing`` (drawing order); ``invalidate()`` when it changes."""

    def __init__(self, fig, changing) -> None:
        self.fig, self.changing, self._saved = fig, list(changing), None

    def invalidate(self) -> None:
        self._saved = None

    def redraw(self) -> None:
        canvas = self.fig.canvas
        key = (canvas.get_width_height(physical=True), self.fig.dpi)  # size or dpi: invalidates
        if self._saved is None or self._saved[0] != key:
            self._saved = (key, self._fixed_part())
        canvas.restore_region(self._saved[1])
        for artist in self.changing:
            self.fig.draw_artist(artist)
        canvas.blit(self.fig.bbox)

    def _fixed_part(self):
        """Draw all but ``changing`` into the renderer (ipympl would send a ``canvas.draw()``)."""
        old = [(a, a.get_text() if isinstance(a, Text) else a.get_visible()) for a in self.changing]
        for artist, _ in old:  # a text emptied, not hidden: Axes.draw moves a hidden title
            artist.set_text("") if isinstance(artist, Text) else artist.set_visible(False)
        try:
            renderer = self.fig.canvas.get_renderer()
            renderer.clear()
            self.fig.draw(renderer)
            return self.fig.canvas.copy_from_bbox(self.fig.bbox)
        finally:
            for artist, was in old:
                artist.set_text(was) if isinstance(artist, Text) else artist.set_visible(was)
