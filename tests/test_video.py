"""nlviz.video: the generator (determinism, hand-checked labels) and the networks."""

import numpy as np
import pytest
import torch
from torch import nn

from nlviz.nets import _fold, _unfold
from nlviz.video import (
    PALETTE,
    PLACES,
    REF,
    TrackNet,
    VideoNet,
    count_parameters,
    generate,
    load_sample,
    save_sample,
    to_tensor,
    track_tensors,
)


def test_generate_is_deterministic_and_independent_of_batching():
    a = generate(6, split="train", seed=3)
    b = generate(6, split="train", seed=3)
    np.testing.assert_array_equal(a.videos, b.videos)
    np.testing.assert_array_equal(a.labels, b.labels)
    part = generate(2, split="train", seed=3, start=4)  # videos 4 and 5 alone
    np.testing.assert_array_equal(part.videos, a.videos[4:])
    other = generate(6, split="val", seed=3)  # another split: other videos
    assert not np.array_equal(other.videos, a.videos)
    assert a.videos.shape == (6, 8, 32, 32, 3) and a.videos.dtype == np.uint8


def test_labels_match_colours_and_objects_appear_where_stated():
    batch = generate(40, seed=0)
    np.testing.assert_array_equal(batch.labels, batch.colors[:, 0] == batch.colors[:, 1])
    assert 0.25 < batch.labels.mean() < 0.75
    half = 4
    for v in range(len(batch)):
        tracks = batch.tracks[v]
        assert np.isnan(tracks[0, half:]).all() and not np.isnan(tracks[0, :half]).any()
        assert np.isnan(tracks[1, :half]).all() and not np.isnan(tracks[1, half:]).any()
        # A and B far apart: mean centres at least 0.4 * size = 12.8 pixels
        dist = np.linalg.norm(np.nanmean(tracks[0], 0) - np.nanmean(tracks[1], 0))
        assert dist >= 12.8


def _pixel(batch, v, obj, t):
    y, x = np.round(batch.tracks[v, obj, t]).astype(int)
    return batch.videos[v, t, y, x].astype(float) / 255


@pytest.mark.parametrize("v", range(6))
def test_hand_checked_colours_at_object_centres(v):
    """The centre pixel of A (frame 0) and B (last frame) has the hue of their palette colour."""
    batch = generate(6, seed=1)
    ca, cb = batch.colors[v]
    pa, pb = _pixel(batch, v, 0, 0), _pixel(batch, v, 1, 7)
    # brightness jitter in [0.85, 1.05]: the nearest palette colour after normalising
    for pixel, c in ((pa, ca), (pb, cb)):
        unit = PALETTE / np.linalg.norm(PALETTE, axis=1, keepdims=True)
        assert np.argmax(unit @ (pixel / np.linalg.norm(pixel))) == c
    assert (np.argmax(unit @ pa) == np.argmax(unit @ pb)) == bool(batch.labels[v])


def test_first_half_frames_have_no_b_and_second_half_no_a():
    batch = generate(1, seed=7)
    ca, cb = batch.colors[0]
    sat = batch.videos[0].astype(float).max(-1) - batch.videos[0].astype(float).min(-1)
    coloured = sat > 0.3 * 255  # the background and the grey distractors are unsaturated
    assert coloured[:4].sum(axis=(1, 2)).min() > 10  # A in every early frame
    assert coloured[4:].sum(axis=(1, 2)).min() > 10  # B in every late frame
    ya, xa = batch.tracks[0, 0, 0]
    yb, xb = batch.tracks[0, 1, 7]
    assert not coloured[7, int(ya), int(xa)] or np.hypot(ya - yb, xa - xb) < 8
    assert not coloured[0, int(yb), int(xb)] or np.hypot(ya - yb, xa - xb) < 8


def test_generate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        generate(2, split="training")
    with pytest.raises(TypeError, match="n"):
        generate(2.5)
    with pytest.raises(ValueError, match="size"):
        generate(2, size=8)


def test_sample_round_trip(tmp_path):
    batch = generate(3, seed=2)
    path = tmp_path / "s.npz"
    save_sample(path, batch)
    back = load_sample(path)
    np.testing.assert_array_equal(back.videos, batch.videos)
    np.testing.assert_array_equal(back.tracks, batch.tracks)
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(FileNotFoundError, match="path"):
        load_sample(tmp_path / "missing.npz")


def test_committed_sample_loads():
    sample = load_sample()
    assert sample.videos.ndim == 5 and sample.videos.dtype == np.uint8
    np.testing.assert_array_equal(sample.labels, sample.colors[:, 0] == sample.colors[:, 1])


def test_to_tensor_layout_and_range():
    batch = generate(2, seed=0)
    x = to_tensor(batch.videos)
    assert x.shape == (2, 3, 8, 32, 32) and x.dtype == torch.float32
    assert -1.0 <= x.min() and x.max() <= 1.0
    with pytest.raises(ValueError, match="videos"):
        to_tensor(batch.videos[0])


def test_folded_conv2d_is_a_1x3x3_conv3d():
    """C2D: a Conv2d on frames folded into the batch computes a Conv3d with kernel (1, 3, 3)."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 6, 6)
    c2 = nn.Conv2d(4, 5, 3, padding=1)
    c3 = nn.Conv3d(4, 5, (1, 3, 3), padding=(0, 1, 1))
    with torch.no_grad():
        c3.weight.copy_(c2.weight[:, :, None])
        c3.bias.copy_(c2.bias)
    torch.testing.assert_close(_unfold(c2(_fold(x)), 3), c3(x))


@pytest.mark.parametrize("variant", ["spacetime", "space", "time", "none"])
def test_forward_backward_each_variant(variant):
    torch.manual_seed(0)
    model = VideoNet(variant=variant, blocks=3, width=4)
    x = torch.randn(2, 3, 4, 16, 16)
    logits = model(x)
    assert logits.shape == (2, 2)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    n_nl = len(model.nonlocal_blocks())
    assert n_nl == (0 if variant == "none" else 3)


def test_nonlocal_blocks_are_identity_at_init_so_nl_c2d_starts_as_c2d():
    torch.manual_seed(0)
    c2d = VideoNet(variant="none", width=4).eval()
    torch.manual_seed(0)
    nl = VideoNet(variant="spacetime", blocks=1, width=4).eval()
    assert nl.places == ["res4.0"]  # 1 block: in res4, before its last residual block
    assert nl.layers[4] is nl.nonlocal_blocks()[0]
    nl_state = {k: v for k, v in nl.state_dict().items() if "layers.4." not in k}
    # same backbone weights; copy them across
    c2d_keys = list(c2d.state_dict())
    assert len(c2d_keys) == len(nl_state)
    c2d.load_state_dict(dict(zip(c2d_keys, nl_state.values(), strict=True)))
    x = torch.randn(2, 3, 4, 16, 16)
    torch.testing.assert_close(nl(x), c2d(x))


def test_c2d_features_of_a_frame_depend_only_on_that_frame():
    """The reason C2D cannot relate frames: changing frame 3 changes only frame 3's features."""
    torch.manual_seed(0)
    model = VideoNet(variant="none", width=4).eval()
    x = torch.randn(1, 3, 4, 16, 16)
    y = x.clone()
    y[:, :, 3] += 1.0
    fx, fy = model.features(x), model.features(y)
    torch.testing.assert_close(fx[:, :, :3], fy[:, :, :3])
    assert not torch.allclose(fx[:, :, 3], fy[:, :, 3])


def test_spacetime_block_lets_frames_interact():
    torch.manual_seed(0)
    model = VideoNet(variant="spacetime", blocks=1, width=4).eval()
    for m in model.modules():  # make the block non-trivial (BN of W_z starts at zero)
        if isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
    x = torch.randn(1, 3, 4, 16, 16)
    y = x.clone()
    y[:, :, 3] += 1.0
    fx, fy = model.features(x), model.features(y)
    assert not torch.allclose(fx[:, :, 0], fy[:, :, 0])


def test_placement_and_parameter_counts():
    model = VideoNet(variant="spacetime", blocks=3, width=8)
    assert model.places == ["res3.0", "res3.1", "res4.0"]  # 2 in res3, 1 in res4
    assert sorted(model.places) == sorted(PLACES[:3])
    assert count_parameters(model) > count_parameters(VideoNet(variant="none", width=8))
    with pytest.raises(ValueError, match="blocks"):
        VideoNet(blocks=9)
    with pytest.raises(ValueError, match="variant"):
        VideoNet(variant="spatial")
    with pytest.raises(ValueError, match="pairwise"):
        VideoNet(pairwise="cosine")


# ------------------------------------------------------------------ the track task


def test_track_videos_are_deterministic_masks_and_labels_agree():
    a = generate(5, task="track", split="val", seed=2)
    assert a.videos.shape == (5, 4, 48, 48, 3) and a.masks.shape == (5, 4, 48, 48)
    assert a.task == "track" and a.labels.shape == (5, 4) and a.sprites.shape == (5, 4)
    part = generate(2, task="track", split="val", seed=2, start=3)
    np.testing.assert_array_equal(part.videos, a.videos[3:])
    for v in range(5):
        assert sorted(a.labels[v]) == [0, 1, 2, 3]  # a permutation, one label per object
        assert len(set(a.sprites[v])) == 4  # four different photographs
        for k in range(4):  # every object at least half visible in the reference frame
            visible = (a.masks[v, REF] == k).sum() / (np.pi * a.radius[v, k] ** 2)
            assert visible >= 0.5
    background = a.masks == -1
    assert 0.5 < background.mean() < 0.9  # objects are a good part of the picture


def test_track_tensors_give_labels_in_the_reference_frame_only():
    batch = generate(3, task="track", split="test")
    x, target = track_tensors(batch.videos, batch.masks, batch.labels)
    assert x.shape == (3, 7, 4, 48, 48) and x.is_contiguous() and target.dtype == torch.int64
    onehot = x[:, 3:]
    assert onehot[:, :, 1:].abs().sum() == 0  # nothing but frame REF = 0
    for v in range(3):
        for k in range(4):
            label = batch.labels[v, k]
            on = torch.from_numpy(batch.masks[v, 0] == k)
            assert torch.equal(onehot[v, label, 0].bool(), on)  # the label's channel: the object
            seen = torch.from_numpy(batch.masks[v, 1:] == k)
            assert (target[v, 1:][seen] == label).all()
    assert (target[:, 0] == -1).all() and (target[torch.from_numpy(batch.masks) < 0] == -1).all()


def test_a_per_frame_track_network_sees_no_other_frame_and_is_frame_equivariant():
    torch.manual_seed(0)
    batch = generate(2, task="track", split="test", size=32)
    x, _ = track_tensors(batch.videos, batch.masks, batch.labels)
    per_frame = TrackNet(variant="none", width=8).eval()
    y = x.clone()
    y[:, :, 0] += 0.5  # change the reference frame (RGB and labels)
    with torch.no_grad():
        torch.testing.assert_close(per_frame(x)[:, :, 1:], per_frame(y)[:, :, 1:])
        nl = TrackNet(width=8).eval()
        for m in nl.modules():  # make the block's W_z non-zero
            if isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
        assert not torch.allclose(nl(x)[:, :, 1:], nl(y)[:, :, 1:])  # the block relates frames
        perm = torch.tensor([2, 0, 3, 1])  # the block has no positional code: frames permute
        torch.testing.assert_close(
            nl(x)[:, :, perm], nl(x[:, :, perm].contiguous()), atol=1e-5, rtol=1e-4
        )


def test_track_network_shapes_and_bad_input():
    model = TrackNet(width=8, labels=3)
    x = torch.randn(2, 6, 4, 32, 32)
    out = model(x)
    assert out.shape == (2, 3, 4, 32, 32)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.places == ["stem"] and len(model.nonlocal_blocks()) == 1
    with pytest.raises(ValueError, match="x: expected 6 channels"):
        model(torch.randn(2, 7, 4, 32, 32))
    with pytest.raises(ValueError, match="variant"):
        TrackNet(variant="space")
    with pytest.raises(ValueError, match="objects"):
        generate(2, task="track", objects=2)
