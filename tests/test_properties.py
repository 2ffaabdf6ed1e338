"""Property-based tests (hypothesis) of the core invariants, over drawn sizes and values:

- non-local means: a pixel's weights (``nlm_weights``) are a distribution, and their mean of
  the image is that pixel of ``denoise_nl_means``;
- a new non-local block is the identity and keeps its input's shape (zero W_z, paper Eq. 6);
- each pairwise function's efficient aggregation equals the naive N x M form (Eq. 1-5).

The examples are derandomized (the same on every run and machine) and small, so the module
runs in seconds.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlviz import NonLocalBlock
from nlviz import pairwise as pw
from nlviz.nlm import denoise_nl_means, nlm_weights

FAST = settings(max_examples=25, deadline=None, derandomize=True, database=None)  # no files
odd = st.sampled_from([1, 3, 5])


@FAST
@given(
    size=st.tuples(st.integers(6, 14), st.integers(6, 14)),
    patch_size=odd,
    patch_distance=st.integers(1, 4),
    h=st.floats(0.05, 0.5),
    sigma=st.floats(0.0, 0.1),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_nlm_weights_are_a_distribution_that_gives_the_filtered_pixel(
    size, patch_size, patch_distance, h, sigma, seed, data
):
    image = np.random.default_rng(seed).random(size)
    query = (data.draw(st.integers(0, size[0] - 1)), data.draw(st.integers(0, size[1] - 1)))
    params = {"patch_size": patch_size, "patch_distance": patch_distance, "h": h, "sigma": sigma}
    w = nlm_weights(image, query, **params)
    assert w.shape == image.shape and (w >= 0).all()
    assert abs(w.sum() - 1) < 1e-9
    # denoise_nl_means computes its weights in float32 (nlviz.nlm's docstring): 1e-6 of [0, 1]
    assert abs((w * image).sum() - denoise_nl_means(image, **params)[query]) < 1e-6


@FAST
@given(
    pairwise=st.sampled_from(pw.PAIRWISE),
    dim=st.sampled_from([1, 2, 3]),
    channels=st.integers(2, 8),
    subsample=st.booleans(),
    batch=st.integers(1, 3),
    sides=st.lists(st.integers(2, 7), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_a_new_block_is_the_identity_and_keeps_the_shape(
    pairwise, dim, channels, subsample, batch, sides, seed
):
    torch.manual_seed(seed)
    block = NonLocalBlock(channels, pairwise=pairwise, dim=dim, subsample=subsample).eval()
    x = torch.randn(batch, channels, *sides[:dim])
    with torch.no_grad():
        z = block(x)
    assert z.shape == x.shape
    assert torch.equal(z, x)  # W_z's BatchNorm starts at zero: z = 0 + x exactly


@FAST
@given(
    pairwise=st.sampled_from(pw.PAIRWISE),
    shape=st.tuples(*(st.integers(1, top) for top in (2, 9, 9, 5, 5))),  # (B, N, M, Ck, Cv)
    scale=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_efficient_aggregation_equals_the_naive_form(pairwise, shape, scale, seed):
    b, n, m, ck, cv = shape
    gen = torch.Generator().manual_seed(seed)
    theta, phi, g = (torch.randn(*s, generator=gen, dtype=torch.float64)
                     for s in ((b, n, ck), (b, m, ck), (b, m, cv)))  # fmt: skip
    w_f = torch.randn(2 * ck, generator=gen, dtype=torch.float64)
    scale = scale and pairwise != "concatenation"  # no 1/sqrt(d) for concatenation
    y = pw.aggregate(pairwise, theta, phi, g, w_f=w_f, scale=scale)
    naive = pw.aggregate_naive(pairwise, theta, phi, g, w_f=w_f, scale=scale)
    assert y.shape == naive.shape == (b, n, cv)
    assert torch.allclose(y, naive, rtol=1e-9, atol=1e-9 * float(naive.abs().max().clamp(min=1)))
