"""Tests of nlviz.block.NonLocalBlock against a plain N x N' reference written here."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from nlviz import NonLocalBlock
from nlviz.pairwise import PAIRWISE

SIZES = {1: (7,), 2: (5, 7), 3: (3, 5, 7)}  # odd sizes: pooling keeps the last row/column
C = 6


def _flat(conv: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 conv as a matrix W (out, in) and a bias (out,)."""
    return conv.weight.reshape(conv.out_channels, conv.in_channels), conv.bias


def _pool_reference(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Max over 2-wide windows of the spatial axes (not time), odd sizes padded with -inf."""
    axes = list(range(t.ndim - 2, t.ndim)) if dim >= 2 else [t.ndim - 1]
    for axis in axes:
        size = t.shape[axis]
        if size % 2:
            pad_shape = list(t.shape)
            pad_shape[axis] = 1
            t = torch.cat([t, torch.full(pad_shape, -math.inf, dtype=t.dtype)], dim=axis)
        shape = list(t.shape)
        shape[axis : axis + 1] = [t.shape[axis] // 2, 2]
        t = t.reshape(shape).amax(dim=axis + 1)
    return t


def reference(block: NonLocalBlock, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1-6 with explicit matrices. Returns z (shape of x) and the (B, N, N') weights."""
    b, c = x.shape[:2]
    spatial = x.shape[2:]
    xs = x.reshape(b, c, -1)  # (B, C, N)

    def conv_then_pool(conv):  # (B, C', N') after the pool, or x itself for "gaussian"
        out = xs if conv is None else _flat(conv)[0] @ xs + _flat(conv)[1][:, None]
        out = out.reshape(b, -1, *spatial)
        if block.subsample:
            out = _pool_reference(out, block.dim)
        return out.reshape(b, out.shape[1], -1)

    theta = xs if block.theta is None else _flat(block.theta)[0] @ xs + block.theta.bias[:, None]
    phi = conv_then_pool(block.phi)
    g = conv_then_pool(block.g)
    m = phi.shape[-1]
    if block.pairwise == "concatenation":
        n = theta.shape[-1]
        pairs = torch.cat(  # (B, 2C', N, N'): the tensor public code builds
            [theta[:, :, :, None].expand(-1, -1, n, m), phi[:, :, None, :].expand(-1, -1, n, m)],
            dim=1,
        )
        f = torch.relu(torch.einsum("k,bknm->bnm", block.w_f.weight[0], pairs))
        weights = f / m
    else:
        dots = theta.transpose(1, 2) @ phi  # (B, N, N')
        if block.scale:
            dots = dots / math.sqrt(theta.shape[1])
        if block.pairwise == "dot_product":
            weights = dots / m
        else:  # both Gaussian forms: exp / sum over j, shifted by the row max for stability
            f = torch.exp(dots - dots.amax(dim=-1, keepdim=True))
            weights = f / f.sum(dim=-1, keepdim=True)
    y = weights @ g.transpose(1, 2)  # (B, N, C')
    conv_z = block.w_z[0]
    wz = _flat(conv_z)[0] @ y.transpose(1, 2) + conv_z.bias[:, None]  # (B, C, N)
    if block.use_bn:
        bn = block.w_z[1]
        assert not bn.training
        wz = (wz - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps)
        wz = wz * bn.weight[:, None] + bn.bias[:, None]
    return (wz + xs).reshape(x.shape), weights


def _randomise(block: NonLocalBlock, seed: int = 0) -> NonLocalBlock:
    """Non-trivial W_z: random BN weight, bias and running statistics (or conv), eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.w_z[0].parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
        if block.use_bn:
            bn = block.w_z[1]
            bn.weight.copy_(1.0 + 0.5 * torch.randn(bn.weight.shape, generator=gen))
            bn.bias.copy_(0.5 * torch.randn(bn.bias.shape, generator=gen))
            bn.running_mean.copy_(0.3 * torch.randn(bn.running_mean.shape, generator=gen))
            bn.running_var.copy_(0.5 + torch.rand(bn.running_var.shape, generator=gen))
    return block.eval()


def _input(dim: int, batch: int = 2, seed: int = 1, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (0.7 * torch.randn(batch, C, *SIZES[dim], generator=gen)).to(dtype)


CASES = list(itertools.product(PAIRWISE, (1, 2, 3), (True, False)))


@pytest.mark.parametrize(("pairwise", "dim", "subsample"), CASES)
def test_forward_matches_reference(pairwise, dim, subsample):
    torch.manual_seed(0)
    block = _randomise(NonLocalBlock(C, pairwise=pairwise, dim=dim, subsample=subsample))
    x = _input(dim)
    with torch.no_grad():
        z = block(x)
        z_ref, _ = reference(block.double(), x.double())
    assert z.shape == x.shape
    torch.testing.assert_close(z.double(), z_ref, rtol=1e-5, atol=1e-5)
    # The non-local term itself (not only the residual x) must match.
    torch.testing.assert_close((z - x).double(), z_ref - x.double(), rtol=1e-5, atol=1e-5)
    assert (z_ref - x.double()).abs().max() > 0.1


@pytest.mark.parametrize(("pairwise", "dim", "subsample"), CASES)
def test_attention_is_a_row_of_the_reference(pairwise, dim, subsample):
    torch.manual_seed(0)
    block = _randomise(NonLocalBlock(C, pairwise=pairwise, dim=dim, subsample=subsample))
    x = _input(dim)
    spatial = x.shape[2:]
    pooled = block.pooled_shape(spatial)
    with torch.no_grad():
        _, weights = reference(block.double(), x.double())
        block.float()
        for query in [(0,) * dim, tuple(s - 1 for s in spatial), tuple(s // 2 for s in spatial)]:
            att = block.attention(x, query)
            assert att.shape == (x.shape[0], *pooled)
            row = weights[:, block.flat_index(query, spatial)].reshape(att.shape)
            torch.testing.assert_close(att.double(), row, rtol=1e-5, atol=1e-6)
            if pairwise in ("gaussian", "embedded_gaussian"):
                torch.testing.assert_close(att.sum(dim=tuple(range(1, att.ndim))), torch.ones(2))


def test_pooled_shape_and_flat_index():
    block = NonLocalBlock(4, dim=3)
    assert block.pooled_shape((4, 7, 1)) == (4, 4, 1)  # time never pooled; ceil on odd, 1 stays
    assert NonLocalBlock(4, dim=2, subsample=False).pooled_shape((5, 7)) == (5, 7)
    assert block.flat_index((1, 2, 3), (4, 5, 6)) == (1 * 5 + 2) * 6 + 3
    x = torch.randn(1, 4, 4, 7, 1)
    theta, phi, g = block.embed(x)
    assert theta.shape == (1, 28, 2) and phi.shape == (1, 16, 2) and g.shape == (1, 16, 2)
    flat = block.flat_index((3, 6, 0), (4, 7, 1))
    torch.testing.assert_close(theta[0, flat], block.theta(x)[0, :, 3, 6, 0])


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_size_one_and_tiny_inputs(dim):
    block = _randomise(NonLocalBlock(C, pairwise="embedded_gaussian", dim=dim))
    x = torch.randn(1, C, *([1] * dim))
    with torch.no_grad():
        z, (z_ref, w) = block(x), reference(block, x)
    torch.testing.assert_close(z, z_ref, rtol=1e-5, atol=1e-5)
    assert w.shape == (1, 1, 1)


@pytest.mark.parametrize("use_bn", [True, False])
@pytest.mark.parametrize("pairwise", PAIRWISE)
def test_identity_at_init(pairwise, use_bn):
    block = NonLocalBlock(C, pairwise=pairwise, dim=3, use_bn=use_bn)
    x = torch.randn(2, C, 2, 5, 3)
    for mode in (block.train, block.eval):
        mode()
        assert torch.equal(block(x), x)
    z = block.train()(x)
    z.sum().backward()
    # The zero W_z still receives a gradient, so training moves the block off the identity.
    last = block.w_z[1].weight if use_bn else block.w_z[0].weight
    assert last.grad is not None and last.grad.abs().sum() > 0


def test_inserting_a_new_block_changes_nothing_downstream():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 4, 3))
    with_block = torch.nn.Sequential(net[0], NonLocalBlock(8, dim=2), net[1])
    x = torch.randn(2, 3, 9, 10)
    z = with_block[:2](x)
    assert z.is_contiguous()
    assert torch.equal(with_block(x), net(x))  # bit for bit, not only to rounding


@pytest.mark.parametrize("pairwise", PAIRWISE)
def test_gradients_reach_every_weight(pairwise):
    torch.manual_seed(0)
    block = NonLocalBlock(C, pairwise=pairwise, dim=2)
    _randomise(block).train()  # BN non-zero; training mode
    x = _input(2).requires_grad_(True)
    (block(x) ** 2).sum().backward()
    named = dict(block.named_parameters())
    expected = ["g.weight", "g.bias", "w_z.0.weight", "w_z.1.weight", "w_z.1.bias"]
    if pairwise != "gaussian":
        expected += ["theta.weight", "phi.weight"]
    if pairwise == "concatenation":
        expected += ["w_f.weight"]
    for name in expected:
        grad = named[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("pairwise", PAIRWISE)
def test_gradcheck_double(pairwise):
    torch.manual_seed(0)
    block = _randomise(NonLocalBlock(4, pairwise=pairwise, dim=2, inter_channels=2)).double()
    params = {k: v.detach().clone().requires_grad_(True) for k, v in block.named_parameters()}
    names = list(params)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)

    def run(x, *values):
        return torch.func.functional_call(block, dict(zip(names, values, strict=True)), (x,))

    assert torch.autograd.gradcheck(run, (x, *params.values()), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("pairwise", ["embedded_gaussian", "dot_product"])
def test_scale_divides_by_sqrt_channels(pairwise):
    torch.manual_seed(0)
    block = _randomise(NonLocalBlock(C, pairwise=pairwise, dim=1, scale=True))
    x = _input(1)
    with torch.no_grad():
        z_ref, w_ref = reference(block.double(), x.double())
        block.float()
        torch.testing.assert_close(block(x).double(), z_ref, rtol=1e-5, atol=1e-5)
        unscaled = NonLocalBlock(C, pairwise=pairwise, dim=1, scale=False)
        unscaled.load_state_dict(block.state_dict())
        assert not torch.allclose(unscaled.eval()(x), block(x))


def test_submodules_and_attributes():
    block = NonLocalBlock(8, pairwise="concatenation", dim=3)
    assert (block.in_channels, block.inter_channels, block.dim) == (8, 4, 3)
    assert block.w_f.weight.shape == (1, 8) and block.w_f.bias is None
    assert block.w_f_vector.shape == (8,)
    assert isinstance(block.theta, torch.nn.Conv3d) and block.theta.weight.shape == (4, 8, 1, 1, 1)
    assert isinstance(block.w_z[1], torch.nn.BatchNorm3d)
    assert block.pool.kernel_size == (1, 2, 2) and block.pool.ceil_mode
    gauss = NonLocalBlock(1, pairwise="gaussian", dim=1, subsample=False)
    assert gauss.theta is None and gauss.phi is None and gauss.w_f_vector is None
    assert gauss.inter_channels == 1 and isinstance(gauss.pool, torch.nn.Identity)
    assert len(NonLocalBlock(4, dim=2, use_bn=False).w_z) == 1


def test_never_builds_the_full_matrix(monkeypatch):
    """forward() goes through the efficient aggregate, not the N x N' affinity."""
    import nlviz.block

    def forbidden(*args, **kwargs):
        raise AssertionError("forward() called the naive affinity")

    monkeypatch.setattr(nlviz.block, "affinity", forbidden)
    for pairwise in PAIRWISE:
        NonLocalBlock(C, pairwise=pairwise, dim=2)(_input(2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_channels": 0}, "in_channels"),
        ({"in_channels": 4, "pairwise": "cosine"}, "pairwise.*embedded_gaussian"),
        ({"in_channels": 4, "dim": 4}, "dim"),
        ({"in_channels": 4, "inter_channels": 0}, "inter_channels"),
        ({"in_channels": 4, "pairwise": "concatenation", "scale": True}, "scale"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NonLocalBlock(**kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match="in_channels"):
        NonLocalBlock(4.0)
    with pytest.raises(TypeError, match="subsample"):
        NonLocalBlock(4, subsample="yes")
    with pytest.raises(TypeError, match="x"):
        NonLocalBlock(4, dim=1)([[1.0]])


def test_bad_inputs():
    block = NonLocalBlock(4, dim=2)
    with pytest.raises(ValueError, match="x: expected 4 dims"):
        block(torch.randn(1, 4, 5))
    with pytest.raises(ValueError, match="x: expected 4 channels"):
        block(torch.randn(1, 3, 5, 5))
    x = torch.randn(1, 4, 5, 6)
    with pytest.raises(ValueError, match="query: expected 2 coordinates"):
        block.attention(x, (1, 2, 3))
    with pytest.raises(ValueError, match="query: .*out of range"):
        block.attention(x, (5, 0))
    with pytest.raises(ValueError, match="query: .*out of range"):
        block.attention(x, (0, -1))
    with pytest.raises(TypeError, match="query"):
        block.attention(x, 3)
    with pytest.raises(ValueError, match="x: expected 4 channels"):
        block.attention(torch.randn(1, 2, 5, 6), (0, 0))
    assert block.attention(x, torch.tensor([4, 5])).shape == (1, 3, 3)


def test_same_output_whatever_the_batch():
    """Each sample is processed on its own (eval mode): batch of 2 == two batches of 1."""
    block = _randomise(NonLocalBlock(C, pairwise="concatenation", dim=3))
    x = _input(3)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.cat([block(x[:1]), block(x[1:])]))


def test_reference_pool_matches_ceil_mode():
    t = torch.randn(2, 3, 3, 5, 7)
    torch.testing.assert_close(
        _pool_reference(t, 3), F.max_pool3d(t, (1, 2, 2), (1, 2, 2), ceil_mode=True)
    )
