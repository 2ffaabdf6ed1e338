"""nlviz.denoise: shapes, dtypes and bad input of ``denoise``, the committed checkpoints, a tiny
training run, the fixed split of the images, the CLI and notebook 06's exercise checks."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import test_exercises
import torch
from skimage.metrics import peak_signal_noise_ratio

from nlviz import denoise as D
from nlviz.nlm import denoise_nl_means

ROOT = Path(__file__).resolve().parents[1]
SMALL = D.Config(steps=40, epochs=2, batch_size=4, patch=24, depth=4, width=8, lr=1e-2)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("denoise") / "tiny.pt"
    model, ckpt = D.train(SMALL, variant="windowed", device="cpu", out=out, progress=False)
    return out, model, ckpt


@pytest.fixture(scope="module")
def noisy_crop():
    u = D.eval_image("camera")[40:120, 60:140].astype(np.float64)  # head and tripod, 80 x 80
    return u, D.add_noise(u, 25 / 255, 0)


@pytest.mark.parametrize("variant", D.VARIANTS)
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (7, 5), (17, 9), (33, 48)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_size_and_dtype(variant, shape, dtype):
    image = np.random.default_rng(0).random(shape).astype(dtype)
    out = D.denoise(image, 0.1, variant)
    assert out.shape == shape and out.dtype == dtype and np.isfinite(out).all()


def test_default_is_the_committed_windowed_model():
    image = D.add_noise(D.eval_image("brick")[:40, :40], 0.1, 0)
    assert np.array_equal(D.denoise(image, 0.1), D.denoise(image, 0.1, "windowed"))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"image": np.zeros((8, 8), np.uint8)}, TypeError, "image: expected a float image"),
        ({"image": np.zeros((2, 8, 8))}, ValueError, r"image: expected 2 dims, got \(2, 8, 8\)"),
        ({"image": np.full((8, 8), np.nan)}, ValueError, "image: expected finite"),
        ({"image": np.zeros((0, 8))}, ValueError, "image: expected a non-empty"),
        ({"image": np.full((8, 8), 128.0)}, ValueError, r"image: expected values in \[0, 1\]"),
        ({"image": "camera"}, TypeError, "image: expected a NumPy array, got str"),
        ({"sigma": 25}, ValueError, "sigma: expected a std on the image's scale"),
        ({"sigma": -0.1}, ValueError, "sigma: expected a number >= 0"),
        ({"sigma": "0.1"}, TypeError, "sigma: expected a real number"),
        ({"sigma": float("nan")}, ValueError, "sigma: expected a finite number"),
        ({"model": "bm3d"}, ValueError, r"model: expected one of \('plain'"),
        ({"model": torch.nn.Identity()}, TypeError, "model: expected a DenoiseNet"),
    ],
)
def test_bad_input_is_named(kwargs, error, match):
    args = {"image": np.zeros((8, 8)), "sigma": 0.1, **kwargs}
    with pytest.raises(error, match=match):
        D.denoise(**args)


@pytest.mark.parametrize("variant", D.VARIANTS)
def test_committed_checkpoints_load_weights_only(variant):
    path = D.CHECKPOINTS / f"denoiser_{variant}.pt"
    assert path.stat().st_size < 5 * 2**20
    raw = torch.load(path, map_location="cpu", weights_only=True)
    model, ckpt = D.load_checkpoint(path)
    assert raw["digest"] == ckpt["digest"] and ckpt["kind"] == "denoise"
    assert ckpt["config_name"] == "full" and model.variant == variant
    assert ckpt["model"]["variant"] == variant and not model.training


@pytest.mark.parametrize("variant", D.VARIANTS)
def test_committed_models_beat_nlm_on_an_evaluation_crop(variant, noisy_crop):
    u, v = noisy_crop
    s = 25 / 255
    nlm = peak_signal_noise_ratio(u, denoise_nl_means(v, 5, 11, h=0.7 * s, sigma=s), data_range=1)
    cnn = peak_signal_noise_ratio(u, D.denoise(v, s, variant), data_range=1)
    assert cnn > nlm + 0.5, (cnn, nlm)


def test_a_new_network_is_the_identity():
    v = torch.rand(2, 1, 9, 12)
    for variant in D.VARIANTS:
        torch.testing.assert_close(D.DenoiseNet(variant, depth=4, width=8).eval()(v, 0.1), v)


@pytest.mark.parametrize(("variant", "shape"), [("nonlocal", (13, 22)), ("windowed", (37, 21))])
def test_pixel_attention_is_a_distribution_on_the_pixels(variant, shape):
    torch.manual_seed(0)
    model = D.DenoiseNet(variant, depth=4, width=8, window=4).eval()
    v = torch.rand(1, 1, *shape)
    for query in [(0, 0), (shape[0] - 1, shape[1] - 1), (shape[0] // 2, 5)]:
        w = model.pixel_attention(v, 0.1, query)
        assert w.shape == shape and float(w.min()) >= 0
        assert abs(float(w.sum()) - 1) < 1e-5
        if variant == "windowed":  # 4 x 4 cells of 2 x 2 pixels: an 8 x 8 pixel tile
            y0, x0 = query[0] // 8 * 8, query[1] // 8 * 8
            assert abs(float(w[y0 : y0 + 8, x0 : x0 + 8].sum()) - 1) < 1e-5
    with pytest.raises(ValueError, match="variant: the plain CNN"):
        D.DenoiseNet("plain", depth=4, width=8).pixel_attention(v, 0.1, (0, 0))


def test_tiny_training_run_lowers_the_loss(tiny_run):
    out, model, ckpt = tiny_run
    losses = ckpt["history"]["train_loss"]
    assert len(losses) == SMALL.epochs and losses[-1] < losses[0]
    assert set(ckpt["metrics"]) >= {f"val_psnr_{s}" for s in D.SIGMAS}
    loaded, again = D.load_checkpoint(out)
    assert again["digest"] == ckpt["digest"]
    image = D.eval_image("chelsea")[:30, :31]
    assert np.array_equal(D.denoise(image, 0.1, loaded), D.denoise(image, 0.1, model.cpu()))


def test_training_is_deterministic(tiny_run):
    _, _, ckpt = tiny_run
    _, again = D.train(SMALL, variant="windowed", device="cpu", progress=False)
    assert again["digest"] == ckpt["digest"] or again["history"] == ckpt["history"]


def test_train_refuses_bad_arguments_and_existing_outputs(tiny_run):
    out, _, _ = tiny_run
    with pytest.raises(FileExistsError, match="out: .* exists"):
        D.train(SMALL, out=out, progress=False)
    with pytest.raises(ValueError, match="config: expected one of"):
        D.train("huge")
    with pytest.raises(ValueError, match="variant: expected one of"):
        D.train(SMALL, variant="global")
    with pytest.raises(ValueError, match="steps: expected a multiple of 3"):
        D.Config(steps=10, epochs=3)


def test_an_interrupted_run_resumes_as_if_never_stopped(tiny_run, tmp_path, monkeypatch):
    """Stopped in the second epoch's validation, the run leaves <out>.partial after the first;
    --resume from it ends with the uninterrupted run's weights and history, and removes it."""
    _, _, whole = tiny_run
    out, validate, calls = tmp_path / "run.pt", D.validate, []

    def stop_in_epoch_2(model, images, seed=0):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return validate(model, images, seed)

    monkeypatch.setattr(D, "validate", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        D.train(SMALL, variant="windowed", device="cpu", out=out, progress=False)
    monkeypatch.setattr(D, "validate", validate)
    partial = tmp_path / "run.pt.partial"
    assert not out.exists() and partial.is_file()
    assert len(torch.load(partial, weights_only=True)["history"]["epoch"]) == 1
    _, ckpt = D.train(SMALL, variant="windowed", device="cpu", out=out, resume=True,
                      progress=False)  # fmt: skip
    assert out.is_file() and not partial.exists()
    for key, value in whole["state_dict"].items():
        assert torch.equal(ckpt["state_dict"][key], value), key
    for key, value in whole["history"].items():
        assert np.array_equal(ckpt["history"][key], value, equal_nan=True), key
    assert ckpt["metrics"]["cpu_seconds"] > 0


def test_resume_refuses_a_missing_or_foreign_partial(tmp_path, monkeypatch):
    out = tmp_path / "run.pt"
    with pytest.raises(ValueError, match="resume: expected the file .*run.pt.partial"):
        D.train(SMALL, out=out, resume=True, progress=False)
    with pytest.raises(ValueError, match="resume: expected the file None"):
        D.train(SMALL, resume=True, progress=False)
    monkeypatch.setattr(D, "validate", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # stopped before any epoch ended: nothing to resume
        D.train(SMALL, out=out, progress=False)
    assert not (tmp_path / "run.pt.partial").exists()
    other = dataclasses.replace(SMALL, steps=20, epochs=10)
    monkeypatch.undo()
    calls = []

    def stop_in_epoch_2(model, images, seed=0):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return {}

    monkeypatch.setattr(D, "validate", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        D.train(other, variant="plain", out=out, progress=False)
    with pytest.raises(ValueError, match="resume: .*partial is another run's"):
        D.train(SMALL, variant="plain", out=out, resume=True, progress=False)


def test_quick_and_full_configs():
    quick, full = D.CONFIGS["quick"], D.CONFIGS["full"]
    assert quick.steps < full.steps and quick.epochs >= 2


def test_train_and_evaluation_images_never_overlap():
    assert not set(D.TRAIN_IMAGES) & set(D.EVAL_IMAGES)

    def digest(a):
        return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()

    train = {digest(D._load_grey(n)) for n in D.TRAIN_IMAGES}
    assert len(train) == len(D.TRAIN_IMAGES)
    assert not train & {digest(D._load_grey(n)) for n in D.EVAL_IMAGES}
    for name in D.TRAIN_IMAGES:  # the validation columns are never in the training part
        image, (part, val) = D._load_grey(name), D.train_split(name)
        top = max(0, image.shape[0] // 2 - 128)
        assert np.array_equal(part, image[:, : -D.VAL_COLUMNS])
        assert np.array_equal(val, image[top : top + 256, -D.VAL_COLUMNS :])


def test_cli_help_and_errors(tmp_path):
    run = [sys.executable, "-m", "nlviz.denoise"]
    done = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "--variant" in done.stdout
    bad = subprocess.run([*run, "--out", str(tmp_path / "x.pt"), "--variant", "global"],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 2 and "--variant" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


NB06 = [p for p in test_exercises.EXERCISES if p.id.startswith("06")]


def test_notebook_06_has_exercise_checks():
    assert len(NB06) >= 2


@pytest.mark.parametrize(("check", "name", "solution"), NB06)
def test_notebook_06_exercise_checks_accept_right_and_reject_wrong(check, name, solution):
    test_exercises.test_check_accepts_the_solution_and_rejects_wrong_answers(check, name, solution)


NET = D.DenoiseNet("nonlocal", depth=3, width=2, window=2)
V = torch.rand(1, 1, 8, 8)
BAD_DENOISE = [
    (lambda: D.DenoiseNet(depth=10**9), ValueError, "depth"),
    (lambda: D.DenoiseNet(width=10**9), ValueError, "width"),
    (lambda: D.DenoiseNet(window=10**9), ValueError, "window"),
    (lambda: NET(V, float("nan")), ValueError, "sigma"),
    (lambda: NET(V, -1.0), ValueError, "sigma"),
    (lambda: NET(V.double(), 0.1), ValueError, "v"),
    (lambda: NET.pixel_attention(V, 0.1, (10**9, 4)), ValueError, "query"),
    (lambda: NET.pixel_attention(V, 0.1, (-1, 4)), ValueError, "query"),
    (lambda: D.add_noise(np.zeros((4, 4)), float("nan"), 0), ValueError, "sigma"),
    (lambda: D.add_noise(np.zeros((4, 4)), True, 0), TypeError, "sigma"),
    (lambda: D.add_noise(np.full((4, 4), np.nan), 0.1, 0), ValueError, "image"),
    (lambda: D.add_noise(np.zeros((4, 4)), 0.1, -1), ValueError, "seed"),
    (lambda: D.checkpoint_path("nope"), ValueError, "variant"),
    (lambda: D.checkpoint_path("plain", seed=True), TypeError, "seed"),
    (lambda: D.tiled(3, 4), ValueError, "model"),
    (lambda: D.Config(steps=8, weight_decay=float("nan")), ValueError, "weight_decay"),
    (lambda: D.train_split("nope"), ValueError, "name"),
    (lambda: D.sample_batch([np.zeros((8, 8))], 0, 2, 4, (5, 55)), TypeError, "rng"),
    (lambda: D.sample_batch([np.zeros((8, 8))], np.random.default_rng(), 2, 16, (5, 55)),
     ValueError, "regions"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "name"), BAD_DENOISE)
def test_bad_arguments_are_refused_by_name(call, error, name):
    with pytest.raises(error, match=f"^{name}: expected"):
        call()


def test_train_checks_its_flags_without_an_out_file():
    for flag in ("overwrite", "progress"):
        with pytest.raises(TypeError, match=f"^{flag}: expected True or False"):
            D.train(D.CONFIGS["tiny"], device="cpu", **{flag: "no"})
