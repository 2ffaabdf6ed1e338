"""The networks of the video tasks of ``nlviz.video`` (notebooks 04, 05): C2D, in which every
convolution is 2-D and applied to each frame (paper Sec. 4.1), with non-local blocks in space,
time or spacetime, or ``attention`` blocks of ``nlviz.spacetime`` (notebook 07); ``VideoNet``
classifies a video, ``TrackNet`` labels its pixels.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlviz.block import NonLocalBlock, _check_like
from nlviz.pairwise import _check_tensor, check_pairwise
from nlviz.spacetime import SpacetimeAttention
from nlviz.utils import check_choice, check_int, check_type

__all__ = ["VARIANTS", "PLACES", "VideoNet", "TrackNet", "count_parameters"]

VARIANTS = ("spacetime", "space", "time", "none")
PLACES = ("res4.0", "res3.0", "res3.1", "res4.1")  # where blocks go, in order of use
ATTENTION_PLACES = ("res4.0", "res4.1")  # spacetime attention blocks: at one resolution


def _fold(x: Tensor) -> Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W), contiguous: frames into the batch, for 2-D convs."""
    return x.transpose(1, 2).flatten(0, 1).contiguous()


def _unfold(x: Tensor, t: int) -> Tensor:
    """(B*T, C, H, W) -> (B, C, T, H, W), contiguous."""
    return x.unflatten(0, (-1, t)).transpose(1, 2).contiguous()


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """ResNet basic block on folded frames: two 3x3 convs (= 1x3x3 in video) and a shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(c_in, c_out, stride)
        self.conv2, self.bn2 = _conv(c_out, c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class _NonLocalVideo(nn.Module):
    """A ``NonLocalBlock`` on a video feature map (B, C, T, H, W): "spacetime" (dim 3, j over
    all T H W positions), "space" (dim 2, j in the same frame) or "time" (dim 1, j at the same
    (y, x) in every frame). phi and g are max-pooled 2 x 2 in space only (paper Sec. 3.3), so the
    "time" block does not subsample."""

    def __init__(self, channels: int, variant: str, pairwise: str) -> None:
        super().__init__()
        self.variant = check_choice("variant", variant, VARIANTS[:3])
        dim = {"spacetime": 3, "space": 2, "time": 1}[variant]
        self.block = NonLocalBlock(channels, pairwise=pairwise, dim=dim, subsample=dim != 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        if self.variant == "spacetime":
            return self.block(x)
        if self.variant == "space":
            return _unfold(self.block(_fold(x)), t)
        z = self.block(x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t))
        return z.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2).contiguous()


def _blocks(c: int, variant: str, pairwise: str, attention: dict | None) -> nn.Module:
    """A non-local block of ``variant``, or a ``SpacetimeAttention(c, **attention)``."""
    if attention is None:
        return _NonLocalVideo(c, variant, pairwise)
    return SpacetimeAttention(c, **check_type("attention", attention, dict, "a dict of arguments"))


_BLOCKS = (_NonLocalVideo, SpacetimeAttention)


def _check_input(x, channels: int, weight: Tensor) -> None:
    _check_like(_check_tensor("x", x, 5, f"(B, {channels}, T, H, W)"), weight)
    if x.shape[1] != channels:
        raise ValueError(f"x: expected {channels} channels, got {tuple(x.shape)}")


class VideoNet(nn.Module):
    """C2D (``variant="none"`` or ``blocks=0``) or non-local C2D for "classify", (B, 3, T, H, W).

    A miniature ResNet of 2-D convolutions applied to each frame (C2D, paper Sec. 4.1): stem
    (3x3 conv, 2x2 max-pool), res2 (1 basic block, width w), res3 (2 blocks, 2w, stride 2), res4
    (2 blocks, 4w, stride 2), global average pooling and a linear classifier. ``blocks``
    non-local blocks follow the residual blocks ``PLACES[:blocks]`` (1: in res4 as in Table 2a;
    3: two in res3, one in res4); ``places`` lists them in network order. With ``attention``
    (``SpacetimeAttention``'s arguments) the blocks are those, after ``ATTENTION_PLACES``."""

    def __init__(self, *, variant="spacetime", pairwise="embedded_gaussian", blocks=1, width=16,
                 num_classes=2, attention=None) -> None:  # fmt: skip
        super().__init__()
        self.variant = check_choice("variant", variant, VARIANTS)
        self.pairwise = check_pairwise(pairwise)
        top = 4 if attention is None else len(ATTENTION_PLACES)
        self.blocks = check_int("blocks", blocks, minimum=0, maximum=top) * (variant != "none")
        w = check_int("width", width, minimum=1, maximum=256)
        num_classes = check_int("num_classes", num_classes, minimum=2, maximum=1000)
        self.stem = nn.Sequential(*_conv(3, w), nn.ReLU(), nn.MaxPool2d(2))
        stages = [("res2.0", w, w, 1), ("res3.0", w, 2 * w, 2), ("res3.1", 2 * w, 2 * w, 1),
                  ("res4.0", 2 * w, 4 * w, 2), ("res4.1", 4 * w, 4 * w, 1)]  # fmt: skip
        self.layers, self.places = nn.ModuleList(), []
        for place, c_in, c_out, stride in stages:
            self.layers.append(BasicBlock(c_in, c_out, stride))
            if place in (PLACES if attention is None else ATTENTION_PLACES)[: self.blocks]:
                self.layers.append(_blocks(c_out, self.variant, self.pairwise, attention))
                self.places.append(place)
        self.fc = nn.Linear(4 * w, num_classes)

    def nonlocal_blocks(self) -> list[nn.Module]:
        """The non-local (or attention) blocks in network order (after ``places[k]``)."""
        return [m for m in self.layers if isinstance(m, _BLOCKS)]

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> the last feature map (B, 4w, T, H/8, W/8)."""
        _check_input(x, 3, self.stem[0].weight)
        t, h = x.shape[2], self.stem(_fold(x))
        for layer in self.layers:
            h = _fold(layer(_unfold(h, t))) if isinstance(layer, _BLOCKS) else layer(h)
        return _unfold(h, t)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3, 4)))


class TrackNet(nn.Module):
    """Per-frame convolutions, one spacetime block, per-pixel labels: the "track" network.

    (B, 3 + K, T, H, W), RGB and the reference labels, -> (B, K, T, H, W) label logits. A 3x3
    conv at full resolution (``skip``), then three more to stride 4 (``stem``), all 2-D (C2D),
    see the RGB only, so an object looks alike in every frame; the K label channels, averaged
    over each stride-4 cell, join the features at the block's input. The head is a 1x1 conv on
    the block's output, upsampled, plus one on ``skip``. ``variant="none"``: the per-frame
    baseline, without the block; ``attention``: ``blocks`` ``SpacetimeAttention`` in a row."""

    def __init__(self, *, variant="spacetime", pairwise="embedded_gaussian", labels=4, width=32,
                 blocks=1, attention=None):  # fmt: skip
        super().__init__()
        self.variant = check_choice("variant", variant, ("spacetime", "none"))
        self.pairwise = check_pairwise(pairwise)
        self.labels = check_int("labels", labels, minimum=2, maximum=64)
        w = check_int("width", width, minimum=2, maximum=256)
        self.skip = nn.Sequential(*_conv(3, w // 2), nn.ReLU())
        self.stem = nn.Sequential(*_conv(w // 2, w, 2), nn.ReLU(), *_conv(w, w, 2), nn.ReLU(),
                                  *_conv(w, w), nn.ReLU())  # fmt: skip
        n = check_int("blocks", blocks, minimum=1, maximum=1 if attention is None else 4)
        n *= variant != "none"
        self.layers = nn.ModuleList(_blocks(w + labels, "spacetime", pairwise, attention)
                                    for _ in range(n))  # fmt: skip
        self.places = ["stem"] * len(self.layers)
        self.head = nn.Conv2d(w + labels, labels, 1)
        self.head_skip = nn.Conv2d(w // 2, labels, 1, bias=False)

    def nonlocal_blocks(self) -> list[nn.Module]:
        return list(self.layers)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, 3 + self.labels, self.skip[0].weight)
        f, t = _fold(x), x.shape[2]
        skip = self.skip(f[:, :3].contiguous())
        h = self.stem(skip)
        h = _unfold(torch.cat([h, F.avg_pool2d(f[:, 3:], f.shape[-1] // h.shape[-1])], 1), t)
        for layer in self.layers:
            h = layer(h)
        up = F.interpolate(self.head(_fold(h)), size=skip.shape[-2:], mode="bilinear")  # = the
        return _unfold(up + self.head_skip(skip), t)  # head on [up(h), skip]: 1x1 commutes with up


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
