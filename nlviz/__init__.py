"""nlviz: the helper package of the course "Non-local Neural Networks" (see the README's map).
``NonLocalBlock`` and ``AffinityExplorer`` are imported on first use: ``nlviz.nlm`` stays light."""

from importlib import import_module

__version__ = "0.2.0"
__all__ = ["NonLocalBlock", "AffinityExplorer", "__version__"]
_LAZY = {"NonLocalBlock": "nlviz.block", "AffinityExplorer": "nlviz.explorer"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nlviz' has no attribute {name!r}")
