"""Classic non-local means in NumPy, for images and volumes (notebook 01).

    NL[v](i) = sum_j w(i, j) v(j),   w(i, j) = exp(-d(i, j)) / Z(i),
    d(i, j) = max(mean((v(N_i) - v(N_j))**2) - 2 sigma**2, 0) / h**2,

j in i's search window (side 2 * patch_distance + 1), N_i the patch centred on i (side
``patch_size``: a square in an image (H, W), a cube in a volume (T, H, W)), the mean over patch and
channels, Z(i) the sum of i's weights: scikit-image's fast mode (3-D without ``channel_axis``: a
volume, searched in space and time). Borders, in all three: patches read from the reflection-padded
image, windows clipped. Precision: ``denoise_nl_means`` has float32 distances and weights, float64
sums (within ~2e-7 of float64, relative to the range); ``nlm_weights``, ``nlm_loop``: float64."""

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from skimage.util import img_as_float

from nlviz.utils import check_finite, check_int, check_query, check_real

__all__ = ["denoise_nl_means", "nlm_weights", "nlm_loop"]

FLUSH = 16  # float32 partial sums of this many shifts are added into the float64 sums


def _as_planes(image, channel_axis):
    """Check ``image``; return it as float planes (C, *S) and the function that undoes that."""
    arr, colour = np.asarray(image), channel_axis is not None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"image: expected floats or integers, got dtype {arr.dtype}")
    if colour:
        check_int("channel_axis", channel_axis)  # None or an integer
    if colour and arr.ndim < 3:
        raise ValueError(f"channel_axis: expected None for shape {arr.shape}, got {channel_axis}")
    if arr.ndim - colour not in (2, 3):
        shapes = "(H, W, C) or (T, H, W, C)" if colour else "(H, W) or (T, H, W) (or channel_axis)"
        raise ValueError(f"image: expected {shapes}, got shape {arr.shape}")
    if colour and not -arr.ndim <= channel_axis < arr.ndim:
        raise ValueError(f"channel_axis: expected an axis of {arr.shape}, got {channel_axis}")
    if arr.size == 0:
        raise ValueError(f"image: expected a non-empty array, got shape {arr.shape}")
    check_finite("image", arr)
    if arr.dtype.kind != "f":
        arr = img_as_float(arr)
    elif arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32 if arr.dtype.itemsize < 4 else np.float64)
    planes = np.moveaxis(arr, channel_axis, 0) if colour else arr[None]

    def unplane(out: np.ndarray) -> np.ndarray:
        return np.moveaxis(out, 0, channel_axis) if colour else out[0]

    return np.ascontiguousarray(planes), unplane


def _validate(image, channel_axis, patch_size, patch_distance, h, sigma):
    """All checks of the public functions: (planes, unplane, r, patch_distance, h, sigma)."""
    planes, unplane = _as_planes(image, channel_axis)
    limit = 2 * max(planes.shape[1:]) + 1  # larger patches only repeat reflections
    patch_size = check_int("patch_size", patch_size, minimum=1, maximum=limit, odd=True)
    patch_distance = check_int("patch_distance", patch_distance, minimum=1)
    h, sigma = check_real("h", h, minimum=0, strict=True), check_real("sigma", sigma, minimum=0)
    return planes, unplane, int(patch_size) // 2, patch_distance, h, sigma


def box_sum_slices(x, k: int, stride: int, n: int, out, pairs) -> np.ndarray:
    """out[m] = sum of x[m + q * stride], q = 0 .. k - 1, m < n, k odd: contiguous slices.

    First the sums of pairs, pairs[m] = x[m] + x[m + stride]; out adds (k - 1) / 2 of them
    and the last slice: (k + 1) / 2 additions of whole arrays instead of k - 1.
    """
    if k == 1:
        out[:] = x[:n]
        return out
    m = n + (k - 3) * stride
    np.add(x[:m], x[stride : stride + m], out=pairs[:m])
    np.add(pairs[:n], x[(k - 1) * stride : (k - 1) * stride + n], out=out)
    for q in range(2, k - 1, 2):
        out += pairs[q * stride : q * stride + n]
    return out


def shift_weights(p, n, o, k, strides, b, bufs) -> np.ndarray:
    """Unnormalised weights exp(-d(i, i + o)) of the flat positions i < n, float32 (n,).

    ``p`` (C, L) is the padded image, flat, scaled so the box sum of squared differences
    is mean / h**2; ``b`` is 2 sigma**2 / h**2; ``strides``: those of the padded layout,
    ``bufs`` four float32 work rows, the last all zeros; the result is a view into one.
    """
    m = n + (k - 1) * sum(strides)
    sqd, e = bufs[0, :m], bufs[1, :m]
    np.subtract(p[0, :m], p[0, o : o + m], out=sqd)  # 1. squared differences, channels
    np.square(sqd, out=sqd)
    for c in range(1, len(p)):
        np.subtract(p[c, :m], p[c, o : o + m], out=e)
        np.square(e, out=e)
        sqd += e
    x, i = sqd, 0
    for a, stride in enumerate(strides):  # 2. box sum over the patch, one axis at a time
        m, j = m - (k - 1) * stride, 1 + a % 2  # x in bufs[i], the sum to bufs[j]
        x, i = box_sum_slices(x, k, stride, m, bufs[j, :m], bufs[3 - i - j]), j
    # 3. -d = min((2 sigma^2 - mean) / h^2, 0), then exp(-d) (fmin of arrays is fast)
    np.fmin(np.subtract(b, x, out=x), bufs[3, :n], out=x)
    return np.exp(x, out=x)


def nlm_shifts(planes: np.ndarray, r: int, pd: int, h: float, sigma: float) -> np.ndarray:
    """Non-local means of float planes (C, *S), S (H, W) or (T, H, W) -> float64 (C, *S).

    ``r = patch_size // 2``: the patch radius, ``pd`` the search radius; no input checks.
    One pass per shift s computes the weights w(i, i + s) of all positions i at once
    (``shift_weights``); w is symmetric, so half of the shifts serve both i and i + s. All
    arrays are flat and share the padded image's layout, where a shift is an offset o.
    Pairs whose i or i + s leave the image get weight 0. The image maps to [-1, 1] for
    float32; the sums Z(i) and sum_j w(i, j) (v(j) - v(i)) run in float32 for ``FLUSH``
    shifts, then in float64; the estimate is v(i) + that sum / Z(i).
    """
    C, *S = planes.shape
    nd, k = len(S), 2 * r + 1
    Sp = [n + 2 * r for n in S]  # the padded shape, and its strides in elements:
    st = [int(np.prod(Sp[a + 1 :], dtype=np.int64)) for a in range(nd)]
    N = S[0] * st[0]  # position i = (t, y, x) is at sum(i * st) < N in every flat array
    inside = (slice(None), slice(None), *(slice(0, n) for n in S[1:]))
    lo, hi = float(planes.min()) / 2, float(planes.max()) / 2
    mid, half = lo + hi, (hi - lo) or 1.0
    K = k**nd * C  # values per patch; the gain is capped so that float32 sums stay finite
    gain = min(half / (h * math.sqrt(K)), math.sqrt(1e37 / (4.0 * K)))
    g_sigma = gain * (sigma / half)  # sigma in the units of p
    b = np.float32(min(2.0 * K * g_sigma * g_sigma, 1e38))  # 2 sigma^2 / h^2

    u, size = (planes - mid) / half, int(np.prod(Sp))  # u: the image in [-1, 1]
    p = np.zeros((C, size + st[0]), np.float32)  # a tail: slices never run past the end
    pad = [(0, 0)] + [(r, r)] * nd
    p[:, :size] = np.pad(u, pad, mode="reflect").reshape(C, -1) * gain
    v = np.zeros((C, N + st[0]), np.float32)  # u in the same layout
    v[:, :N].reshape(C, S[0], *Sp[1:])[inside] = u
    acc = np.zeros((C + 1, N + st[0]), np.float32)  # partial sums of w (v_j - v_i), of w
    total = np.zeros((C + 1, N))
    total[C] = 1.0  # the shift s = 0: weight exp(0) = 1 for itself
    bufs = np.zeros((4, N + (k - 1) * sum(st)), np.float32)

    ranges = [range(-min(pd, n - 1), min(pd, n - 1) + 1) for n in S]
    shifts = [s for s in itertools.product(*ranges) if s > (0,) * nd]  # s or -s, not both
    for count, s in enumerate(shifts, 1):
        o, n = int(np.dot(s, st)), (S[0] - s[0]) * st[0]  # i < n: i, i + s in axis 0
        w = shift_weights(p, n, o, k, st, b, bufs)
        wv = w.reshape(-1, *Sp[1:])
        for a in range(1, nd):  # the other axes: zero where i or i + s is outside
            wv[(*[slice(None)] * a, slice(0, max(0, -s[a])))] = 0
            wv[(*[slice(None)] * a, slice(min(S[a], S[a] - s[a]), None))] = 0
        t = bufs[0, :n]
        for c in range(C):  # i takes w (v_j - v_i), j = i + s takes w (v_i - v_j)
            np.multiply(np.subtract(v[c, o : o + n], v[c, :n], out=t), w, out=t)
            acc[c, :n] += t
            acc[c, o : o + n] -= t
        acc[C, :n] += w
        acc[C, o : o + n] += w
        if count % FLUSH == 0 or count == len(shifts):
            total += acc[:, :N]
            acc[:] = 0
    total = total.reshape(C + 1, S[0], *Sp[1:])[inside]
    return planes + half * (total[:C] / total[C])


def denoise_nl_means(image, patch_size=7, patch_distance=11, h=0.1, sigma=0.0,
                     channel_axis=None) -> np.ndarray:  # fmt: skip
    """Non-local means denoising of an image (H, W) or a volume (T, H, W), gray or colour.

    Parameters
    ----------
    image : array (H, W), (T, H, W), or either with a channel axis: (H, W, C), (T, H, W, C)
        Finite floats or integers (scaled as by ``skimage.img_as_float``). Without
        ``channel_axis`` a 3-D array is a volume: (H, W, 3) alone is H frames of 3 columns.
    patch_size : odd int, side of the patch (a square, or a cube for a volume).
    patch_distance : int >= 1, radius of the search window (side 2 * patch_distance + 1).
    h : float > 0, cut-off distance in grey levels.
    sigma : float >= 0, noise standard deviation (2 sigma**2 is taken off patch distances).
    channel_axis : None or int, the colour axis (one weight per pair, from all channels).

    Returns
    -------
    ndarray of the image's shape: float32 for float32 (and float16) input, else float64.

    Raises
    ------
    TypeError, ValueError
        On bad input; the message starts with the argument's name.
    """
    args = _validate(image, channel_axis, patch_size, patch_distance, h, sigma)
    planes, unplane, r, pd, h, sigma = args
    return unplane(nlm_shifts(planes, r, pd, h, sigma).astype(planes.dtype, copy=False))


def nlm_weights(image, query, patch_size=7, patch_distance=11, h=0.1, sigma=0.0,
                channel_axis=None) -> np.ndarray:  # fmt: skip
    """The weights w(i, j) that position ``query = i`` averages with, in float64.

    Parameters
    ----------
    image, patch_size, patch_distance, h, sigma, channel_axis : as in ``denoise_nl_means``.
    query : (y, x) for an image, (t, y, x) for a volume; integers inside the image.

    Returns
    -------
    ndarray (H, W) or (T, H, W), float64: sums to 1, zero outside the clipped window, and
    ``(w * image).sum()`` (colour, channels last: ``w[..., None] * image`` summed over all
    but the last axis) is ``denoise_nl_means(image, ...)[query]`` within 1e-6 (its float32).

    Raises
    ------
    TypeError, ValueError
        On bad input; the message starts with the argument's name.
    """
    weights_of = _weights_fn(image, patch_size, patch_distance, h, sigma, channel_axis)
    return weights_of(check_query(query, weights_of.shape))


def _weights_fn(image, patch_size=7, patch_distance=11, h=0.1, sigma=0.0, channel_axis=None):
    """``nlm_weights`` for many queries of one image: checked and padded once, then
    ``fn(query)`` -> the weights of a query already known to be inside ``fn.shape``."""
    args = _validate(image, channel_axis, patch_size, patch_distance, h, sigma)
    planes, _, r, pd, h, sigma = args
    _, *S = planes.shape
    k, nd = 2 * r + 1, len(S)
    padded = np.pad(planes.astype(np.float64), [(0, 0)] + [(r, r)] * nd, mode="reflect")

    def fn(q) -> np.ndarray:
        window = tuple(slice(max(0, i - pd), min(n, i + pd + 1)) for i, n in zip(q, S, strict=True))
        region = padded[(slice(None), *(slice(a.start, a.stop + 2 * r) for a in window))]
        # every patch whose centre j lies in the window: (C, *window shape, *patch shape)
        patches = sliding_window_view(region, (k,) * nd, axis=tuple(range(1, nd + 1)))
        ref = padded[(slice(None), *[None] * nd, *(slice(i, i + k) for i in q))]
        dist = np.mean((patches - ref) ** 2, axis=(0, *range(nd + 1, 2 * nd + 1)))
        w = np.exp(-np.maximum(dist - 2 * sigma * sigma, 0) / h / h)
        weights = np.zeros(S)
        weights[window] = w / w.sum()
        return weights

    fn.shape = tuple(S)
    return fn


def nlm_loop(image, patch_size=7, patch_distance=11, h=0.1, sigma=0.0,
             channel_axis=None) -> np.ndarray:  # fmt: skip
    """Non-local means as its definition: for each position i, for each j in its window, the
    distance of the two patches, a weight, a weighted mean. A slow float64 reference
    (about 1e5 pairs per second) for small images; parameters, shapes and errors as in
    ``denoise_nl_means``, but the result is always float64."""
    args = _validate(image, channel_axis, patch_size, patch_distance, h, sigma)
    planes, unplane, r, pd, h, sigma = args
    planes = planes.astype(np.float64)
    C, *S = planes.shape
    k, nd = 2 * r + 1, len(S)
    padded = np.pad(planes, [(0, 0)] + [(r, r)] * nd, mode="reflect")
    out = np.empty_like(planes)
    for i in np.ndindex(*S):
        patch_i = padded[(slice(None), *(slice(a, a + k) for a in i))]
        num, den = np.zeros(C), 0.0
        window = (range(max(0, a - pd), min(n, a + pd + 1)) for a, n in zip(i, S, strict=True))
        for j in itertools.product(*window):
            patch_j = padded[(slice(None), *(slice(a, a + k) for a in j))]
            d = max(np.mean((patch_i - patch_j) ** 2) - 2 * sigma * sigma, 0.0) / h / h
            w = np.exp(-d)
            num += w * planes[(slice(None), *j)]
            den += w
        out[(slice(None), *i)] = num / den
    return unplane(out)
