"""Synthetic video tasks where locality fails, and the C2D / non-local networks (notebooks 04, 05).

Task "classify", "same colour?": T frames (default 8 x 32 x 32) on a smooth texture; a coloured
disk A moves through the first half of the frames only, a coloured square B through the second
half only, far from A; two grey distractors move through all frames. B takes A's colour with
probability 1/2 (label 1, "same"), else one of the other colours of ``PALETTE``. A and B never
share a frame or a place, and a C2D network is at chance (the proof is in notebook 04).

Video i of split s is drawn from ``numpy.random.default_rng([seed, SPLITS.index(s), i])``,
whatever the number of videos generated together.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nlviz.block import NonLocalBlock
from nlviz.pairwise import check_pairwise, check_tensor
from nlviz.utils import Parser, atomic_write, check_choice, check_int

__all__ = ["PALETTE", "COLOR_NAMES", "CLASS_NAMES", "SPLITS", "VARIANTS", "VideoBatch",
           "generate", "to_tensor", "save_sample", "load_sample", "VideoNet",
           "count_parameters"]  # fmt: skip

PALETTE = np.array(
    [
        [0.92, 0.16, 0.14],  # red
        [0.18, 0.78, 0.22],  # green
        [0.20, 0.38, 0.98],  # blue
        [0.98, 0.86, 0.10],  # yellow
        [0.88, 0.22, 0.90],  # magenta
        [0.10, 0.86, 0.92],  # cyan
    ],
    dtype=np.float32,
)
COLOR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan")
CLASS_NAMES = ("different", "same")
SPLITS = ("train", "val", "test")
TASKS = ("classify",)
SAMPLE_FILE = Path(__file__).resolve().parent.parent / "data" / "videos_sample.npz"


@dataclass
class VideoBatch:
    """Videos and what is in them.

    videos (N, T, H, W, 3) uint8; labels (N,) int64 (1 = same colour); colors (N, 2) palette
    index of A and B; tracks (N, 4, T, 2) float32 centre (y, x) of A, B, the grey disk, the grey
    square in every frame (NaN where absent); radius (N, 4) float32; masks (N, T, H, W) int8:
    the object seen at each pixel (0 A, 1 B, 2 and 3 the distractors), -1 for background.
    """

    videos: np.ndarray
    labels: np.ndarray
    colors: np.ndarray
    tracks: np.ndarray
    radius: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.videos)


def _track(rng, n: int, r: float, size: int, speed) -> np.ndarray:
    """``n`` positions (y, x) of a straight path at a random speed that bounces off the borders."""
    lo, hi = r + 0.5, size - r - 1.5
    pos = rng.uniform(lo, hi, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    vel = rng.uniform(*speed) * np.array([np.sin(angle), np.cos(angle)])
    out = np.empty((n, 2), np.float32)
    for t in range(n):
        out[t] = pos
        pos = pos + vel
        for k in range(2):
            if not lo <= pos[k] <= hi:  # reflect at the border
                edge = lo if pos[k] < lo else hi
                pos[k], vel[k] = 2 * edge - pos[k], -vel[k]
    return out


def _texture(rng, size: int) -> np.ndarray:
    """A smooth low-saturation texture (H, W, 3) in [0, 1]: bilinear 6x6 noise plus grain."""
    coarse = rng.normal(size=(6, 6))
    s = np.linspace(0, 5, size)
    i = np.clip(s.astype(int), 0, 4)
    f = s - i
    rows = coarse[i] * (1 - f[:, None]) + coarse[i + 1] * f[:, None]
    smooth = rows[:, i] * (1 - f[None]) + rows[:, i + 1] * f[None]
    lum = 0.38 + 0.07 * smooth + 0.03 * rng.normal(size=(size, size))
    return np.clip(lum[..., None] + rng.uniform(-0.05, 0.05, size=3), 0, 1).astype(np.float32)


def _paint(frames, masks, k: int, t: int, alpha: np.ndarray, colour) -> None:
    """Blend ``colour`` into frame t with coverage ``alpha`` (H, W); object k owns alpha > 1/2."""
    frames[t] = frames[t] * (1 - alpha[..., None]) + np.clip(colour, 0, 1) * alpha[..., None]
    masks[t][alpha > 0.5] = k


def _classify_video(rng, frames: int, size: int, min_distance: float):
    half, k = frames // 2, len(PALETTE)
    speed = (0.04 * size, 0.09 * size)
    same = rng.random() < 0.5
    ca = int(rng.integers(k))
    cb = ca if same else int((ca + rng.integers(1, k)) % k)
    r = rng.uniform(0.1, 0.14, size=4) * size  # A, B, grey disk, grey square
    a = _track(rng, half, r[0], size, speed)
    for _ in range(100):  # B far from A (rejection; almost always at once)
        b = _track(rng, frames - half, r[1], size, speed)
        if np.linalg.norm(a.mean(0) - b.mean(0)) >= min_distance:
            break
    d1, d2 = _track(rng, frames, r[2], size, speed), _track(rng, frames, r[3], size, speed)
    grey, jitter = rng.uniform(0.6, 0.85, size=2), rng.uniform(0.85, 1.05, size=2)
    video = np.broadcast_to(_texture(rng, size), (frames, size, size, 3)).copy()
    masks = np.full((frames, size, size), -1, np.int8)
    tracks = np.full((4, frames, 2), np.nan, np.float32)
    tracks[0, :half], tracks[1, half:], tracks[2], tracks[3] = a, b, d1, d2
    colours = [PALETTE[ca] * jitter[0], PALETTE[cb] * jitter[1]]
    colours += [np.full(3, grey[0], np.float32), np.full(3, grey[1], np.float32)]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for obj in (2, 3, 0, 1):  # drawing order: distractors first
        for t in np.flatnonzero(~np.isnan(tracks[obj, :, 0])):
            cy, cx = tracks[obj, t]
            disk = obj in (0, 2)
            if disk:
                dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            else:
                dist = np.maximum(np.abs(yy - cy), np.abs(xx - cx))
            _paint(video, masks, obj, t, np.clip(r[obj] + 0.5 - dist, 0, 1), colours[obj])
    return video, int(same), (ca, cb), tracks, r, masks


def generate(
    n: int,
    *,
    split: str = "train",
    seed: int = 0,
    start: int = 0,
    frames: int = 8,
    size: int = 32,
    min_distance: float | None = None,
) -> VideoBatch:
    """Videos ``start .. start + n - 1`` of ``split`` for ``seed`` (see the module docstring).

    Parameters
    ----------
    n, start : int
        How many videos, and the index of the first.
    frames, size : int
        T and H = W of every video. ``min_distance``: least distance in pixels between the mean
        centres of A and B (default 0.4 size).

    Returns
    -------
    VideoBatch with videos (n, frames, size, size, 3) uint8.
    """
    n = check_int("n", n, minimum=0, maximum=100_000)
    split = check_choice("split", split, SPLITS)
    seed = check_int("seed", seed, minimum=0)
    start = check_int("start", start, minimum=0)
    frames = check_int("frames", frames, minimum=2, maximum=64)
    size = check_int("size", size, minimum=16, maximum=256)
    if n * frames * size * size * 3 > 2**31:
        raise ValueError(f"n: {n} videos of {frames} x {size} x {size} exceed 2 GiB")
    min_distance = 0.4 * size if min_distance is None else min_distance
    out = VideoBatch(
        np.empty((n, frames, size, size, 3), np.uint8),
        np.empty(n, np.int64),
        np.empty((n, 2), np.int64),
        np.empty((n, 4, frames, 2), np.float32),
        np.empty((n, 4), np.float32),
        np.empty((n, frames, size, size), np.int8),
    )
    for v in range(n):
        rng = np.random.default_rng([seed, SPLITS.index(split), start + v])
        video, *rest = _classify_video(rng, frames, size, min_distance)
        out.videos[v] = np.round(video * 255)
        out.labels[v], out.colors[v], out.tracks[v], out.radius[v], out.masks[v] = rest
    return out


def to_tensor(videos: np.ndarray) -> Tensor:
    """uint8 (N, T, H, W, 3) -> float32 (N, 3, T, H, W) in [-1, 1], contiguous.

    Contiguous, not a permuted view: conv backward on a channels-last 5-D tensor corrupts the
    heap on some CPUs (torch 2.13 on AMD) and is not deterministic there.
    """
    if (
        not isinstance(videos, np.ndarray)
        or videos.dtype != np.uint8
        or videos.ndim != 5
        or videos.shape[-1] != 3
    ):
        got = (
            f"{videos.dtype} {videos.shape}"
            if isinstance(videos, np.ndarray)
            else type(videos).__name__
        )
        raise ValueError(f"videos: expected a (N, T, H, W, 3) uint8 array, got {got}")
    x = torch.from_numpy(np.ascontiguousarray(videos)).permute(0, 4, 1, 2, 3)
    return x.float().div_(127.5).sub_(1.0).contiguous()


def save_sample(path, batch: VideoBatch, *, overwrite: bool = False) -> Path:
    """Save a ``VideoBatch`` as a compressed npz, atomically."""
    arrays = {f.name: getattr(batch, f.name) for f in fields(VideoBatch)}
    return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays), overwrite=overwrite)


def load_sample(path=None) -> VideoBatch:
    """The committed sample (``data/videos_sample.npz``, the first 48 test videos) or another."""
    path = Path(SAMPLE_FILE if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no video sample at {path}")
    names = [f.name for f in fields(VideoBatch)]
    with np.load(path, allow_pickle=False) as f:
        missing = [key for key in names if key not in f]
        if missing:
            raise ValueError(f"path: {path} is not a video sample (missing {missing})")
        return VideoBatch(*(f[key] for key in names))


# ----------------------------------------------------------------------------- the networks

VARIANTS = ("spacetime", "space", "time", "none")
PLACES = ("res4.0", "res3.0", "res3.1", "res4.1")  # where blocks go, in order of use


def _fold(x: Tensor) -> Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W): frames into the batch, for 2-D convolutions."""
    return x.transpose(1, 2).flatten(0, 1).contiguous()


def _unfold(x: Tensor, t: int) -> Tensor:
    """(B*T, C, H, W) -> (B, C, T, H, W), contiguous."""
    return x.unflatten(0, (-1, t)).transpose(1, 2).contiguous()


class BasicBlock(nn.Module):
    """ResNet basic block on folded frames: two 3x3 convs (= 1x3x3 in video) and a shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class NonLocalVideo(nn.Module):
    """A ``NonLocalBlock`` on a video feature map (B, C, T, H, W): "spacetime" (dim 3, j over
    all T H W positions), "space" (dim 2, j in the same frame) or "time" (dim 1, j at the same
    (y, x) in every frame)."""

    def __init__(self, channels: int, variant: str, pairwise: str) -> None:
        super().__init__()
        self.variant = check_choice("variant", variant, VARIANTS[:3])
        dim = {"spacetime": 3, "space": 2, "time": 1}[variant]
        self.block = NonLocalBlock(channels, pairwise=pairwise, dim=dim)

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        if self.variant == "spacetime":
            return self.block(x)
        if self.variant == "space":
            return _unfold(self.block(_fold(x)), t)
        z = self.block(x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t))
        return z.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2).contiguous()


class VideoNet(nn.Module):
    """C2D (``variant="none"`` or ``blocks=0``) or non-local C2D, for (B, 3, T, H, W) input.

    A miniature ResNet of 2-D convolutions applied to each frame (C2D, paper Sec. 4.1): stem
    (3x3 conv, 2x2 max-pool), res2 (1 basic block, width w), res3 (2 blocks, 2w, stride 2), res4
    (2 blocks, 4w, stride 2), global average pooling and a linear classifier. ``blocks``
    non-local blocks follow the residual blocks ``PLACES[:blocks]`` (1: in res4 as in Table 2a;
    3: two in res3, one in res4). ``places`` lists them in network order.
    """

    def __init__(
        self,
        *,
        variant: str = "spacetime",
        pairwise: str = "embedded_gaussian",
        blocks: int = 1,
        width: int = 16,
        num_classes: int = 2,
    ) -> None:
        super().__init__()
        self.variant = check_choice("variant", variant, VARIANTS)
        self.pairwise = check_pairwise(pairwise)
        self.blocks = (
            0 if variant == "none" else check_int("blocks", blocks, minimum=0, maximum=len(PLACES))
        )
        w = check_int("width", width, minimum=1, maximum=256)
        num_classes = check_int("num_classes", num_classes, minimum=2, maximum=1000)
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)
        )
        stages = [
            ("res2.0", w, w, 1),
            ("res3.0", w, 2 * w, 2),
            ("res3.1", 2 * w, 2 * w, 1),
            ("res4.0", 2 * w, 4 * w, 2),
            ("res4.1", 4 * w, 4 * w, 1),
        ]
        self.layers, self.places = nn.ModuleList(), []
        for place, c_in, c_out, stride in stages:
            self.layers.append(BasicBlock(c_in, c_out, stride))
            if place in PLACES[: self.blocks]:
                self.layers.append(NonLocalVideo(c_out, self.variant, self.pairwise))
                self.places.append(place)
        self.fc = nn.Linear(4 * w, num_classes)

    def nonlocal_blocks(self) -> list[NonLocalVideo]:
        """The non-local blocks in network order (after ``places[k]``)."""
        return [m for m in self.layers if isinstance(m, NonLocalVideo)]

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> the last feature map (B, 4w, T, H/8, W/8)."""
        check_tensor("x", x, 5, "(B, 3, T, H, W)")
        if x.shape[1] != 3:
            raise ValueError(f"x: expected 3 colour channels (B, 3, T, H, W), got {tuple(x.shape)}")
        t = x.shape[2]
        h = self.stem(_fold(x))
        for layer in self.layers:
            h = _fold(layer(_unfold(h, t))) if isinstance(layer, NonLocalVideo) else layer(h)
        return _unfold(h, t)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3, 4)))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def main(argv=None) -> int:
    parser = Parser(prog="python -m nlviz.video", description="Write the committed video sample.")
    parser.add_argument("--out", default=str(SAMPLE_FILE), help="the .npz to write")
    parser.add_argument("--n", type=int, default=48, help="how many test videos (seed 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    try:
        path = save_sample(args.out, generate(args.n, split="test"), overwrite=args.overwrite)
    except (ValueError, TypeError, FileExistsError) as err:
        parser.fail(err)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
