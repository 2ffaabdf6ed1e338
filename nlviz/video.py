"""Two synthetic video tasks where locality fails, and their networks (notebooks 04, 05).

"classify", "same colour?" (8 frames of 32 x 32): a coloured disk A moves through the first
half of the frames only, a coloured square B through the second half, far from A, with two grey
distractors in all frames. B has A's colour with probability 1/2 (label 1), else another colour
of ``PALETTE``: a C2D network is at chance (notebook 04).

"track", label propagation (4 frames of 48 x 48): K disks cut from photographs that ship with
scikit-image (``SPRITES``) bounce over a real texture, crossing and hiding each other. Each
object has a random label, independent of its looks, given in frame ``REF`` only; the network
must say them in the other frames, which a per-frame network cannot (notebook 05).

Video i of a split is drawn from ``numpy.random.default_rng([seed, SPLITS.index(split), i])``,
whatever the number generated together.
"""

from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from skimage import data as skdata
from skimage.transform import resize
from torch import Tensor

from nlviz import utils
from nlviz.nets import PLACES, VARIANTS, TrackNet, VideoNet, count_parameters
from nlviz.utils import Parser, as_path, atomic_write, check_choice, check_int, check_type

__all__ = ["PALETTE", "COLOR_NAMES", "CLASS_NAMES", "SPRITES", "SPLITS", "TASKS", "REF",
           "VideoBatch", "generate", "to_tensor", "track_tensors", "save_sample", "load_sample",
           "VARIANTS", "PLACES", "VideoNet", "TrackNet", "count_parameters"]  # fmt: skip

PALETTE = np.array([[0.92, 0.16, 0.14], [0.18, 0.78, 0.22], [0.20, 0.38, 0.98], [0.98, 0.86, 0.10],
                    [0.88, 0.22, 0.90], [0.10, 0.86, 0.92]], np.float32)  # fmt: skip
COLOR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan")
CLASS_NAMES = ("different", "same")
# (photo, centre y, centre x, radius) in the photo's pixels: things that look like something
SPRITES = (("astronaut", 115, 235, 90), ("chelsea", 150, 255, 135), ("coffee", 125, 270, 115),
           ("coins", 42, 338, 32), ("camera", 105, 210, 75), ("colorwheel", 185, 185, 180),
           ("logo", 250, 250, 235), ("retina", 700, 700, 640), ("astronaut", 440, 415, 75),
           ("rocket", 350, 335, 90))  # fmt: skip
SPRITE_NAMES = ("face", "cat", "cup", "coin", "cameraman", "colour wheel", "logo", "retina",
                "helmet", "launch pad")  # fmt: skip
TEXTURES = ("grass", "brick", "gravel")
SPLITS, TASKS, REF = ("train", "val", "test"), ("classify", "track"), 0
SAMPLE_FILE = Path(__file__).resolve().parent.parent / "data" / "videos_sample.npz"
_FIELDS = dict(videos=(np.uint8, "NTHW3"), labels=(np.integer, "N", "NK"),
               masks=(np.integer, "NTHW"), tracks=(np.floating, "NKT2"), radius=(np.floating, "NK"),
               colors=(np.integer, "N2", "N0"), sprites=(np.integer, "N0", "NK"))  # fmt: skip


@dataclass
class VideoBatch:
    """Videos and what is in them: videos (N, T, H, W, 3) uint8. masks (N, T, H, W) int8: the
    object seen at each pixel, -1 for background. labels: "classify" (N,) int64, 1 = same colour;
    "track" (N, K) the label of each object. colors (N, 2): palette index of A and B ("classify");
    sprites (N, K): the ``SPRITES`` photo of each object ("track"). tracks (N, K, T, 2) float32:
    centres (y, x) in every frame (NaN where absent); radius (N, K). "classify" objects: A, B,
    grey disk, square."""

    videos: np.ndarray
    labels: np.ndarray
    colors: np.ndarray
    tracks: np.ndarray
    radius: np.ndarray
    masks: np.ndarray
    sprites: np.ndarray

    def __post_init__(self):  # O(1): each field's dtype and layout (_FIELDS), one N, T, H, W, K
        track = getattr(self.labels, "ndim", 0) == 2  # "track" labels are (N, K)
        sizes = {}  # each letter's size, as the first field with it says
        for name, (kind, *layouts) in _FIELDS.items():
            layout = layouts[-1] if track else layouts[0]
            want = f"{kind.__name__} ({', '.join(layout)})"
            a = check_type(name, getattr(self, name), np.ndarray, f"a NumPy array, {want}")
            shape = [sizes.setdefault(c, d) if c.isalpha() else int(c)
                     for c, d in zip(layout, a.shape, strict=False)]  # fmt: skip
            if not np.issubdtype(a.dtype, kind) or a.ndim != len(layout) or shape != list(a.shape):
                raise ValueError(f"{name}: expected {want}, got {a.dtype} {a.shape}")
        if not np.isfinite(self.radius).all():  # tracks are NaN where an object is absent
            raise ValueError("radius: expected finite values, got NaN or inf")

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def task(self) -> str:
        return "track" if self.labels.ndim == 2 else "classify"

    def __getitem__(self, index) -> "VideoBatch":
        return VideoBatch(*(getattr(self, f.name)[index] for f in fields(self)))


def _track(rng, n: int, r: float, size: int, speed) -> np.ndarray:
    """``n`` centres (y, x) of a straight path at a random speed that bounces off the borders."""
    lo, hi = r + 0.5, size - r - 1.5
    pos, angle = rng.uniform(lo, hi, size=2), rng.uniform(0, 2 * np.pi)
    vel = rng.uniform(*speed) * np.array([np.sin(angle), np.cos(angle)])
    out = np.empty((n, 2), np.float32)
    for t in range(n):
        out[t], pos = pos, pos + vel
        for k in range(2):
            if not lo <= pos[k] <= hi:  # reflect at the border
                edge = lo if pos[k] < lo else hi
                pos[k], vel[k] = 2 * edge - pos[k], -vel[k]
    return out


def _texture(rng, size: int) -> np.ndarray:
    """A smooth low-saturation texture (H, W, 3) in [0, 1]: bilinear 6 x 6 noise plus grain."""
    coarse, s = rng.normal(size=(6, 6)), np.linspace(0, 5, size)
    f = s - (i := np.clip(s.astype(int), 0, 4))
    rows = coarse[i] * (1 - f[:, None]) + coarse[i + 1] * f[:, None]
    smooth = rows[:, i] * (1 - f[None]) + rows[:, i + 1] * f[None]
    lum = 0.38 + 0.07 * smooth + 0.03 * rng.normal(size=(size, size))
    return np.clip(lum[..., None] + rng.uniform(-0.05, 0.05, size=3), 0, 1).astype(np.float32)


def _classify_video(rng, frames: int, size: int) -> dict:
    half, k, speed = frames // 2, len(PALETTE), (0.04 * size, 0.09 * size)
    same, ca = rng.random() < 0.5, int(rng.integers(k))
    cb = ca if same else int((ca + rng.integers(1, k)) % k)
    r = rng.uniform(0.1, 0.14, size=4) * size  # A, B, grey disk, grey square
    a = _track(rng, half, r[0], size, speed)
    for _ in range(100):  # B far from A: the mean centres at least 0.4 size apart
        b = _track(rng, frames - half, r[1], size, speed)
        if np.linalg.norm(a.mean(0) - b.mean(0)) >= 0.4 * size:
            break
    d1, d2 = _track(rng, frames, r[2], size, speed), _track(rng, frames, r[3], size, speed)
    grey, jitter = rng.uniform(0.6, 0.85, size=2), rng.uniform(0.85, 1.05, size=2)
    video = np.broadcast_to(_texture(rng, size), (frames, size, size, 3)).copy()
    masks = np.full((frames, size, size), -1, np.int8)
    tracks = np.full((4, frames, 2), np.nan, np.float32)
    tracks[0, :half], tracks[1, half:], tracks[2], tracks[3] = a, b, d1, d2
    colours = [PALETTE[ca] * jitter[0], PALETTE[cb] * jitter[1],
               *(np.full(3, g, np.float32) for g in grey)]  # fmt: skip
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for obj in (2, 3, 0, 1):  # the distractors first
        for t in np.flatnonzero(~np.isnan(tracks[obj, :, 0])):
            cy, cx = tracks[obj, t]
            disk = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            dist = disk if obj in (0, 2) else np.maximum(np.abs(yy - cy), np.abs(xx - cx))
            alpha = np.clip(r[obj] + 0.5 - dist, 0, 1)[..., None]  # an anti-aliased edge
            video[t] = video[t] * (1 - alpha) + np.clip(colours[obj], 0, 1) * alpha
            masks[t][alpha[..., 0] > 0.5] = obj
    return {"videos": (video * 255).round().astype(np.uint8), "labels": int(same),
            "colors": (ca, cb), "tracks": tracks, "radius": r.astype(np.float32), "masks": masks,
            "sprites": np.zeros(0, int)}  # fmt: skip


@lru_cache(maxsize=1)
def _photos() -> tuple[list, list]:
    """The sprites as 64 x 64 RGB in [0, 1], and the textures (grey) at 1/3 scale."""
    sprites = []
    for name, cy, cx, r in SPRITES:
        im = getattr(skdata, name)()
        im = im[..., None].repeat(3, -1) if im.ndim == 2 else im[..., :3]
        crop = im[max(cy - r, 0) : cy + r, max(cx - r, 0) : cx + r]
        sprites.append(resize(crop, (64, 64), anti_aliasing=True).astype(np.float32))
    textures = [resize(getattr(skdata, t)(), (170, 170), anti_aliasing=True) for t in TEXTURES]
    return sprites, [t.astype(np.float32) for t in textures]


def _bounce(rng, frames: int, r: float, size: int, speed) -> np.ndarray:
    """Centres (frames, 2) of a straight path bouncing off the borders (a triangle wave)."""
    lo, span, angle = r, size - 1 - 2 * r, rng.uniform(0, 2 * np.pi)
    vel = rng.uniform(*speed) * np.array([np.sin(angle), np.cos(angle)])
    u = (rng.uniform(0, span, 2) + vel * np.arange(frames)[:, None]) % (2 * span)
    return lo + np.where(u > span, 2 * span - u, u)


def _track_video(rng, frames: int, size: int, k: int, pace: float = 1.0) -> dict:
    sprites, textures = _photos()
    labels, which = rng.permutation(k), rng.choice(len(SPRITES), k, replace=False)
    radius, speed = rng.uniform(0.13, 0.18, k) * size, (0.06 * pace * size, 0.12 * pace * size)
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(100):  # every object at least half visible in the reference frame
        tracks = np.stack([_bounce(rng, frames, r, size, speed) for r in radius])
        masks = np.full((frames, size, size), -1, np.int8)
        for j, (path, r) in enumerate(zip(tracks, radius, strict=True)):  # later ones on top
            for t, (cy, cx) in enumerate(path):
                masks[t][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = j
        if min((masks[REF] == j).sum() / (np.pi * radius[j] ** 2) for j in range(k)) >= 0.5:
            break
    tex = textures[rng.integers(len(textures))]
    y0, x0 = rng.integers(0, tex.shape[0] - size, 2)
    grey = tex[y0 : y0 + size, x0 : x0 + size]
    tint = rng.uniform(0.35, 0.75, 3) * rng.uniform(0.6, 1.0)
    lum = 0.15 + tint * (grey[..., None] - grey.min()) / np.ptp(grey) * 0.8
    video = np.broadcast_to(lum, (frames, size, size, 3)).copy()
    for j in range(k):
        gain, d = rng.uniform(0.85, 1.1), 2 * radius[j]  # the photo's brightness, the diameter
        for t in range(frames):
            on = masks[t] == j
            (cy, cx), r = tracks[j, t], radius[j]  # sample the 64 x 64 photo at the disk's pixels
            sy = np.clip(((yy[on] - cy + r) / d * 64).astype(int), 0, 63)
            sx = np.clip(((xx[on] - cx + r) / d * 64).astype(int), 0, 63)
            video[t][on] = np.clip(sprites[which[j]][sy, sx] * gain, 0, 1)
    return {"videos": np.round(video * 255).astype(np.uint8), "labels": labels,
            "colors": np.zeros(0, int), "tracks": tracks.astype(np.float32),
            "radius": radius.astype(np.float32), "masks": masks, "sprites": which}  # fmt: skip


def generate(n: int, *, task="classify", split="train", seed=0, start=0, frames=None, size=None,
             objects=4, speed=1.0) -> VideoBatch:  # fmt: skip
    """Videos ``start .. start + n - 1`` of ``split`` of ``task`` for ``seed`` (module docstring):
    a ``VideoBatch`` of videos (n, T, size, size, 3) uint8, T = ``frames`` and H = W = ``size``
    (default 8 and 32 for "classify", 4 and 48 for "track"), K = ``objects`` (3 to 10, "track");
    "track": the objects move ``speed`` times as fast (6 to 12 % of ``size`` per frame at 1)."""
    track = check_choice("task", task, TASKS) == "track"
    n, start = check_int("n", n, minimum=0, maximum=100_000), check_int("start", start, minimum=0)
    split, seed = check_choice("split", split, SPLITS), check_int("seed", seed, minimum=0)
    T, H = (4, 48) if track else (8, 32)  # the defaults
    frames = check_int("frames", T if frames is None else frames, minimum=2, maximum=64)
    size = check_int("size", H if size is None else size, minimum=16, maximum=256)
    objects = check_int("objects", objects, minimum=3, maximum=len(SPRITES))
    speed = utils.check_real("speed", speed, minimum=0, maximum=8)
    if n * frames * size * size * 3 > 2**31:
        raise ValueError(f"n: {n} videos of {frames} x {size} x {size} exceed 2 GiB")
    rngs = (np.random.default_rng([seed, SPLITS.index(split), start + v]) for v in range(max(n, 1)))
    items = [_track_video(r, frames, size, objects, speed) if track else
             _classify_video(r, frames, size) for r in rngs]  # fmt: skip
    return VideoBatch(*(np.stack([np.asarray(it[f.name]) for it in items])[:n]
                        for f in fields(VideoBatch)))  # fmt: skip


def to_tensor(videos: np.ndarray) -> Tensor:
    """uint8 (N, T, H, W, 3) -> float32 (N, 3, T, H, W) in [-1, 1], contiguous, not a permuted
    view: conv backward on a channels-last 5-D tensor corrupts the heap on some CPUs (torch 2.13
    on AMD) and is not deterministic there."""
    ok = isinstance(videos, np.ndarray) and videos.dtype == np.uint8 and videos.ndim == 5
    if not ok or videos.shape[-1] != 3:
        got = f"{videos.dtype} {videos.shape}" if isinstance(videos, np.ndarray) else type(videos)
        raise ValueError(f"videos: expected a (N, T, H, W, 3) uint8 array, got {got}")
    x = torch.from_numpy(np.ascontiguousarray(videos)).permute(0, 4, 1, 2, 3)
    return x.float().div_(127.5).sub_(1.0).contiguous()


def track_tensors(videos, masks, labels) -> tuple[Tensor, Tensor]:
    """The input and target of "track" videos (as tensors or arrays: uint8 videos, int8 masks,
    (N, K) labels): input (N, 3 + K, T, H, W), RGB in [-1, 1] then one channel per label, 1 on
    the pixels of the object with that label in frame ``REF`` only; target (N, T, H, W) int64,
    the label of the object at each pixel, -1 (ignored) on the background and in frame ``REF``."""
    x, m, lab = to_tensor(np.asarray(videos)), np.asarray(masks), np.asarray(labels)
    if m.dtype.kind not in "iu" or m.size == 0 or m.shape != (len(x), *x.shape[2:]):
        raise ValueError(f"masks: expected ints (N, T, H, W) as videos, got {m.dtype} {m.shape}")
    if lab.dtype.kind not in "iu" or lab.ndim != 2 or lab.size == 0 or len(lab) != len(m):
        raise ValueError(f"labels: expected ints (N, K), N = {len(m)}, got {lab.dtype} {lab.shape}")
    masks, labels = torch.as_tensor(m).long(), torch.as_tensor(lab)
    obj = masks.clamp(min=0)
    target = torch.where(masks >= 0, torch.gather(labels, 1, obj.flatten(1)).view_as(obj), -1)
    onehot = torch.zeros(len(masks), labels.shape[1], *masks.shape[1:])
    ids = torch.arange(labels.shape[1])[:, None, None]
    onehot[:, :, REF] = (target[:, None, REF] == ids).float()
    target[:, REF] = -1
    return torch.cat([x, onehot], 1).contiguous(), target.contiguous()


def save_sample(path, batch: VideoBatch, *, overwrite: bool = False) -> Path:
    """Save a ``VideoBatch`` as a compressed npz, atomically."""
    check_type("batch", batch, VideoBatch, "a VideoBatch (generate)")
    arrays = {f.name: getattr(batch, f.name) for f in fields(VideoBatch)}
    return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays), overwrite=overwrite)


def load_sample(path=None) -> VideoBatch:
    """The committed sample (``data/videos_sample.npz``: the first 48 test videos) or another."""
    if not (path := SAMPLE_FILE if path is None else as_path("path", path)).is_file():
        raise FileNotFoundError(f"path: no video sample at {path}")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - whatever np.load refuses is "not a sample"
        raise ValueError(f"path: {path} is not a video sample ({err})") from err
    with npz as f:
        if missing := [key for key in _FIELDS if key not in f]:
            raise ValueError(f"path: {path} is not a video sample (missing {missing})")
        return VideoBatch(**{key: f[key] for key in _FIELDS})


def main(argv=None) -> int:
    parser = Parser(prog="python -m nlviz.video", description="Write the committed video sample.")
    parser.add_argument("--out", default=str(SAMPLE_FILE), help="the .npz to write")
    parser.add_argument("--n", type=int, default=48, help="how many test videos (seed 0)")
    parser.add_argument("--task", choices=TASKS, default="classify")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    try:
        batch = generate(args.n, task=args.task, split="test")
        path = save_sample(args.out, batch, overwrite=args.overwrite)
    except (ValueError, TypeError, FileExistsError, OSError) as err:
        parser.fail(err, path="out")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
