"""Generated bad-input tests (issue 22): every public callable of nlviz refuses bad input by name.

Every module of the package is walked (``pkgutil``: a module added later is covered too). Each
callable name of a module's ``__all__`` that the module defines (a re-export is tested at
home) is a *target*: the function, or a class's constructor, its own public methods (not the
ones inherited from torch or matplotlib) and its properties with a setter. For each target a
*valid call* is built from the signature: the defaults, and where a parameter has none the
valid value of ``EXAMPLES`` (small tensors and arrays of the documented shapes). Then each
parameter in turn gets the bad values of its kind (``BAD``: a wrong type, a bool for an int,
"no" for a flag, NaN and inf for a real, a negative size, an empty array, an absurd size
10**9, a wrong dtype or ndim), and each target an unknown keyword. Every such call must raise
TypeError or ValueError whose message starts with the parameter's name, the project's
convention ``<argument>: expected ..., got ...``.

A parameter's kind comes from ``KINDS``, else from its example, its annotation or its default.
Each call runs under a time limit and a memory cap (``TIMEOUT_S``, ``MEMORY_HEADROOM``): an
absurd size must be refused before it allocates, not allocated. ``SKIP`` lists what cannot
run in a unit test, with the reason. ``benchmarks/survey_bad_input.py`` runs the same cases and
counts the outcomes per module.

A new public function needs an entry in ``EXAMPLES`` for each parameter without a default
(``test_valid_call`` names the missing ones), and one in ``KINDS`` where neither the example,
the annotation nor the default says what the parameter is.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import dataclasses
import functools
import importlib
import inspect
import pkgutil
import re
import resource
import shutil
import signal
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

import nlviz
from nlviz.attention import Geometry, Source
from nlviz.block import NonLocalBlock
from nlviz.checkpoint import FORMAT, make_checkpoint
from nlviz.denoise import Config as DenoiseConfig
from nlviz.denoise import DenoiseNet
from nlviz.experiments import COLUMNS
from nlviz.explorer import AffinityExplorer
from nlviz.nets import VideoNet
from nlviz.spacetime import SpacetimeAttention
from nlviz.train import Config, make_data
from nlviz.video import generate, save_sample

matplotlib.use("Agg")

NAN, INF = float("nan"), float("inf")
UNKNOWN = "no_such_arg"  # the unknown keyword every target is given once
TIMEOUT_S = 3.0  # per call; a longer one is a hang
TIMEOUTS = {"denoise.train": 20.0}  # a real (tiny) training per call
MEMORY_HEADROOM = 3 * 2**30  # bytes a call may add to the process before it is refused
_TMP = Path(tempfile.mkdtemp(prefix="nlviz-bad-input-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)

# --------------------------------------------------------------------------- valid examples


@dataclasses.dataclass(frozen=True)
class Fresh:
    """A valid value of a known kind, built anew for every call (tensors, figures, files)."""

    kind: str
    make: Callable[[], Any]


def arr(*shape, dtype=np.float64) -> Fresh:
    """A float array in [0, 1) of ``shape``."""
    return Fresh("array", lambda: np.random.default_rng(0).random(shape).astype(dtype))


def ten(*shape, kind="tensor") -> Fresh:
    """A float32 tensor of ``shape``; kind "input" for a float32 module's input."""
    return Fresh(kind, lambda: torch.randn(shape, generator=torch.Generator().manual_seed(0)))


def inp(*shape) -> Fresh:
    return ten(*shape, kind="input")


def obj(make) -> Fresh:
    return Fresh("object", make)


def tmp(name: str = "") -> Path:
    """A new empty folder, or the path ``name`` in one."""
    folder = Path(tempfile.mkdtemp(dir=_TMP))
    return folder / name if name else folder


def out(name: str) -> Fresh:
    """A file to write, in a new folder."""
    return Fresh("path_out", lambda: tmp(name))


def weights_fn(t, y, x):
    """An affinity_fn for (2, 8, 8) frames: uniform weights over the 2 x 8 x 8 grid of j."""
    return np.full((2, 8, 8), 1 / 128)


def build_video_net(ckpt):
    return VideoNet(**ckpt["model"])


def step(model, batch, device):
    return model(batch[0]).square().mean(), None, 1


@functools.cache
def _file(kind: str) -> Path:
    """The files the readers are given: built once per process, read only."""
    torch.manual_seed(0)
    if kind == "video.pt":  # a spacetime VideoNet checkpoint (classify), 16 x 16 frames
        arch = {"variant": "spacetime", "pairwise": "embedded_gaussian", "blocks": 1, "width": 1}
        info = {"kind": "classify", "model": arch, "metrics": {}}
        torch.save(make_checkpoint(VideoNet(**arch), info, {}), _TMP / kind)
    elif kind == "denoise.pt":
        arch = {"variant": "windowed", "depth": 3, "width": 2, "window": 2}
        info = {"kind": "denoise", "model": arch, "metrics": {}}
        torch.save(make_checkpoint(DenoiseNet(**arch), info, {}), _TMP / kind)
    elif kind == "results.csv":
        (_TMP / kind).write_text(",".join(COLUMNS) + "\n")
    elif kind == "sample.npz":
        save_sample(_TMP / kind, _batch("classify"))
    return _TMP / kind


def reads(kind: str) -> Fresh:
    return Fresh("path_in", lambda: _file(kind))


@functools.cache
def _batch(task: str):
    return generate(1, task=task, frames=2, size=16, objects=3)


def batch_field(task: str, field: str) -> Fresh:
    kind = "array" if field in ("tracks", "radius") else "int_array"  # the float ones
    return Fresh(kind, lambda: getattr(_batch(task), field).copy())


def tiny_train_config() -> Config:
    return Config(n_train=2, n_val=2, epochs=1, width=1, size=16, frames=2, batch_size=2)


def tiny_denoise_config() -> DenoiseConfig:
    return DenoiseConfig(steps=1, epochs=1, batch_size=1, patch=8, depth=3, width=2, window=2)


def source() -> Source:
    return Source.create(np.random.default_rng(0).random((2, 8, 8)), weights_fn)


def explorer() -> AffinityExplorer:
    return AffinityExplorer(np.random.default_rng(0).random((2, 8, 8)), weights_fn, ncols=2)


def _run_row() -> dict:
    return {"model": "C2D", "pairwise": "none", "variant": "none", "blocks": 0, "seed": 0,
            "config": "tiny", "val_acc": 0.5, "test_acc": 0.5, "device": "cpu", "cpu": "x",
            "train_seconds": 1.0, "fingerprint": "f"}  # fmt: skip


# Valid values, by "module.Target.param", "module.Class.param" (every method of the class),
# "module.param" or "param", the first that exists: the valid call's where a parameter has no
# default, else (a default of None) the value its bad values are made from and its kind.
# Frames are (T, H, W) = (2, 8, 8) throughout; a block has C = 4 channels.
EXAMPLES: dict[str, Any] = {
    "name": "the_arg",  # the label a check puts first in its message
    "t": 1, "y": 2, "x": 3, "py": 3.0, "px": 3.0, "seed": 0, "n": 2, "query": (1, 2, 3),
    "title": "a title", "label": "a label", "mass": 0.5, "share": 0.5, "ncols": 2,
    # nlviz.attention
    "attention.frames": arr(2, 8, 8), "attention.video": arr(2, 8, 8),
    "attention.affinity_fn": weights_fn, "attention.frames_shape": (2, 8, 8),
    "attention.grid_shape": (8, 8), "attention.Geometry.weights": arr(2, 8, 8),
    "attention.yj": Fresh("int_array", lambda: np.arange(3)),
    "attention.xj": Fresh("int_array", lambda: np.arange(3)),
    "attention.Source.geometry": obj(lambda: Geometry.create((2, 8, 8))),
    "attention.Source.from_block.block": obj(lambda: NonLocalBlock(4)),
    "attention.attention_matrix.block": obj(lambda: NonLocalBlock(4)),
    "attention.features": ten(1, 4, 2, 8, 8),
    "attention.Source.from_checkpoint.path": reads("video.pt"),
    "attention.batch": obj(lambda: generate(2, frames=2, size=16)),
    "attention.masks": Fresh("int_array", lambda: np.arange(128).reshape(2, 8, 8) % 3 - 1),
    "attention.objects": 2, "attention.cell": 4,
    "attention.masses.weights": arr(3, 4), "attention.cover_j": arr(4, 3),
    # nlviz.block
    "block.NonLocalBlock.in_channels": 4, "block.NonLocalBlock.x": inp(1, 4, 2, 4, 4),
    "block.NonLocalBlock.spatial_shape": (2, 4, 4),
    "block.Windowed.block": obj(lambda: NonLocalBlock(4, dim=2, subsample=False)),
    "block.Windowed.window": 2, "block.Windowed.x": inp(1, 4, 4, 4),
    "block.Windowed.query": (1, 2), "block.NonLocalBlock.query": (1, 2, 3),
    # nlviz.checkpoint
    "checkpoint.checkpoint": Fresh("dict", lambda: {"format": FORMAT, "kind": "test",
                                                    "model": {}, "state_dict": {}}),
    "checkpoint.model": obj(lambda: nn.Linear(2, 1)),
    "checkpoint.info": Fresh("dict", lambda: {"kind": "test", "model": {}, "metrics": {}}),
    "checkpoint.history": Fresh("dict", lambda: {"loss": [1.0]}),
    "checkpoint.save_checkpoint.path": out("c.pt"),
    "checkpoint.read_checkpoint.path": reads("video.pt"),
    "checkpoint.build": build_video_net,
    # nlviz.denoise
    "denoise.name": "camera", "denoise.train_split.name": "coins",
    "denoise.image": arr(8, 8, dtype=np.float32), "denoise.sigma": 0.1,
    "denoise.DenoiseNet.v": inp(1, 1, 8, 8), "denoise.DenoiseNet.query": (3, 4),
    "denoise.Config.steps": 8, "denoise.variant": "plain",
    "denoise.tiled.model": obj(lambda: DenoiseNet("nonlocal", depth=3, width=2, window=2)),
    "denoise.window": 2, "denoise.path": reads("denoise.pt"), "denoise.out": out("d.pt"),
    "denoise.sample_batch.regions": Fresh("list", lambda: [np.zeros((8, 8), np.float32)]),
    "denoise.sample_batch.rng": obj(lambda: np.random.default_rng(0)),
    "denoise.sample_batch.batch": 2, "denoise.patch": 4, "denoise.sigmas": (5.0, 55.0),
    # nlviz.experiments
    "experiments.runs": Fresh("list", lambda: [_run_row()]),
    "experiments.path": reads("results.csv"), "experiments.config": "tiny",
    "experiments.threads": 1,
    # nlviz.explorer (frames (2, 8, 8), the query grid their pixels)
    "explorer.frames": arr(2, 8, 8), "explorer.affinity_fn": weights_fn,
    "explorer.grid_shape": (8, 8), "explorer.sources": Fresh("list", lambda: [source()]),
    "explorer.AffinityExplorer.from_block.block": obj(lambda: NonLocalBlock(4)),
    "explorer.features": ten(1, 4, 2, 8, 8), "explorer.video": arr(2, 8, 8),
    "explorer.path": reads("video.pt"), "explorer.AffinityExplorer.save.path": out("e.png"),
    "explorer.batch": obj(lambda: generate(2, frames=2, size=16)),
    "explorer.explorers": Fresh("list", lambda: [explorer(), explorer()]),
    "explorer.k": 5, "explorer.scale": "log", "explorer.shared_scale": True,
    # nlviz.figure3
    "figure3.k": 3,
    "figure3.explorer": obj(source), "figure3.queries": Fresh("list", lambda: [(1, 2, 3)]),
    "figure3.scale": "log",
    # nlviz.fingerprint
    "fingerprint.model": obj(lambda: nn.Linear(2, 1)),
    "fingerprint.exact": Fresh("dict", lambda: {"seed": 0}),
    "fingerprint.pixels": Fresh("list", lambda: (torch.zeros(2),)),
    "fingerprint.a": "fp1:0:w=1,0,0,0:x=1,0,0,0", "fingerprint.b": "fp1:0:w=1,0,0,0:x=1,0,0,0",
    # nlviz.mass
    "mass.weights": arr(2, 4, 4),
    # nlviz.nets
    "nets.pairwise": "embedded_gaussian",
    "nets.VideoNet.x": inp(1, 3, 2, 16, 16), "nets.TrackNet.x": inp(1, 6, 2, 16, 16),
    "nets.model": obj(lambda: nn.Linear(2, 1)),
    # nlviz.nlm
    "nlm.image": arr(8, 8), "nlm.query": (3, 4), "nlm.channel_axis": -1,
    # nlviz.pairwise: tokens (B, N, Ck) = (1, 4, 3), (B, M, Ck) = (1, 5, 3), g (1, 5, 2)
    "pairwise.theta": ten(1, 4, 3),
    "pairwise.phi": ten(1, 5, 3), "pairwise.g": ten(1, 5, 2), "pairwise.w_f": ten(6),
    # nlviz.plot (8 x 8 images)
    "plot.image": arr(8, 8), "plot.weights": arr(8, 8), "plot.query": (3, 4),
    "plot.images": Fresh("list", lambda: [np.zeros((8, 8)), np.ones((8, 8))]),
    "plot.titles": Fresh("list", lambda: ["a", "b"]), "plot.maps": arr(2, 8, 8),
    "plot.ax": obj(lambda: plt.subplots()[1]), "plot.fig": obj(plt.figure),
    "plot.axes": Fresh("list", lambda: list(plt.subplots(1, 2)[1])),
    "plot.save_figure.path": out("f.png"), "plot.vmax": 0.5, "plot.top": 1.0,
    "plot.patch_size": 3, "plot.patch_distance": 2, "plot.suptitle": "a title",
    # nlviz.spacetime (a block on C = 4 channels, (T, H, W) = (2, 4, 4))
    "spacetime.SpacetimeAttention.channels": 4,
    "spacetime.SpacetimeAttention.x": inp(1, 4, 2, 4, 4), "spacetime.shape": (2, 4, 4),
    "spacetime.query": (1, 2, 3), "spacetime.mode": "divided",
    "spacetime.block": obj(lambda: SpacetimeAttention(4, mode="divided")),
    "spacetime.features": ten(1, 4, 2, 4, 4),
    "spacetime.block_inputs.model": obj(lambda: nn.Sequential(SpacetimeAttention(4))),
    "spacetime.block_inputs.x": inp(1, 4, 2, 4, 4),
    # nlviz.train
    "train.Config.n_train": 2, "train.Config.n_val": 2, "train.Config.epochs": 1,
    "train.fit.model": obj(lambda: nn.Linear(2, 1)),
    "train.fit.batches": lambda: [(torch.ones(1, 2),)], "train.fit.step": step,
    "train.fit.validate": lambda model: {}, "train.fit.epochs": 1, "train.fit.lr": 0.01,
    "train.fit.weight_decay": 0.0, "train.fit.device": torch.device("cpu"),
    "train.fit.desc": "fit", "train.fit.clip": 0.5, "train.fit.ema": 0.9,
    "train.blocks": 1, "train.out": out("t.pt"), "train.path": reads("video.pt"),
    "train.evaluate.model": obj(lambda: VideoNet(width=1)),
    "train.evaluate.data": Fresh("list", lambda: make_data(tiny_train_config(), "val", 2)),
    "train.make_data.config": obj(tiny_train_config), "train.split": "val",
    # nlviz.video (one 2-frame 16 x 16 video)
    **{f"video.VideoBatch.{f}": batch_field("classify", f) for f in
       ("videos", "labels", "colors", "tracks", "radius", "masks", "sprites")},  # fmt: skip
    "video.videos": batch_field("classify", "videos"),
    **{f"video.track_tensors.{f}": batch_field("track", f) for f in ("videos", "masks", "labels")},
    "video.save_sample.path": out("s.npz"), "video.batch": obj(lambda: _batch("classify")[:]),
}  # fmt: skip

# Values the valid call uses although the parameter has a default: the default would be slow,
# write into the repository or load a committed file that may be being rewritten.
BASELINE: dict[str, Any] = {
    "denoise.DenoiseNet.depth": 3, "denoise.DenoiseNet.width": 2, "denoise.DenoiseNet.window": 2,
    "denoise.train.config": obj(tiny_denoise_config), "denoise.device": "cpu",
    "denoise.run_fingerprint.config": obj(tiny_denoise_config),
    "denoise.denoise.model": obj(lambda: DenoiseNet(depth=3, width=2, window=2)),
    "experiments.run.config": "tiny", "experiments.run.seeds": 1, "experiments.device": "cpu",
    "experiments.run.out": out("ablation.csv"),
    "experiments.run.checkpoints": Fresh("dir_out", tmp),
    "explorer.AffinityExplorer.save.dpi": 20,
    "nets.VideoNet.width": 1, "nets.TrackNet.labels": 3, "nets.TrackNet.width": 2,
    "pairwise.pairwise": "concatenation", "pairwise.w_f": ten(6),  # w_f is checked too
    "train.train.config": obj(tiny_train_config), "train.train.device": "cpu",
    "train.run_fingerprint.config": obj(tiny_train_config), "train.progress": False,
    "utils.pick_device.device": "cpu", "video.generate.frames": 2, "video.generate.size": 16,
    "video.load_sample.path": reads("sample.npz"),
}  # fmt: skip


# All the arguments of a target at once, where they must fit each other.
CALLS: dict[str, Callable[[], dict]] = {}


# Keywords a target documents but takes as **kwargs: tested like parameters, not passed in
# the valid call.
EXTRA_KEYWORDS: dict[str, dict[str, Any]] = {
    "explorer.AffinityExplorer": {"k": 20, "scale": "auto", "shared_scale": True,
                                  "query": (1, 2, 3), "ncols": 2, "mass": 0.5},
    "explorer.AffinityExplorer.from_nlm": {"patch_size": 3, "patch_distance": 2, "h": 0.1,
                                           "sigma": 0.0, "per_frame": False},
    "attention.Source.from_nlm": {"patch_size": 3, "patch_distance": 2, "h": 0.1, "sigma": 0.0},
}  # fmt: skip

# The work some targets start once their arguments are checked, replaced for the test.
DRY_RUN: dict[str, tuple[str, str, Callable]] = {
    # trains 8 models: no runs instead (the outputs are still claimed, written and released)
    "experiments.run": ("nlviz.experiments", "_runs", lambda *args, **kwargs: iter(()))
}

# ----------------------------------------------------------------------------- kinds

TEXT_NAMES = {"name", "label", "title", "suptitle", "desc", "detail", "colorbar_label",
              "image_title", "grid_name", "layout"}  # fmt: skip

# Kinds the example, annotation and default do not say ("-": no standard bad value applies).
KINDS: dict[str, str] = {
    "denoise.name": "choice", "denoise.train_split.name": "choice",  # skimage's image names
    "denoise.config": "choice", "train.config": "choice",  # a name of CONFIGS or a Config
    "denoise.denoise.model": "choice",  # a name of VARIANTS or a DenoiseNet
    "denoise.out": "path_out", "train.out": "path_out", "experiments.run.out": "path_out",
    "experiments.run.checkpoints": "dir_out", "train.train.data": "dict", "train.fit.state": "dict",
    "train.fit.on_epoch": "callable", "train.fit.device": "choice",
    "attention.Source.model": "-", "attention.Source.output": "-",  # any object, kept as is
    "experiments.read_csv.columns": "-",  # the schema, the program's, not the user's
    "fingerprint.a": "-", "fingerprint.b": "-",  # documented: False for a non-fingerprint
}  # fmt: skip

# Where a negative value is valid.
SIGNED = {"plot.image_grid.vmin": "an intensity range may start below 0"}
# Where 10**9 is valid and allocates nothing.
NO_ABSURD = {
    "seed": "any seed is valid",
    "data_seed": "any seed is valid",
    "start": "the index of the first video: any is valid",
    "plot.image_grid.ncols": "clipped to the number of images",
    "plot.affinity_maps.ncols": "clipped to the number of panels",
    "patch_distance": "the search window is clipped to the image",
    "train.evaluate.batch_size": "a batch larger than the data is the data",
    "pairwise.concatenation_aggregate.chunk_size": "a chunk larger than N is N",
    "block.NonLocalBlock.pooled_shape.spatial_shape": "arithmetic on sizes, nothing allocated",
    "block.NonLocalBlock.flat_index.spatial_shape": "arithmetic on sizes, nothing allocated",
}
# Bad values of a kind that are valid for one parameter, by label.
EXCLUDE = {
    "pairwise.w_f": {"ndim"},  # 2 Ck weights "in any shape"
    "checkpoint.history": {"{}"}, "fingerprint.exact": {"{}"},  # empty is valid
    "experiments.runs": {"[]"},  # no runs: no rows
    "block.Windowed.tiles.x": {"float64", "int64", "nan", "channels"},  # a reshape: any tensor
    # nothing visible: figure3's marks pass empty index arrays, on every click
    "attention.Geometry.pixel_of_j.yj": {"empty"}, "attention.Geometry.pixel_of_j.xj": {"empty"},
    # the training step's input: a NaN scan is a full reduction every step (hot path);
    # denoise(), pixel_attention() and add_noise() check it
    "denoise.DenoiseNet.inputs.v": {"nan"}, "denoise.DenoiseNet.forward.v": {"nan"},
    "video.VideoBatch.tracks": {"nan"},  # NaN is where an object is absent (the docstring)
    "video.VideoBatch.sprites": {"empty"},  # "classify" has no sprites: (N, 0) is the valid one
}  # fmt: skip
# Bad values beyond the standard ones (label, value).
EXTRA_BAD = {
    "experiments.runs": [("[{}]", [{}])]  # a row without its columns
}
# Arrays and tensors whose shape is fixed by another argument: a wrong one ("shape": the last
# axis one shorter) must be refused by name.
SHAPED = {
    "pairwise.phi": "Ck like theta", "pairwise.w_f": "2 Ck weights",
    "plot.show_weights.weights": "the image's (H, W)",
    "plot.affinity_maps.image": "the maps' (H, W)",
    "attention.Geometry.check_weights.weights": "j_shape, (T, h', w')",
    "video.track_tensors.masks": "the videos' (N, T, H, W)",
}  # fmt: skip
# Parameters whose errors are named by the value of another argument (the checks' ``name``).
LABELLED = {"attention.Geometry.check_weights": "weights",
            "attention.Geometry.create": "grid_shape"}  # fmt: skip
# Other names an error may give a parameter: the positional tensors of make_data.
ALIASES = {"train.evaluate.data": ("videos", "labels")}

# What cannot run here, with the reason (none at present; e.g. a CLI parser whose errors exit
# with status 2 by design is run in tests/test_train.py instead).
SKIP: dict[str, str] = {}


def _keep(value):
    return lambda _base: value


def _copy_of(value, _base):
    return copy.deepcopy(value)


def _swap_first(value):
    return lambda v: (value, *v[1:])


def _drop_dim(t):
    return t[0] if t.ndim > 1 else t[None, None]


def _garbage(p) -> Path:
    path = tmp(f"garbage{Path(p).suffix}")
    path.write_bytes(b"not a file of this kind\n")
    return path


def _a_file(_base) -> Path:
    path = tmp("a_file.txt")
    path.write_text("x")
    return path


_TENSOR = [("numpy", lambda t: t.detach().numpy()), ("int64", lambda t: t.long()),
           ("nan", lambda t: torch.full_like(t, NAN)), ("empty", lambda t: t.narrow(-1, 0, 0)),
           ("ndim", _drop_dim)]  # fmt: skip
_ARRAY = [("'abc'", _keep("abc")), ("empty", lambda a: a[..., :0]),
          ("ndim", lambda a: a.reshape(-1) if a.ndim > 1 else a[None, None])]  # fmt: skip

# The standard bad values of each kind: (label, bad value from the valid one).
BAD: dict[str, list[tuple[str, Callable]]] = {
    "flag": [("'no'", _keep("no")), ("1", _keep(1))],
    "int": [("'2'", _keep("2")), ("2.0", _keep(2.0)), ("True", _keep(True)), ("-1", _keep(-1)),
            ("10**9", _keep(10**9))],
    "real": [("'0.5'", _keep("0.5")), ("True", _keep(True)), ("nan", _keep(NAN)),
             ("inf", _keep(INF)), ("-1.0", _keep(-1.0)), ("1e9", _keep(1e9))],
    "choice": [("'nope'", _keep("nope")), ("3", _keep(3))],
    "text": [("['a']", lambda _: ["a"])],  # titles, labels: a str (empty this to allow any)
    "list": [("3", _keep(3)), ("[]", lambda _: [])],
    "dict": [("3", _keep(3)), ("{}", lambda _: {})],
    "callable": [("3", _keep(3))],
    "object": [("3", _keep(3))],
    "ints": [("'ab'", _keep("ab")), ("short", lambda v: v[:-1]),
             ("float", lambda v: (v[0] + 0.5, *v[1:])), ("bool", _swap_first(True)),
             ("-1", _swap_first(-1)), ("10**9", _swap_first(10**9))],
    "tensor": _TENSOR,
    "input": [*_TENSOR, ("float64", lambda t: t.double()),  # a float32 module's input
              ("channels", lambda t: torch.cat([t, t], 1))],  # twice its channels
    "array": [*_ARRAY, ("complex", lambda a: a.astype(complex)),
              ("nan", lambda a: np.full_like(a, NAN))],
    "int_array": [*_ARRAY, ("float", lambda a: a.astype(float) + 0.5)],
    "path_out": [("3", _keep(3)), ("''", _keep("")), ("folder", lambda _: tmp()),
                 ("unwritable", lambda p: f"/proc/nlviz-bad-input/out{Path(p).suffix}")],
    "path_in": [("3", _keep(3)), ("''", _keep("")), ("folder", lambda _: tmp()),
                ("missing", lambda p: tmp(f"missing{Path(p).suffix}")), ("garbage", _garbage)],
    "dir_out": [("3", _keep(3)), ("a-file", _a_file), ("unwritable", _keep("/proc/nlviz-x"))],
}  # fmt: skip
ABSURD = {"10**9", "1e9"}
SIZE_REALS = {"size", "panel_size"}  # reals that size a figure: 1e9 inches is absurd

# ----------------------------------------------------------------------------- targets

P = inspect.Parameter


@dataclasses.dataclass(frozen=True)
class Target:
    """A public callable: ``module`` (short) and ``path``, "f", "Class", "Class.method" or
    "Class.prop" (a setter)."""

    module: str
    path: str
    kind: str  # "function", "class", "method", "classmethod" or "setter"
    params: tuple = ()  # inspect.Parameter, without self and cls

    def __str__(self) -> str:
        return f"nlviz.{self.module}.{self.path}"

    __repr__ = __str__  # short in pytest's reports

    @property
    def key(self) -> str:
        return f"{self.module}.{self.path}"

    @property
    def owner(self) -> str:
        """The class of a method or setter, else the target itself."""
        return self.path.split(".")[0]

    def keys(self, param: str) -> list[str]:
        """Where the registries are looked up for ``param``, the most specific first."""
        keys = [f"{self.key}.{param}"]
        if "." in self.path:
            keys.append(f"{self.module}.{self.owner}.{param}")
        return [*keys, f"{self.module}.{param}", param]


def _find(registry: dict, target: Target, param: str, missing=None):
    return next((registry[k] for k in target.keys(param) if k in registry), missing)


def _signature_params(fn, drop_first: bool) -> tuple:
    params = list(inspect.signature(fn).parameters.values())
    return tuple(params[1:] if drop_first else params)


def discover_modules() -> list:
    """nlviz and every module under it, by name."""
    found = pkgutil.walk_packages(nlviz.__path__, "nlviz.")
    return [nlviz] + [importlib.import_module(m.name) for m in sorted(found, key=lambda m: m.name)]


def public_names() -> dict[str, list[str]]:
    """{module name: its ``__all__``}."""
    return {m.__name__: list(getattr(m, "__all__", ())) for m in discover_modules()}


def discover_targets() -> list[Target]:
    """Every public callable, at home: the module that defines it, or else the first that
    lists it; a class's own public methods and setters after its constructor."""
    modules = discover_modules()
    listed = {(m.__name__, n) for m in modules for n in getattr(m, "__all__", ())}
    targets, seen = [], set()
    for module in modules:
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            home = getattr(value, "__module__", None)
            if not callable(value) or id(value) in seen:
                continue
            if home != module.__name__ and (home, name) in listed:
                continue  # a re-export: tested at home
            seen.add(id(value))
            short = module.__name__.removeprefix("nlviz.").removeprefix("nlviz")
            targets += _targets_of(short or "nlviz", name, value)
    return targets


def _targets_of(module: str, name: str, value) -> list[Target]:
    if not inspect.isclass(value):
        return [Target(module, name, "function", _signature_params(value, False))]
    out = [Target(module, name, "class", _signature_params(value, False))]
    own = [k for k in value.__mro__ if k.__module__.startswith("nlviz")]
    attrs = {a: v for k in reversed(own) for a, v in vars(k).items() if not a.startswith("_")}
    for attr, v in attrs.items():
        path = f"{name}.{attr}"
        if isinstance(v, property) and v.fset is not None:
            out.append(Target(module, path, "setter", (P(attr, P.POSITIONAL_OR_KEYWORD),)))
        elif isinstance(v, classmethod | staticmethod):
            out.append(Target(module, path, "classmethod",
                              _signature_params(getattr(value, attr), False)))  # fmt: skip
        elif inspect.isfunction(v):
            out.append(Target(module, path, "method", _signature_params(v, True)))
    return out


def skip_reason(target: Target) -> str | None:
    return next((r for k, r in SKIP.items() if target.key == k or target.key.startswith(k + ".")),
                None)  # fmt: skip


TARGETS = [t for t in discover_targets() if skip_reason(t) is None]
SKIPPED = [t for t in discover_targets() if skip_reason(t) is not None]

# ----------------------------------------------------------------------------- kinds, cases


def _kind_of_annotation(annotation) -> str | None:
    text = str(annotation).replace(" | None", "").replace("None | ", "")
    simple = {"bool": "flag", "int": "int", "float": "real", "str": "choice", "Tensor": "tensor",
              "torch.Tensor": "tensor", "np.ndarray": "array", "Callable": "callable",
              "object": "-"}  # fmt: skip
    if text in simple:
        return simple[text]
    if text.startswith("dict"):
        return "dict"
    if text.startswith("list") or text == "tuple[torch.Tensor, ...]":
        return "list"
    if text.startswith("tuple[int"):
        return "ints"
    if re.fullmatch(r"[A-Z][\w.]*|nn\.Module", text):
        return "object"
    return None


def _kind_of_value(value) -> str | None:
    if isinstance(value, Fresh):
        return value.kind
    if isinstance(value, bool | np.bool_):
        return "flag"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float):
        return "real"
    if isinstance(value, str):
        return "choice"
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return "ints"
    if isinstance(value, torch.device):
        return "choice"
    if callable(value):
        return "callable"
    return None


def kind_of(target: Target, param: P) -> str | None:
    """The kind of a parameter: KINDS, else its example's, its annotation's or its default's."""
    name, kind = param.name, None
    if target.kind == "setter":
        return _kind_of_value(_find(EXAMPLES, target, name))
    if param.kind is P.VAR_POSITIONAL:
        return "list"
    if (kind := _find(KINDS, target, name)) is not None:
        return kind
    example = _find(BASELINE, target, name, _find(EXAMPLES, target, name))
    if isinstance(example, Fresh):
        kind = example.kind
    if kind is None and param.annotation is not P.empty:
        kind = _kind_of_annotation(param.annotation)
    if kind is None and param.default not in (P.empty, None):
        kind = _kind_of_value(param.default)
    if kind is None:
        kind = _kind_of_value(example)
    return "text" if kind == "choice" and name in TEXT_NAMES else kind


@dataclasses.dataclass(frozen=True)
class Case:
    """One call: ``target`` with ``param`` given ``label``'s bad value (``bad(valid)``)."""

    target: Target
    param: str
    label: str
    bad: Callable | None  # None: the unknown keyword
    expected: tuple = (TypeError, ValueError)

    def __str__(self) -> str:
        return f"{self.target}[{self.param}={self.label}]"

    __repr__ = __str__


def _params(target: Target) -> list[P]:
    extra = EXTRA_KEYWORDS.get(target.key, {})
    named = [p for p in target.params if p.kind is not P.VAR_KEYWORD]
    return named + [P(k, P.KEYWORD_ONLY, default=v) for k, v in extra.items()]


def _base(target: Target, param: P):
    """The valid value a bad one is made from (a plain value, or a Fresh)."""
    for value in (_find(BASELINE, target, param.name), _find(EXAMPLES, target, param.name)):
        if value is not None:
            return value
    return None if param.default is P.empty else param.default


def cases_of(target: Target) -> list[Case]:
    cases = []
    for param in _params(target):
        kind, keys = kind_of(target, param), target.keys(param.name)
        excluded = set().union(*(EXCLUDE.get(k, set()) for k in keys))
        bad = list(BAD.get(kind, []))
        if kind == "real" and param.name not in SIZE_REALS:
            bad = [b for b in bad if b[0] not in ABSURD]
        if any(k in NO_ABSURD for k in keys):
            bad = [b for b in bad if b[0] not in ABSURD]
        if any(k in SIGNED for k in keys):
            bad = [b for b in bad if not b[0].startswith("-")]
        extra = next((EXTRA_BAD[k] for k in keys if k in EXTRA_BAD), [])
        bad += [(label, functools.partial(_copy_of, value)) for label, value in extra]
        if any(k in SHAPED for k in keys):
            bad.append(("shape", lambda a: a[..., :-1]))
        base = _base(target, param)
        for label, make in bad:
            if label in excluded:
                continue
            if kind == "ints" and isinstance(base, tuple):
                label = repr(make(base)).replace(" ", "").replace(str(10**9), "10**9")
            missing_ok = kind == "path_in" and label != "3"
            expected = (TypeError, ValueError) + ((FileNotFoundError,) if missing_ok else ())
            cases.append(Case(target, param.name, label, make, expected))
    if target.kind != "setter":
        cases.append(Case(target, UNKNOWN, "1", None))
    return cases


CASES = [case for target in TARGETS for case in cases_of(target)]

# ----------------------------------------------------------------------------- calls


class CallTimeout(BaseException):
    """A call ran past its time (a BaseException: ``except Exception`` must not catch it)."""


class SetupError(Exception):
    """The valid call cannot be built (a registry entry is missing or out of date)."""


def _make(value):
    return value.make() if isinstance(value, Fresh) else value


def valid_args(target: Target) -> tuple[dict, tuple]:
    """The keyword arguments and the positional ones (``*args``) of the valid call."""
    together = CALLS[target.key]() if target.key in CALLS else {}
    args, star = {}, ()
    for param in target.params:
        name = param.name
        if param.kind is P.VAR_KEYWORD:
            continue
        if name in together:
            args[name] = together[name]
        elif (value := _find(BASELINE, target, name)) is not None:
            args[name] = _make(value)
        elif param.default is not P.empty:
            continue
        elif (value := _find(EXAMPLES, target, name)) is not None:
            value = _make(value)
            if param.kind is P.VAR_POSITIONAL:
                star = tuple(value)
            else:
                args[name] = value
        elif param.kind is not P.VAR_POSITIONAL:
            raise SetupError(f"{target}: no valid value for {name!r}: add one to EXAMPLES")
    return args, star


def _instance(target: Target):
    """A new instance of the class of a method or setter, from its constructor's valid call."""
    ctor = next(t for t in TARGETS if t.key == f"{target.module}.{target.owner}")
    return _invoke(ctor, *valid_args(ctor))


def _invoke(target: Target, args: dict, star: tuple):
    module = "nlviz" if target.module == "nlviz" else f"nlviz.{target.module}"
    obj = getattr(importlib.import_module(module), target.owner)
    attr = target.path.split(".")[-1]
    if target.kind == "setter":
        instance = _instance(target)
        setattr(instance, attr, args[attr])
        return instance
    if target.kind == "method":
        obj = getattr(_instance(target), attr)
    elif target.kind == "classmethod":
        obj = getattr(obj, attr)
    positional, keywords = [], dict(args)
    if any(p.kind is P.VAR_POSITIONAL for p in target.params):
        for p in target.params:
            if p.kind is P.VAR_POSITIONAL:
                break
            if p.name in keywords:
                positional.append(keywords.pop(p.name))
    return obj(*positional, *star, **keywords)


def _vm_bytes() -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmSize:\s+(\d+) kB", status)
    return int(match.group(1)) * 1024 if match else None


def _alarm(signum, frame):
    raise CallTimeout


@contextlib.contextmanager
def limits(seconds: float):
    """A time limit (SIGALRM, main thread only) and a cap on the memory a call may add
    (RLIMIT_AS, where the platform has it); warnings silenced, figures closed after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used, capped = _vm_bytes(), False
    if used is not None:
        cap = used + MEMORY_HEADROOM
        with contextlib.suppress(ValueError, OSError):
            limit = cap if hard == resource.RLIM_INFINITY else min(cap, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            capped = True
    timed = threading.current_thread() is threading.main_thread()
    if timed:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        if capped:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        plt.close("all")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a call did: "clear" (TypeError or ValueError naming the argument), "unclear" (the
    right type, another name or none), "wrong type" (another exception), "accepted" (no
    error), "hang" (past its time), "setup" (the valid call could not be built)."""

    kind: str
    detail: str = ""


def _names(case: Case, args: dict) -> tuple[str, ...]:
    key = case.target.key
    if LABELLED.get(key) == case.param:
        return (str(args.get("name", case.param)),)
    return (case.param, *ALIASES.get(f"{key}.{case.param}", ()))


def _short(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())[:240]}"


def run(case: Case | Target) -> Outcome:
    """Run a bad case (or a target's valid call) and say what happened."""
    target = case if isinstance(case, Target) else case.target
    with limits(TIMEOUTS.get(target.key, TIMEOUT_S)):
        try:
            args, star = valid_args(target)
            if isinstance(case, Case) and case.bad is None:
                args[UNKNOWN] = 1
            elif isinstance(case, Case):
                param = next(p for p in _params(target) if p.name == case.param)
                valid = args.get(case.param, star if param.kind is P.VAR_POSITIONAL else None)
                valid = _make(_base(target, param)) if valid is None else valid
                bad = case.bad(valid)
                if param.kind is P.VAR_POSITIONAL:
                    star = tuple(bad) if isinstance(bad, list | tuple) else (bad,)
                else:
                    args[case.param] = bad
        except CallTimeout:
            return Outcome("hang", "building the valid arguments ran past the time limit")
        except Exception as err:  # noqa: BLE001 - a registry out of date, said as such
            return Outcome("setup", f"building the valid arguments: {_short(err)}")
        try:
            with contextlib.ExitStack() as stack:
                if target.key in DRY_RUN:
                    module, attr, stub = DRY_RUN[target.key]
                    stack.enter_context(mock.patch(f"{module}.{attr}", stub))
                result = _invoke(target, args, star)
        except CallTimeout:
            return Outcome("hang", f"still running after {TIMEOUTS.get(target.key, TIMEOUT_S)} s")
        except (SystemExit, Exception) as err:  # noqa: BLE001 - classified below
            if isinstance(case, Target):
                kind = "setup" if isinstance(err, SetupError) else "valid call fails"
                return Outcome(kind, _short(err))
            if not isinstance(err, case.expected):
                return Outcome("wrong type", _short(err))
            msg, names = str(err), _names(case, args)
            if case.bad is None:
                ok = UNKNOWN in msg
            else:
                ok = any(re.match(rf"{re.escape(n)}(?!\w)", msg) for n in names)
            return Outcome("clear" if ok else "unclear", _short(err))
        return Outcome("accepted", f"returned {type(result).__name__}")


_VALID: dict[str, Outcome] = {}


def valid_outcome(target: Target) -> Outcome:
    """The outcome of the valid call, once per process."""
    if target.key not in _VALID:
        _VALID[target.key] = run(target)
    return _VALID[target.key]


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_valid_call(target):
    """The call every bad case changes by one argument works."""
    outcome = valid_outcome(target)
    if outcome.kind != "accepted":
        pytest.fail(f"{outcome.kind}: {outcome.detail}", pytrace=False)


# Known gaps (issue 22, left for later): each id fails today; strict, so a fixed case fails
# here until its line is removed. The file only shrinks.
KNOWN_GAPS = set(Path(__file__).with_name("bad_input_known_gaps.txt").read_text().split())
_GAP = pytest.mark.xfail(strict=True, reason="a known gap: tests/bad_input_known_gaps.txt")


def test_known_gaps_are_real_cases():
    assert KNOWN_GAPS <= {str(c) for c in CASES}, "a known gap names no case: remove it"


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=_GAP) if str(c) in KNOWN_GAPS else c for c in CASES], ids=str
)
def test_bad_input_is_refused_by_name(case):
    valid = valid_outcome(case.target)
    if valid.kind != "accepted":
        pytest.fail(f"the valid call fails, nothing to compare: {valid.detail}", pytrace=False)
    outcome = run(case)
    if outcome.kind != "clear":  # one line each: what was given, what came
        kind = "silent (no error)" if outcome.kind == "accepted" else outcome.kind
        pytest.fail(f"{case}: {kind}: {outcome.detail}", pytrace=False)


def test_every_module_is_walked():
    names = {m.__name__ for m in discover_modules()}
    on_disk = {f"nlviz.{p.stem}" for p in Path(nlviz.__file__).parent.glob("*.py")}
    assert on_disk - {"nlviz.__init__", "nlviz.__main__"} <= names


def test_registries_name_real_parameters():
    """Every key of the registries is looked up by some parameter of some target: an entry
    left behind by a rename says so here."""
    used = {k for t in TARGETS for p in _params(t) for k in t.keys(p.name)}
    registries = {"EXAMPLES": EXAMPLES, "BASELINE": BASELINE, "KINDS": KINDS, "SIGNED": SIGNED,
                  "NO_ABSURD": NO_ABSURD, "EXCLUDE": EXCLUDE, "EXTRA_BAD": EXTRA_BAD,
                  "SHAPED": SHAPED, "ALIASES": ALIASES}  # fmt: skip
    stale = [f"{name}[{k!r}]" for name, reg in registries.items() for k in reg if k not in used]
    keys = {t.key for t in TARGETS}
    for name, reg in {"CALLS": CALLS, "EXTRA_KEYWORDS": EXTRA_KEYWORDS, "DRY_RUN": DRY_RUN,
                      "TIMEOUTS": TIMEOUTS, "LABELLED": LABELLED}.items():  # fmt: skip
        stale += [f"{name}[{k!r}]" for k in reg if k not in keys]
    stale += [f"SKIP[{k!r}]" for k in SKIP if not any(t.key.startswith(k) for t in SKIPPED)]
    assert not stale, f"registry entries that no target uses: {stale}"
