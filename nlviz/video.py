"""A synthetic video task where locality fails, and the C2D / non-local networks (notebook 04).

The task: "same colour?"
------------------------
Each video has ``T`` RGB frames of ``size x size`` pixels (default 8 x 32 x 32) on a smooth,
low-saturation texture. Two grey distractors (a disk and a square) move through every frame.

- object A, a coloured **disk**, moves through the first half of the frames (t < T/2) only;
- object B, a coloured **square**, moves through the second half (t >= T/2) only, far away
  from A (the centres of their paths are at least ``min_distance`` pixels apart);
- their colours come from ``PALETTE`` (K = 6 hues); with probability 1/2 B takes A's colour,
  otherwise one of the K - 1 others, uniformly. Label 1 = "same", 0 = "different".

So A and B never share a frame and never share a place: the label is a relation between
positions far apart in space *and* time.

Why C2D cannot learn it: C2D's convolutions are 2-D (kernels 1 x k x k), so the feature map of
frame t depends only on frame t; global average pooling over (T, H, W) makes the pooled vector
a *sum* of per-frame vectors and the linear head's logit is ``U(first half) + V(second half)``.
The colour prior is symmetric (permuting the K colours of A and B together keeps the label
and the distribution), and an additive logit that is symmetric under those permutations cannot
depend on whether a == b (for K >= 2: u(a) + v(a) = s and u(a) + v(b) = d for all a != b force
s = d). Cross-entropy is strictly convex in the logit, so its minimiser over additive logits is
unique, hence symmetric, hence blind to the label: C2D is at chance however well it is trained.
The same holds for a *space-only* non-local block (it too works frame by frame).

Why A and B have different shapes: a spacetime non-local block without positional encoding is
permutation-equivariant; if A and B looked alike it could find "another object of my colour"
but not tell it apart from the same object in the next frame. With a disk and a square, a
query on B that attends to its own colour gets "disk" features back exactly when A matches.

Generation is deterministic: video ``i`` of split ``s`` with seed ``seed`` is drawn from
``numpy.random.default_rng([seed, SPLITS.index(s), i])``, independent of how many videos are
generated together. ``SPLIT_SEEDS`` fixes the splits used by ``nlviz.train``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nlviz._checks import check_choice, check_int

# ----------------------------------------------------------------------------- the task

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
SPLIT_SEEDS = {"train": 0, "val": 0, "test": 0}  # one seed; the split index separates them
DEFAULT_T = 8
DEFAULT_SIZE = 32
SAMPLE_FILE = Path(__file__).resolve().parent.parent / "data" / "videos_sample.npz"


@dataclass
class VideoBatch:
    """Videos and what they contain.

    videos: (N, T, H, W, 3) uint8; labels: (N,) int64, 1 = same colour;
    colors: (N, 2) palette index of A and B; tracks: (N, 4, T, 2) float32 centre (y, x) of
    A, B, distractor disk, distractor square in every frame (NaN where the object is absent);
    radius: (N, 4) float32 half-size in pixels.
    """

    videos: np.ndarray
    labels: np.ndarray
    colors: np.ndarray
    tracks: np.ndarray
    radius: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _track(rng: np.random.Generator, n: int, r: float, size: int, speed: tuple) -> np.ndarray:
    """A straight path of ``n`` positions (y, x) that bounces off the borders, radius r."""
    lo, hi = r + 0.5, size - r - 1.5
    pos = rng.uniform(lo, hi, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    vel = rng.uniform(*speed) * np.array([np.sin(angle), np.cos(angle)])
    out = np.empty((n, 2), np.float32)
    for t in range(n):
        out[t] = pos
        pos = pos + vel
        for k in range(2):  # reflect at the borders
            if pos[k] < lo:
                pos[k], vel[k] = 2 * lo - pos[k], -vel[k]
            elif pos[k] > hi:
                pos[k], vel[k] = 2 * hi - pos[k], -vel[k]
    return out


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth low-saturation texture (H, W, 3) in [0, 1]: upsampled noise plus grain."""
    coarse = rng.normal(size=(6, 6))
    ys = np.linspace(0, 5, size)
    iy = np.clip(ys.astype(int), 0, 4)
    fy = (ys - iy)[:, None]
    rows = coarse[iy] * (1 - fy) + coarse[iy + 1] * fy  # (size, 6)
    fx = (ys - iy)[None, :]
    smooth = rows[:, iy] * (1 - fx) + rows[:, iy + 1] * fx  # (size, size)
    grain = rng.normal(size=(size, size))
    lum = 0.38 + 0.07 * smooth + 0.03 * grain
    tint = rng.uniform(-0.05, 0.05, size=3)  # a faint olive/brown/grey cast
    return np.clip(lum[..., None] + tint, 0, 1).astype(np.float32)


def generate(
    n: int,
    *,
    split: str = "train",
    seed: int = 0,
    start: int = 0,
    frames: int = DEFAULT_T,
    size: int = DEFAULT_SIZE,
    min_distance: float | None = None,
) -> VideoBatch:
    """Videos ``start .. start + n - 1`` of ``split`` for ``seed`` (see the module docstring).

    Returns a ``VideoBatch`` with videos (n, frames, size, size, 3) uint8. ``min_distance``
    (default 0.4 * size) is the least distance in pixels between the mean centres of A and B.
    """
    n = check_int("n", n, minimum=0)
    check_choice("split", split, SPLITS)
    seed = check_int("seed", seed, minimum=0)
    start = check_int("start", start, minimum=0)
    frames = check_int("frames", frames, minimum=2)
    size = check_int("size", size, minimum=16)
    if min_distance is None:
        min_distance = 0.4 * size
    half = frames // 2
    k = len(PALETTE)
    speed = (0.04 * size, 0.09 * size)
    videos = np.empty((n, frames, size, size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    colors = np.empty((n, 2), np.int64)
    tracks = np.full((n, 4, frames, 2), np.nan, np.float32)
    radius = np.empty((n, 4), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for v in range(n):
        rng = np.random.default_rng([seed, SPLITS.index(split), start + v])
        same = rng.random() < 0.5
        ca = int(rng.integers(k))
        cb = ca if same else int((ca + rng.integers(1, k)) % k)
        r = rng.uniform(0.1, 0.14, size=4) * size  # A, B, distractor disk, distractor square
        a = _track(rng, half, r[0], size, speed)
        for _ in range(100):  # B far from A (rejection; almost always succeeds at once)
            b = _track(rng, frames - half, r[1], size, speed)
            if np.linalg.norm(a.mean(0) - b.mean(0)) >= min_distance:
                break
        d1 = _track(rng, frames, r[2], size, speed)
        d2 = _track(rng, frames, r[3], size, speed)
        grey = rng.uniform(0.6, 0.85, size=2)
        jitter = rng.uniform(0.85, 1.05, size=2)  # brightness of A and B
        frame = np.broadcast_to(_background(rng, size), (frames, size, size, 3)).copy()
        objects = [  # (centres per frame, first frame, radius, disk?, colour)
            (d1, 0, r[2], True, np.full(3, grey[0], np.float32)),
            (d2, 0, r[3], False, np.full(3, grey[1], np.float32)),
            (a, 0, r[0], True, PALETTE[ca] * jitter[0]),
            (b, half, r[1], False, PALETTE[cb] * jitter[1]),
        ]
        for path, t0, rad, disk, color in objects:
            for t, (cy, cx) in enumerate(path, start=t0):
                if disk:
                    dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
                else:
                    dist = np.maximum(np.abs(yy - cy), np.abs(xx - cx))
                alpha = np.clip(rad + 0.5 - dist, 0, 1)[..., None]  # anti-aliased edge
                frame[t] = frame[t] * (1 - alpha) + np.clip(color, 0, 1) * alpha
        videos[v] = np.round(frame * 255).astype(np.uint8)
        labels[v] = int(same)
        colors[v] = (ca, cb)
        tracks[v, 0, :half] = a
        tracks[v, 1, half:] = b
        tracks[v, 2] = d1
        tracks[v, 3] = d2
        radius[v] = r
    return VideoBatch(videos, labels, colors, tracks, radius)


def to_tensor(videos: np.ndarray) -> Tensor:
    """uint8 (N, T, H, W, 3) -> float32 (N, 3, T, H, W) in [-1, 1], the networks' layout."""
    if not isinstance(videos, np.ndarray) or videos.ndim != 5 or videos.shape[-1] != 3:
        got = getattr(videos, "shape", type(videos).__name__)
        raise ValueError(f"videos: expected a (N, T, H, W, 3) uint8 array, got {got}")
    x = torch.from_numpy(np.ascontiguousarray(videos)).permute(0, 4, 1, 2, 3)
    # contiguous: a permuted (channels-last) 5-D tensor makes conv backward corrupt the heap
    # with one thread and give non-deterministic gradients with two (torch 2.13 on AMD CPUs).
    return x.float().div_(127.5).sub_(1.0).contiguous()


def save_sample(path: str | os.PathLike, batch: VideoBatch, **meta) -> None:
    """Save a ``VideoBatch`` (and scalar metadata) as a compressed npz, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(
                fh,
                videos=batch.videos,
                labels=batch.labels,
                colors=batch.colors,
                tracks=batch.tracks,
                radius=batch.radius,
                **{k: np.asarray(v) for k, v in meta.items()},
            )
        os.chmod(tmp, 0o644)  # mkstemp makes 0o600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_sample(path: str | os.PathLike | None = None) -> VideoBatch:
    """Load the committed sample (``data/videos_sample.npz``) or another saved ``VideoBatch``."""
    path = Path(SAMPLE_FILE if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no video sample at {path}")
    with np.load(path) as f:
        keys = ("videos", "labels", "colors", "tracks", "radius")
        missing = [key for key in keys if key not in f]
        if missing:
            raise ValueError(f"path: {path} is not a video sample (missing {missing})")
        return VideoBatch(*(f[key] for key in keys))


# ----------------------------------------------------------------------------- the networks

VARIANTS = ("spacetime", "space", "time", "none")
PLACES = ("res4.0", "res3.0", "res3.1", "res4.1")  # NL blocks after these, in order of use
MAX_BLOCKS = len(PLACES)


def _fold(x: Tensor) -> tuple[Tensor, int]:
    """(B, C, T, H, W) -> (B*T, C, H, W): frames into the batch, for the 2-D convolutions."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w), t


def _unfold(x: Tensor, t: int) -> Tensor:
    """(B*T, C, H, W) -> (B, C, T, H, W)."""
    bt, c, h, w = x.shape
    return x.reshape(bt // t, t, c, h, w).transpose(1, 2).contiguous()


class BasicBlock(nn.Module):
    """ResNet basic block on frames folded into the batch: two 3x3 convs (= 1x3x3 in video)."""

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
    """A ``NonLocalBlock`` applied to a video feature map (B, C, T, H, W) in one of three ways.

    - "spacetime": one dim=3 block, every position attends to all T*H*W positions;
    - "space": a dim=2 block per frame (T folded into the batch), positions j in the same frame;
    - "time": a dim=1 block per location (H, W folded into the batch), j = the same (y, x) in
      every frame.
    """

    def __init__(self, channels: int, variant: str, pairwise: str) -> None:
        super().__init__()
        from nlviz.block import NonLocalBlock

        self.variant = check_choice("variant", variant, VARIANTS[:3])
        dim = {"spacetime": 3, "space": 2, "time": 1}[variant]
        self.block = NonLocalBlock(channels, pairwise=pairwise, dim=dim)

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        if self.variant == "spacetime":
            return self.block(x)
        if self.variant == "space":
            z = self.block(x.transpose(1, 2).reshape(b * t, c, h, w))
            return z.reshape(b, t, c, h, w).transpose(1, 2)
        z = self.block(x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t))
        return z.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2)


class VideoNet(nn.Module):
    """C2D (``blocks=0`` or ``variant="none"``) or non-local C2D, for (B, 3, T, H, W) input.

    A miniature ResNet: stem (3x3 conv, 2x2 max-pool), res2 (1 basic block, width w), res3
    (2 blocks, 2w, stride 2), res4 (2 blocks, 4w, stride 2), global average pooling over
    (T, H, W) and a linear classifier. Every convolution is 2-D, applied to each frame: a
    ``Conv2d`` on frames folded into the batch computes exactly a ``Conv3d`` with kernel
    (1, 3, 3), the C2D of the paper (Sec. 4.1), and is faster on a CPU. ``blocks`` non-local blocks
    go after the residual blocks ``PLACES[:blocks]`` (1 block: in res4 before its last residual
    block, where the paper puts the single block of Table 2a; 3: two in res3 and one in res4;
    the paper's 5-block model has 2 in res3 and 3 in res4). Output: logits (B, num_classes).
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
        from nlviz.pairwise import check_pairwise

        self.pairwise = check_pairwise(pairwise)
        self.blocks = check_int("blocks", blocks, minimum=0)
        if self.blocks > MAX_BLOCKS:
            raise ValueError(f"blocks: expected an integer <= {MAX_BLOCKS}, got {blocks}")
        if variant == "none":
            self.blocks = 0
        w = check_int("width", width, minimum=1)
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)
        )
        stages = {
            "res2": [BasicBlock(w, w)],
            "res3": [BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w)],
            "res4": [BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 4 * w)],
        }
        self.layers = nn.ModuleList()
        self.places: list[str] = []  # what each layer is, "res3.0" or "nl@res3.0"
        for stage, stage_blocks in stages.items():
            for i, block in enumerate(stage_blocks):
                self.layers.append(block)
                self.places.append(f"{stage}.{i}")
                if f"{stage}.{i}" in PLACES[: self.blocks]:
                    channels = block.conv2.out_channels
                    self.layers.append(NonLocalVideo(channels, self.variant, self.pairwise))
                    self.places.append(f"nl@{stage}.{i}")
        self.fc = nn.Linear(4 * w, num_classes)

    def nonlocal_blocks(self) -> list[NonLocalVideo]:
        return [m for m in self.layers if isinstance(m, NonLocalVideo)]

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> the last feature map (B, 4w, T, H/8, W/8)."""
        if not isinstance(x, Tensor) or x.ndim != 5 or x.shape[1] != 3:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x: expected a (B, 3, T, H, W) tensor, got {got}")
        h, t = _fold(x)
        h = self.stem(h)
        for layer in self.layers:
            if isinstance(layer, NonLocalVideo):
                h = _fold(layer(_unfold(h, t)))[0]
            else:
                h = layer(h)
        return _unfold(h, t)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3, 4)))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


SAMPLE_SIZE = 48


def write_sample(
    path: str | os.PathLike = SAMPLE_FILE, *, n: int = SAMPLE_SIZE, overwrite: bool = False
) -> VideoBatch:
    """Write the committed sample: the first ``n`` videos of the test split (seed 0).

    Refuses to replace an existing file unless ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"path: {path} exists; pass overwrite=True")
    batch = generate(n, split="test", seed=SPLIT_SEEDS["test"])
    save_sample(path, batch, split="test", seed=SPLIT_SEEDS["test"])
    return batch


if __name__ == "__main__":  # python -m nlviz.video [--overwrite]: (re)write the sample
    import sys

    write_sample(overwrite="--overwrite" in sys.argv[1:])
    print(f"wrote {SAMPLE_FILE.name}")
