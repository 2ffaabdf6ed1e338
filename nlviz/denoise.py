"""A learned non-local denoiser (notebook 06): ``DenoiseNet``, a residual CNN on the 2 x 2 polyphase
components of v = u + n and a noise map (sigma 5 to 55 of 255) with no block ("plain"), a block on
the whole image ("nonlocal") or in tiles ("windowed"). ``python -m nlviz.denoise`` trains one."""

import dataclasses
import functools
import time
from contextlib import nullcontext
from copy import deepcopy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage import color, data, img_as_float
from skimage.metrics import peak_signal_noise_ratio
from skimage.transform import rescale
from torch import Tensor, nn

from nlviz import utils
from nlviz.block import NonLocalBlock, Windowed
from nlviz.checkpoint import make_checkpoint, read_checkpoint
from nlviz.fingerprint import fingerprint, machine
from nlviz.train import fit
from nlviz.utils import as_array, check_bool, check_choice, check_int, check_real, check_type

__all__ = ["VARIANTS", "TRAIN_IMAGES", "VAL_COLUMNS", "EVAL_IMAGES", "SIGMAS", "CHECKPOINTS",
           "eval_image", "train_split", "add_noise", "sample_batch", "DenoiseNet", "Config",
           "CONFIGS", "train", "run_fingerprint", "load_checkpoint", "SEEDS", "checkpoint_path",
           "tiled", "denoise"]  # fmt: skip
VARIANTS = ("plain", "nonlocal", "windowed")
TRAIN_IMAGES = ("clock", "coffee", "coins", "colorwheel", "grass", "gravel", "horse",
                "hubble_deep_field", "immunohistochemistry", "moon", "page", "rocket",
                "shepp_logan_phantom", "stereo_motorcycle", "text")  # fmt: skip
VAL_COLUMNS = 128
EVAL_IMAGES = {  # never trained on; name: (rescale factor, rows, columns) of a 256 x 256 crop
    "camera": (1.0, slice(40, 296), slice(160, 416)),  # notebook 01's crop
    "astronaut": (0.5, slice(0, 256), slice(0, 256)),
    "brick": (0.5, slice(0, 256), slice(0, 256)),  # notebook 01's texture
    "chelsea": (1.0, slice(22, 278), slice(97, 353)),
    "cell": (0.5, slice(20, 276), slice(10, 266)),  # smooth, few edges (microscopy)
    "retina": (0.25, slice(50, 306), slice(50, 306)),  # smooth, few edges (fundus)
}
SIGMAS = (15, 25, 50)  # the evaluated noise levels, grey levels of 255
SEEDS = (0, 1, 2)  # the committed runs of each variant
CHECKPOINTS = Path(__file__).resolve().parents[1] / "data" / "checkpoints"


def checkpoint_path(variant: str, seed: int = 0) -> Path:
    """The committed run: ``denoiser_<variant>.pt`` for seed 0, else ``..._seed<seed>.pt``."""
    variant, seed = check_choice("variant", variant, VARIANTS), check_int("seed", seed, minimum=0)
    return CHECKPOINTS / f"denoiser_{variant}{f'_seed{seed}' if seed else ''}.pt"


def _load_grey(name: str) -> np.ndarray:
    """A scikit-image sample image (no download) as float32 grey (H, W) in [0, 1]."""
    image = getattr(data, check_choice("name", name, TRAIN_IMAGES + tuple(EVAL_IMAGES)))()
    image = img_as_float(image[0] if isinstance(image, tuple) else image)  # stereo: left view
    return np.ascontiguousarray(color.rgb2gray(image) if image.ndim == 3 else image, np.float32)


def eval_image(name: str) -> np.ndarray:
    """The 256 x 256 evaluation image ``name`` of ``EVAL_IMAGES``, float32 in [0, 1]."""
    factor, rows, cols = EVAL_IMAGES[check_choice("name", name, tuple(EVAL_IMAGES))]
    image = _load_grey(name)
    image = image if factor == 1 else rescale(image, factor, anti_aliasing=True)
    return np.ascontiguousarray(image[rows, cols], np.float32)


def train_split(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(training part (H, W - 128), validation part (<= 256, 128): the last columns' middle)."""
    image = _load_grey(check_choice("name", name, TRAIN_IMAGES))
    top = max(0, image.shape[0] // 2 - 128)
    val = image[top : top + 256, -VAL_COLUMNS:]
    return np.ascontiguousarray(image[:, :-VAL_COLUMNS]), np.ascontiguousarray(val)


def add_noise(image: np.ndarray, sigma: float, seed) -> np.ndarray:
    """image + sigma N(0, 1) from ``np.random.default_rng(seed)``, not clipped, image's dtype."""
    image, sigma = as_array("image", image, (2,)), check_real("sigma", sigma, minimum=0)
    for s in seed if isinstance(seed, tuple | list) else (seed,):
        check_int("seed", s, minimum=0)
    noise = np.random.default_rng(seed).standard_normal(image.shape)
    return (image + sigma * noise).astype(image.dtype)


def sample_batch(regions, rng, batch: int, patch: int, sigmas) -> tuple[Tensor, ...]:
    """(noisy (B, 1, P, P), sigma (B,), clean): region, rotation, flip and sigma drawn uniformly."""
    check_type("rng", rng, np.random.Generator, "a np.random.Generator")
    batch = check_int("batch", batch, minimum=1, maximum=4096)
    patch = check_int("patch", patch, minimum=1, maximum=4096)
    if not isinstance(sigmas, tuple | list) or len(sigmas) != 2:
        raise TypeError(f"sigmas: expected (low, high) in grey levels of 255, got {sigmas!r}")
    check_real("sigmas", sigmas[1], minimum=check_real("sigmas", sigmas[0], minimum=0), maximum=255)
    if not isinstance(regions, list | tuple) or not regions:
        raise TypeError(f"regions: expected a list of grey images (H, W), got {regions!r:.80}")
    if any(not isinstance(r, np.ndarray) or r.ndim != 2 or min(r.shape) < patch for r in regions):
        raise ValueError(f"regions: expected grey images (H, W) of at least {patch} x {patch}")
    return _sample_batch(regions, rng, batch, patch, sigmas)


def _sample_batch(regions, rng, batch, patch, sigmas) -> tuple[Tensor, ...]:  # a training step's
    clean = np.empty((batch, 1, patch, patch), np.float32)
    for b, k in enumerate(rng.integers(len(regions), size=batch)):
        y, x = (rng.integers(0, s - patch + 1) for s in regions[k].shape)
        p = np.rot90(regions[k][y : y + patch, x : x + patch], rng.integers(4))
        clean[b, 0] = p[:, ::-1] if rng.random() < 0.5 else p
    sigma = (rng.uniform(*sigmas, batch) / 255).astype(np.float32)
    noise = rng.standard_normal(clean.shape, dtype=np.float32) * sigma[:, None, None, None]
    return torch.from_numpy(clean + noise), torch.from_numpy(sigma), torch.from_numpy(clean)


class DenoiseNet(nn.Module):
    """``forward(v, sigma) = v - noise_hat`` for v (B, 1, H, W) and sigma (B,) or a float: the
    components of v (B, 4, H/2, W/2) and the sigma map through ``depth`` 3x3 convolutions of
    ``width`` channels (the last zero: the identity), a ``NonLocalBlock`` (unpooled) midway."""

    def __init__(self, variant: str = "windowed", *, depth: int = 8, width: int = 32,
                 window: int = 8) -> None:  # fmt: skip
        super().__init__()
        self.variant = check_choice("variant", variant, VARIANTS)
        depth = check_int("depth", depth, minimum=3, maximum=64)
        width = check_int("width", width, minimum=2, maximum=1024)
        self.window = check_int("window", window, minimum=1, maximum=1024)
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
        check_type("v", v, Tensor, "a float32 tensor (B, 1, H, W)")
        if v.dtype != torch.float32 or v.ndim != 4 or v.shape[1] != 1 or v.numel() == 0:
            raise ValueError(f"v: expected a float32 (B, 1, H, W) tensor, got {v.dtype} {v.shape}")
        if not isinstance(sigma, Tensor):  # a tensor (B,) in training: not checked
            sigma = check_real("sigma", sigma, minimum=0, maximum=1)
        v = F.pad(v, (0, v.shape[3] % 2, 0, v.shape[2] % 2), mode="replicate")
        x = F.pixel_unshuffle(v, 2).contiguous()
        sigma = torch.as_tensor(sigma, dtype=v.dtype, device=v.device).reshape(-1, 1, 1, 1)
        return torch.cat([x, sigma.expand(x.shape[0], 1, *x.shape[2:])], 1)

    def forward(self, v: Tensor, sigma) -> Tensor:
        noise = F.pixel_shuffle(self.layers(self.inputs(v, sigma)), 2)
        return v - noise[:, :, : v.shape[2], : v.shape[3]]

    @torch.no_grad()
    def pixel_attention(self, v: Tensor, sigma, query) -> Tensor:
        """(H, W) weights of pixel ``query`` (y, x) of image 0, each 2 x 2 cell's shared evenly."""
        if self.variant == "plain":
            raise ValueError("variant: the plain CNN has no non-local block to look at")
        x0 = self.inputs(check_type("v", v, Tensor, "a float32 tensor (B, 1, H, W)")[:1], sigma)
        y, x = utils.check_query(query, tuple(v.shape[2:]))  # v (B, 1, H, W): checked by inputs
        utils.check_finite("v", v[:1])
        f = self.layers[: self.block_index](x0)
        w = self.layers[self.block_index].attention(f, (y // 2, x // 2))[0].cpu()
        (H, W), ones = v.shape[2:], torch.ones(1, 1, *v.shape[2:])
        cells = F.avg_pool2d(ones, 2, ceil_mode=True, divisor_override=1)[0, 0]
        return (w / cells).repeat_interleave(2, 0).repeat_interleave(2, 1)[:H, :W]


@dataclasses.dataclass(frozen=True)
class Config:
    """``steps`` AdamW steps in ``epochs`` rounds, each ending in validation (with ``out``, a resume
    state); sigma uniform in [sigma_min, sigma_max] of 255; gradient norms clipped to ``clip``."""

    steps: int
    epochs: int = 8
    batch_size: int = 16
    patch: int = 64
    depth: int = 8
    width: int = 32
    window: int = 8
    sigma_min: float = 5.0
    sigma_max: float = 55.0
    lr: float = 2e-2
    weight_decay: float = 1e-4
    clip: float = 0.5
    ema: float = 0.998

    def __post_init__(self) -> None:
        for name in ("steps", "epochs", "batch_size", "patch", "window", "depth", "width"):
            check_int(name, getattr(self, name), minimum=1, maximum=10**7)
        if self.steps % self.epochs:
            raise ValueError(f"steps: expected a multiple of {self.epochs}, got {self.steps}")
        low = check_real("sigma_min", self.sigma_min, minimum=0)
        check_real("sigma_max", self.sigma_max, minimum=low, maximum=255)
        check_real("lr", self.lr, minimum=0, maximum=1, strict=True)
        check_real("weight_decay", self.weight_decay, minimum=0, maximum=1)
        check_real("clip", self.clip, minimum=0, strict=True)
        check_real("ema", self.ema, minimum=0, maximum=1, strict=True)


CONFIGS = {
    "tiny": Config(steps=4, epochs=2, batch_size=2, patch=16, depth=4, width=8),
    # lr 5e-3: at 2e-2 a 240-step run can die (learns to return its input) on some CPUs
    "quick": Config(steps=240, epochs=3, batch_size=8, patch=32, lr=5e-3, ema=0.95),
    "full": Config(steps=4000, epochs=8, width=48),
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
    """Each patch's MSE times (sigma 25) / sigma: plain MSE (~ sigma^2) favours the largest."""
    v, sigma, u = (t.to(device) for t in batch)
    error = (model(v, sigma).float() - u).square().mean((1, 2, 3))
    return (error * (25 / 255 / sigma)).mean(), None, len(v)


def _resolve(config, variant, seed) -> tuple[str, Config, int]:
    name = config if isinstance(config, str) else "custom"
    config = CONFIGS[check_choice("config", config, tuple(CONFIGS))] if name != "custom" else config
    check_type("config", config, Config, "a name or a Config")
    check_choice("variant", variant, VARIANTS)
    return name, config, check_int("seed", seed, minimum=0, maximum=2**32 - 1)


def _init(config: Config, variant: str, seed: int) -> tuple[dict, DenoiseNet, list, list]:
    """(architecture, model as initialised for ``seed``, training regions, validation crops)."""
    regions, val = zip(*(train_split(n) for n in TRAIN_IMAGES), strict=True)
    utils.seed_everything(seed)
    arch = {"variant": variant, "depth": config.depth, "width": config.width}
    return arch, DenoiseNet(**arch, window=config.window), regions, val


def _fingerprint(config: Config, variant: str, seed: int, model, regions) -> str:
    """The run's ``nlviz.fingerprint``: config, variant, seed; initial weights, first batch."""
    rng, sigmas = np.random.default_rng(seed), (config.sigma_min, config.sigma_max)  # as train's
    first = _sample_batch(regions, rng, config.batch_size, config.patch, sigmas)
    exact = {"config": dataclasses.asdict(config), "variant": variant, "seed": seed}
    return fingerprint(model, exact, first)


def run_fingerprint(config="quick", *, variant="windowed", seed=0) -> str:
    """The fingerprint that ``train`` with these arguments records, computed without training."""
    _, config, seed = _resolve(config, variant, seed)
    _, model, regions, _ = _init(config, variant, seed)
    return _fingerprint(config, variant, seed, model, regions)


def train(config="quick", *, variant="windowed", seed=0, device="auto", out=None,
          overwrite=False, resume=False, progress=True):  # fmt: skip
    """Train a ``DenoiseNet`` by ``nlviz.train.fit``; ``config``: a ``CONFIGS`` name or ``Config``;
    ``seed`` fixes weights, patches, flips, noise; ``out``: the checkpoint, each epoch leaving
    ``<out>.partial`` for ``resume`` (same arguments). Returns (model in eval mode, checkpoint)."""
    name, config, seed = _resolve(config, variant, seed)
    check_bool("overwrite", overwrite)  # progress: by fit
    dev = device if isinstance(device, torch.device) else utils.pick_device(device)
    partial = None if out is None else Path(f"{out}.partial")
    if check_bool("resume", resume) and (partial is None or not partial.is_file()):
        raise ValueError(f"resume: expected the file {partial} that an interrupted run leaves")
    claim = nullcontext() if out is None else utils.Output(out, overwrite=overwrite, name="out")
    with claim:
        arch, model, regions, val = _init(config, variant, seed)
        fp, model = _fingerprint(config, variant, seed, model, regions), model.to(dev)
        rng, n = np.random.default_rng(seed), config.steps // config.epochs
        state, spent = None, np.zeros(2)  # seconds: wall, CPU
        if resume:
            state = torch.load(partial, map_location=dev, weights_only=True)
            if state["fingerprint"] != fp:
                raise ValueError(f"resume: {partial} is another run's (its fingerprint differs)")
            rng.bit_generator.state, spent = state["rng"], np.array(state["seconds"])
        clock = np.array([time.perf_counter(), time.process_time()]) - spent
        sigmas = (config.sigma_min, config.sigma_max)

        def batches():
            return [_sample_batch(regions, rng, config.batch_size, config.patch, sigmas)
                    for _ in range(n)]  # fmt: skip

        def save(state):
            seconds = ([time.perf_counter(), time.process_time()] - clock).tolist()
            state |= {"fingerprint": fp, "rng": rng.bit_generator.state, "seconds": seconds}
            utils.atomic_write(partial, lambda fh: torch.save(state, fh), overwrite=True)

        kw = {"epochs": config.epochs, "lr": config.lr, "weight_decay": config.weight_decay}
        kw |= {"clip": config.clip, "ema": config.ema, "state": state}
        history = fit(model, batches, _step, lambda m: validate(m, val), **kw, device=dev,
                      desc=f"{variant}/seed{seed}", progress=progress,
                      on_epoch=None if out is None else save)  # fmt: skip
        metrics = {k: v[-1] for k, v in history.items() if k.startswith("val_")}
        wall, cpu = [time.perf_counter(), time.process_time()] - clock
        metrics |= {"train_seconds": float(wall), "cpu_seconds": float(cpu)}
        info = {"kind": "denoise", "model": {**arch, "window": config.window}}
        info |= {"config": dataclasses.asdict(config), "config_name": name, "seed": seed}
        info |= {"device": dev.type, "cpu": machine(), "fingerprint": fp, "metrics": metrics}
        ckpt = make_checkpoint(model, info, history)
        if out is not None:
            claim.write(lambda fh: torch.save(ckpt, fh))
            partial.unlink(missing_ok=True)
    return model.eval(), ckpt


def load_checkpoint(path) -> tuple[DenoiseNet, dict]:
    """The ``DenoiseNet`` of a checkpoint of ``train`` (CPU, eval mode), and the checkpoint."""
    return read_checkpoint(path, lambda ckpt: DenoiseNet(**ckpt["model"]))


def tiled(model: DenoiseNet, window: int) -> DenoiseNet:
    """A copy of a whole-image ``model``, its block in ``window`` x ``window`` half-size tiles."""
    if not isinstance(model, DenoiseNet) or model.variant != "nonlocal":
        raise ValueError(f"model: expected a whole-image DenoiseNet, got {model!r:.80}")
    window = check_int("window", window, minimum=1, maximum=1024)
    copy = deepcopy(model)
    copy.layers[copy.block_index] = Windowed(copy.layers[copy.block_index], window)
    return copy


@functools.cache
def _committed(variant: str) -> DenoiseNet:
    return load_checkpoint(checkpoint_path(variant))[0]


@torch.no_grad()
def denoise(image, sigma: float, model="windowed") -> np.ndarray:
    """Remove Gaussian noise of known std ``sigma`` (the image's scale: 25 / 255 for 25 of 255)
    from a float grey ``image`` (H, W) in [0, 1] plus noise: (H, W) of its dtype, in float32 on the
    device of ``model``, a ``DenoiseNet`` or a name of ``VARIANTS`` (``denoiser_<name>.pt``)."""
    arr = as_array("image", image, (2,))
    if arr.dtype.kind != "f":
        raise TypeError(f"image: expected a float image in [0, 1], got dtype {arr.dtype}")
    if arr.min() < -1 or arr.max() > 2:
        raise ValueError(f"image: expected values in [0, 1] (plus noise), got up to {arr.max()}")
    if (sigma := check_real("sigma", sigma, minimum=0)) > 1:
        raise ValueError(f"sigma: expected a std on the image's scale (25/255), got {sigma}")
    model = _committed(check_choice("model", model, VARIANTS)) if isinstance(model, str) else model
    check_type("model", model, DenoiseNet, f"a DenoiseNet or one of {VARIANTS}")
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
    parser.add_argument("--resume", action="store_true", help="go on from <out>.partial")
    args = vars(parser.parse_args(argv))
    try:
        _, ckpt = train(args.pop("config"), **args)
    except (ValueError, TypeError, FileExistsError, RuntimeError, OSError) as err:
        parser.fail(err)
    print(", ".join(f"{k} {v:.2f}" for k, v in ckpt["metrics"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
