"""Tests of nlviz.nlm: the vectorised filter against its definition, the weights of one
pixel, agreement with scikit-image, dtypes, volumes (T, H, W), and bad input.

The filter computes distances and weights in float32 (sums in float64), so it matches the
float64 definition to 1e-6 (measured: below 2e-7), not to rounding."""

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
ATOL = 1e-6  # float32 distances against the float64 definition


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
    np.testing.assert_allclose(fast, slow, rtol=0, atol=ATOL)  # every pixel, borders included


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("channel_axis", [-1, 0])
def test_vectorised_equals_loop_colour(params, channel_axis):
    image = np.moveaxis(_test_image((12, 9, 3), seed=1), -1, channel_axis)
    fast = denoise_nl_means(image, *params, channel_axis=channel_axis)
    slow = nlm_loop(image, *params, channel_axis=channel_axis)
    assert fast.shape == image.shape
    np.testing.assert_allclose(fast, slow, rtol=0, atol=ATOL)


def test_colour_uses_one_weight_per_pair():
    # Three identical channels: the colour filter must equal the gray filter per channel
    # (the mean over channels of identical squared differences is the gray one).
    gray = _test_image((15, 14), seed=2)
    rgb = np.stack([gray] * 3, axis=-1)
    out = denoise_nl_means(rgb, 5, 4, 0.2, 0.05, channel_axis=-1)
    ref = denoise_nl_means(gray, 5, 4, 0.2, 0.05)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], ref, rtol=0, atol=ATOL)


def _reference_float64(image, patch_size, pd, h, sigma):
    """Eq. (1)-(2) in float64 by another route: every shift of the full window, 2-D slices."""
    H, W = image.shape
    r = patch_size // 2
    padded = np.pad(image, r, mode="reflect")
    num, den = image.copy(), np.ones_like(image)
    for dy in range(-pd, pd + 1):
        for dx in range(-pd, pd + 1):
            y0, y1, x0, x1 = max(0, -dy), min(H, H - dy), max(0, -dx), min(W, W - dx)
            if (dy, dx) == (0, 0) or y0 >= y1 or x0 >= x1:
                continue
            a = padded[y0 : y1 + 2 * r, x0 : x1 + 2 * r]
            b = padded[y0 + dy : y1 + dy + 2 * r, x0 + dx : x1 + dx + 2 * r]
            rows = sum(((a - b) ** 2)[q : q + y1 - y0] for q in range(patch_size))
            mean = sum(rows[:, q : q + x1 - x0] for q in range(patch_size)) / patch_size**2
            w = np.exp(-np.maximum(mean - 2 * sigma**2, 0) / h**2)
            num[y0:y1, x0:x1] += w * image[y0 + dy : y1 + dy, x0 + dx : x1 + dx]
            den[y0:y1, x0:x1] += w
    return num / den


@pytest.mark.parametrize("sigma, h_ratio", [(0.08, 0.8), (0.2, 0.6)])
def test_float32_weights_keep_float64_precision(sigma, h_ratio):
    # 529 shifts (patch 7, radius 11): float32 distances and weights, float64 sums. Measured
    # max error 5e-8 and 9e-8; summing the weights in float32 throughout gives 4e-7 and 8e-7.
    clean = img_as_float(data.camera())[100:228, 200:328]
    noisy = _noisy(clean, sigma, seed=20)
    out = denoise_nl_means(noisy, 7, 11, h_ratio * sigma, sigma)
    assert out.dtype == np.float64
    ref = _reference_float64(noisy, 7, 11, h_ratio * sigma, sigma)
    assert np.abs(out - ref).max() < 3e-7


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
        assert abs((w * image).sum() - out[q]) < ATOL
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
        np.testing.assert_allclose((w[..., None] * image).sum((0, 1)), out[q], rtol=0, atol=ATOL)


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
    np.testing.assert_allclose(out[y, x], image[y - 2 : y + 3, x - 2 : x + 3].mean(), atol=ATOL)


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


def test_any_float64_scale_and_offset():
    # The filter maps the image to [-1, 1] before its float32 steps: float64 images far outside
    # float32's range, or with a large offset, give the same result up to the same affine map.
    image = _test_image((12, 13), seed=21)
    ref = denoise_nl_means(image, 5, 3, 0.2, 0.05)
    for scale, offset in [(1e-200, 0.0), (1e200, 0.0), (1e-3, 1e3), (1.0, -1e6)]:
        out = denoise_nl_means(image * scale + offset, 5, 3, 0.2 * scale, 0.05 * scale)
        np.testing.assert_allclose((out - offset) / scale, ref, rtol=0, atol=ATOL)


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


# ----------------------------------------------------------------------------- volumes (T, H, W)


def _video(shape=(8, 32, 32), speed=2, side=8):
    """A bright square moving ``speed`` pixels per frame to the right over a striped half."""
    T, H, W = shape
    yy, xx = np.mgrid[:H, :W]
    clean = np.empty(shape)
    square = np.zeros(shape, bool)
    for t in range(T):
        clean[t] = 0.3 + 0.2 * np.sin(yy / 4.0) * (xx < W // 2)
        square[t, H // 3 : H // 3 + side, 4 + speed * t : 4 + speed * t + side] = True
    clean[square] = 0.9
    return clean, square


PARAMS_3D = [(3, 1, 0.3, 0.0), (3, 2, 0.2, 0.1), (1, 2, 0.5, 0.0), (5, 9, 0.4, 0.05)]


@pytest.mark.parametrize("params", PARAMS_3D)
def test_volume_equals_loop(params):
    volume = np.stack([_test_image((6, 7), seed=t) for t in range(4)])  # (T, H, W) = (4, 6, 7)
    fast = denoise_nl_means(volume, *params)
    assert fast.shape == volume.shape and fast.dtype == np.float64
    np.testing.assert_allclose(fast, nlm_loop(volume, *params), rtol=0, atol=ATOL)


@pytest.mark.parametrize("channel_axis", [-1, 0, 1])
def test_colour_volume_equals_loop(channel_axis):
    volume = np.stack([_test_image((5, 6, 2), seed=t) for t in range(3)])  # (3, 5, 6, 2)
    volume = np.moveaxis(volume, -1, channel_axis)
    fast = denoise_nl_means(volume, 3, 2, 0.2, 0.05, channel_axis=channel_axis)
    slow = nlm_loop(volume, 3, 2, 0.2, 0.05, channel_axis=channel_axis)
    assert fast.shape == volume.shape
    np.testing.assert_allclose(fast, slow, rtol=0, atol=ATOL)


@pytest.mark.parametrize("params", PARAMS)
def test_one_frame_volume_is_the_image(params):
    # A (1, H, W) volume: every cubic patch is the square patch repeated, so the same means.
    image = _test_image((13, 17), seed=10)
    out = denoise_nl_means(image[None], *params)
    np.testing.assert_allclose(out[0], denoise_nl_means(image, *params), rtol=0, atol=ATOL)
    w3 = nlm_weights(image[None], (0, 6, 5), *params)
    np.testing.assert_allclose(w3[0], nlm_weights(image, (6, 5), *params), rtol=0, atol=1e-12)
    rgb = _test_image((9, 8, 3), seed=11)
    out = denoise_nl_means(rgb[None], *params, channel_axis=-1)
    ref = denoise_nl_means(rgb, *params, channel_axis=-1)
    np.testing.assert_allclose(out[0], ref, rtol=0, atol=ATOL)


def test_volume_denoising_uses_time():
    # Search over space and time (Buades, Coll, Morel 2008) finds more matches than frame by
    # frame with the same parameters (measured: 33.1 dB against 28.6 dB, from 20.0 dB), and
    # skimage's 3-D mode does as well (33.2 dB).
    clean, _ = _video((8, 48, 48))
    noisy = _noisy(clean, 0.1, seed=12)
    kw = dict(patch_size=3, patch_distance=2, h=0.08, sigma=0.1)
    out = denoise_nl_means(noisy, **kw)
    by_frame = np.stack([denoise_nl_means(frame, **kw) for frame in noisy])
    sk = sk_denoise_nl_means(noisy, fast_mode=True, **kw)
    p_noisy, p_out, p_frame, p_sk = (
        psnr(clean, x, data_range=1) for x in (noisy, out, by_frame, sk)
    )
    assert p_out > p_noisy + 8 and p_sk > p_noisy + 8
    assert p_out > p_frame + 2
    assert abs(p_out - p_sk) < 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_volume_dtype_and_tiny_h(dtype):
    volume = _noisy(_video((5, 12, 14))[0], 0.1, seed=13).astype(dtype)
    assert denoise_nl_means(volume, 3, 2, 0.1, 0.1).dtype == dtype
    for h in (1e-6, 1e-30):
        out = denoise_nl_means(volume, 3, 2, h=h)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, volume)
        w = nlm_weights(volume, (2, 3, 4), 3, 2, h=h)
        assert w[2, 3, 4] == 1.0 and w.sum() == 1.0


def test_volume_float32_and_float64_agree():
    clean = _video((6, 24, 24))[0]
    noisy = _noisy(clean, 0.08, seed=14)
    out64 = denoise_nl_means(noisy, 3, 3, 0.064, 0.08)
    out32 = denoise_nl_means(noisy.astype(np.float32), 3, 3, 0.064, 0.08)
    assert np.abs(out64 - out32).max() < 1e-5
    assert psnr(clean, out64, data_range=1) > psnr(clean, noisy, data_range=1) + 8


VOXELS = [(2, 7, 8), (0, 7, 8), (4, 0, 8), (2, 13, 16), (0, 0, 0), (4, 13, 16), (4, 0, 16)]


@pytest.mark.parametrize("params", PARAMS_3D)
def test_weights_reproduce_filter_volume(params):
    volume = _noisy(_video((5, 14, 17))[0], 0.1, seed=15)
    out = denoise_nl_means(volume, *params)
    pd = params[1]
    for q in VOXELS:  # interior, faces, edges and corners
        w = nlm_weights(volume, q, *params)
        assert w.shape == volume.shape and w.dtype == np.float64
        assert abs(w.sum() - 1) < 1e-12 and (w >= 0).all()
        assert abs((w * volume).sum() - out[q]) < ATOL
        window = tuple(slice(max(0, a - pd), a + pd + 1) for a in q)
        outside = np.ones(volume.shape, bool)
        outside[window] = False
        assert (w[outside] == 0).all() and w[q] == w.max()


def test_weights_reproduce_filter_colour_volume():
    volume = np.stack([_test_image((9, 10, 3), seed=t) for t in range(4)])  # (4, 9, 10, 3)
    out = denoise_nl_means(volume, 3, 2, 0.15, 0.05, channel_axis=-1)
    for q in [(1, 4, 5), (0, 0, 0), (3, 8, 9)]:
        w = nlm_weights(volume, q, 3, 2, 0.15, 0.05, channel_axis=-1)
        assert w.shape == volume.shape[:3] and abs(w.sum() - 1) < 1e-12
        np.testing.assert_allclose((w[..., None] * volume).sum((0, 1, 2)), out[q], atol=ATOL)


def test_weights_follow_the_moving_square():
    # A query on the square, searching all 8 frames: in every frame with weight, the weight
    # lies on the square and its centre moves with it. Frames within patch_size // 2 of the
    # first or last frame get none: the reflected padding reverses the motion there.
    clean, square = _video((8, 32, 32), speed=2, side=6)
    video = _noisy(clean, 0.05, seed=16)
    q = (3, 13, 12)  # frame 3, inside the square (columns 10 to 15)
    w = nlm_weights(video, q, patch_size=3, patch_distance=7, h=0.05, sigma=0.05)
    assert w[square].sum() > 0.99
    per_frame = w.sum((1, 2))
    assert per_frame[[0, 7]].max() < 0.01 and per_frame[1:7].min() > 0.1
    for t in range(1, 7):
        centre = (w[t].sum(0) * np.arange(32)).sum() / per_frame[t]
        assert abs(centre - (4 + 2 * t + 2.5)) < 1.5


def test_patch_distance_beyond_the_image_is_clipped():
    volume = _test_image((6, 7), seed=17)[None].repeat(3, axis=0)
    np.testing.assert_array_equal(
        denoise_nl_means(volume, 3, 10**9, 0.2), denoise_nl_means(volume, 3, 6, 0.2)
    )
    assert nlm_weights(volume, (1, 2, 3), 3, 10**9, 0.2).min() > 0  # every voxel


# ----------------------------------------------------------------------------- bad input

GOOD = np.zeros((8, 9))
RGB = np.zeros((8, 9, 3))
VOLUME = np.zeros((4, 8, 9))
BAD = [
    # (image, kwargs, error, argument named in the message)
    (np.zeros(8), {}, ValueError, "image"),
    (np.zeros((2, 2, 8, 9, 3)), {"channel_axis": -1}, ValueError, "image"),  # 5-D
    (np.zeros((2, 8, 9, 3)), {}, ValueError, "image"),  # 4-D without channel_axis
    (np.zeros((0, 9)), {}, ValueError, "image"),
    (np.zeros((4, 0, 9)), {}, ValueError, "image"),
    (np.zeros((2, 8, 9, 0)), {"channel_axis": -1}, ValueError, "image"),
    (np.where(np.eye(8, 9) > 0, np.nan, 0.0), {}, ValueError, "image"),
    (np.where(np.eye(8, 9) > 0, np.inf, 0.0), {}, ValueError, "image"),
    (np.where(np.ones((4, 8, 9)) * np.eye(8, 9) > 0, -np.inf, 0.0), {}, ValueError, "image"),
    (np.zeros((8, 9), complex), {}, TypeError, "image"),
    (np.full((8, 9), "a"), {}, TypeError, "image"),
    (np.zeros((8, 9), object), {}, TypeError, "image"),
    (np.zeros((8, 9), bool), {}, TypeError, "image"),
    (np.zeros((8, 9), "datetime64[s]"), {}, TypeError, "image"),
    (GOOD, {"patch_size": 4}, ValueError, "patch_size"),
    (GOOD, {"patch_size": 0}, ValueError, "patch_size"),
    (GOOD, {"patch_size": -3}, ValueError, "patch_size"),
    (GOOD, {"patch_size": 7.0}, TypeError, "patch_size"),
    (GOOD, {"patch_size": True}, TypeError, "patch_size"),
    (GOOD, {"patch_size": "7"}, TypeError, "patch_size"),
    (GOOD, {"patch_size": 10**9 + 1}, ValueError, "patch_size"),  # absurd: 2 * 9 + 1 at most
    (GOOD, {"patch_size": 21}, ValueError, "patch_size"),
    (VOLUME, {"patch_size": 2}, ValueError, "patch_size"),
    (GOOD, {"patch_distance": 0}, ValueError, "patch_distance"),
    (GOOD, {"patch_distance": -2}, ValueError, "patch_distance"),
    (GOOD, {"patch_distance": 2.5}, TypeError, "patch_distance"),
    (GOOD, {"patch_distance": True}, TypeError, "patch_distance"),
    (VOLUME, {"patch_distance": 0}, ValueError, "patch_distance"),
    (GOOD, {"h": 0.0}, ValueError, "h"),
    (GOOD, {"h": -0.1}, ValueError, "h"),
    (GOOD, {"h": float("nan")}, ValueError, "h"),
    (GOOD, {"h": float("inf")}, ValueError, "h"),
    (GOOD, {"h": "0.1"}, TypeError, "h"),
    (GOOD, {"h": True}, TypeError, "h"),
    (VOLUME, {"h": -1.0}, ValueError, "h"),
    (GOOD, {"sigma": -0.01}, ValueError, "sigma"),
    (GOOD, {"sigma": float("inf")}, ValueError, "sigma"),
    (GOOD, {"sigma": float("nan")}, ValueError, "sigma"),
    (GOOD, {"sigma": None}, TypeError, "sigma"),
    (VOLUME, {"sigma": -1.0}, ValueError, "sigma"),
    (GOOD, {"channel_axis": -1}, ValueError, "channel_axis"),  # 2-D image
    (RGB, {"channel_axis": 3}, ValueError, "channel_axis"),
    (RGB, {"channel_axis": -4}, ValueError, "channel_axis"),
    (np.zeros((2, 8, 9, 3)), {"channel_axis": 4}, ValueError, "channel_axis"),
    (RGB, {"channel_axis": "last"}, TypeError, "channel_axis"),
    (RGB, {"channel_axis": 2.0}, TypeError, "channel_axis"),
    (RGB, {"channel_axis": True}, TypeError, "channel_axis"),
]


@pytest.mark.parametrize("func", [denoise_nl_means, nlm_loop, nlm_weights])
@pytest.mark.parametrize("image, kwargs, error, name", BAD)
def test_bad_input_names_the_argument(func, image, kwargs, error, name):
    spatial = image.ndim - (kwargs.get("channel_axis") is not None)
    args = (image, (0,) * spatial) if func is nlm_weights else (image,)
    with pytest.raises(error, match=rf"^{name}: expected ") as caught:
        func(*args, **kwargs)
    assert "got" in str(caught.value)  # what came


@pytest.mark.parametrize(
    "query, error",
    [
        ((8, 0), ValueError),
        ((0, 9), ValueError),
        ((-1, 0), ValueError),
        ((3, -2), ValueError),
        ((1.0, 2), TypeError),
        ((1, 2, 3), (TypeError, ValueError)),  # wrong length: ValueError since utils.check_query
        (5, TypeError),
        ((True, 2), TypeError),
    ],
)
def test_bad_query(query, error):
    with pytest.raises(error, match=r"^query:"):
        nlm_weights(GOOD, query)


@pytest.mark.parametrize(
    "query, error",
    [
        ((4, 0, 0), ValueError),
        ((0, 8, 0), ValueError),
        ((0, 0, 9), ValueError),
        ((-1, 0, 0), ValueError),
        ((0, 0), (TypeError, ValueError)),  # an image query for a volume
        ((0, 0, 0, 0), (TypeError, ValueError)),
        ((0.0, 1, 2), TypeError),
        ((0, 1, np.float64(2)), TypeError),
        ((0, True, 2), TypeError),
        ("012", TypeError),
        (None, TypeError),
    ],
)
def test_bad_query_in_a_volume(query, error):
    with pytest.raises(error, match=r"^query: expected .* got"):
        nlm_weights(VOLUME, query)


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
    for fn in (nlm.box_sum_slices, nlm.shift_weights, nlm.nlm_shifts):
        assert any(inspect.getsource(fn).rstrip() in source for source in sources), fn.__name__
