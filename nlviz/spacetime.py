"""Spacetime attention: which positions j a query i attends to, after the block (notebook 07).

A mode is a sequence of residual steps ``h <- h + w_z softmax(theta(h)^T phi(h)) g(h)`` (Eq. 3,
with heads) inside windows that tile the T x H x W positions: "joint" (T, H, W); "divided"
(TimeSformer) (T, 1, 1), then (1, H, W); "axial" (T, 1, 1), (1, H, 1), (1, 1, W); "windowed"
(Video Swin) ``window`` = (t_w, h_w, w_w), padded at the far edges (padded keys masked), with
``shift`` a second step on windows shifted by half a window. Each step has its own theta, phi,
g (C -> C'/steps: every mode has about one joint step's parameters) and w_z (conv, BatchNorm
with zero weight and bias: a new block is the identity)."""

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlviz.block import _check_like
from nlviz.pairwise import _check_tensor
from nlviz.utils import check_bool, check_choice, check_int, check_query, check_type

__all__ = ["MODES", "POSITIONS", "SpacetimeAttention", "pairs", "block_inputs", "weights_fn"]

MODES = ("joint", "divided", "windowed", "axial")
POSITIONS = ("none", "learned", "sinusoidal")


def _triple(name: str, value, what: str) -> tuple[int, int, int]:
    """``value`` as three positive ints, else a TypeError or ValueError naming ``what``."""
    out = tuple(check_int(name, v, minimum=1, maximum=2**16) for v in check_type(name, value,
                tuple | list, what))  # fmt: skip
    if len(out) != 3:
        raise ValueError(f"{name}: expected {what}, got {value}")
    return out


def _steps(mode: str, shape, window=(1, 4, 4), shift: bool = False) -> list[tuple]:
    """The steps of ``mode`` on a (T, H, W) grid: [(window size, offset of the tiling), ...]."""
    T, H, W = shape
    if mode == "joint":
        return [((T, H, W), (0, 0, 0))]
    if mode == "divided":
        return [((T, 1, 1), (0, 0, 0)), ((1, H, W), (0, 0, 0))]
    if mode == "axial":
        return [((T, 1, 1), (0, 0, 0)), ((1, H, 1), (0, 0, 0)), ((1, 1, W), (0, 0, 0))]
    size = tuple(min(w, s) for w, s in zip(window, shape, strict=True))
    return [(size, (0, 0, 0))] + [(size, tuple(w // 2 for w in size))] * shift


def pairs(mode: str, shape, window=(1, 4, 4), shift: bool = False) -> int:
    """Products theta_i^T phi_j of one head on a (T, H, W) grid: per step, windows x volume^2."""
    check_choice("mode", mode, MODES)
    shape, window = (
        _triple("shape", shape, "(T, H, W)"),
        _triple("window", window, "(t_w, h_w, w_w)"),
    )
    total = 0
    for size, offset in _steps(mode, shape, window, check_bool("shift", shift)):
        tiles = math.prod(-(-(s + o) // w) for s, o, w in zip(shape, offset, size, strict=True))
        total += tiles * math.prod(size) ** 2
    return total


def _pad(shape, size, offset) -> list[tuple[int, int]]:
    """(before, after) padding per axis: ``offset`` in front (a shifted tiling), whole tiles."""
    return [(o, -(s + o) % w) for s, o, w in zip(shape, offset, size, strict=True)]


def _partition(h: Tensor, size, offset) -> Tensor:
    """(B, T, H, W, C) -> the windows' tokens (B G, L, C), the grid padded by ``_pad``."""
    pad = _pad(h.shape[1:4], size, offset)
    h = F.pad(h, (0, 0, *(p for before, after in reversed(pad) for p in (before, after))))
    n = [s // w for s, w in zip(h.shape[1:4], size, strict=True)]
    h = h.reshape(h.shape[0], n[0], size[0], n[1], size[1], n[2], size[2], h.shape[-1])
    return h.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, math.prod(size), h.shape[-1])


def _merge(tokens: Tensor, batch: int, shape, size, offset) -> Tensor:
    """Inverse of ``_partition``: (B G, L, C) -> (B, T, H, W, C), the padding cut off."""
    pad = _pad(shape, size, offset)
    n = [(s + sum(p)) // w for s, p, w in zip(shape, pad, size, strict=True)]
    t = tokens.reshape(batch, *n, *size, -1).permute(0, 1, 4, 2, 5, 3, 6, 7)
    t = t.reshape(batch, *(k * w for k, w in zip(n, size, strict=True)), -1)
    (t0, _), (y0, _), (x0, _) = pad
    return t[:, t0 : t0 + shape[0], y0 : y0 + shape[1], x0 : x0 + shape[2]]


def _window_ids(shape, size, offset) -> Tensor:
    """(N,) the window of each of the N = T H W positions (row-major), for dense masks."""
    axes = [(torch.arange(s) + o) // w for s, o, w in zip(shape, offset, size, strict=True)]
    t, y, x = torch.meshgrid(*axes, indexing="ij")
    counts = [-(-(s + o) // w) for s, o, w in zip(shape, offset, size, strict=True)]
    return ((t * counts[1] + y) * counts[2] + x).flatten()


def _sinusoidal(channels: int, shape) -> Tensor:
    """(C, T, H, W) fixed positions: a third of the channels each for t, y and x, sin and cos
    of the coordinate at geometric frequencies (Vaswani et al. 2017), zeros in the rest."""
    per, out = 2 * (channels // 6), torch.zeros(channels, *shape)
    freq = 1e-4 ** (torch.arange(per // 2) / max(per // 2, 1))
    for axis, s in enumerate(shape):
        angle = torch.arange(s)[:, None] * freq  # (s, per / 2)
        view = [1, 1, 1]
        view[axis] = s
        emb = torch.cat([angle.sin(), angle.cos()], 1).T.reshape(per, *view)
        out[axis * per : (axis + 1) * per] = emb.expand(per, *shape)
    return out


class SpacetimeAttention(nn.Module):
    """A residual spacetime attention block, input and output (B, C, T, H, W).

    Parameters
    ----------
    channels : int, C; mode : str, one of ``MODES``
    heads : int, per step: they split its C'/steps channels
    inter_channels : int, C' (default C // 2, the non-local block's)
    window : (t_w, h_w, w_w), of "windowed", cut to the input; shift : bool, "windowed" only
    positions : str, one of ``POSITIONS``, added to the input of theta and phi ("learned" needs
        ``shape``, the input's (T, H, W))
    scale : bool, theta^T phi / sqrt(d) as transformers, or unscaled as the non-local block
    """

    def __init__(self, channels: int, *, mode: str = "joint", heads: int = 1,
                 inter_channels: int | None = None, window=(1, 4, 4), shift: bool = False,
                 positions: str = "none", shape=None, scale: bool = False) -> None:  # fmt: skip
        super().__init__()
        c = self.channels = check_int("channels", channels, minimum=1, maximum=2**16)
        self.mode = check_choice("mode", mode, MODES)
        self.heads = check_int("heads", heads, minimum=1, maximum=256)
        self.window = _triple("window", window, "(t_w, h_w, w_w)")
        self.shift = check_bool("shift", shift) and mode == "windowed"
        self.positions = check_choice("positions", positions, POSITIONS)
        self.scale = check_bool("scale", scale)
        n = len(_steps(mode, (1, 1, 1), self.window, self.shift))
        ci = max(c // 2, 1) if inter_channels is None else inter_channels
        ci = check_int("inter_channels", ci, minimum=1, maximum=2**16) // n
        if ci < self.heads or ci % self.heads:
            raise ValueError(f"heads: expected a divisor of C'/steps = {ci}, got {heads}")
        self.inter_channels = ci * n
        self.theta, self.phi, self.g, self.w_z = (nn.ModuleList() for _ in range(4))
        for _ in range(n):
            for proj in (self.theta, self.phi, self.g):
                proj.append(nn.Conv3d(c, ci, 1))
            self.w_z.append(nn.Sequential(nn.Conv3d(ci, c, 1), nn.BatchNorm3d(c)))
            nn.init.zeros_(self.w_z[-1][1].weight)
            nn.init.zeros_(self.w_z[-1][1].bias)
        self.pos = None
        if self.positions == "learned" or shape is not None:
            shape = _triple("shape", shape, "(T, H, W) for learned positions")
        if self.positions == "learned":
            self.pos = nn.Parameter(0.02 * torch.randn(c, *shape))

    def _check(self, x) -> Tensor:
        _check_like(_check_tensor("x", x, 5, "(B, C, T, H, W)"), self.g[0].weight)
        if x.shape[1] != self.channels:
            raise ValueError(f"x: expected {self.channels} channels, got {tuple(x.shape)}")
        if self.pos is not None and self.pos.shape[1:] != x.shape[2:]:
            raise ValueError(f"x: expected (T, H, W) = {tuple(self.pos.shape[1:])} (learned "
                             f"positions), got {tuple(x.shape[2:])}")  # fmt: skip
        return x

    def _positions(self, x: Tensor) -> Tensor | float:
        if self.positions == "sinusoidal":
            return _sinusoidal(self.channels, x.shape[2:]).to(x)
        return 0.0 if self.pos is None else self.pos

    def _embed(self, k: int, h: Tensor, p) -> tuple[Tensor, Tensor, Tensor]:
        """theta, phi, g of step ``k`` channels-last: (B, T, H, W, C'/steps) each."""
        return tuple(f[k](z).permute(0, 2, 3, 4, 1) for f, z in
                     ((self.theta, h + p), (self.phi, h + p), (self.g, h)))  # fmt: skip

    def _heads(self, t: Tensor) -> Tensor:
        """(G, L, C'/steps) -> (G, heads, L, d)."""
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def _step_out(self, k: int, h: Tensor, y: Tensor) -> Tensor:
        """h + w_z y, y of step ``k`` as (B, T, H, W, C'/steps)."""
        return h + self.w_z[k](y.permute(0, 4, 1, 2, 3).contiguous())

    def forward(self, x: Tensor) -> Tensor:
        """z (B, C, T, H, W): the steps in turn, each by ``scaled_dot_product_attention``."""
        p, h, S = self._positions(self._check(x)), x, x.shape[2:]
        for k, (size, offset) in enumerate(_steps(self.mode, S, self.window, self.shift)):
            q, key, v = (self._heads(_partition(t, size, offset)).contiguous()  # flash kernel
                         for t in self._embed(k, h, p))  # fmt: skip
            real = _partition(x.new_ones(1, *S, 1), size, offset)[..., 0] > 0  # (G, L)
            mask = None if real.all() else real.repeat(x.shape[0], 1)[:, None, None, :]
            y = F.scaled_dot_product_attention(q, key, v, attn_mask=mask,
                                               scale=None if self.scale else 1.0)  # fmt: skip
            h = self._step_out(k, h, _merge(y.transpose(1, 2).flatten(2), x.shape[0], S, size,
                                            offset))  # fmt: skip
        return h

    def step_matrices(self, x: Tensor) -> list[Tensor]:
        """Each step's dense (B, heads, N, N) weights on its own input, 0 outside the windows."""
        p, h, S, out = self._positions(self._check(x)), x, x.shape[2:], []
        for k, (size, offset) in enumerate(_steps(self.mode, S, self.window, self.shift)):
            q, key, v = (self._heads(t.flatten(1, 3)) for t in self._embed(k, h, p))
            ids = _window_ids(S, size, offset).to(x.device)
            logits = q @ key.transpose(-1, -2) / (math.sqrt(q.shape[-1]) if self.scale else 1)
            out.append(logits.masked_fill(ids[:, None] != ids[None, :], -math.inf).softmax(-1))
            h = self._step_out(k, h, (out[-1] @ v).transpose(1, 2).flatten(2).unflatten(1, S))
        return out

    @torch.no_grad()
    def matrix(self, x: Tensor, *, step: int | None = None, head: int | None = None) -> Tensor:
        """(B, N, N): every query's weights over all N = T H W positions, of one ``step`` or
        composed (``step=None``: the product of the steps' matrices, last step first: every
        path i -> ... -> j of one hop per step, residuals left out); heads' mean, or ``head``."""
        last = len(_steps(self.mode, (1, 1, 1), self.window, self.shift)) - 1
        step = None if step is None else check_int("step", step, minimum=0, maximum=last)
        head = None if head is None else check_int("head", head, minimum=0, maximum=self.heads - 1)
        mats = [m.mean(1) if head is None else m[:, head] for m in self.step_matrices(x)]
        out = mats[step if step is not None else -1]
        for m in reversed(mats[:-1] if step is None else []):
            out = out @ m
        return out

    def attention(self, x: Tensor, query, *, step: int | None = None, head: int | None = None):
        """(B, T, H, W): the weights of ``query`` (t, y, x) over all positions j (``matrix``)."""
        t, y, x_ = check_query(query, tuple(self._check(x).shape[2:]))
        row = self.matrix(x, step=step, head=head)[:, (t * x.shape[3] + y) * x.shape[4] + x_]
        return row.reshape(x.shape[0], *x.shape[2:])


def block_inputs(model: nn.Module, x: Tensor) -> list[Tensor]:
    """The input of each ``SpacetimeAttention`` of ``model`` in a forward pass on ``x``."""
    check_type("model", model, nn.Module, "an nn.Module")
    _check_tensor("x", x, None, "the model's input")
    found, hooks = [], [m.register_forward_pre_hook(lambda _m, i: found.append(i[0].detach()))
                        for m in model.modules() if isinstance(m, SpacetimeAttention)]  # fmt: skip
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return found


def weights_fn(block: SpacetimeAttention, features: Tensor, *, step=None, head=None):
    """An explorer's ``affinity_fn(t, y, x) -> (T, H, W)``: the float64 ``matrix`` rows of
    ``block`` on its input ``features`` (1, C, T, H, W), all computed here, once."""
    b64 = copy.deepcopy(check_type("block", block, SpacetimeAttention, "a SpacetimeAttention"))
    f = _check_tensor("features", features, 5, "(1, C, T, H, W)")[:1].double()
    table = b64.double().eval().matrix(f, step=step, head=head)[0].numpy()
    return lambda t, y, x: table.reshape(*f.shape[2:], *f.shape[2:])[t, y, x]
