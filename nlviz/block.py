"""The non-local block, paper Eq. 6 and Figure 2, for sequences, images and video (notebook 03).

``z_i = W_z y_i + x_i`` (Eq. 6), with ``y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j)`` (Eq. 1) and
f one of the four pairwise functions of ``nlviz.pairwise`` (Eq. 2-5).

Figure 2, for an input x of shape (B, C, *spatial) with N positions:

1. theta, phi, g: 1x1 (1x1x1) convolutions C -> C' (the bottleneck, C' = C // 2);
   "gaussian" (Eq. 2) has no embedding: theta is x itself and phi is (pooled) x.
2. subsampling: max-pool 2 over the spatial dims (1x2x2 for video) of phi and g, so j runs
   over N' ~ N / 4 positions; theta (the query side i) is never pooled.
3. y = the non-local operation, computed by ``nlviz.pairwise.aggregate`` without ever forming
   the N x N' matrix (fused attention, associativity, or the sorted concatenation trick).
4. z = W_z y + x, W_z = 1x1 conv C' -> C then BatchNorm with weight and bias zero-initialised,
   so a new block is exactly the identity and can be put into a pre-trained network.

Where this module differs from the paper or from the public code (Caffe2
facebookresearch/video-nonlocal-net, FAIR SlowFast, mmcv, AlexHex7/Non-local_pytorch):

- ``scale=True`` divides theta^T phi by sqrt(Ck) before the softmax, as the official code
  (``USE_SCALE``), SlowFast and mmcv's ``use_scale`` do; the paper never mentions it. Off by
  default (the paper). Concatenation has no theta^T phi, so ``scale=True`` is refused there.
- Pooling follows the paper (after phi and g). The official code max-pools the *input* before
  the phi and g convolutions; for a 1x1 conv the two differ (max does not commute with it).
- Pooling uses ``ceil_mode=True``: an odd size keeps its last row/column as a pool of one, and
  a size of 1 stays 1, so any input size works. The paper only uses even sizes; PyTorch's
  default (floor) would drop the last row of an odd size and fail on size 1.
- The official code implements only embedded Gaussian and dot product; all four are here.
- The official W_z conv is Gaussian-initialised and only the BN gamma is zero; here the conv
  keeps PyTorch's default init and both BN weight (gamma) and bias (beta) are zero. With
  ``use_bn=False`` (as in ports without BN) the conv weight and bias are zeroed instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from nlviz._checks import check_choice, check_int
from nlviz.pairwise import affinity, aggregate, check_pairwise

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_POOL_KERNEL = {1: (2,), 2: (2, 2), 3: (1, 2, 2)}  # spatial only: never over time
_LAYOUT = {1: "(B, C, L)", 2: "(B, C, H, W)", 3: "(B, C, T, H, W)"}
_COORDS = {1: "(l,)", 2: "(y, x)", 3: "(t, y, x)"}


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return value


def _tokens(t: Tensor) -> Tensor:
    """(B, C, *spatial) -> (B, N, C), channels last."""
    return t.flatten(2).transpose(1, 2)


class NonLocalBlock(nn.Module):
    """Non-local block (Eq. 6, Fig. 2): ``z = W_z y + x``, input and output (B, C, *spatial).

    Args:
        in_channels: C, the channels of x.
        pairwise: "gaussian" (Eq. 2), "embedded_gaussian" (Eq. 3), "dot_product" (Eq. 4) or
            "concatenation" (Eq. 5).
        dim: 1 for sequences (B, C, L), 2 for images (B, C, H, W), 3 for video (B, C, T, H, W).
        inter_channels: C', the bottleneck width of theta, phi, g; default max(C // 2, 1).
        subsample: max-pool phi and g by 2 over the spatial dims (not time), N' ~ N / 4.
        use_bn: W_z is conv + BatchNorm (BN zero-initialised) or a zero-initialised conv.
        scale: divide theta^T phi by sqrt(Ck) (official code; not in the paper).

    Submodules: ``theta``, ``phi`` (None for "gaussian"), ``g``, ``pool``, ``w_z`` and
    ``w_f`` (nn.Linear(2 C', 1, bias=False) for "concatenation", theta's half first; else None).
    See the module docstring for where this differs from the paper and the public code.
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
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.pairwise = check_pairwise(pairwise)
        self.dim = check_choice("dim", check_int("dim", dim), (1, 2, 3))
        if inter_channels is None:
            inter_channels = max(self.in_channels // 2, 1)
        self.inter_channels = check_int("inter_channels", inter_channels, minimum=1)
        self.subsample = _check_bool("subsample", subsample)
        self.use_bn = _check_bool("use_bn", use_bn)
        self.scale = _check_bool("scale", scale)
        if self.scale and pairwise == "concatenation":
            raise ValueError(
                "scale: concatenation (Eq. 5) has no theta^T phi to divide by sqrt(d); "
                "use scale=False"
            )

        c, ci = self.in_channels, self.inter_channels
        conv = _CONV[self.dim]
        if pairwise == "gaussian":  # Eq. 2: f = exp(x_i^T x_j), no embedding
            self.theta = None
            self.phi = None
        else:
            self.theta = conv(c, ci, kernel_size=1)
            self.phi = conv(c, ci, kernel_size=1)
        self.g = conv(c, ci, kernel_size=1)
        self.w_f = nn.Linear(2 * ci, 1, bias=False) if pairwise == "concatenation" else None
        if self.subsample:
            kernel = _POOL_KERNEL[self.dim]
            self.pool = _POOL[self.dim](kernel_size=kernel, stride=kernel, ceil_mode=True)
        else:
            self.pool = nn.Identity()

        if self.use_bn:
            self.w_z = nn.Sequential(conv(ci, c, kernel_size=1), _BN[self.dim](c))
            nn.init.zeros_(self.w_z[1].weight)
            nn.init.zeros_(self.w_z[1].bias)
        else:
            self.w_z = nn.Sequential(conv(ci, c, kernel_size=1))
            nn.init.zeros_(self.w_z[0].weight)
            nn.init.zeros_(self.w_z[0].bias)

    def extra_repr(self) -> str:
        return (
            f"pairwise={self.pairwise!r}, dim={self.dim}, in_channels={self.in_channels}, "
            f"inter_channels={self.inter_channels}, subsample={self.subsample}, "
            f"use_bn={self.use_bn}, scale={self.scale}"
        )

    # ------------------------------------------------------------------ shapes and indices

    @property
    def w_f_vector(self) -> Tensor | None:
        """The 2 C' weights of Eq. 5 as a flat vector (theta's half first), or None."""
        return None if self.w_f is None else self.w_f.weight.reshape(-1)

    def pooled_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """Spatial shape of the j side (phi, g): each pooled size is ceil(size / 2)."""
        spatial = self._check_spatial(spatial_shape)
        if not self.subsample:
            return spatial
        return tuple(math.ceil(s / k) for s, k in zip(spatial, _POOL_KERNEL[self.dim], strict=True))

    def flat_index(self, query: Sequence[int], spatial_shape: Sequence[int]) -> int:
        """Row i of theta (and of the affinity matrix) for the input position ``query``.

        ``query`` is (l,), (y, x) or (t, y, x) in input coordinates; raises ValueError when it
        has the wrong length or lies outside ``spatial_shape``.
        """
        spatial = self._check_spatial(spatial_shape)
        if isinstance(query, Tensor | np.ndarray):
            query = query.tolist()
        if isinstance(query, str) or not isinstance(query, Sequence):
            raise TypeError(
                f"query: expected a tuple of {self.dim} ints {_COORDS[self.dim]}, "
                f"got {type(query).__name__} {query!r}"
            )
        query = tuple(query)
        if len(query) != self.dim:
            raise ValueError(
                f"query: expected {self.dim} coordinates {_COORDS[self.dim]} for "
                f"dim={self.dim}, got {len(query)}: {query!r}"
            )
        index = 0
        for axis, (q, size) in enumerate(zip(query, spatial, strict=True)):
            q = check_int(f"query[{axis}]", q)
            if not 0 <= q < size:
                raise ValueError(
                    f"query: expected coordinates within the spatial shape {spatial}, "
                    f"got {query!r} (axis {axis} out of range)"
                )
            index = index * size + q
        return index

    def _check_spatial(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        spatial = tuple(spatial_shape)
        if len(spatial) != self.dim:
            raise ValueError(
                f"spatial_shape: expected {self.dim} sizes for dim={self.dim}, got {spatial}"
            )
        return tuple(check_int("spatial_shape", s, minimum=1) for s in spatial)

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        if x.ndim != self.dim + 2:
            raise ValueError(
                f"x: expected {self.dim + 2} dims {_LAYOUT[self.dim]} for dim={self.dim}, "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x: expected {self.in_channels} channels (dim 1), got shape {tuple(x.shape)}"
            )
        if any(s == 0 for s in x.shape):
            raise ValueError(f"x: expected no empty dimension, got shape {tuple(x.shape)}")

    # ------------------------------------------------------------------ the block

    def _keys(self, x: Tensor) -> Tensor:
        """phi(x_j) pooled, tokens (B, N', Ck); pooled x itself for "gaussian"."""
        phi = x if self.phi is None else self.phi(x)
        return _tokens(self.pool(phi))

    def embed(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Fig. 2 up to the pairwise term: tokens theta (B, N, Ck), phi (B, N', Ck), g (B, N', C').

        theta is not pooled; phi and g are (when ``subsample``). Ck = C' (C for "gaussian").
        """
        self._check_input(x)
        theta = _tokens(x if self.theta is None else self.theta(x))
        return theta, self._keys(x), _tokens(self.pool(self.g(x)))

    def project(self, y: Tensor, x: Tensor) -> Tensor:
        """Eq. 6: ``z = W_z y + x`` from tokens y (B, N, C') and the input x (B, C, *spatial)."""
        y = y.transpose(1, 2).reshape(x.shape[0], self.inter_channels, *x.shape[2:])
        # contiguous: a channels-last y would make z channels-last too, and the next layer
        # would then pick other kernels (outputs equal only to rounding, not bit for bit).
        return self.w_z(y.contiguous()) + x

    def forward(self, x: Tensor) -> Tensor:
        """z = W_z y + x (Eq. 6), shape of x; y by the efficient form, never N x N'."""
        theta, phi, g = self.embed(x)
        y = aggregate(self.pairwise, theta, phi, g, w_f=self.w_f_vector, scale=self.scale)
        return self.project(y, x)

    def attention(self, x: Tensor, query: Sequence[int]) -> Tensor:
        """f(x_i, x_j) / C(x) for the query position i over all pooled j: (B, *pooled shape).

        ``query`` is in input coordinates ((l,), (y, x) or (t, y, x)). O(N) work and memory:
        theta is computed at i only, phi over all j. Softmax forms sum to 1 over j; dot product
        and concatenation are divided by N' (the pooled count) and need not.
        """
        self._check_input(x)
        i = self.flat_index(query, x.shape[2:])
        x_i = x.flatten(2)[:, :, i]  # (B, C)
        if self.theta is None:
            theta_i = x_i
        else:  # a 1x1 conv at one position is a linear map
            weight = self.theta.weight.reshape(self.inter_channels, self.in_channels)
            theta_i = torch.nn.functional.linear(x_i, weight, self.theta.bias)
        w = affinity(
            self.pairwise,
            theta_i[:, None, :],
            self._keys(x),
            w_f=self.w_f_vector,
            scale=self.scale,
        )
        return w.reshape(x.shape[0], *self.pooled_shape(x.shape[2:]))
