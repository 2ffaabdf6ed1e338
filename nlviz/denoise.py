"""A learned non-local denoiser, against non-local means and BM3D (notebook 06).

    python -m nlviz.denoise --config quick --variant windowed --out run.pt

``DenoiseNet`` is a DnCNN-style residual CNN (Zhang et al. 2017): it predicts the noise n of
v = u + n and returns v minus it. It works on the 2 x 2 polyphase components of v
(``pixel_unshuffle``, as FFDNet does) with a constant map of the noise level sigma as one more
input channel: the noise level is an input, not blind, so one model serves sigma 5 to 55 (of
255). Variants: "plain" (no block), "nonlocal" (one ``NonLocalBlock`` over the whole image) and
"windowed" (the same block in window x window tiles: NLRN's confined neighbourhood, Liu et al.
2018). Training patches come from ``TRAIN_IMAGES`` less their last ``VAL_COLUMNS`` columns
(validation); ``EVAL_IMAGES`` are other images, never trained or tuned on.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage import color, data, img_as_float
from skimage.metrics import peak_signal_noise_ratio
from skimage.transform import rescale
from torch import Tensor, nn

from nlviz import utils
from nlviz.block import NonLocalBlock
from nlviz.checkpoint import make_checkpoint, read_checkpoint
from nlviz.fingerprint import fingerprint, machine
from nlviz.train import fit
from nlviz.utils import as_array, check_choice, check_int, check_real

__all__ = ["VARIANTS", "TRAIN_IMAGES", "VAL_COLUMNS", "EVAL_IMAGES", "SIGMAS", "CHECKPOINTS",
           "load_grey", "eval_image", "train_split", "add_noise", "Windowed", "DenoiseNet",
           "Config", "CONFIGS", "train", "run_fingerprint", "load_checkpoint",
           "denoise"]  # fmt: skip

VARIANTS = ("plain", "nonlocal", "windowed")
TRAIN_IMAGES = ("coffee", "coins", "grass", "gravel", "immunohistochemistry", "moon", "page",
                "rocket", "stereo_motorcycle", "text")  # fmt: skip
VAL_COLUMNS = 128
EVAL_IMAGES = {  # name: (rescale factor, rows, columns) of a 256 x 256 crop
    "camera": (1.0, slice(40, 296), slice(160, 416)),  # notebook 01's crop
    "astronaut": (0.5, slice(0, 256), slice(0, 256)),
    "brick": (0.5, slice(0, 256), slice(0, 256)),  # notebook 01's texture
    "chelsea": (1.0, slice(22, 278), slice(97, 353)),
}
SIGMAS = (15, 25, 50)  # the evaluated noise levels, grey levels of 255
CHECKPOINTS = Path(__file__).resolve().parents[1] / "data" / "checkpoints"  # denoiser_<variant>


def load_grey(name: str) -> np.ndarray:
    """A scikit-image sample image (no download) as float32 grey (H, W) in [0, 1]."""
    image = getattr(data, name)()
    image = img_as_float(image[0] if isinstance(image, tuple) else image)  # stereo: left view
    return np.ascontiguousarray(color.rgb2gray(image) if image.ndim == 3 else image, np.float32)


def eval_image(name: str) -> np.ndarray:
    """The 256 x 256 evaluation image ``name`` of ``EVAL_IMAGES``, float32 in [0, 1]."""
    factor, rows, cols = EVAL_IMAGES[check_choice("name", name, tuple(EVAL_IMAGES))]
    image = load_grey(name)
    image = image if factor == 1 else rescale(image, factor, anti_aliasing=True)
    return np.ascontiguousarray(image[rows, cols], np.float32)


def train_split(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(training part (H, W - 128), validation part (<= 256, 128)) of a training image: the
    last ``VAL_COLUMNS`` columns (their middle 256 rows at most) are held out."""
    image = load_grey(check_choice("name", name, TRAIN_IMAGES))
    top = max(0, image.shape[0] // 2 - 128)
    val = image[top : top + 256, -VAL_COLUMNS:]
    return np.ascontiguousarray(image[:, :-VAL_COLUMNS]), np.ascontiguousarray(val)


def add_noise(image: np.ndarray, sigma: float, seed) -> np.ndarray:
    """image + sigma N(0, 1) from ``np.random.default_rng(seed)``, not clipped, image's dtype."""
    noise = np.random.default_rng(seed).standard_normal(image.shape)
    return (image + sigma * noise).astype(image.dtype)


def sample_batch(regions, rng, batch: int, patch: int, sigmas) -> tuple[Tensor, ...]:
    """(noisy (B, 1, P, P), sigma (B,), clean (B, 1, P, P)): patches drawn in proportion to the
    regions' areas, rotated and flipped at random, sigma uniform in ``sigmas`` (of 255)."""
    area = np.array([(r.shape[0] - patch + 1) * (r.shape[1] - patch + 1) for r in regions], float)
    clean = np.empty((batch, 1, patch, patch), np.float32)
    for b, k in enumerate(rng.choice(len(regions), size=batch, p=area / area.sum())):
        y, x = (rng.integers(0, s - patch + 1) for s in regions[k].shape)
        p = np.rot90(regions[k][y : y + patch, x : x + patch], rng.integers(4))
        clean[b, 0] = p[:, ::-1] if rng.random() < 0.5 else p
    sigma = (rng.uniform(*sigmas, batch) / 255).astype(np.float32)
    noise = rng.standard_normal(clean.shape, dtype=np.float32) * sigma[:, None, None, None]
    return torch.from_numpy(clean + noise), torch.from_numpy(sigma), torch.from_numpy(clean)


class Windowed(nn.Module):
    """A 2-D block run on non-overlapping ``window`` x ``window`` tiles folded into the batch;
    the map is padded by replication to whole tiles and cropped back, so any size works."""

    def __init__(self, block: NonLocalBlock, window: int) -> None:
        super().__init__()
        self.block, self.window = block, window

    def tiles(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B * nh * nw, C, s, s), each image's tiles in row-major order."""
        s = self.window
        x = F.pad(x, (0, -x.shape[3] % s, 0, -x.shape[2] % s), mode="replicate")
        B, C, H, W = x.shape
        x = x.reshape(B, C, H // s, s, W // s, s).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(-1, C, s, s).contiguous()

    def forward(self, x: Tensor) -> Tensor:
        (B, C, H, W), s = x.shape, self.window
        z = self.block(self.tiles(x)).reshape(B, -(-H // s), -(-W // s), C, s, s)
        z = z.permute(0, 3, 1, 4, 2, 5).reshape(B, C, -(-H // s) * s, -(-W // s) * s)
        return z[:, :, :H, :W].contiguous()

    def attention(self, x: Tensor, query) -> Tensor:
        """(1, H, W): weights of position ``query`` of image 0 over its tile, 0 elsewhere (a
        padded position's weight goes to the border position it copies)."""
        (H, W), s = x.shape[2:], self.window
        (ty, qy), (tx, qx) = divmod(query[0], s), divmod(query[1], s)
        w = self.block.attention(self.tiles(x[:1])[ty * -(-W // s) + tx][None], (qy, qx))[0]
        rows = (torch.arange(s) + ty * s).clamp(max=H - 1)[:, None].expand(s, s)
        cols = (torch.arange(s) + tx * s).clamp(max=W - 1).expand(s, s)
        return torch.zeros(H, W).index_put_((rows, cols), w.cpu(), accumulate=True)[None]


class DenoiseNet(nn.Module):
    """``forward(v, sigma) = v - noise_hat`` for v (B, 1, H, W) and sigma (B,) or a float.

    The 2 x 2 polyphase components of v (B, 4, H/2, W/2) and the sigma map go through ``depth``
    3x3 convolutions of ``width`` channels (conv + ReLU, ``depth - 2`` x conv + BN + ReLU, a
    conv to the 4 components of the noise, zero at init: the net starts as the identity), with
    one embedded-Gaussian ``NonLocalBlock`` (no subsampling) after the middle convolution.
    """

    def __init__(self, variant: str = "windowed", *, depth: int = 8, width: int = 32,
                 window: int = 8) -> None:  # fmt: skip
        super().__init__()
        self.variant = check_choice("variant", variant, VARIANTS)
        depth, width = check_int("depth", depth, minimum=3), check_int("width", width, minimum=2)
        self.window = check_int("window", window, minimum=1)
        layers = [nn.Conv2d(5, width, 3, padding=1), nn.ReLU()]
        for i in range(1, depth - 1):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)]
            layers.append(nn.ReLU())
            if variant != "plain" and i == (depth - 1) // 2:
                block = NonLocalBlock(width, dim=2, subsample=False)
                self.block_index = len(layers)
                layers.append(Windowed(block, window) if variant == "windowed" else block)
        layers.append(nn.Conv2d(width, 4, 3, padding=1))
        for p in layers[-1].parameters():
            nn.init.zeros_(p)
        self.layers = nn.Sequential(*layers)

    def inputs(self, v: Tensor, sigma) -> Tensor:
        """(B, 5, ceil(H / 2), ceil(W / 2)): the components (odd sizes replicate) and sigma."""
        v = F.pad(v, (0, v.shape[3] % 2, 0, v.shape[2] % 2), mode="replicate")
        x = F.pixel_unshuffle(v, 2).contiguous()
        sigma = torch.as_tensor(sigma, dtype=v.dtype, device=v.device).reshape(-1, 1, 1, 1)
        return torch.cat([x, sigma.expand(x.shape[0], 1, *x.shape[2:])], 1)

    def forward(self, v: Tensor, sigma) -> Tensor:
        noise = F.pixel_shuffle(self.layers(self.inputs(v, sigma)), 2)
        return v - noise[:, :, : v.shape[2], : v.shape[3]]

    @torch.no_grad()
    def pixel_attention(self, v: Tensor, sigma, query) -> Tensor:
        """(H, W) weights of pixel ``query`` = (y, x) of image 0, on the block's input features:
        the block weighs 2 x 2 cells, each cell's weight shared evenly by its pixels."""
        if self.variant == "plain":
            raise ValueError("variant: the plain CNN has no non-local block to look at")
        block = self.layers[self.block_index]
        x = self.layers[: self.block_index](self.inputs(v[:1], sigma))
        w = block.attention(x, (query[0] // 2, query[1] // 2))[0].cpu()
        (H, W), ones = v.shape[2:], torch.ones(1, 1, *v.shape[2:])
        cells = F.avg_pool2d(ones, 2, ceil_mode=True, divisor_override=1)[0, 0]
        return (w / cells).repeat_interleave(2, 0).repeat_interleave(2, 1)[:H, :W]


@dataclass(frozen=True)
class Config:
    """One run: ``steps`` AdamW steps in ``epochs`` rounds (each ended by a validation) on
    fresh random patches, sigma uniform in [sigma_min, sigma_max] (grey levels of 255)."""

    steps: int
    epochs: int = 8
    batch_size: int = 8
    patch: int = 48
    depth: int = 8
    width: int = 32
    window: int = 8
    sigma_min: float = 5.0
    sigma_max: float = 55.0
    lr: float = 2e-2
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        for name in ("steps", "epochs", "batch_size", "patch", "window", "depth", "width"):
            check_int(name, getattr(self, name), minimum=1, maximum=10**7)
        if self.steps % self.epochs:
            raise ValueError(f"steps: expected a multiple of {self.epochs}, got {self.steps}")
        low = check_real("sigma_min", self.sigma_min, minimum=0)
        check_real("sigma_max", self.sigma_max, minimum=low, maximum=255)
        check_real("lr", self.lr, minimum=0, maximum=1, strict=True)


CONFIGS = {
    "tiny": Config(steps=4, epochs=2, batch_size=2, patch=16, depth=4, width=8),
    # a lower peak rate than "full": at 2e-2 a 240-step run can die (the network learns to
    # return its input) on some CPUs and thread counts, at 5e-3 it learnt on every one tried
    "quick": Config(steps=240, epochs=3, patch=32, lr=5e-3),
    "full": Config(steps=4000),
}


def validate(model: DenoiseNet, images, seed: int = 0) -> dict[str, float]:
    """{"val_psnr_S": mean PSNR (dB) over ``images``} for S in ``SIGMAS``."""
    out = {}
    for s in SIGMAS:
        noisy = [add_noise(u, s / 255, (seed, k, s)) for k, u in enumerate(images)]
        psnr = [peak_signal_noise_ratio(u, denoise(v, s / 255, model), data_range=1)
                for u, v in zip(images, noisy, strict=True)]  # fmt: skip
        out[f"val_psnr_{s}"] = float(np.mean(psnr))
    return out


def _step(model, batch, device):
    v, sigma, u = (t.to(device) for t in batch)
    return F.mse_loss(model(v, sigma).float(), u), None, len(v)


def _resolve(config, variant, seed) -> tuple[str, Config, int]:
    name = config if isinstance(config, str) else "custom"
    config = CONFIGS[check_choice("config", config, tuple(CONFIGS))] if name != "custom" else config
    if not isinstance(config, Config):
        raise TypeError(f"config: expected a name or a Config, got {type(config).__name__}")
    check_choice("variant", variant, VARIANTS)
    return name, config, check_int("seed", seed, minimum=0, maximum=2**32 - 1)


def _init(config: Config, variant: str, seed: int) -> tuple[dict, DenoiseNet, list, list]:
    """(architecture, model as initialised for ``seed``, training regions, validation crops)."""
    regions, val = zip(*(train_split(n) for n in TRAIN_IMAGES), strict=True)
    utils.seed_everything(seed)
    arch = {"variant": variant, "depth": config.depth, "width": config.width}
    return arch, DenoiseNet(**arch, window=config.window), regions, val


def _fingerprint(config: Config, variant: str, seed: int, model, regions) -> str:
    """``nlviz.fingerprint`` of a run: config, variant and seed exactly; the initial weights
    and the first batch (noisy patches, sigmas, clean patches) projected."""
    rng, sigmas = np.random.default_rng(seed), (config.sigma_min, config.sigma_max)  # as train's
    first = sample_batch(regions, rng, config.batch_size, config.patch, sigmas)
    exact = {"config": dataclasses.asdict(config), "variant": variant, "seed": seed}
    return fingerprint(model, exact, first)


def run_fingerprint(config="quick", *, variant="windowed", seed=0) -> str:
    """The fingerprint that ``train`` with these arguments records, computed without training."""
    _, config, seed = _resolve(config, variant, seed)
    _, model, regions, _ = _init(config, variant, seed)
    return _fingerprint(config, variant, seed, model, regions)


def train(config="quick", *, variant="windowed", seed=0, device="auto", out=None,
          overwrite=False, progress=True):  # fmt: skip
    """Train a ``DenoiseNet`` with ``nlviz.train.fit`` (MSE to the clean patches).

    ``config``: a name of ``CONFIGS`` or a ``Config``; ``seed`` fixes the weights, the patches,
    their flips and their noise; ``out``: the checkpoint, claimed before training, written
    atomically after. Returns (model in eval mode on ``device``, checkpoint); the checkpoint's
    history holds the training loss and the validation PSNR of every epoch.
    """
    name, config, seed = _resolve(config, variant, seed)
    dev = device if isinstance(device, torch.device) else utils.pick_device(device)
    claim = nullcontext() if out is None else utils.Output(out, overwrite=overwrite, name="out")
    with claim:
        t0 = time.perf_counter()
        arch, model, regions, val = _init(config, variant, seed)
        fp, model = _fingerprint(config, variant, seed, model, regions), model.to(dev)
        rng, n = np.random.default_rng(seed), config.steps // config.epochs
        sigmas = (config.sigma_min, config.sigma_max)

        def batches():
            return [sample_batch(regions, rng, config.batch_size, config.patch, sigmas)
                    for _ in range(n)]  # fmt: skip

        kw = {"epochs": config.epochs, "lr": config.lr, "weight_decay": config.weight_decay}
        history = fit(model, batches, _step, lambda m: validate(m, val), **kw, device=dev,
                      desc=f"{variant}/seed{seed}", progress=progress)  # fmt: skip
        metrics = {k: v[-1] for k, v in history.items() if k.startswith("val_")}
        metrics["train_seconds"] = time.perf_counter() - t0
        info = {"kind": "denoise", "model": {**arch, "window": config.window}}
        info |= {"config": dataclasses.asdict(config), "config_name": name, "seed": seed}
        info |= {"device": dev.type, "cpu": machine(), "fingerprint": fp, "metrics": metrics}
        ckpt = make_checkpoint(model, info, history)
        if out is not None:
            claim.write(lambda fh: torch.save(ckpt, fh))
    return model.eval(), ckpt


def load_checkpoint(path) -> tuple[DenoiseNet, dict]:
    """The ``DenoiseNet`` of a checkpoint of ``train`` (CPU, eval mode), and the checkpoint."""
    return read_checkpoint(path, lambda ckpt: DenoiseNet(**ckpt["model"]))


@functools.cache
def _committed(variant: str) -> DenoiseNet:
    return load_checkpoint(CHECKPOINTS / f"denoiser_{variant}.pt")[0]


@torch.no_grad()
def denoise(image, sigma: float, model="windowed") -> np.ndarray:
    """Remove Gaussian noise of known std ``sigma`` from a grey image.

    Parameters
    ----------
    image : float ndarray (H, W)
        Grey levels in [0, 1] plus noise; any size, odd or smaller than a training patch.
    sigma : float
        The noise's std on the image's scale (25 / 255 for sigma 25 of 255).
    model : DenoiseNet or str
        A network, or a name of ``VARIANTS``: the committed ``denoiser_<name>.pt``.

    Returns
    -------
    ndarray (H, W) of the image's dtype, computed in float32 on the model's device.
    """
    arr = as_array("image", image, (2,))
    if arr.dtype.kind != "f":
        raise TypeError(f"image: expected a float image in [0, 1], got dtype {arr.dtype}")
    if arr.min() < -1 or arr.max() > 2:
        raise ValueError(f"image: expected values in [0, 1] (plus noise), got up to {arr.max()}")
    sigma = check_real("sigma", sigma, minimum=0)
    if sigma > 1:
        raise ValueError(f"sigma: expected a std on the image's scale (25/255), got {sigma}")
    if isinstance(model, str):
        model = _committed(check_choice("model", model, VARIANTS))
    if not isinstance(model, DenoiseNet):
        raise TypeError(f"model: expected a DenoiseNet or one of {VARIANTS}, got {model!r:.80}")
    device = next(model.parameters()).device
    v = torch.from_numpy(np.ascontiguousarray(arr, np.float32))[None, None].to(device)
    return model.eval()(v, sigma)[0, 0].float().cpu().numpy().astype(arr.dtype)


def main(argv=None) -> int:
    parser = utils.Parser(prog="python -m nlviz.denoise", description="Train a learned denoiser.")
    parser.add_argument("--config", choices=tuple(CONFIGS), default="quick")
    parser.add_argument("--variant", choices=VARIANTS, default="windowed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = vars(parser.parse_args(argv))
    try:
        _, ckpt = train(args.pop("config"), **args)
    except (ValueError, TypeError, FileExistsError, RuntimeError) as err:
        parser.fail(err)
    print(", ".join(f"{k} {v:.2f}" for k, v in ckpt["metrics"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
