"""Bad input fails clearly, everywhere: every public nlviz function, given a wrong shape, ndim,
dtype (float64 where float32 is needed, half, int, bool, complex), NaN/inf, an empty or zero
size, a wrong type (a string, a list, a bool for an int or a flag), an out-of-range value, an
absurd size or an unknown option, raises TypeError or ValueError whose message starts with
the argument's name. (The CLIs are checked in test_train.py; nlm in test_nlm.py.)"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from nlviz import AffinityExplorer, NonLocalBlock  # noqa: E402
from nlviz import pairwise as pw  # noqa: E402
from nlviz.attention import Geometry, Source  # noqa: E402
from nlviz.experiments import read_csv, run  # noqa: E402
from nlviz.figure3 import figure3  # noqa: E402
from nlviz.plot import affinity_maps, image_grid, save_figure, show_weights  # noqa: E402
from nlviz.train import Config, load_checkpoint, save_checkpoint, train  # noqa: E402
from nlviz.utils import Output, check_query, pick_device  # noqa: E402
from nlviz.video import VideoNet, generate, load_sample, to_tensor  # noqa: E402

T3 = torch.zeros(1, 4, 3)
NAN = torch.full((1, 4, 3), float("nan"))


def tokens(**change):
    args = {"theta": T3.clone(), "phi": T3.clone(), "g": T3.clone(), "w_f": torch.zeros(6)}
    return {**args, **change}


PAIRWISE_CASES = [
    ({"theta": T3.double()}, ValueError, "phi: expected dtype torch.float64"),
    ({"theta": T3.half(), "phi": T3.half(), "g": T3.half()}, None, None),  # half is fine
    ({"theta": T3.long()}, TypeError, "theta: expected a floating-point tensor"),
    ({"phi": T3.bool()}, TypeError, "phi: expected a floating-point tensor"),
    ({"g": T3.to(torch.complex64)}, TypeError, "g: expected a floating-point tensor"),
    ({"theta": NAN}, ValueError, "theta: expected finite values"),
    ({"g": NAN.clone()}, ValueError, "g: expected finite values"),
    ({"phi": torch.zeros(1, 0, 3), "g": torch.zeros(1, 0, 3)}, ValueError, "phi: expected no "),
    ({"theta": torch.zeros(1, 0, 3)}, ValueError, "theta: expected no empty"),
    ({"theta": [[0.0]]}, TypeError, "theta: expected a torch.Tensor"),
    ({"phi": torch.zeros(4, 3)}, ValueError, "phi: expected 3 dims"),
]


@pytest.mark.parametrize(("change", "error", "match"), PAIRWISE_CASES)
@pytest.mark.parametrize("pairwise", pw.PAIRWISE)
def test_pairwise_entry_points(pairwise, change, error, match):
    args = tokens(**change)
    if pairwise == "concatenation" and getattr(args["theta"], "dtype", None) == torch.float16:
        args["w_f"] = args["w_f"].half()
    calls = [
        lambda: pw.aggregate(pairwise, **args),
        lambda: pw.aggregate_naive(pairwise, **args),
        lambda: pw.affinity(pairwise, args["theta"], args["phi"], w_f=args["w_f"]),
    ]
    for call in calls[:2] if "g" in change else calls:
        if error is None:
            assert torch.isfinite(call()).all()
        else:
            with pytest.raises(error, match=f"^{match}"):
                call()


def test_a_nan_query_row_is_refused_by_every_form_alike():
    """The efficient softmax used to turn a NaN row into zeros while the naive form gave NaN."""
    theta = torch.randn(1, 5, 3)
    theta[0, 2] = float("nan")
    for fn in (pw.aggregate, pw.aggregate_naive):
        with pytest.raises(ValueError, match="^theta: expected finite"):
            fn("embedded_gaussian", theta, torch.randn(1, 4, 3), torch.randn(1, 4, 2))
    with pytest.raises(ValueError, match="^theta: expected finite"):
        pw.softmax_aggregate(theta, torch.randn(1, 4, 3), torch.randn(1, 4, 2))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_channels": True}, TypeError, "in_channels"),
        ({"in_channels": "8"}, TypeError, "in_channels"),
        ({"in_channels": 10**7}, ValueError, "in_channels: expected an integer <= 65536"),
        ({"in_channels": 8, "inter_channels": 2.0}, TypeError, "inter_channels"),
        ({"in_channels": 8, "dim": "3"}, TypeError, "dim"),
        ({"in_channels": 8, "use_bn": 1}, TypeError, "use_bn: expected True or False"),
        ({"in_channels": 8, "scale": "no"}, TypeError, "scale: expected True or False"),
        ({"in_channels": 8, "pairwise": None}, ValueError, "pairwise: expected one of"),
    ],
)
def test_block_construction(kwargs, error, match):
    with pytest.raises(error, match=f"^{match}"):
        NonLocalBlock(**kwargs)


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.zeros(1, 8, 3, 4, 4, dtype=torch.long), TypeError, "x: expected a floating"),
        (torch.full((1, 8, 3, 4, 4), float("inf")), ValueError, "x: expected finite"),
        (torch.zeros(1, 8, 0, 4, 4), ValueError, "x: expected no empty dimension"),
        (torch.zeros(0, 8, 3, 4, 4), ValueError, "x: expected no empty dimension"),
        (np.zeros((1, 8, 3, 4, 4), np.float32), TypeError, "x: expected a torch.Tensor"),
        (torch.zeros(1, 8, 4, 4), ValueError, "x: expected 5 dims"),
    ],
)
def test_block_input(x, error, match):
    block = NonLocalBlock(8, dim=3)
    with pytest.raises(error, match=f"^{match}"):
        block(x)
    with pytest.raises(error, match=f"^{match}"):
        block.attention(x, (0, 0, 0))


def test_block_queries():
    block, x = NonLocalBlock(8, dim=3), torch.zeros(1, 8, 3, 4, 4)
    cases = [((0, 0), ValueError), ((3, 0, 0), ValueError), ((0, True, 0), TypeError)]
    cases += [("abc", TypeError), ((0, 0.0, 0), TypeError), (None, TypeError)]
    for query, error in cases:
        with pytest.raises(error, match="^query:"):
            block.attention(x, query)
    with pytest.raises(ValueError, match="^spatial_shape"):
        block.pooled_shape((4, 4))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": -1}, ValueError, "n: expected an integer >= 0"),
        ({"n": 10**9}, ValueError, "n: expected an integer <= 100000"),
        ({"n": 2, "frames": 1}, ValueError, "frames"),
        ({"n": 2, "frames": 8.0}, TypeError, "frames"),
        ({"n": 2, "size": 4096}, ValueError, "size: expected an integer <= 256"),
        ({"n": 2, "seed": -3}, ValueError, "seed"),
        ({"n": 2, "split": "dev"}, ValueError, "split: expected one of"),
        ({"n": 2, "split": 0}, ValueError, "split"),
        ({"n": "2"}, TypeError, "n: expected an integer"),
        ({"n": True}, TypeError, "n: expected an integer"),
        ({"n": 90_000, "size": 256, "frames": 64}, ValueError, "n: .* exceed 2 GiB"),
    ],
)
def test_generate(kwargs, error, match):
    with pytest.raises(error, match=f"^{match}"):
        generate(**kwargs)


def test_video_tensors_and_networks(tmp_path):
    videos = generate(1, frames=4, size=16).videos
    for bad in (videos.astype(np.float32), videos[0], videos[..., :2], videos.tolist()):
        with pytest.raises(ValueError, match="^videos: expected a .* uint8 array"):
            to_tensor(bad)
    for kwargs, error, match in [
        ({"width": 0}, ValueError, "width"),
        ({"width": 10**6}, ValueError, "width: expected an integer <= 256"),
        ({"blocks": -1}, ValueError, "blocks"),
        ({"blocks": 1.0}, TypeError, "blocks"),
        ({"variant": "spatial"}, ValueError, "variant"),
        ({"num_classes": 1}, ValueError, "num_classes"),
    ]:
        with pytest.raises(error, match=f"^{match}"):
            VideoNet(**kwargs)
    model = VideoNet(width=4)
    cases = [(torch.zeros(1, 4, 4, 16, 16), ValueError), (torch.zeros(1, 3, 4, 16), ValueError)]
    for x, error in [*cases, (torch.zeros(1, 3, 4, 16, 16).long(), TypeError)]:
        with pytest.raises(error, match="^x:"):
            model(x)
    (tmp_path / "not.npz").write_bytes(b"no zip")
    with pytest.raises(FileNotFoundError, match="^path:"):
        load_sample(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", videos=videos)
    with pytest.raises(ValueError, match="^path: .* is not a video sample"):
        load_sample(tmp_path / "other.npz")


def test_train_arguments(tmp_path):
    config = Config(n_train=8, n_val=8, epochs=1, width=4, size=16, frames=2)
    for kwargs, error, match in [
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"blocks": 7}, ValueError, "blocks"),
        ({"device": "tpu"}, ValueError, "device: expected one of"),
        ({"progress": "yes"}, TypeError, "progress"),
        ({"pairwise": "cosine"}, ValueError, "pairwise"),
        ({"out": tmp_path / "a.pt", "overwrite": 1}, TypeError, "overwrite"),
    ]:
        with pytest.raises(error, match=f"^{match}"):
            train(config, **kwargs)
    with pytest.raises(TypeError, match="^config: expected a name or a Config"):
        train({"n_train": 8})
    with pytest.raises(TypeError, match="^checkpoint"):
        save_checkpoint({"weights": 1}, tmp_path / "x.pt")
    (tmp_path / "x.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="^path: .*x.pt is not a readable checkpoint"):
        load_checkpoint(tmp_path / "x.pt")
    assert not (tmp_path / "a.pt").exists()


def test_experiments_arguments(tmp_path):
    out = tmp_path / "ablation.csv"
    for kwargs, error, match in [
        ({"seeds": 0}, ValueError, "seeds"),
        ({"jobs": 1000}, ValueError, "jobs: expected an integer <= 64"),
        ({"threads": 0}, ValueError, "threads"),
        ({"resume": "yes"}, TypeError, "resume"),
        ({"overwrite": "no"}, TypeError, "overwrite"),
        ({"config": "huge"}, ValueError, "config: expected one of"),
    ]:
        with pytest.raises(error, match=f"^{match}"):
            run(out=out, checkpoints=None, **{"config": "tiny", **kwargs})
    assert not out.exists() and not list(tmp_path.iterdir())
    (tmp_path / "r.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="^path: .*r.csv has columns"):
        read_csv(tmp_path / "r.csv")


def test_utils():
    with pytest.raises(ValueError, match="^device"):
        pick_device("gpu")
    with pytest.raises(TypeError, match="^path: expected a file path"):
        Output(None)
    with pytest.raises(TypeError, match="^where: expected a tuple of integers"):
        check_query("ab", (2, 3), "where")


def _frames():
    return np.random.default_rng(0).random((2, 8, 8))


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Source.create(_frames().astype(complex), lambda t, y, x: 0), TypeError, "frames"),
        (lambda: Source.create(_frames()[:, :0], lambda t, y, x: 0), ValueError, "frames"),
        (
            lambda: Source.create(_frames(), lambda t, y, x: 0, grid_shape=(4, 3)),
            ValueError,
            "grid_shape",
        ),
        (
            lambda: Source.create(_frames(), lambda t, y, x: 0, grid_shape=(0, 0)),
            ValueError,
            "grid_shape",
        ),
        (lambda: Source.create(_frames(), lambda t, y, x: 0, pool=(2,)), ValueError, "pool"),
        (lambda: Geometry.create((2, 8, 8), (16, 16)), ValueError, "grid_shape"),
        (
            lambda: AffinityExplorer(_frames(), lambda t, y, x: np.ones((2, 8, 8)), k=True),
            TypeError,
            "k",
        ),
        (
            lambda: AffinityExplorer(_frames(), lambda t, y, x: np.ones((2, 8, 8)), k=10**6),
            ValueError,
            "k",
        ),
        (
            lambda: AffinityExplorer(_frames(), lambda t, y, x: np.ones((2, 8, 8)), scale="db"),
            ValueError,
            "scale",
        ),
        (
            lambda: AffinityExplorer(
                _frames(), lambda t, y, x: np.ones((2, 8, 8)), query=(5, 0, 0)
            ),
            ValueError,
            "query",
        ),
        (
            lambda: AffinityExplorer(_frames(), lambda t, y, x: np.ones((2, 8, 8)) * 1j),
            TypeError,
            "affinity_fn",
        ),
        (lambda: AffinityExplorer.from_nlm(_frames(), per_frame="yes"), TypeError, "per_frame"),
        (
            lambda: figure3(
                Source.create(_frames(), lambda t, y, x: np.ones((2, 8, 8))), [(0, 0, 0)], k=-1
            ),
            ValueError,
            "k",
        ),  # fmt: skip
        (
            lambda: figure3(Source.create(_frames(), lambda t, y, x: np.ones((2, 8, 8))), []),
            ValueError,
            "queries",
        ),
    ],
)
def test_explorer_and_figures(make, error, match):
    with pytest.raises(error, match=f"^{match}"):
        make()


def test_static_plots(tmp_path):
    image, w = np.random.default_rng(0).random((6, 6)), np.full((6, 6), 1 / 36)
    for call, error, match in [
        (lambda: show_weights(image.astype(complex), w, (0, 0)), TypeError, "image"),
        (lambda: show_weights(image, w, (0, 0), log="yes"), TypeError, "log"),
        (lambda: show_weights(image, w, (0, 0), patch_size=-1), ValueError, "patch_size"),
        (lambda: show_weights(image, w[:0], (0, 0)), ValueError, "weights"),
        (lambda: image_grid([image], ncols=True), TypeError, "ncols"),
        (lambda: affinity_maps([w], ["a"], scale="loud"), ValueError, "scale"),
        (
            lambda: affinity_maps(
                torch.zeros(1, 6, 6, dtype=torch.bool) | True, ["a"], scale="linear"
            ),
            None,
            None,
        ),
        (lambda: save_figure("fig", tmp_path / "a.png"), TypeError, "fig"),
    ]:
        if error is None:
            call()
            continue
        with pytest.raises(error, match=f"^{match}"):
            call()
