"""The non-local block, paper Eq. 6 and Figure 2, for sequences, images and video (notebook 03).

``z_i = W_z y_i + x_i`` (Eq. 6), y from Eq. 1 with one of the four pairwise functions. For x of
shape (B, C, *spatial): theta, phi, g are 1x1 convolutions C -> C' (the bottleneck); phi and g
are max-pooled by 2 in space (1x2x2 in video, never in time), so j runs over N' ~ N/4 pooled
positions; W_z is a 1x1 conv C' -> C then BatchNorm with weight and bias zero, so a new block
is the identity. Notebook 03 says where this follows public code rather than the paper.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlviz.pairwise import _check_tensor, affinity, aggregate, check_pairwise
from nlviz.utils import check_bool, check_choice, check_int, check_query

__all__ = ["NonLocalBlock", "Windowed"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_KERNEL = {1: (2,), 2: (2, 2), 3: (1, 2, 2)}  # spatial only: never over time
_LAYOUT = {1: "(B, C, L)", 2: "(B, C, H, W)", 3: "(B, C, T, H, W)"}


def _tokens(t: Tensor) -> Tensor:
    """(B, C, *spatial) -> (B, N, C), channels last."""
    return t.flatten(2).transpose(1, 2)


def _check_like(x: Tensor, weight: Tensor) -> None:
    """``x`` has the dtype (outside autocast) and the device of a module's ``weight``."""
    autocast = torch.is_autocast_enabled(x.device.type)  # its bf16 meets float32 weights
    if x.device != weight.device or (x.dtype != weight.dtype and not autocast):
        raise TypeError(f"x: expected {weight.dtype} on {weight.device} like the weights, got "
                        f"{x.dtype} on {x.device}; convert it: x.to('{weight.device}', "
                        f"{weight.dtype}), e.g. x.float()")  # fmt: skip


class NonLocalBlock(nn.Module):
    """Non-local block (Eq. 6, Fig. 2): ``z = W_z y + x``, input and output (B, C, *spatial).

    Parameters
    ----------
    in_channels : int
        C, the channels of x.
    pairwise : str
        "gaussian" (Eq. 2), "embedded_gaussian" (Eq. 3), "dot_product" (Eq. 4) or
        "concatenation" (Eq. 5).
    dim : int
        1 for sequences (B, C, L), 2 for images (B, C, H, W), 3 for video (B, C, T, H, W).
    inter_channels : int, optional
        C', the width of theta, phi, g; default max(C // 2, 1).
    subsample : bool
        Max-pool phi and g by 2 in space (ceil mode: odd sizes keep their last row).
    use_bn : bool
        W_z is conv + zero BatchNorm (True) or a zero conv (False).
    scale : bool
        Divide theta^T phi by sqrt(C') as the official code does (not in the paper).

    Submodules: ``theta``, ``phi`` (None for "gaussian": Eq. 2 uses x itself), ``g``,
    ``pool``, ``w_z`` and ``w_f`` (concatenation: ``nn.Linear(2 C', 1)``, theta's half first).
    """

    def __init__(
        self,
        in_channels: int,
        *,
        pairwise: str = "embedded_gaussian",
        dim: int = 3,
        inter_channels: int | None = None,
        subsample: bool = True,
        use_bn: bool = True,
        scale: bool = False,
    ) -> None:
        super().__init__()
        c = self.in_channels = check_int("in_channels", in_channels, minimum=1, maximum=2**16)
        self.pairwise = check_pairwise(pairwise)
        self.dim = check_choice("dim", check_int("dim", dim), (1, 2, 3))
        ci = max(c // 2, 1) if inter_channels is None else inter_channels
        ci = self.inter_channels = check_int("inter_channels", ci, minimum=1, maximum=2**16)
        self.subsample = check_bool("subsample", subsample)
        self.use_bn = check_bool("use_bn", use_bn)
        self.scale = check_bool("scale", scale)
        if scale and pairwise == "concatenation":
            raise ValueError("scale: concatenation (Eq. 5) has no theta^T phi to scale; use False")
        conv, embed = _CONV[dim], pairwise != "gaussian"  # Eq. 2: f = exp(x_i^T x_j), no embedding
        self.theta, self.phi = (conv(c, ci, 1), conv(c, ci, 1)) if embed else (None, None)
        self.g = conv(c, ci, 1)
        self.w_f = nn.Linear(2 * ci, 1, bias=False) if pairwise == "concatenation" else None
        k = _KERNEL[dim]
        self.pool = _POOL[dim](k, k, ceil_mode=True) if subsample else nn.Identity()
        self.w_z = nn.Sequential(conv(ci, c, 1), *([_BN[dim](c)] if use_bn else []))
        for p in self.w_z[-1].parameters():  # the BN's weight and bias, or the conv's
            nn.init.zeros_(p)

    def extra_repr(self) -> str:
        names = ("pairwise", "dim", "in_channels", "inter_channels", "subsample", "use_bn", "scale")
        return ", ".join(f"{n}={getattr(self, n)!r}" for n in names)

    @property
    def w_f_vector(self) -> Tensor | None:
        """The 2 C' weights of Eq. 5 as a flat vector, theta's half first (else None)."""
        return None if self.w_f is None else self.w_f.weight.reshape(-1)

    def pooled_shape(self, spatial_shape) -> tuple[int, ...]:
        """Spatial shape of the positions j: ceil(size / 2) in space when subsampling."""
        spatial = tuple(check_int("spatial_shape", s, minimum=1) for s in spatial_shape)
        if len(spatial) != self.dim:
            raise ValueError(f"spatial_shape: expected {self.dim} sizes, got {spatial}")
        if not self.subsample:
            return spatial
        return tuple(math.ceil(s / k) for s, k in zip(spatial, _KERNEL[self.dim], strict=True))

    def flat_index(self, query, spatial_shape) -> int:
        """Row i of theta for the input position ``query``, (l,), (y, x) or (t, y, x)."""
        self.pooled_shape(spatial_shape)  # checks spatial_shape
        return int(np.ravel_multi_index(check_query(query, tuple(spatial_shape)), spatial_shape))

    def _check_input(self, x) -> None:
        _check_like(_check_tensor("x", x, self.dim + 2, _LAYOUT[self.dim]), self.g.weight)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels, got {tuple(x.shape)}")

    def embed(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Fig. 2 up to the pairwise term: tokens theta (B, N, Ck), phi (B, N', Ck), g (B, N', C').

        phi and g are pooled, theta is not; for "gaussian" theta and phi are x itself (Ck = C)."""
        self._check_input(x)
        theta = _tokens(x if self.theta is None else self.theta(x))
        phi = _tokens(self.pool(x if self.phi is None else self.phi(x)))
        return theta, phi, _tokens(self.pool(self.g(x)))

    def forward(self, x: Tensor) -> Tensor:
        """z = W_z y + x (Eq. 6), the shape of x; y by the efficient form, never N x N'."""
        theta, phi, g = self.embed(x)
        y = aggregate(self.pairwise, theta, phi, g, w_f=self.w_f_vector, scale=self.scale,
                      check=False)  # fmt: skip
        y = y.transpose(1, 2).reshape(x.shape[0], self.inter_channels, *x.shape[2:])
        return self.w_z(y.contiguous()) + x  # contiguous: the next layer sees the usual layout

    def attention(self, x: Tensor, query) -> Tensor:
        """The weights ``f(x_i, x_j) / C(x)`` of query position i over all pooled j.

        Parameters
        ----------
        x : Tensor (B, C, *spatial)
        query : (l,), (y, x) or (t, y, x) in the coordinates of x

        Returns
        -------
        Tensor (B, *pooled spatial shape): softmax forms sum to 1, the others are divided by N'.
        """
        theta, phi, _ = self.embed(x)
        i = self.flat_index(query, x.shape[2:])
        w = affinity(self.pairwise, theta[:, i : i + 1], phi, w_f=self.w_f_vector, scale=self.scale)
        return w.reshape(x.shape[0], *self.pooled_shape(x.shape[2:]))


class Windowed(nn.Module):
    """A 2-D block run on non-overlapping ``window`` x ``window`` tiles folded into the batch;
    the map is padded by replication to whole tiles and cropped back, so any size works."""

    def __init__(self, block: NonLocalBlock, window: int) -> None:
        super().__init__()
        if not isinstance(block, NonLocalBlock):
            raise TypeError(f"block: expected a NonLocalBlock of dim 2, got {type(block).__name__}")
        if block.dim != 2:
            raise ValueError(f"block: expected a NonLocalBlock of dim 2, got dim={block.dim}")
        self.block, self.window = block, check_int("window", window, minimum=1, maximum=1024)

    def tiles(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B * nh * nw, C, s, s), each image's tiles in row-major order."""
        s = self.window
        _check_tensor("x", x, 4, "(B, C, H, W)", finite=False)  # the block checks the values
        x = F.pad(x, (0, -x.shape[3] % s, 0, -x.shape[2] % s), mode="replicate")
        B, C, H, W = x.shape
        x = x.reshape(B, C, H // s, s, W // s, s).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(-1, C, s, s).contiguous()

    def forward(self, x: Tensor) -> Tensor:
        z, (B, C, H, W), s = self.block(self.tiles(x)), x.shape, self.window
        z = z.reshape(B, -(-H // s), -(-W // s), C, s, s).permute(0, 3, 1, 4, 2, 5)
        z = z.reshape(B, C, -(-H // s) * s, -(-W // s) * s)
        return z[:, :, :H, :W].contiguous()

    def attention(self, x: Tensor, query) -> Tensor:
        """(1, H, W): weights of position ``query`` of image 0 over its tile, 0 elsewhere (a
        padded position's weight goes to the border position it copies)."""
        tiles, (H, W), s = self.tiles(x), x.shape[2:], self.window  # image 0's tiles first
        (ty, qy), (tx, qx) = (divmod(q, s) for q in check_query(query, (H, W)))
        w = self.block.attention(tiles[ty * -(-W // s) + tx][None], (qy, qx))[0]
        rows = (torch.arange(s) + ty * s).clamp(max=H - 1)[:, None].expand(s, s)
        cols = (torch.arange(s) + tx * s).clamp(max=W - 1).expand(s, s)
        return torch.zeros(H, W).index_put_((rows, cols), w.cpu(), accumulate=True)[None]
