"""The non-local block (notebook 03), Eq. 6 and Figure 2: ``z_i = W_z y_i + x_i``, y from Eq. 1. For
x (B, C, *spatial) of sequences, images, video: theta, phi, g are 1x1 convs C -> C'; phi and g are
max-pooled by 2 in space (N' ~ N/4); W_z, 1x1 conv C' -> C + zero BatchNorm, starts as identity."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlviz.pairwise import _check_tensor, affinity, aggregate, check_pairwise
from nlviz.utils import check_bool, check_choice, check_int, check_query, check_type

__all__ = ["NonLocalBlock", "Windowed"]
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_KERNEL = {1: (2,), 2: (2, 2), 3: (1, 2, 2)}  # spatial only: never over time
_LAYOUT = {1: "(B, C, L)", 2: "(B, C, H, W)", 3: "(B, C, T, H, W)"}


def _tokens(t: Tensor) -> Tensor:  # (B, C, *spatial) -> (B, N, C), channels last
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

    ``in_channels``: C; ``pairwise``: "gaussian" (Eq. 2), "embedded_gaussian" (3), "dot_product" (4)
    or "concatenation" (5); ``dim``: 1, 2 or 3 for (B, C, L), (B, C, H, W) or (B, C, T, H, W);
    ``inter_channels``: C' (theta, phi, g), default max(C // 2, 1); ``subsample``: max-pool phi and
    g by 2 in space (ceil mode: odd sizes keep their last row); ``use_bn``: W_z is conv + zero
    BatchNorm, else a zero conv; ``scale``: theta^T phi / sqrt(C') as the official code (not the
    paper). Submodules: ``theta``, ``phi`` (None for "gaussian": Eq. 2 uses x), ``g``, ``pool``,
    ``w_z``, ``w_f`` (concatenation: ``nn.Linear(2 C', 1)``, theta's half first)."""

    def __init__(self, in_channels: int, *, pairwise: str = "embedded_gaussian", dim: int = 3,
                 inter_channels: int | None = None, subsample: bool = True, use_bn: bool = True,
                 scale: bool = False) -> None:  # fmt: skip
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
        """Tokens theta (B, N, Ck), pooled phi (B, N', Ck), g (B, N', C'); "gaussian": x, Ck = C."""
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
        """The weights ``f(x_i, x_j) / C(x)`` (B, *pooled spatial shape) of position i = ``query``
        ((l,), (y, x) or (t, y, x)) over all pooled j: softmax forms sum to 1, the others / N'."""
        theta, phi, _ = self.embed(x)
        i = self.flat_index(query, x.shape[2:])
        w = affinity(self.pairwise, theta[:, i : i + 1], phi, w_f=self.w_f_vector, scale=self.scale)
        return w.reshape(x.shape[0], *self.pooled_shape(x.shape[2:]))


class Windowed(nn.Module):
    """A 2-D block on ``window`` x ``window`` tiles in the batch (replication-padded, cropped)."""

    def __init__(self, block: NonLocalBlock, window: int) -> None:
        super().__init__()
        check_type("block", block, NonLocalBlock, "a NonLocalBlock of dim 2")
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
        """(1, H, W): image 0's weights of ``query`` over its tile, padding's on what it copies."""
        tiles, (H, W), s = self.tiles(x), x.shape[2:], self.window  # image 0's tiles first
        (ty, qy), (tx, qx) = (divmod(q, s) for q in check_query(query, (H, W)))
        w = self.block.attention(tiles[ty * -(-W // s) + tx][None], (qy, qx))[0]
        rows = (torch.arange(s) + ty * s).clamp(max=H - 1)[:, None].expand(s, s)
        cols = (torch.arange(s) + tx * s).clamp(max=W - 1).expand(s, s)
        return torch.zeros(H, W).index_put_((rows, cols), w.cpu(), accumulate=True)[None]
