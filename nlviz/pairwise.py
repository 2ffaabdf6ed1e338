"""The four pairwise functions of the non-local operation, paper Eq. 1-5, in torch (notebook 02).

Eq. 1, ``y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j)``, on tokens: theta (B, N, Ck) of the queries i,
phi (B, M, Ck) of the j (M = N' after subsampling), g (B, M, Cv); f, C by name: notebook 02's table.
``affinity``: the weights f / C (B, N, M), naive; ``aggregate``: y (B, N, Cv), never N x M.
``scale=True`` divides theta^T phi by sqrt(Ck) as the official code does (not the paper)."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from nlviz.utils import check_bool, check_choice, check_int, check_real, check_type

__all__ = ["PAIRWISE", "SOFTMAX_FORMS", "check_pairwise", "affinity", "aggregate",
           "aggregate_naive", "softmax_aggregate", "dot_product_aggregate",
           "concatenation_aggregate", "concatenation_scalars"]  # fmt: skip
PAIRWISE = ("gaussian", "embedded_gaussian", "dot_product", "concatenation")
SOFTMAX_FORMS = ("gaussian", "embedded_gaussian")
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_pairwise(pairwise: str) -> str:
    """``pairwise``, or ValueError listing the four names."""
    return check_choice("pairwise", pairwise, PAIRWISE)


def _check_tensor(name: str, t, ndim, layout: str, like=None, finite=True) -> Tensor:
    """A float tensor of ``ndim`` dims (None: any), none empty, finite, and like ``like``."""
    check_type(name, t, Tensor, f"a torch.Tensor {layout}")
    if t.dtype not in FLOATS:
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dims {layout}, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name}: expected no empty dimension {layout}, got {tuple(t.shape)}")
    if like is not None and (t.dtype != like.dtype or t.device != like.device):
        raise ValueError(f"{name}: expected dtype {like.dtype} on {like.device} like theta, "
                         f"got {t.dtype} on {t.device}")  # fmt: skip
    if finite and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return t


def _check(pairwise, theta, phi, g=None, w_f=None, scale=False) -> float:
    """Validate the public entry points' arguments once; return the factor on theta^T phi."""
    check_pairwise(pairwise)
    _check_tensor("theta", theta, 3, "(B, N, Ck)")
    _check_tensor("phi", phi, 3, "(B, M, Ck)", like=theta)
    b, _, ck = theta.shape
    if phi.shape[0] != b or phi.shape[2] != ck:
        raise ValueError(f"phi: expected (B={b}, M, Ck={ck}) like theta, got {tuple(phi.shape)}")
    if g is not None:
        _check_tensor("g", g, 3, "(B, M, Cv)", like=theta)
        if g.shape[:2] != phi.shape[:2]:
            raise ValueError(f"g: expected (B={b}, M={phi.shape[1]}, Cv), got {tuple(g.shape)}")
    if pairwise == "concatenation":
        if w_f is None:
            raise ValueError("w_f: the concatenation form needs w_f (2 * Ck weights), got None")
        if _check_tensor("w_f", w_f, None, "of 2 * Ck weights").numel() != 2 * ck:
            raise ValueError(f"w_f: expected 2 * Ck = {2 * ck} weights, got {tuple(w_f.shape)}")
    if check_bool("scale", scale) and pairwise == "concatenation":
        raise ValueError("scale: concatenation (Eq. 5) has no theta^T phi to scale; use False")
    return 1.0 / math.sqrt(ck) if scale else 1.0


def concatenation_scalars(theta: Tensor, phi: Tensor, w_f: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. 5 as ``w_f^T [theta_i, phi_j] = a_i + b_j``: a (B, N), b (B, M), theta's half first."""
    _check("concatenation", theta, phi, w_f=w_f)
    return _scalars(theta, phi, w_f)


def _scalars(theta, phi, w_f):
    w_f, ck = w_f.reshape(-1).to(theta.dtype), theta.shape[-1]
    return theta @ w_f[:ck], phi @ w_f[ck:]


def affinity(pairwise: str, theta, phi, *, w_f=None, scale: bool = False) -> Tensor:
    """The normalised weights ``f(x_i, x_j) / C(x)``, (B, N, M): the naive N x M reference."""
    return _affinity(pairwise, theta, phi, w_f, _check(pairwise, theta, phi, w_f=w_f, scale=scale))


def _affinity(pairwise: str, theta, phi, w_f, s: float) -> Tensor:
    """``affinity`` unchecked, ``s`` the factor on theta^T phi (the explorer's click path)."""
    if pairwise == "concatenation":
        a, b = _scalars(theta, phi, w_f)
        return F.relu(a[:, :, None] + b[:, None, :]) / phi.shape[1]
    logits = theta @ phi.transpose(1, 2) * s
    return torch.softmax(logits, -1) if pairwise in SOFTMAX_FORMS else logits / phi.shape[1]


def aggregate_naive(pairwise: str, theta, phi, g, *, w_f=None, scale: bool = False) -> Tensor:
    """``y = affinity @ g``, (B, N, Cv), with the N x M matrix materialised."""
    return _affinity(pairwise, theta, phi, w_f, _check(pairwise, theta, phi, g, w_f, scale)) @ g


def aggregate(pairwise, theta, phi, g, *, w_f=None, scale=False, check: bool = True) -> Tensor:
    """y of Eq. 1, (B, N, Cv), never N x M; ``check=False`` skips the checks (``NonLocalBlock``)."""
    if check_bool("check", check):
        s = _check(pairwise, theta, phi, g, w_f, scale)
    else:
        s = theta.shape[-1] ** -0.5 if scale else 1.0
    if pairwise in SOFTMAX_FORMS:
        return _softmax(theta, phi, g, s)
    if pairwise == "dot_product":
        return theta @ (phi.transpose(1, 2) @ g) * (s / phi.shape[1])
    return _sorted(*_scalars(theta, phi, w_f), g)


def softmax_aggregate(theta: Tensor, phi: Tensor, g: Tensor, *, scale: float = 1.0) -> Tensor:
    """Eq. 2/3 by fused attention: ``softmax(scale theta phi^T) g``, (B, N, Cv)."""
    _check("embedded_gaussian", theta, phi, g)
    return _softmax(theta, phi, g, check_real("scale", scale, minimum=0, strict=True))


def _softmax(theta, phi, g, s):
    # SDPA's flash kernel needs contiguous 4-D (B, heads, N, C) q, k, v of one head dim, else SDPA
    # silently uses the N x M math kernel. Zero padding to one width keeps theta^T phi, y[..., :Cv].
    width, cv = max(theta.shape[-1], g.shape[-1]), g.shape[-1]
    q, k, v = (F.pad(t, (0, width - t.size(-1))).unsqueeze(1).contiguous() for t in (theta, phi, g))
    return F.scaled_dot_product_attention(q, k, v, scale=s).squeeze(1)[..., :cv]


def dot_product_aggregate(theta: Tensor, phi: Tensor, g: Tensor, *, scale: float = 1.0) -> Tensor:
    """Eq. 4 by associativity: ``theta (phi^T g) scale / M``, (B, N, Cv), O(N Ck Cv)."""
    _check("dot_product", theta, phi, g)
    scale = check_real("scale", scale, minimum=0, strict=True)
    return theta @ (phi.transpose(1, 2) @ g) * (scale / phi.shape[1])


def concatenation_aggregate(theta, phi, g, w_f, *, method="sorted", chunk_size=1024) -> Tensor:
    """Eq. 5, ``y_i = 1/M sum_j ReLU(a_i + b_j) g_j`` (B, N, Cv), no (2 Ck, N, M): "sorted" sums g,
    b g over i's live j (a suffix in b order), O((N + M) log M); "chunked": ``chunk_size`` rows."""
    _check("concatenation", theta, phi, g, w_f)
    check_choice("method", method, ("sorted", "chunked"))
    chunk_size, (a, b) = check_int("chunk_size", chunk_size, minimum=1), _scalars(theta, phi, w_f)
    if method == "sorted":
        return _sorted(a, b, g)

    def rows(a_c, b, g):
        return F.relu(a_c[:, :, None] + b[:, None, :]) @ g / b.shape[1]

    recompute = torch.is_grad_enabled() and any(t.requires_grad for t in (a, b, g))
    parts = [a[:, i : i + chunk_size] for i in range(0, a.shape[1], chunk_size)]
    if recompute:
        return torch.cat([checkpoint(rows, p, b, g, use_reentrant=False) for p in parts], 1)
    return torch.cat([rows(p, b, g) for p in parts], 1)


def _sorted(a: Tensor, b: Tensor, g: Tensor) -> Tensor:
    # Suffix sums in float64 where the device has it: they add up M terms of either sign.
    acc = torch.float32 if g.device.type == "mps" else torch.float64
    b_sorted, order = torch.sort(b, dim=1)
    g_sorted = torch.gather(g, 1, order[:, :, None].expand(-1, -1, g.shape[-1]))
    stacked = torch.cat([g_sorted, b_sorted[:, :, None] * g_sorted], dim=-1).to(acc)
    suffix = F.pad(torch.flip(torch.cumsum(torch.flip(stacked, [1]), 1), [1]), (0, 0, 0, 1))
    first = torch.searchsorted(b_sorted.detach().contiguous(), (-a).detach().contiguous(),
                               right=True)  # fmt: skip
    picked = torch.gather(suffix, 1, first[:, :, None].expand(-1, -1, suffix.shape[-1]))
    s_g, s_bg = picked.split(g.shape[-1], dim=-1)
    return ((a[:, :, None].to(acc) * s_g + s_bg) / b.shape[1]).to(g.dtype)
