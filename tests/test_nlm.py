"""Tests of nlviz.nlm: the vectorised filter against its definition, the weights of one
pixel, agreement with scikit-image, dtypes, and bad input."""

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from skimage import data, img_as_float
from skimage.metrics import peak_signal_noise_ratio as psnr
from skimage.restoration import denoise_nl_means as sk_denoise_nl_means

from nlviz import nlm
from nlviz.nlm import denoise_nl_means, nlm_loop, nlm_weights

# (patch_size, patch_distance, h, sigma): patch 1 and a window larger than the image too.
PARAMS = [(3, 2, 0.3, 0.0), (5, 4, 0.2, 0.1), (1, 3, 0.5, 0.0), (7, 20, 0.4, 0.05)]


def _test_image(shape, seed=0):
    """A smooth ramp with an edge plus noise: patches that are alike and unalike."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    base = 0.3 + 0.4 * (xx > shape[1] // 2) + 0.01 * yy
    if len(shape) == 3:
        base = base[..., None] * np.linspace(0.6, 1.0, shape[2])
    return base + 0.1 * rng.standard_normal(shape)


def _noisy(clean, sigma, seed=0):
    return clean + sigma * np.random.default_rng(seed).standard_normal(clean.shape)


# ----------------------------------------------------------------------------- the definition


@pytest.mark.parametrize("params", PARAMS)
def test_vectorised_equals_loop_gray(params):
    image = _test_image((13, 17))
    fast = denoise_nl_means(image, *params)
    slow = nlm_loop(image, *params)
    assert fast.shape == image.shape
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-10)  # every pixel, borders included


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("channel_axis", [-1, 0])
def test_vectorised_equals_loop_colour(params, channel_axis):
    image = np.moveaxis(_test_image((12, 9, 3), seed=1), -1, channel_axis)
    fast = denoise_nl_means(image, *params, channel_axis=channel_axis)
    slow = nlm_loop(image, *params, channel_axis=channel_axis)
    assert fast.shape == image.shape
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-10)


def test_colour_uses_one_weight_per_pair():
    # Three identical channels: the colour filter must equal the gray filter per channel
    # (the mean over channels of identical squared differences is the gray one).
    gray = _test_image((15, 14), seed=2)
    rgb = np.stack([gray] * 3, axis=-1)
    out = denoise_nl_means(rgb, 5, 4, 0.2, 0.05, channel_axis=-1)
    ref = denoise_nl_means(gray, 5, 4, 0.2, 0.05)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], ref, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- one pixel's weights

QUERIES = [(8, 9), (0, 9), (8, 0), (16, 20), (0, 0), (16, 0), (0, 20), (16, 20)]


@pytest.mark.parametrize("params", PARAMS)
def test_weights_reproduce_filter_gray(params):
    image = _test_image((17, 21), seed=3)
    out = denoise_nl_means(image, *params)
    ps, pd = params[0], params[1]
    for q in QUERIES:  # interior, edges and corners
        w = nlm_weights(image, q, *params)
        assert w.shape == image.shape and w.dtype == np.float64
        assert abs(w.sum() - 1) < 1e-12
        assert (w >= 0).all()
        assert abs((w * image).sum() - out[q]) < 1e-10
        # zero outside the (clipped) search window, the query's own weight is the largest
        outside = np.ones(image.shape, bool)
        outside[max(0, q[0] - pd) : q[0] + pd + 1, max(0, q[1] - pd) : q[1] + pd + 1] = False
        assert (w[outside] == 0).all()
        assert w[q] == w.max()
        if ps > 1:  # patch 1 with a tiny window can give ties, not a check on weights
            assert (w[~outside] > 0).all()


def test_weights_reproduce_filter_colour():
    image = _test_image((14, 11, 3), seed=4)
    out = denoise_nl_means(image, 5, 3, 0.15, 0.05, channel_axis=-1)
    for q in [(7, 5), (0, 0), (13, 10), (0, 6)]:
        w = nlm_weights(image, q, 5, 3, 0.15, 0.05, channel_axis=-1)
        assert w.shape == image.shape[:2]
        assert abs(w.sum() - 1) < 1e-12
        np.testing.assert_allclose((w[..., None] * image).sum((0, 1)), out[q], rtol=0, atol=1e-10)


def test_weights_reproduce_filter_float32():
    # The filter computes in float32; the weights are float64 from the same float32 values.
    clean = img_as_float(data.camera())[200:264, 200:264]
    image = _noisy(clean, 0.08).astype(np.float32)
    out = denoise_nl_means(image, 7, 11, 0.064, 0.08)
    assert out.dtype == np.float32
    for q in [(32, 32), (0, 0), (63, 17), (5, 63)]:
        w = nlm_weights(image, q, 7, 11, 0.064, 0.08)
        assert abs(w.sum() - 1) < 1e-12
        assert abs((w * image.astype(np.float64)).sum() - out[q]) < 1e-6


# ----------------------------------------------------------------------------- scikit-image


def _skimage_fast_convention(image, s, d, h, sigma):
    """scikit-image's fast mode as its Cython code computes it (checked with 0.26), as a loop.

    Three differences from nlviz: the image is reflect-padded by s // 2 + d + 1 and the
    search visits padded positions too; the squared differences are summed over the
    (s - 1) x (s - 1) window of rows and columns (c - s // 2, c + s // 2] (an integral
    image read at c +- s // 2) and divided by s * s; pairs with distance > 5 are skipped.
    (Its exp is an approximation, which this loop does not copy.)
    """
    r = s // 2
    pad = r + d + 1
    P = np.pad(image, pad, mode="reflect")
    out = np.empty_like(image)
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            cy, cx = y + pad, x + pad
            a = P[cy - r + 1 : cy + r + 1, cx - r + 1 : cx + r + 1]
            num = den = 0.0
            for ty in range(-d, d + 1):
                for tx in range(-d, d + 1):
                    b = P[cy + ty - r + 1 : cy + ty + r + 1, cx + tx - r + 1 : cx + tx + r + 1]
                    dist = max(((a - b) ** 2 - 2 * sigma**2).sum(), 0.0) / (s * s * h * h)
                    if dist <= 5.0:
                        w = np.exp(-dist)
                        num += w * P[cy + ty, cx + tx]
                        den += w
            out[y, x] = num / den
    return out


def test_skimage_conventions_explain_the_difference():
    # Pins down why nlviz and skimage differ: with skimage's window and padding, a plain
    # loop reproduces skimage up to its approximate exp (measured: mean 2e-4, max 1e-3),
    # ten times closer than nlviz's filter is to it.
    image = _test_image((20, 24), seed=5)
    sk = sk_denoise_nl_means(image, 5, 3, h=0.2, sigma=0.05, fast_mode=True)
    emulated = _skimage_fast_convention(image, 5, 3, 0.2, 0.05)
    ours = denoise_nl_means(image, 5, 3, 0.2, 0.05)
    assert np.abs(emulated - sk).mean() < 5e-4
    assert np.abs(emulated - sk).max() < 3e-3
    assert np.abs(ours - sk).mean() > 10 * np.abs(emulated - sk).mean()


CASES = {
    "camera": (img_as_float(data.camera())[100:228, 200:328], 0.1, None),
    "brick": (img_as_float(data.brick())[:128, :128], 0.05, None),
    "astronaut": (img_as_float(data.astronaut())[:96, 150:246], 0.1, -1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_agrees_with_skimage_fast_mode(name):
    # Same parameters, h = 0.8 sigma (skimage's advice for fast mode). The two filters
    # are not the same function (see the test above), so the tolerance is the measured
    # spread on these images and noise levels: mean |diff| 3e-3 .. 7e-3, PSNR
    # -0.05 .. +0.4 dB. Both must denoise well.
    clean, sigma, channel_axis = CASES[name]
    noisy = _noisy(clean, sigma, seed=6)
    kw = dict(patch_size=7, patch_distance=5, h=0.8 * sigma, sigma=sigma, channel_axis=channel_axis)
    ours = denoise_nl_means(noisy, **kw)
    sk = sk_denoise_nl_means(noisy, fast_mode=True, **kw)
    p_noisy, p_ours, p_sk = (psnr(clean, x, data_range=1) for x in (noisy, ours, sk))
    assert np.abs(ours - sk).mean() < 1e-2
    assert abs(p_ours - p_sk) < 0.5
    assert p_ours > p_noisy + 4 and p_sk > p_noisy + 4


# ----------------------------------------------------------------------------- limits, dtypes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiny_h_returns_the_input(dtype):
    image = _test_image((16, 18), seed=7).astype(dtype)
    for h in (1e-6, 1e-30):  # 1 / h**2 overflows float32 for the second
        out = denoise_nl_means(image, 5, 4, h=h)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, image)
        w = nlm_weights(image, (3, 4), 5, 4, h=h)
        assert w[3, 4] == 1.0 and w.sum() == 1.0


def test_huge_h_is_the_window_mean():
    image = _test_image((11, 12), seed=8)
    out = denoise_nl_means(image, 3, 2, h=1e6)
    y, x = 5, 6
    np.testing.assert_allclose(out[y, x], image[y - 2 : y + 3, x - 2 : x + 3].mean(), atol=1e-9)


def test_constant_image_is_unchanged():
    image = np.full((10, 13), 0.25)
    np.testing.assert_allclose(denoise_nl_means(image, 5, 3, 0.1), image, rtol=0, atol=1e-15)


def test_float32_and_float64_agree():
    clean = img_as_float(data.camera())[:96, :96]
    noisy = _noisy(clean, 0.08)
    out64 = denoise_nl_means(noisy, 7, 6, 0.064, 0.08)
    out32 = denoise_nl_means(noisy.astype(np.float32), 7, 6, 0.064, 0.08)
    assert out64.dtype == np.float64 and out32.dtype == np.float32
    assert np.abs(out64 - out32).max() < 1e-5
    assert psnr(clean, out64, data_range=1) > psnr(clean, noisy, data_range=1) + 4


def test_integer_and_float16_input():
    image = data.camera()[:40, :40]
    out = denoise_nl_means(image, 5, 3, 0.1)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, denoise_nl_means(img_as_float(image), 5, 3, 0.1))
    half = denoise_nl_means(img_as_float(image).astype(np.float16), 5, 3, 0.1)
    assert half.dtype == np.float32


def test_input_is_not_modified():
    image = _test_image((12, 12), seed=9)
    before = image.copy()
    denoise_nl_means(image, 5, 3, 0.1, 0.05)
    nlm_weights(image, (2, 2), 5, 3, 0.1, 0.05)
    np.testing.assert_array_equal(image, before)


# ----------------------------------------------------------------------------- bad input

GOOD = np.zeros((8, 9))
RGB = np.zeros((8, 9, 3))
BAD = [
    # (image, kwargs, error, argument named in the message)
    (np.zeros(8), {}, ValueError, "image"),
    (np.zeros((2, 8, 9, 3)), {"channel_axis": -1}, ValueError, "image"),
    (np.zeros((2, 8, 9, 3)), {}, ValueError, "image"),
    (RGB, {}, ValueError, "image"),  # 3-D without channel_axis
    (np.zeros((0, 9)), {}, ValueError, "image"),
    (np.where(np.eye(8, 9) > 0, np.nan, 0.0), {}, ValueError, "image"),
    (np.where(np.eye(8, 9) > 0, np.inf, 0.0), {}, ValueError, "image"),
    (np.zeros((8, 9), complex), {}, TypeError, "image"),
    (np.full((8, 9), "a"), {}, TypeError, "image"),
    (np.zeros((8, 9), object), {}, TypeError, "image"),
    (GOOD, {"patch_size": 4}, ValueError, "patch_size"),
    (GOOD, {"patch_size": 0}, ValueError, "patch_size"),
    (GOOD, {"patch_size": -3}, ValueError, "patch_size"),
    (GOOD, {"patch_size": 7.0}, TypeError, "patch_size"),
    (GOOD, {"patch_distance": 0}, ValueError, "patch_distance"),
    (GOOD, {"patch_distance": -2}, ValueError, "patch_distance"),
    (GOOD, {"patch_distance": 2.5}, TypeError, "patch_distance"),
    (GOOD, {"h": 0.0}, ValueError, "h"),
    (GOOD, {"h": -0.1}, ValueError, "h"),
    (GOOD, {"h": float("nan")}, ValueError, "h"),
    (GOOD, {"h": "0.1"}, TypeError, "h"),
    (GOOD, {"sigma": -0.01}, ValueError, "sigma"),
    (GOOD, {"sigma": float("inf")}, ValueError, "sigma"),
    (GOOD, {"channel_axis": -1}, ValueError, "channel_axis"),  # 2-D image
    (RGB, {"channel_axis": 3}, ValueError, "channel_axis"),
    (RGB, {"channel_axis": "last"}, TypeError, "channel_axis"),
]


@pytest.mark.parametrize("func", [denoise_nl_means, nlm_loop, nlm_weights])
@pytest.mark.parametrize("image, kwargs, error, name", BAD)
def test_bad_input_names_the_argument(func, image, kwargs, error, name):
    args = (image, (0, 0)) if func is nlm_weights else (image,)
    with pytest.raises(error, match=rf"^{name}:"):
        func(*args, **kwargs)


@pytest.mark.parametrize(
    "query, error",
    [
        ((8, 0), ValueError),
        ((0, 9), ValueError),
        ((-1, 0), ValueError),
        ((3, -2), ValueError),
        ((1.0, 2), TypeError),
        ((1, 2, 3), TypeError),
        (5, TypeError),
        ((True, 2), TypeError),
    ],
)
def test_bad_query(query, error):
    with pytest.raises(error, match=r"^query:"):
        nlm_weights(GOOD, query)


def test_good_query_forms():
    image = _test_image((8, 9))
    ref = nlm_weights(image, (3, 4), 3, 2)
    for q in ([3, 4], np.array([3, 4]), (np.int64(3), np.int32(4))):
        np.testing.assert_array_equal(nlm_weights(image, q, 3, 2), ref)


# ----------------------------------------------------------------------------- notebook 01


def test_notebook_01_shows_the_code_nlviz_runs():
    # Notebook 01 builds the filter in the open and then imports it: the functions it shows
    # must be nlviz's own, character for character.
    path = Path(__file__).resolve().parents[1] / "notebooks" / "01_nonlocal_means.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    for fn in (nlm.box_sum_slices, nlm.nlm_shifts):
        assert any(inspect.getsource(fn).rstrip() in source for source in sources), fn.__name__
