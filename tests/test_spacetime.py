"""Tests of nlviz.spacetime against a plain N x N reference written here (loops over queries)."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nlviz.nets import TrackNet, VideoNet, count_parameters
from nlviz.spacetime import MODES, SpacetimeAttention, _steps, pairs, weights_fn
from nlviz.train import Config, load_checkpoint, train

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "data" / "checkpoints"

SHAPE = (3, 5, 7)  # odd sizes: windows of 2 pad every axis
C = 8
CASES = [
    ("joint", {}),
    ("divided", {}),
    ("axial", {}),
    ("windowed", {"window": (2, 2, 3)}),
    ("windowed", {"window": (2, 3, 2), "shift": True}),
    ("windowed", {"window": (1, 5, 7)}),
]


def _flat(conv):
    return conv.weight.reshape(conv.out_channels, conv.in_channels), conv.bias


def _windows_of(mode, shape, block):
    """(size, offset) of each step, from the paper's descriptions, not from nlviz."""
    T, H, W = shape
    if mode == "joint":
        return [(shape, (0, 0, 0))]
    if mode == "divided":
        return [((T, 1, 1), (0, 0, 0)), ((1, H, W), (0, 0, 0))]
    if mode == "axial":
        return [((T, 1, 1), (0, 0, 0)), ((1, H, 1), (0, 0, 0)), ((1, 1, W), (0, 0, 0))]
    size = tuple(min(a, b) for a, b in zip(block.window, shape, strict=True))
    half = tuple(s // 2 for s in size)
    return [(size, (0, 0, 0))] + ([(size, half)] if block.shift else [])


def _window(coord, size, offset) -> list[int]:
    """Which window a position falls in, per axis, for windows ``size`` shifted by ``offset``."""
    return [(c + o) // s for c, o, s in zip(coord, offset, size, strict=True)]


def reference(block: SpacetimeAttention, x: torch.Tensor):
    """z and each step's (B, heads, N, N) weights, one query at a time.

    The note: w_z's input is made contiguous. Without it, z is a channels-last-strided 5-D view
    and BatchNorm3d's backward returns wrong gradients for x on torch 2.13's CPU build (seen
    here on AMD Zen 5: gradcheck fails; ``nlviz`` makes the tensor contiguous first)."""
    B, _, T, H, W = x.shape
    coords = list(itertools.product(range(T), range(H), range(W)))
    p = block._positions(x)
    h, mats = x, []
    for k, (size, offset) in enumerate(_windows_of(block.mode, (T, H, W), block)):
        tok = h.flatten(2).transpose(1, 2)  # (B, N, C)
        tokp = (h + p).flatten(2).transpose(1, 2)
        (wt, bt), (wp, bp), (wg, bg) = (_flat(m[k]) for m in (block.theta, block.phi, block.g))
        theta, phi, g = tokp @ wt.T + bt, tokp @ wp.T + bp, tok @ wg.T + bg
        d = theta.shape[-1] // block.heads
        rows, mat = [], torch.zeros(B, block.heads, len(coords), len(coords), dtype=x.dtype)
        for i, ci in enumerate(coords):
            js = [
                j
                for j, cj in enumerate(coords)
                if _window(cj, size, offset) == _window(ci, size, offset)
            ]
            for head in range(block.heads):
                sl = slice(head * d, (head + 1) * d)
                logits = theta[:, i, sl][:, None] * phi[:, js, sl]
                logits = logits.sum(-1) / (math.sqrt(d) if block.scale else 1.0)
                w = logits.softmax(-1)  # (B, |js|)
                mat[:, head, i, js] = w.detach()
                rows.append((w[..., None] * g[:, js, sl]).sum(1))  # (B, d)
        y = torch.stack(rows, 1).reshape(B, len(coords), -1)  # (B, N, C')
        conv, bn = block.w_z[k]
        wz, bz = _flat(conv)
        z = (y @ wz.T + bz).transpose(1, 2).reshape(B, -1, T, H, W)
        z = z.contiguous()  # BatchNorm3d's backward: see the note above
        h = h + bn(z)
        mats.append(mat)
    return h, mats


def _block(mode, kw, heads=2, positions="none", scale=False):
    torch.manual_seed(0)
    b = SpacetimeAttention(C, mode=mode, heads=heads, inter_channels=12, positions=positions,
                           shape=SHAPE, scale=scale, **kw).double().eval()  # fmt: skip
    for k in range(len(b.w_z)):  # not the identity: w_z's BatchNorm made non-zero
        torch.nn.init.normal_(b.w_z[k][1].weight)
        torch.nn.init.normal_(b.w_z[k][1].bias)
    return b


@pytest.mark.parametrize(("mode", "kw"), CASES, ids=lambda c: str(c))
@pytest.mark.parametrize("positions", ["none", "learned", "sinusoidal"])
def test_forward_and_weights_match_the_reference(mode, kw, positions):
    b = _block(mode, kw, positions=positions, scale=positions == "sinusoidal")
    x = torch.randn(2, C, *SHAPE, dtype=torch.float64)
    z, mats = reference(b, x)
    torch.testing.assert_close(b(x), z, rtol=1e-10, atol=1e-10)
    for got, want in zip(b.step_matrices(x), mats, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("mode", "kw"), CASES[:4], ids=lambda c: str(c))
def test_gradients_match_the_reference(mode, kw):
    b = _block(mode, kw)
    x = torch.randn(1, C, *SHAPE, dtype=torch.float64, requires_grad=True)
    z = b(x)
    grads = torch.autograd.grad((z * z.detach().cos()).sum(), [x, *b.parameters()])
    z_ref = reference(b, x)[0]
    want = torch.autograd.grad((z_ref * z_ref.detach().cos()).sum(), [x, *b.parameters()])
    for got, ref in zip(grads, want, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(1, 4, 4), (4, 1, 1), (2, 3, 1)])
def test_one_frame_and_thin_grids(mode, shape):
    b = _block(mode, {"window": (2, 2, 2)})
    x = torch.randn(1, C, *shape, dtype=torch.float64)
    torch.testing.assert_close(b(x), reference(b, x)[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_a_new_block_is_the_identity(mode):
    b = SpacetimeAttention(C, mode=mode, heads=2, inter_channels=12)
    x = torch.randn(2, C, *SHAPE)
    assert torch.equal(b.train()(x), x) and torch.equal(b.eval()(x), x)


@pytest.mark.parametrize(("mode", "kw"), CASES, ids=lambda c: str(c))
def test_composed_weights_are_the_product_of_the_steps(mode, kw):
    b = _block(mode, kw)
    x = torch.randn(1, C, *SHAPE, dtype=torch.float64)
    mats = [m.mean(1)[0] for m in reference(b, x)[1]]
    want = mats[-1]
    for m in reversed(mats[:-1]):
        want = want @ m
    q = (2, 4, 6)
    i = (q[0] * SHAPE[1] + q[1]) * SHAPE[2] + q[2]
    row = b.attention(x, q)[0].flatten()
    torch.testing.assert_close(row, want[i], rtol=1e-10, atol=1e-12)
    assert abs(float(row.sum()) - 1) < 1e-12
    head1 = b.attention(x, q, head=1, step=0)[0].flatten()
    torch.testing.assert_close(head1, reference(b, x)[1][0][0, 1, i], rtol=1e-10, atol=1e-12)
    fn = weights_fn(b, x)
    assert fn(*q).shape == SHAPE and abs(fn(*q).flatten() - want[i].numpy()).max() < 1e-12


def test_divided_weights_reach_only_the_query_column_then_its_frame():
    b = _block("divided", {})
    x = torch.randn(1, C, *SHAPE, dtype=torch.float64)
    time, space = (b.attention(x, (1, 2, 3), step=s)[0] for s in (0, 1))
    assert (time > 0).sum() == SHAPE[0] and (time[:, 2, 3] > 0).all()
    assert (space > 0).sum() == SHAPE[1] * SHAPE[2] and (space[1] > 0).all()
    assert (b.attention(x, (1, 2, 3))[0] > 0).all()  # two steps reach every position


def test_frame_permutation_equivariance_and_what_positions_change():
    x = torch.randn(1, C, *SHAPE, dtype=torch.float64)
    perm = torch.tensor([2, 0, 1])
    for positions, equivariant in (("none", True), ("sinusoidal", False), ("learned", False)):
        b = _block("joint", {}, positions=positions)
        same = torch.allclose(b(x[:, :, perm]), b(x)[:, :, perm], atol=1e-10)
        assert same == equivariant, positions


@pytest.mark.parametrize(
    ("mode", "kw", "per_query"),
    [
        ("joint", {}, lambda T, H, W: T * H * W),
        ("divided", {}, lambda T, H, W: T + H * W),
        ("axial", {}, lambda T, H, W: T + H + W),
        ("windowed", {"window": (2, 4, 4)}, lambda T, H, W: 2 * 4 * 4),
    ],
)
@pytest.mark.parametrize("shape", [(8, 16, 16), (4, 8, 12), (16, 4, 4)])
def test_cost_counter_matches_the_formulas(mode, kw, per_query, shape):
    assert pairs(mode, shape, **kw) == math.prod(shape) * per_query(*shape)


def test_cost_counter_counts_padded_and_shifted_windows_whole():
    assert pairs("windowed", (3, 5, 7), window=(2, 2, 2)) == 2 * 3 * 4 * 8**2
    assert pairs("windowed", (4, 4, 4), window=(2, 2, 2), shift=True) == 8 * 64 + 27 * 64
    assert len(_steps("windowed", (4, 4, 4), (2, 2, 2), True)) == 2


def test_timesformer_comparisons_per_patch():
    """TimeSformer (Sec. 3): joint NF + 1, divided N + F + 2 with the class token."""
    F_, N = 8, 14 * 14
    assert pairs("joint", (F_, 14, 14)) // (F_ * N) + 1 == N * F_ + 1
    assert pairs("divided", (F_, 14, 14)) // (F_ * N) + 2 == N + F_ + 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "local"}, ValueError, "mode: expected one of"),
        ({"heads": 5}, ValueError, "heads: expected a divisor"),
        ({"window": (2, 2)}, ValueError, "window: expected"),
        ({"window": 3}, TypeError, "window: expected"),
        ({"positions": "learned"}, TypeError, "shape: expected"),
        ({"positions": "rotary"}, ValueError, "positions: expected one of"),
        ({"inter_channels": 0}, ValueError, "inter_channels"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        SpacetimeAttention(C, **kwargs)


def test_bad_inputs_are_named():
    b = SpacetimeAttention(C, mode="divided", positions="learned", shape=SHAPE)
    with pytest.raises(ValueError, match="x: expected 8 channels"):
        b(torch.randn(1, 4, *SHAPE))
    with pytest.raises(ValueError, match="learned"):
        b(torch.randn(1, C, 2, 5, 7))
    with pytest.raises(TypeError, match="x: expected torch.float32"):
        b(torch.randn(1, C, *SHAPE, dtype=torch.float64))
    with pytest.raises(ValueError, match="query"):
        b.attention(torch.randn(1, C, *SHAPE), (3, 0, 0))
    with pytest.raises(ValueError, match="step"):
        b.attention(torch.randn(1, C, *SHAPE), (0, 0, 0), step=2)
    with pytest.raises(ValueError, match="shape: expected"):
        pairs("joint", (4, 4))


def test_networks_of_every_mode_have_one_parameter_budget():
    """+-5 % across the modes of notebook 07 (2 heads, C' = 24 split over the blocks)."""
    for net, kw in ((TrackNet, {}), (VideoNet, {"width": 8})):
        counts = []
        for mode, window, blocks in [("joint", (1, 1, 1), 1), ("divided", (1, 1, 1), 1),
                                     ("divided", (1, 1, 1), 2), ("axial", (1, 1, 1), 1),
                                     ("windowed", (2, 2, 2), 1)]:  # fmt: skip
            a = {"mode": mode, "window": window, "heads": 2, "inter_channels": 24 // blocks}
            counts.append(count_parameters(net(attention=a, blocks=blocks, **kw)))
        counts.append(count_parameters(net(**kw)))  # the non-local block
        assert max(counts) / min(counts) < 1.05, counts


TINY = Config(n_train=64, n_val=16, epochs=4, width=4, frames=4, size=16, lr=5e-3)
MODEL_ARGS = [("joint", 1, {}), ("divided", 1, {}), ("divided", 2, {}), ("axial", 1, {}),
              ("windowed", 1, {"window": (4, 2, 2), "shift": True})]  # fmt: skip


@pytest.mark.parametrize(("mode", "blocks", "kw"), MODEL_ARGS, ids=lambda a: str(a))
def test_a_tiny_training_run_of_each_mode_lowers_the_loss(mode, blocks, kw):
    attention = {"mode": mode, "heads": 2, "inter_channels": 24 // blocks, **kw}
    run = train(TINY, attention=attention, blocks=blocks, seed=0, device="cpu",
                progress=False)  # fmt: skip
    losses = run.history["train_loss"]
    assert all(b < a for a, b in itertools.pairwise(losses)) and losses[-1] < 0.95 * losses[0]
    assert run.checkpoint["model"]["attention"] == attention
    assert len(run.model.nonlocal_blocks()) == blocks


SCRIPT = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from nlviz.train import Config, train
config = Config(n_train=32, n_val=16, epochs=2, width=8, frames=4, size=32, batch_size=16,
                task="track")
for mode in ("divided", "windowed", "divided", "windowed"):  # twice each
    a = {"mode": mode, "heads": 2, "inter_channels": 12, "window": (2, 4, 4), "shift": True}
    run = train(config, attention=a, seed=1, device="cpu", progress=False)
    print(json.dumps({mode: run.history["train_loss"] + run.history["val_loss"]}))
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_training_is_bit_identical_across_runs_and_processes(threads):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", SCRIPT, str(threads)], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append([json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")])
    (a, b), (c, d) = outs[0][:2], outs[0][2:]
    assert outs[0] == outs[1] and a == c and b == d, outs


@pytest.mark.parametrize("path", sorted(CHECKPOINTS.glob("spacetime_*.pt")), ids=lambda p: p.name)
def test_committed_checkpoints_are_small_and_load_weights_only(path):
    assert path.stat().st_size < 1_000_000
    raw = torch.load(path, map_location="cpu", weights_only=True)
    model, ckpt = load_checkpoint(path)
    assert raw["model"]["attention"]["mode"] in MODES and ckpt["seed"] == 0
    assert all(isinstance(b, SpacetimeAttention) for b in model.nonlocal_blocks())


@pytest.mark.parametrize(("mode", "kw"), CASES, ids=lambda c: str(c))
def test_attention_reaches_sdpa_contiguous(mode, kw, monkeypatch):
    """A strided q, k or v makes scaled_dot_product_attention fall back, silently, to its math
    kernel, which stores N x N weights per head (benchmarks/bench_spacetime.py's anchor)."""
    import nlviz.spacetime as st

    seen, sdpa = [], st.F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        seen.append(all(t.is_contiguous() for t in (q, k, v)))
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(st.F, "scaled_dot_product_attention", spy)
    SpacetimeAttention(C, mode=mode, heads=2, inter_channels=12, **kw)(torch.randn(1, C, *SHAPE))
    assert seen and all(seen)
