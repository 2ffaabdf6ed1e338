"""Classic non-local means (Buades, Coll, Morel 2005) in NumPy (notebook 01).

The estimate of pixel i is a weighted mean of the pixels j of its search window,

    NL[v](i) = sum_j w(i, j) v(j),   w(i, j) = exp(-d(i, j)) / Z(i),
    d(i, j) = max(mean((v(N_i) - v(N_j))**2) - 2 sigma**2, 0) / h**2,

with N_i the patch_size x patch_size patch centred on i, the mean taken over the
patch and the channels, and Z(i) the sum of the weights of i. These are
scikit-image's fast-mode conventions (uniform patch weights, ``patch_distance``
is the radius of a square window of (2 * patch_distance + 1)**2 pixels).

Border handling (the same in all three functions, so they agree exactly):

- patches are read from the image padded by reflection (``np.pad(..., "reflect")``),
  so every pixel has a full patch;
- the search window is clipped to the image: pixel i averages only real pixels j,
  never padding. A corner pixel therefore averages fewer pixels than a centre one.

scikit-image differs in two ways (measured in tests/test_nlm.py): its search also
visits reflected padding positions, and its fast mode sums squared differences
over a (patch_size - 1)**2 window that it divides by patch_size**2. The two
filters are close (a few 1e-3 mean absolute difference on [0, 1] images) but not
the same function.

Functions
---------
denoise_nl_means(image, ...)   the vectorised filter: a loop over shifts
nlm_weights(image, query, ...) the (H, W) weights one pixel averages with
nlm_loop(image, ...)           the definition as a direct loop (slow; a reference)
"""

from __future__ import annotations

import numbers

import numpy as np

from nlviz._checks import (
    check_finite,
    check_int,
    check_nonnegative,
    check_positive,
    check_query,
)

__all__ = ["denoise_nl_means", "nlm_weights", "nlm_loop"]


# ----------------------------------------------------------------------------- checks


def _as_planes(image, channel_axis) -> tuple[np.ndarray, object]:
    """Validate ``image`` and return it as float planes (C, H, W) plus an ``unplane`` function.

    float64 stays float64; float32 and float16 are computed in float32; integer and
    bool images are converted as ``skimage.util.img_as_float`` does (uint8 -> [0, 1]).
    """
    arr = np.asarray(image)
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(
            f"image: expected a real numeric array (float, int or bool), got dtype {arr.dtype}"
        )
    if kind != "f":
        from skimage.util import img_as_float

        arr = img_as_float(arr)
    elif arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32 if arr.dtype.itemsize < 4 else np.float64)

    if channel_axis is None:
        if arr.ndim != 2:
            hint = " (pass channel_axis=-1 for a colour image)" if arr.ndim == 3 else ""
            raise ValueError(
                f"image: expected a 2-D grayscale array (H, W){hint}, got shape {arr.shape}"
            )
        planes = arr[None]
    else:
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral):
            raise TypeError(
                f"channel_axis: expected None or an integer, got {type(channel_axis).__name__}"
            )
        if arr.ndim == 2:
            raise ValueError(
                f"channel_axis: a 2-D image has no channel axis, expected None, got {channel_axis}"
            )
        if arr.ndim != 3:
            raise ValueError(
                f"image: expected a 3-D array (H, W, C) with channel_axis, got shape {arr.shape}"
            )
        if not -3 <= channel_axis <= 2:
            raise ValueError(
                f"channel_axis: expected an axis in [-3, 2] of a 3-D image, got {channel_axis}"
            )
        planes = np.moveaxis(arr, channel_axis, 0)
    if min(planes.shape) < 1:
        raise ValueError(f"image: expected a non-empty image, got shape {arr.shape}")
    check_finite("image", planes)

    def unplane(out: np.ndarray) -> np.ndarray:
        return out[0] if channel_axis is None else np.moveaxis(out, 0, channel_axis)

    return np.ascontiguousarray(planes), unplane


def _check_params(patch_size, patch_distance, h, sigma) -> tuple[int, int, float, float]:
    patch_size = check_int("patch_size", patch_size, minimum=1, odd=True)
    patch_distance = check_int("patch_distance", patch_distance, minimum=1)
    h = check_positive("h", h)
    sigma = check_nonnegative("sigma", sigma)
    return patch_size, patch_distance, h, sigma


# ----------------------------------------------------------------------------- the filter


def box_sum_slices(x: np.ndarray, k: int, stride: int, n: int, out: np.ndarray) -> np.ndarray:
    """out[m] = sum of x[m + q * stride] for q = 0 .. k - 1 and m < n (k contiguous slices)."""
    if k == 1:
        out[:] = x[:n]
        return out
    np.add(x[:n], x[stride : stride + n], out=out)
    for q in range(2, k):
        out += x[q * stride : q * stride + n]
    return out


def nlm_shifts(planes: np.ndarray, r: int, pd: int, h: float, sigma: float) -> np.ndarray:
    """Non-local means of float planes (C, H, W) -> (C, H, W), same dtype; no input checks.

    ``r = patch_size // 2`` is the patch radius and ``pd`` the search radius.
    One pass per shift s = (dy, dx) computes the weights w(i, i + s) of every pixel i
    at once: squared differences of the padded image and its shifted copy, summed
    over the patch by a separable box sum. Only half of the shifts are visited: the
    weight is symmetric, w(i, i + s) = w(i + s, i), so each pass updates both pixels
    of every pair.

    Everything runs on flat, contiguous 1-D slices: in the padded image flattened
    row by row (row length ``Wp``), a shift (dy, dx) is the offset ``dy * Wp + dx``.
    Positions whose shifted partner wraps around a row end, or leaves the image,
    get weight 0.
    """
    C, H, W = planes.shape
    dtype = planes.dtype
    k = 2 * r + 1  # patch_size
    Wp = W + 2 * r  # row length of the padded image and of every flat array below
    tail = 2 * r + pd  # zeros after the end so that the last slices never run past it

    padded = np.pad(planes, ((0, 0), (r, r), (r, r)), mode="reflect")
    p = np.zeros((C, padded[0].size + tail), dtype)
    p[:, : padded[0].size] = padded.reshape(C, -1)

    # The image and the two accumulators in the same flat layout (H rows of Wp).
    # Pixel (y, x) is at y * Wp + x, and its patch starts at the same index in p.
    v = np.zeros((C, H * Wp + pd), dtype)
    v[:, : H * Wp].reshape(C, H, Wp)[:, :, :W] = planes
    num = v.copy()  # the shift s = 0: each pixel has weight exp(0) = 1 for itself
    den = np.zeros(H * Wp + pd, dtype)
    den[: H * Wp].reshape(H, Wp)[:, :W] = 1

    sqd_buf = np.empty(H * Wp + 2 * r * Wp + 2 * r, dtype)  # squared differences
    chan_buf = np.empty_like(sqd_buf) if C > 1 else None  # the same for one channel
    col_buf = np.empty(H * Wp + 2 * r, dtype)  # sums over k rows
    w_buf = np.empty(H * Wp, dtype)  # sums over k x k, then distances, then weights
    tmp_buf = np.empty(H * Wp, dtype)
    to_mean = dtype.type(1.0 / (k * k * C))
    two_var = dtype.type(2.0 * sigma * sigma)
    minus_inv_h2 = dtype.type(-min(1.0 / (h * h), float(np.finfo(dtype).max)))

    for dy in range(-min(pd, H - 1), min(pd, H - 1) + 1):
        for dx in range(0, min(pd, W - 1) + 1):
            if dx == 0 and dy <= 0:
                continue  # s = 0 is done; s = (dy < 0, 0) is the mirror -s of (-dy, 0)
            o = dy * Wp + dx  # the shift as a flat offset
            y0, y1 = max(0, -dy), min(H, H - dy)  # rows where i and i + s are in the image
            n0, n1 = y0 * Wp, y1 * Wp
            n = n1 - n0
            nd = n + 2 * r * Wp + 2 * r
            # 1. squared difference of the padded image and its shift, summed over channels
            sqd = sqd_buf[:nd]
            np.subtract(p[0, n0 : n0 + nd], p[0, n0 + o : n0 + o + nd], out=sqd)
            np.square(sqd, out=sqd)
            for c in range(1, C):
                e = chan_buf[:nd]
                np.subtract(p[c, n0 : n0 + nd], p[c, n0 + o : n0 + o + nd], out=e)
                np.square(e, out=e)
                sqd += e
            # 2. box sum over the k x k patch: k rows (Wp apart), then k columns (1 apart)
            cols = box_sum_slices(sqd, k, Wp, n + 2 * r, out=col_buf[: n + 2 * r])
            w = box_sum_slices(cols, k, 1, n, out=w_buf[:n])
            # 3. distance max(mean - 2 sigma^2, 0) / h^2, then weight exp(-distance)
            w *= to_mean
            if sigma > 0:
                w -= two_var
                np.maximum(w, 0, out=w)
            w *= minus_inv_h2
            np.exp(w, out=w)
            w.reshape(y1 - y0, Wp)[:, W - dx :] = 0  # partner outside the image, or padding
            # 4. both pixels of each pair (i, i + s) take the other's value with weight w
            den[n0:n1] += w
            den[n0 + o : n1 + o] += w
            t = tmp_buf[:n]
            for c in range(C):
                np.multiply(w, v[c, n0 + o : n1 + o], out=t)
                num[c, n0:n1] += t
                np.multiply(w, v[c, n0:n1], out=t)
                num[c, n0 + o : n1 + o] += t

    num = num[:, : H * Wp].reshape(C, H, Wp)[:, :, :W]
    den = den[: H * Wp].reshape(H, Wp)[:, :W]
    return num / den


def denoise_nl_means(
    image,
    patch_size: int = 7,
    patch_distance: int = 11,
    h: float = 0.1,
    sigma: float = 0.0,
    channel_axis: int | None = None,
) -> np.ndarray:
    """Non-local means denoising of a grayscale (H, W) or colour image.

    Parameters follow ``skimage.restoration.denoise_nl_means`` (fast mode):
    ``patch_size`` odd side of the square patch, ``patch_distance`` radius of the
    square search window, ``h`` cut-off distance in grey levels, ``sigma`` noise
    standard deviation (2 sigma**2 is subtracted from the mean squared patch
    difference, then clipped at 0), ``channel_axis`` the colour axis of a 3-D image
    (one weight per pixel pair, computed from all channels).

    Returns an array of the image's shape: float64 for float64 (and integer) input,
    float32 for float32 input. See the module docstring for the border handling.
    """
    planes, unplane = _as_planes(image, channel_axis)
    patch_size, patch_distance, h, sigma = _check_params(patch_size, patch_distance, h, sigma)
    return unplane(nlm_shifts(planes, patch_size // 2, patch_distance, h, sigma))


# ----------------------------------------------------------------------------- one pixel


def nlm_weights(
    image,
    query,
    patch_size: int = 7,
    patch_distance: int = 11,
    h: float = 0.1,
    sigma: float = 0.0,
    channel_axis: int | None = None,
) -> np.ndarray:
    """The (H, W) float64 weights w(i, j) that pixel ``query = (y, x)`` averages with.

    They sum to 1, are 0 outside the search window, and
    ``(weights * image).sum() == denoise_nl_means(image, ...)[y, x]`` (for colour:
    ``(weights[..., None] * image).sum((0, 1))`` with channels last), up to rounding
    (about 1e-15 for float64 images, 1e-6 for float32 ones, which the filter
    computes in float32). Integer images are compared after ``img_as_float``.
    """
    planes, _ = _as_planes(image, channel_axis)
    patch_size, patch_distance, h, sigma = _check_params(patch_size, patch_distance, h, sigma)
    C, H, W = planes.shape
    y, x = check_query(query, (H, W))
    r, pd = patch_size // 2, patch_distance

    padded = np.pad(planes.astype(np.float64), ((0, 0), (r, r), (r, r)), mode="reflect")
    ys, xs = slice(max(0, y - pd), min(H, y + pd + 1)), slice(max(0, x - pd), min(W, x + pd + 1))
    # All patches whose centre j lies in the clipped window: (C, ny, nx, k, k).
    region = padded[:, ys.start : ys.stop + 2 * r, xs.start : xs.stop + 2 * r]
    patches = np.lib.stride_tricks.sliding_window_view(region, (patch_size, patch_size), (1, 2))
    ref = padded[:, y : y + patch_size, x : x + patch_size][:, None, None]
    dist = np.mean((patches - ref) ** 2, axis=(0, 3, 4))
    w = np.exp(-np.maximum(dist - 2 * sigma**2, 0) / h**2)
    weights = np.zeros((H, W))
    weights[ys, xs] = w / w.sum()
    return weights


# ----------------------------------------------------------------------------- the definition


def nlm_loop(
    image,
    patch_size: int = 7,
    patch_distance: int = 11,
    h: float = 0.1,
    sigma: float = 0.0,
    channel_axis: int | None = None,
) -> np.ndarray:
    """Non-local means written as its definition: for each pixel i, for each j in its window,
    the distance of the two patches, a weight, a weighted mean. float64 out.

    A reference for tests and the notebook; about 1e5 pixel pairs per second, so use
    small images.
    """
    planes, unplane = _as_planes(image, channel_axis)
    patch_size, patch_distance, h, sigma = _check_params(patch_size, patch_distance, h, sigma)
    planes = planes.astype(np.float64)
    C, H, W = planes.shape
    r, pd, k = patch_size // 2, patch_distance, patch_size
    padded = np.pad(planes, ((0, 0), (r, r), (r, r)), mode="reflect")
    out = np.empty_like(planes)
    for y in range(H):
        for x in range(W):
            patch_i = padded[:, y : y + k, x : x + k]
            num, den = np.zeros(C), 0.0
            for yj in range(max(0, y - pd), min(H, y + pd + 1)):
                for xj in range(max(0, x - pd), min(W, x + pd + 1)):
                    patch_j = padded[:, yj : yj + k, xj : xj + k]
                    d = max(np.mean((patch_i - patch_j) ** 2) - 2 * sigma**2, 0.0) / h**2
                    w = np.exp(-d)
                    num += w * planes[:, yj, xj]
                    den += w
            out[:, y, x] = num / den
    return unplane(out)
