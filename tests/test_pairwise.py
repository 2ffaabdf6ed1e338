"""nlviz.pairwise: naive weights against the equations, efficient forms against the naive ones.

Paper Eq. 1-5. Shapes: theta (B, N, Ck), phi (B, M, Ck), g (B, M, Cv), weights (B, N, M).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from nlviz import pairwise as pw

# (B, N, M, Ck, Cv): square and not, one query, one key, Ck < Cv and Ck > Cv
SHAPES = [(1, 5, 5, 3, 3), (2, 7, 13, 4, 6), (3, 16, 9, 8, 2), (1, 1, 20, 5, 7), (2, 11, 1, 3, 4)]
FORMS = [
    ("gaussian", {}),
    ("embedded_gaussian", {}),
    ("dot_product", {}),
    ("concatenation", {"method": "sorted"}),
    ("concatenation", {"method": "chunked", "chunk_size": 4}),
]
FORM_IDS = ["gaussian", "embedded_gaussian", "dot_product", "concat-sorted", "concat-chunked"]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def make(shape, dtype=torch.float64, seed=0, requires_grad=False):
    b, n, m, ck, cv = shape
    gen = torch.Generator().manual_seed(seed)

    def rnd(*size):
        t = torch.randn(*size, generator=gen, dtype=dtype)
        return t.requires_grad_(requires_grad)

    return rnd(b, n, ck), rnd(b, m, ck), rnd(b, m, cv), rnd(2 * ck)


def efficient(pairwise, opts, theta, phi, g, w_f, scale=False):
    """The efficient form under test: ``aggregate``, or concatenation with a chosen method."""
    if pairwise == "concatenation":
        return pw.concatenation_aggregate(theta, phi, g, w_f, **opts)
    return pw.aggregate(pairwise, theta, phi, g, w_f=w_f, scale=scale)


def close(actual, expected, dtype):
    """max |actual - expected| <= tol * max |expected| (tolerance relative to the magnitude)."""
    err = (actual - expected).abs().max().item()
    ref = expected.abs().max().item()
    assert err <= TOL[dtype] * max(ref, 1e-30), f"max error {err:.3g} vs max magnitude {ref:.3g}"


# ------------------------------------------------------------------ naive weights vs the equations


def weights_by_hand(pairwise, theta, phi, w_f, i, scale=False):
    """Row i of f(x_i, x_j)/C(x) for batch 0, written from Eq. 2-5 one j at a time."""
    m, ck = phi.shape[1], phi.shape[2]
    s = ck**-0.5 if scale else 1.0
    ti = theta[0, i]
    if pairwise == "concatenation":  # Eq. 5: the concatenated vector, as public code builds it
        f = [F.relu(torch.dot(w_f, torch.cat([ti, phi[0, j]]))) for j in range(m)]
        return torch.stack(f) / m
    dots = torch.stack([torch.dot(ti, phi[0, j]) * s for j in range(m)])
    if pairwise == "dot_product":  # Eq. 4, C = M
        return dots / m
    f = torch.exp(dots)  # Eq. 2 / 3, C = sum_j f
    return f / f.sum()


@pytest.mark.parametrize(
    ("pairwise", "scale"),
    [(p, False) for p in pw.PAIRWISE] + [(p, True) for p in pw.PAIRWISE[:3]],  # Eq. 5: no scale
)
def test_affinity_matches_the_equations(pairwise, scale):
    theta, phi, g, w_f = make((2, 6, 9, 4, 3))
    w = pw.affinity(pairwise, theta, phi, w_f=w_f, scale=scale)
    assert w.shape == (2, 6, 9)
    for i in (0, 3, 5):
        close(w[0, i], weights_by_hand(pairwise, theta, phi, w_f, i, scale), torch.float64)


def test_softmax_weights_sum_to_one_and_are_positive():
    theta, phi, _, _ = make((3, 10, 17, 5, 2), torch.float32)
    for pairwise in pw.SOFTMAX_FORMS:
        w = pw.affinity(pairwise, theta, phi)
        assert (w > 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 10), rtol=0, atol=1e-6)


def test_dot_product_and_concatenation_divide_by_m():
    theta, phi, _, w_f = make((2, 4, 7, 3, 3))
    m = phi.shape[1]
    dots = torch.einsum("bic,bjc->bij", theta, phi)
    close(pw.affinity("dot_product", theta, phi), dots / m, torch.float64)
    a = torch.einsum("bic,c->bi", theta, w_f[:3])
    b = torch.einsum("bjc,c->bj", phi, w_f[3:])
    close(
        pw.affinity("concatenation", theta, phi, w_f=w_f),
        torch.clamp(a[:, :, None] + b[:, None, :], min=0) / m,
        torch.float64,
    )


def test_dot_product_weights_can_be_negative_and_do_not_sum_to_one():
    theta, phi, _, _ = make((1, 8, 8, 4, 4))
    w = pw.affinity("dot_product", theta, phi)
    assert (w < 0).any()
    assert (w.sum(-1) - 1).abs().min() > 1e-3


def test_gaussian_equals_embedded_gaussian_given_the_same_inputs():
    x, _, _, _ = make((2, 6, 6, 3, 3))
    torch.testing.assert_close(
        pw.affinity("gaussian", x, x), pw.affinity("embedded_gaussian", x, x)
    )


def test_one_query_row_equals_the_full_matrix_row():
    theta, phi, _, w_f = make((2, 9, 12, 4, 4))
    for pairwise in pw.PAIRWISE:
        full = pw.affinity(pairwise, theta, phi, w_f=w_f)
        row = pw.affinity(pairwise, theta[:, 4:5], phi, w_f=w_f)
        close(row[:, 0], full[:, 4], torch.float64)


def test_concatenation_scalars_split_eq5():
    theta, phi, _, w_f = make((2, 5, 6, 3, 2))
    a, b = pw.concatenation_scalars(theta, phi, w_f.reshape(1, 6, 1, 1))  # a conv weight
    assert a.shape == (2, 5) and b.shape == (2, 6)
    pair = torch.cat([theta[1, 2], phi[1, 4]])
    close(a[1, 2] + b[1, 4], torch.dot(w_f, pair), torch.float64)


# ------------------------------------------------------------------ efficient forms vs naive


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize(("pairwise", "opts"), FORMS, ids=FORM_IDS)
def test_efficient_equals_naive(pairwise, opts, shape, dtype):
    theta, phi, g, w_f = make(shape, dtype, seed=sum(shape))
    scales = [False] if pairwise == "concatenation" else [False, True]
    for scale in scales:
        y = efficient(pairwise, opts, theta, phi, g, w_f, scale=scale)
        naive = pw.aggregate_naive(pairwise, theta, phi, g, w_f=w_f, scale=scale)
        assert y.shape == naive.shape == shape[:2] + shape[4:]
        assert y.dtype == dtype
        close(y, naive, dtype)


def test_both_concatenation_methods_agree_with_many_chunks():
    theta, phi, g, w_f = make((2, 50, 40, 6, 5), torch.float32, seed=3)
    y_sorted = pw.concatenation_aggregate(theta, phi, g, w_f, method="sorted")
    for chunk in (1, 7, 50, 1000):
        y_chunked = pw.concatenation_aggregate(
            theta, phi, g, w_f, method="chunked", chunk_size=chunk
        )
        close(y_chunked, y_sorted, torch.float32)
    assert torch.equal(y_sorted, pw.aggregate("concatenation", theta, phi, g, w_f=w_f))


def test_concatenation_all_pairs_inactive_gives_zero():
    theta, phi, g, _ = make((1, 4, 5, 2, 3))
    w_f = -torch.ones(4, dtype=torch.float64)
    theta, phi = theta.abs(), phi.abs()  # a_i + b_j < 0 for every pair: ReLU kills all
    for method in ("sorted", "chunked"):
        y = pw.concatenation_aggregate(theta, phi, g, w_f, method=method)
        assert torch.equal(y, torch.zeros(1, 4, 3, dtype=torch.float64))


@pytest.mark.parametrize(("pairwise", "opts"), FORMS, ids=FORM_IDS)
def test_gradcheck(pairwise, opts):
    theta, phi, g, w_f = make((2, 4, 5, 3, 2), requires_grad=True, seed=11)
    inputs = (theta, phi, g, w_f) if pairwise == "concatenation" else (theta, phi, g)

    def fn(*args):
        return efficient(pairwise, opts, *args, *([None] * (4 - len(args))))

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8)


@pytest.mark.parametrize(("pairwise", "opts"), FORMS, ids=FORM_IDS)
def test_gradients_of_efficient_equal_naive(pairwise, opts):
    theta, phi, g, w_f = make((2, 9, 7, 4, 3), requires_grad=True, seed=5)
    inputs = (theta, phi, g, w_f) if pairwise == "concatenation" else (theta, phi, g)
    upstream = torch.randn(2, 9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y_eff = efficient(pairwise, opts, theta, phi, g, w_f, scale=pairwise != "concatenation")
    y_naive = pw.aggregate_naive(
        pairwise, theta, phi, g, w_f=w_f, scale=pairwise != "concatenation"
    )
    grads_eff = torch.autograd.grad(y_eff, inputs, upstream)
    grads_naive = torch.autograd.grad(y_naive, inputs, upstream)
    for ge, gn in zip(grads_eff, grads_naive, strict=True):
        close(ge, gn, torch.float64)


# ------------------------------------------------------------------ the N x M memory trap


def test_softmax_aggregate_takes_the_fused_kernel_even_when_ck_differs_from_cv():
    # With only the flash kernel allowed, SDPA raises instead of falling back to N x M.
    theta, phi, g, _ = make((2, 64, 48, 8, 5), torch.float32)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        y = pw.softmax_aggregate(theta, phi, g)
        close(y, pw.aggregate_naive("embedded_gaussian", theta, phi, g), torch.float32)
        # the trap: the same call on 3-D tokens has no fused kernel (and by default would
        # silently build the N x M matrix)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # SDPA explains why it refuses
            with pytest.raises(RuntimeError, match="No available kernel"):
                F.scaled_dot_product_attention(theta, phi, phi)
            with pytest.raises(RuntimeError, match="No available kernel"):  # Cv != Ck, 4-D
                F.scaled_dot_product_attention(theta[:, None], phi[:, None], g[:, None])
            strided = [t.mT.contiguous().mT[:, None] for t in (theta, phi, phi)]  # same values
            with pytest.raises(RuntimeError, match="No available kernel"):  # transposed layout
                F.scaled_dot_product_attention(*strided)


def _peak_rss_above_start(fn) -> int:
    """Bytes by which the resident set's high-water mark rose while fn ran (Linux only)."""
    status = Path("/proc/self/status")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS

    def read(key):
        return int(re.search(rf"{key}:\s+(\d+) kB", status.read_text()).group(1)) * 1024

    start = read("VmRSS")
    fn()
    return read("VmHWM") - start


def _can_reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _can_reset_peak_rss(), reason="needs Linux /proc/self/clear_refs")
def test_efficient_forms_never_hold_n_by_m():
    n = m = 4096  # one float32 N x M matrix: 64 MiB
    theta, phi, g, w_f = make((1, n, m, 16, 8), torch.float32)
    nm_bytes = n * m * 4
    naive = _peak_rss_above_start(lambda: pw.aggregate_naive("embedded_gaussian", theta, phi, g))
    assert naive >= nm_bytes  # the naive form holds (at least) the N x M matrix
    for pairwise in pw.PAIRWISE:
        pw.aggregate(pairwise, theta, phi, g, w_f=w_f)  # warm-up: first-call allocations
        used = _peak_rss_above_start(lambda p=pairwise: pw.aggregate(p, theta, phi, g, w_f=w_f))
        assert used < nm_bytes / 8, f"{pairwise}: peak +{used / 2**20:.1f} MiB"


# ------------------------------------------------------------------ bad input


def test_unknown_pairwise_lists_the_valid_names():
    theta, phi, g, _ = make((1, 3, 3, 2, 2))
    for fn in (
        lambda: pw.check_pairwise("softmax"),
        lambda: pw.affinity("softmax", theta, phi),
        lambda: pw.aggregate("softmax", theta, phi, g),
    ):
        with pytest.raises(ValueError, match="pairwise") as err:
            fn()
        for name in pw.PAIRWISE:
            assert name in str(err.value)
        assert "'softmax'" in str(err.value)


@pytest.mark.parametrize(
    ("shapes", "error", "match"),
    [
        (((1, 3, 2), (1, 4, 3), (1, 4, 2)), ValueError, "phi.*Ck=2"),
        (((2, 3, 2), (1, 4, 2), (1, 4, 2)), ValueError, "phi.*B=2"),
        (((1, 3, 2), (1, 4, 2), (1, 5, 2)), ValueError, "g.*M=4"),
        (((3, 2), (1, 4, 2), (1, 4, 2)), ValueError, "theta.*3 dims"),
        (((1, 3, 2), (1, 1, 4, 2), (1, 4, 2)), ValueError, "phi.*3 dims"),
        (((1, 3, 2), (1, 4, 2), (4, 2)), ValueError, "g.*3 dims"),
        (("list", (1, 4, 2), (1, 4, 2)), TypeError, "theta.*Tensor.*list"),
        (((1, 3, 2), "str", (1, 4, 2)), TypeError, "phi.*Tensor.*str"),
        (((1, 3, 2), (1, 0, 2), (1, 0, 2)), ValueError, "phi.*no empty"),
        (((1, 3, 2), "float64", (1, 4, 2)), ValueError, "phi.*dtype.*float32.*float64"),
    ],
)
def test_bad_tokens(shapes, error, match):
    special = {"list": [[0.0]], "str": "phi", "float64": torch.zeros(1, 4, 2, dtype=torch.float64)}
    theta, phi, g = (special[s] if isinstance(s, str) else torch.zeros(s) for s in shapes)
    w_f = torch.zeros(4)
    for pairwise in pw.PAIRWISE:
        with pytest.raises(error, match=match):
            pw.aggregate(pairwise, theta, phi, g, w_f=w_f)
        with pytest.raises(error, match=match):
            pw.aggregate_naive(pairwise, theta, phi, g, w_f=w_f)
        if not match.startswith("g"):  # affinity takes no g
            with pytest.raises(error, match=match):
                pw.affinity(pairwise, theta, phi, w_f=w_f)


def test_concatenation_needs_a_right_sized_w_f():
    theta, phi, g, _ = make((1, 3, 4, 2, 2))
    with pytest.raises(ValueError, match="w_f.*None"):
        pw.aggregate("concatenation", theta, phi, g)
    with pytest.raises(ValueError, match="w_f.*None"):
        pw.affinity("concatenation", theta, phi)
    with pytest.raises(ValueError, match=r"w_f: expected 2 \* Ck = 4.*\(5,\)"):
        pw.aggregate("concatenation", theta, phi, g, w_f=torch.zeros(5, dtype=torch.float64))
    with pytest.raises(TypeError, match="w_f.*Tensor.*list"):
        pw.concatenation_scalars(theta, phi, [0.0] * 4)


def test_scale_with_concatenation_is_an_error():
    theta, phi, g, w_f = make((1, 3, 4, 2, 2))
    with pytest.raises(ValueError, match="scale.*concatenation"):
        pw.aggregate("concatenation", theta, phi, g, w_f=w_f, scale=True)
    with pytest.raises(ValueError, match="scale.*concatenation"):
        pw.affinity("concatenation", theta, phi, w_f=w_f, scale=True)


def test_bad_method_and_chunk_size():
    theta, phi, g, w_f = make((1, 3, 4, 2, 2))
    with pytest.raises(ValueError, match="method.*'sorted'.*'chunked'.*'fast'"):
        pw.concatenation_aggregate(theta, phi, g, w_f, method="fast")
    with pytest.raises(ValueError, match="chunk_size.*>= 1.*0"):
        pw.concatenation_aggregate(theta, phi, g, w_f, method="chunked", chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size.*integer.*float"):
        pw.concatenation_aggregate(theta, phi, g, w_f, method="chunked", chunk_size=2.5)
