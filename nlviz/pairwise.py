"""The four pairwise functions of the non-local operation, in torch (notebook 02).

Paper Eq. 1: ``y_i = 1/C(x) * sum_j f(x_i, x_j) g(x_j)``.

Everything here works on *tokens*: positions flattened, channels last.

- ``theta``: (B, N, Ck)  the query side i (N positions)
- ``phi``:   (B, M, Ck)  the key side j (M = N' positions, after any subsampling)
- ``g``:     (B, M, Cv)  the values g(x_j)

| pairwise            | f(x_i, x_j)                       | C(x)       | paper  |
|---------------------|-----------------------------------|------------|--------|
| "gaussian"          | exp(x_i^T x_j)                    | sum_j f    | Eq. 2  |
| "embedded_gaussian" | exp(theta_i^T phi_j)              | sum_j f    | Eq. 3  |
| "dot_product"       | theta_i^T phi_j                   | M          | Eq. 4  |
| "concatenation"     | ReLU(w_f^T [theta_i, phi_j])      | M          | Eq. 5  |

For "gaussian" the caller passes x itself as ``theta`` and ``phi`` (no embedding); given
``theta`` and ``phi`` the two Gaussian forms compute the same softmax.

Two forms of each:

- ``affinity(...)`` -> (B, N, M): the normalised weights f/C, the naive reference (N x M memory).
- ``aggregate(...)`` -> (B, N, Cv): ``y``, the efficient form the block uses, never N x M:
  softmax forms by fused attention (``F.scaled_dot_product_attention``), dot product by
  associativity ``theta (phi^T g) / M``, concatenation by sorting the scalars of Eq. 5.

``scale=True`` divides ``theta^T phi`` by ``sqrt(Ck)`` as the official code and SlowFast do
(the paper does not); it applies where ``theta^T phi`` appears (the Gaussian forms and the dot
product). Concatenation has no ``theta^T phi``, so ``scale=True`` is an error there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from nlviz._checks import check_int

PAIRWISE = ("gaussian", "embedded_gaussian", "dot_product", "concatenation")
SOFTMAX_FORMS = ("gaussian", "embedded_gaussian")


def check_pairwise(pairwise: str) -> str:
    """Return ``pairwise`` or raise ValueError listing the valid names."""
    if pairwise not in PAIRWISE:
        raise ValueError(f"pairwise: expected one of {PAIRWISE}, got {pairwise!r}")
    return pairwise


def _check_tokens(theta: Tensor, phi: Tensor, g: Tensor | None = None) -> None:
    for name, t in (("theta", theta), ("phi", phi), ("g", g)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 3:
            raise ValueError(
                f"{name}: expected 3 dims (batch, positions, channels), got shape {tuple(t.shape)}"
            )
    if phi.shape[1] < 1:
        raise ValueError(f"phi: expected at least one position j, got shape {tuple(phi.shape)}")
    for name, t in (("phi", phi), ("g", g)):
        if t is not None and (t.dtype != theta.dtype or t.device != theta.device):
            raise ValueError(
                f"{name}: expected dtype {theta.dtype} on {theta.device} like theta, "
                f"got {t.dtype} on {t.device}"
            )
    if phi.shape[0] != theta.shape[0] or phi.shape[2] != theta.shape[2]:
        raise ValueError(
            f"phi: expected (B={theta.shape[0]}, M, Ck={theta.shape[2]}) to match theta "
            f"{tuple(theta.shape)}, got {tuple(phi.shape)}"
        )
    if g is not None and (g.shape[0] != phi.shape[0] or g.shape[1] != phi.shape[1]):
        raise ValueError(
            f"g: expected (B={phi.shape[0]}, M={phi.shape[1]}, Cv) to match phi "
            f"{tuple(phi.shape)}, got {tuple(g.shape)}"
        )


def _check_w_f(w_f: Tensor | None, channels: int) -> Tensor:
    if w_f is None:
        raise ValueError("w_f: the concatenation form needs w_f (2 * Ck weights), got None")
    if not isinstance(w_f, Tensor):
        raise TypeError(f"w_f: expected a torch.Tensor of 2 * Ck weights, got {type(w_f).__name__}")
    if w_f.numel() != 2 * channels:
        raise ValueError(
            f"w_f: expected 2 * Ck = {2 * channels} weights, got shape {tuple(w_f.shape)}"
        )
    return w_f.reshape(-1)


def _scale_factor(pairwise: str, scale: bool, channels: int) -> float:
    if not scale:
        return 1.0
    if pairwise == "concatenation":
        raise ValueError("scale: concatenation has no theta^T phi to scale; use scale=False")
    return 1.0 / math.sqrt(channels)


def concatenation_scalars(theta: Tensor, phi: Tensor, w_f: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. 5 split in two: ``w_f^T [theta_i, phi_j] = a_i + b_j``. Returns a (B, N), b (B, M).

    ``w_f`` holds 2 * Ck weights, theta's half first (any shape, e.g. a (1, 2Ck, 1, 1) conv).
    """
    _check_tokens(theta, phi)
    w_f = _check_w_f(w_f, theta.shape[-1])
    ck = theta.shape[-1]
    return theta @ w_f[:ck], phi @ w_f[ck:]


# --------------------------------------------------------------------------- naive reference


def affinity(
    pairwise: str, theta: Tensor, phi: Tensor, *, w_f: Tensor | None = None, scale: bool = False
) -> Tensor:
    """Normalised weights ``f(x_i, x_j) / C(x)``, shape (B, N, M): the naive reference.

    Builds the whole N x M matrix; use it for small N, for one query row (N = 1), or to check
    the efficient forms.
    """
    check_pairwise(pairwise)
    _check_tokens(theta, phi)
    m = phi.shape[1]
    s = _scale_factor(pairwise, scale, theta.shape[-1])
    if pairwise == "concatenation":
        a, b = concatenation_scalars(theta, phi, w_f)
        return F.relu(a[:, :, None] + b[:, None, :]) / m
    logits = (theta @ phi.transpose(1, 2)) * s
    if pairwise in SOFTMAX_FORMS:
        return torch.softmax(logits, dim=-1)
    return logits / m  # dot product, Eq. 4: C = M, no softmax


def aggregate_naive(
    pairwise: str,
    theta: Tensor,
    phi: Tensor,
    g: Tensor,
    *,
    w_f: Tensor | None = None,
    scale: bool = False,
) -> Tensor:
    """``y = affinity @ g``, shape (B, N, Cv), with the N x M matrix materialised."""
    _check_tokens(theta, phi, g)
    return affinity(pairwise, theta, phi, w_f=w_f, scale=scale) @ g


# --------------------------------------------------------------------------- efficient forms


def softmax_aggregate(theta: Tensor, phi: Tensor, g: Tensor, *, scale: float = 1.0) -> Tensor:
    """Eq. 2/3 by fused attention: ``softmax(scale * theta phi^T) g``, (B, N, Cv), no N x M.

    PyTorch's CPU flash kernel runs only on contiguous 4-D (B, heads, N, C) inputs whose
    q, k, v share one head dim; anything else falls back, silently, to the N x M math kernel.
    So: add a head axis, make contiguous, and zero-pad the narrower side to a common width
    (zeros change neither theta^T phi nor the first Cv output channels).
    """
    _check_tokens(theta, phi, g)
    ck, cv = theta.shape[-1], g.shape[-1]
    width = max(ck, cv)
    q, k, v = theta, phi, g
    if ck < width:
        q, k = F.pad(q, (0, width - ck)), F.pad(k, (0, width - ck))
    if cv < width:
        v = F.pad(v, (0, width - cv))
    q, k, v = (t.unsqueeze(1).contiguous() for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, scale=scale)
    return y.squeeze(1)[..., :cv]


def dot_product_aggregate(theta: Tensor, phi: Tensor, g: Tensor, *, scale: float = 1.0) -> Tensor:
    """Eq. 4 by associativity: ``theta (phi^T g) * scale / M``, (B, N, Cv), O(N Ck Cv)."""
    _check_tokens(theta, phi, g)
    return theta @ (phi.transpose(1, 2) @ g) * (scale / phi.shape[1])


def concatenation_aggregate(
    theta: Tensor,
    phi: Tensor,
    g: Tensor,
    w_f: Tensor,
    *,
    method: str = "sorted",
    chunk_size: int = 1024,
) -> Tensor:
    """Eq. 5, ``y_i = 1/M sum_j ReLU(a_i + b_j) g_j``, (B, N, Cv), never (2Ck x N x M).

    ``method="sorted"`` (default, exact, O((N + M) log M + (N + M) Cv)): the pairs with
    ``a_i + b_j > 0`` are the j with ``b_j > -a_i``, a suffix of the j sorted by b, so
    ``y_i = (a_i * S_g + S_bg) / M`` with suffix sums S of g and b*g read at one index per i.
    The weights are piecewise linear in a and b: autograd is exact wherever a_i + b_j != 0
    (at the kink any implementation picks a side).

    ``method="chunked"``: broadcast the two scalars for ``chunk_size`` queries at a time
    (chunk x M weights), recomputed in the backward pass so memory stays bounded there too.
    """
    _check_tokens(theta, phi, g)
    if method not in ("sorted", "chunked"):
        raise ValueError(f"method: expected 'sorted' or 'chunked', got {method!r}")
    a, b = concatenation_scalars(theta, phi, w_f)
    m = phi.shape[1]
    if method == "chunked":
        chunk_size = check_int("chunk_size", chunk_size, minimum=1)

        def rows(a_c: Tensor, b: Tensor, g: Tensor) -> Tensor:
            return F.relu(a_c[:, :, None] + b[:, None, :]) @ g / m

        recompute = torch.is_grad_enabled() and any(t.requires_grad for t in (a, b, g))
        parts = []
        for start in range(0, a.shape[1], chunk_size):
            a_c = a[:, start : start + chunk_size]
            if recompute:
                parts.append(checkpoint(rows, a_c, b, g, use_reentrant=False))
            else:
                parts.append(rows(a_c, b, g))
        return torch.cat(parts, dim=1)

    # Suffix sums in float64 where the device has it: they add up to M terms of either sign.
    acc = torch.float32 if g.device.type == "mps" else torch.float64
    b_sorted, order = torch.sort(b, dim=1)
    g_sorted = torch.gather(g, 1, order[:, :, None].expand(-1, -1, g.shape[-1]))
    stacked = torch.cat([g_sorted, b_sorted[:, :, None] * g_sorted], dim=-1).to(acc)
    suffix = torch.flip(torch.cumsum(torch.flip(stacked, [1]), dim=1), [1])
    suffix = F.pad(suffix, (0, 0, 0, 1))  # row M: the empty suffix
    keys, queries = b_sorted.detach().contiguous(), (-a).detach().contiguous()
    first = torch.searchsorted(keys, queries, right=True)  # first j with b_j > -a_i
    picked = torch.gather(suffix, 1, first[:, :, None].expand(-1, -1, suffix.shape[-1]))
    s_g, s_bg = picked.split(g.shape[-1], dim=-1)
    return ((a[:, :, None].to(acc) * s_g + s_bg) / m).to(g.dtype)


def aggregate(
    pairwise: str,
    theta: Tensor,
    phi: Tensor,
    g: Tensor,
    *,
    w_f: Tensor | None = None,
    scale: bool = False,
) -> Tensor:
    """``y_i = 1/C sum_j f(x_i, x_j) g_j`` (Eq. 1), shape (B, N, Cv), by the efficient form."""
    check_pairwise(pairwise)
    _check_tokens(theta, phi, g)
    s = _scale_factor(pairwise, scale, theta.shape[-1])
    if pairwise in SOFTMAX_FORMS:
        return softmax_aggregate(theta, phi, g, scale=s)
    if pairwise == "dot_product":
        return dot_product_aggregate(theta, phi, g, scale=s)
    return concatenation_aggregate(theta, phi, g, w_f)
