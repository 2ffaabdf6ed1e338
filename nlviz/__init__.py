"""nlviz: the helper package of the course "Non-local Neural Networks".

Modules, one idea each (the notebook that introduces it in brackets):

- ``nlviz.nlm``       classic non-local means in NumPy (01)
- ``nlviz.plot``      static figures: weight maps, image grids, affinity strips (01, 02, 05)
- ``nlviz.pairwise``  the four pairwise functions, naive and efficient (02)
- ``nlviz.block``     ``NonLocalBlock``, paper Eq. 6 / Fig. 2 (03)
- ``nlviz.video``     synthetic video task and C2D / non-local networks (04)
- ``nlviz.train``     training loop, checkpoints, CLI (04)
- ``nlviz.experiments`` the pairwise and variant ablations, ``ablation.csv`` (04)
- ``nlviz.explorer``  ``AffinityExplorer``: click a pixel, see its affinities (05)
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {"NonLocalBlock": "nlviz.block", "AffinityExplorer": "nlviz.explorer"}


def __getattr__(name: str):
    # Lazy so that `import nlviz.nlm` does not import torch or ipywidgets.
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nlviz' has no attribute {name!r}")


__all__ = ["NonLocalBlock", "AffinityExplorer", "__version__"]
