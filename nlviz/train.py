"""The course's one training loop, its checkpoints and the CLI (notebooks 04-06).

    python -m nlviz.train --config quick --pairwise embedded_gaussian --seed 0 --out run.pt

``fit`` is the loop (AdamW, one-cycle schedule, bf16 autocast on CUDA, a tqdm bar); ``train``
uses it on the video tasks of ``nlviz.video``, ``nlviz.denoise`` on the denoiser. A checkpoint
holds plain types and tensors (it loads with ``weights_only=True``, a GPU one on a CPU) and a
SHA-256 digest of all of it, checked when it is read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nlviz.nets import VARIANTS, TrackNet, VideoNet
from nlviz.pairwise import PAIRWISE, check_pairwise
from nlviz.utils import (
    Output,
    Parser,
    atomic_write,
    check_bool,
    check_choice,
    check_int,
    check_real,
    pick_device,
    seed_everything,
)
from nlviz.video import TASKS, generate, to_tensor, track_tensors

__all__ = ["Config", "CONFIGS", "Result", "fit", "train", "evaluate", "make_data", "seal",
           "save_checkpoint", "read_checkpoint", "load_checkpoint"]  # fmt: skip

FORMAT = "nlviz-checkpoint-2"
MAX_BYTES = 256 * 2**20  # larger files are refused before they are read
LIMITS = {"n_train": 10**6, "n_val": 10**6, "epochs": 1000, "blocks": 4, "width": 256,
          "frames": 64, "size": 256, "batch_size": 4096, "data_seed": 2**32 - 1}  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Sizes of one training run; the data are generated from ``data_seed``."""

    n_train: int
    n_val: int
    epochs: int
    blocks: int = 1
    width: int = 16
    frames: int = 8
    size: int = 32
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    data_seed: int = 0
    task: str = "classify"
    objects: int = 4  # "track": the objects of a video, K

    def __post_init__(self) -> None:
        for name, top in LIMITS.items():
            low = 0 if name in ("blocks", "data_seed") else 2 if name == "frames" else 1
            check_int(name, getattr(self, name), minimum=16 if name == "size" else low, maximum=top)
        check_real("lr", self.lr, minimum=0, maximum=1, strict=True)
        check_real("weight_decay", self.weight_decay, minimum=0, maximum=1)
        check_choice("task", self.task, TASKS)
        check_int("objects", self.objects, minimum=3, maximum=10)


CONFIGS = {
    "tiny": Config(n_train=64, n_val=32, epochs=2, width=4, size=16, frames=4),
    "quick": Config(n_train=1500, n_val=300, epochs=4, width=8),
    "full": Config(n_train=6000, n_val=500, epochs=6, width=8),
    "track-tiny": Config(32, 16, 1, width=8, frames=4, size=32, batch_size=16, task="track"),
    "track-quick": Config(800, 100, 4, width=32, frames=4, size=48, batch_size=16, task="track"),
    "track-full": Config(1500, 300, 5, width=32, frames=4, size=48, batch_size=16, task="track"),
}


@dataclass
class Result:
    """What ``train`` returns: the model (on its device), its checkpoint and the history."""

    model: nn.Module
    checkpoint: dict
    history: dict

    @property
    def val_acc(self) -> float:
        return self.checkpoint["metrics"]["val_acc"]


def autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing elsewhere."""
    bf16 = device.type == "cuda"
    return torch.autocast(device.type, dtype=torch.bfloat16 if bf16 else None, enabled=bf16)


def fit(model, batches, step, validate, *, epochs, lr, weight_decay, device, desc, progress=True):
    """Train ``model`` in place with AdamW and a one-cycle schedule; return the history.

    Parameters
    ----------
    batches : callable
        ``batches()`` -> the list of batches of the next epoch (called once per epoch).
    step : callable
        ``step(model, batch, device)`` -> (loss tensor, number right or None, count).
    validate : callable
        ``validate(model)`` -> a dict of floats, after every epoch.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    todo = batches()
    total = len(todo) * epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)
    history: dict[str, list] = {"epoch": [], "train_loss": [], "train_acc": []}
    bar = tqdm(total=total, desc=desc, disable=not progress, file=sys.stderr, leave=False)
    for epoch in range(epochs):
        todo = batches() if epoch else todo
        model.train()
        loss_sum, right_sum, count = 0.0, 0, 0
        for batch in todo:
            with autocast(device):
                loss, right, n = step(model, batch, device)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum, count = loss_sum + loss.item() * n, count + n
            right_sum = None if right is None else right_sum + right
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(loss_sum / count)
        history["train_acc"].append(math.nan if right_sum is None else right_sum / count)
        for key, value in validate(model).items():
            history.setdefault(key, []).append(float(value))
    bar.close()
    return history


def make_data(config: Config, split: str, n: int) -> tuple[torch.Tensor, ...]:
    """``n`` videos of ``split`` as tensors: uint8 videos (n, T, H, W, 3), then the labels
    ("classify"), or the int8 masks and the (n, K) labels ("track")."""
    kw = {"frames": config.frames, "size": config.size, "objects": config.objects}
    batch = generate(n, task=config.task, split=split, seed=config.data_seed, **kw)
    parts = (batch.masks, batch.labels) if config.task == "track" else (batch.labels,)
    return tuple(torch.from_numpy(p) for p in (batch.videos, *parts))


def _step(model, batch, device):
    """Loss, right answers and count: of the videos ("classify"), or of the object pixels of
    the frames other than the reference frame ("track": background pixels are ignored)."""
    if len(batch) == 2:
        x, y = to_tensor(batch[0].numpy()), batch[1]
    else:
        x, y = track_tensors(*batch)
    x, y = x.to(device), y.to(device)
    logits = model(x).float()
    counted = y >= 0
    right = int(((logits.argmax(1) == y) & counted).sum())
    return F.cross_entropy(logits, y, ignore_index=-1), right, int(counted.sum())


@torch.no_grad()
def evaluate(model: nn.Module, *data, batch_size: int = 64) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval mode on tensors of ``make_data``: over the videos
    ("classify") or over the object pixels of the frames but the reference frame ("track")."""
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if len(data) not in (2, 3) or not all(isinstance(t, torch.Tensor) for t in data):
        raise TypeError(
            f"videos: expected the tensors of make_data, got {[type(t).__name__ for t in data]}"
        )
    if len(data[0]) == 0 or any(len(t) != len(data[0]) for t in data):
        raise ValueError(f"labels: expected one per video, got {[len(t) for t in data]}")
    device = next(model.parameters()).device
    model.eval()
    loss, right, count = 0.0, 0, 0
    for i in range(0, len(data[0]), batch_size):
        with autocast(device):
            out = _step(model, tuple(t[i : i + batch_size] for t in data), device)
        loss, right, count = loss + out[0].item() * out[2], right + out[1], count + out[2]
    return loss / count, right / count


def build_model(checkpoint: dict) -> nn.Module:
    """The network a checkpoint describes: ``TrackNet`` for "track", else ``VideoNet``."""
    net = TrackNet if checkpoint.get("kind") == "track" else VideoNet
    return net(**checkpoint["model"])


def _resolve(config, pairwise, variant, seed, blocks) -> tuple[str, Config, int]:
    name = config if isinstance(config, str) else "custom"
    if isinstance(config, str):
        config = CONFIGS[check_choice("config", config, tuple(CONFIGS))]
    if not isinstance(config, Config):
        raise TypeError(f"config: expected a name or a Config, got {type(config).__name__}")
    check_pairwise(pairwise)
    blocks = 0 if check_choice("variant", variant, VARIANTS) == "none" else blocks
    blocks = check_int("blocks", config.blocks if blocks is None else blocks, minimum=0, maximum=4)
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    return name, dataclasses.replace(config, blocks=blocks), seed


def train(config="quick", *, pairwise="embedded_gaussian", variant="spacetime", seed=0,
          device="auto", blocks=None, out=None, overwrite=False, progress=True,
          data=None):  # fmt: skip
    """Train C2D (``variant="none"``) or non-local C2D on the video task of ``nlviz.video``.

    Parameters
    ----------
    config : str or Config
        A name of ``CONFIGS`` or a ``Config``; ``blocks`` overrides its number of blocks.
    seed : int
        Seeds the weights and the batch order.
    out : path, optional
        The checkpoint, claimed before training (an existing file is refused unless
        ``overwrite``, and so is one another process is writing), written atomically after.
    data : dict, optional
        Pre-generated {"train": (videos, labels), "val": (...)}, shared between runs.

    Returns
    -------
    Result: ``model``, ``checkpoint``, ``history`` (per epoch: loss and accuracy).
    """
    name, config, seed = _resolve(config, pairwise, variant, seed, blocks)
    check_bool("progress", progress)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    claim = nullcontext() if out is None else Output(out, overwrite=overwrite, name="out")
    with claim:
        t0 = time.perf_counter()
        splits = {"train": config.n_train, "val": config.n_val}
        data = data or {split: make_data(config, split, n) for split, n in splits.items()}
        tensors, gen = data["train"], torch.Generator().manual_seed(seed)
        seed_everything(seed)
        size = {"labels": config.objects} if config.task == "track" else {"blocks": config.blocks}
        arch = {"variant": variant, "pairwise": pairwise, **size, "width": config.width}
        model = build_model({"kind": config.task, "model": arch}).to(dev)

        def batches():
            order = torch.randperm(len(tensors[0]), generator=gen)
            return [tuple(t[i] for t in tensors) for i in order.split(config.batch_size)]

        def validate(model):
            return dict(zip(("val_loss", "val_acc"), evaluate(model, *data["val"]), strict=True))

        kw = {"epochs": config.epochs, "lr": config.lr, "weight_decay": config.weight_decay}
        desc = f"{variant}/{pairwise}/seed{seed}"
        history = fit(
            model, batches, _step, validate, **kw, device=dev, desc=desc, progress=progress
        )
        metrics = {"val_acc": history["val_acc"][-1], "val_loss": history["val_loss"][-1]}
        metrics["train_seconds"] = time.perf_counter() - t0
        info = {"kind": config.task, "model": arch, "config": dataclasses.asdict(config)}
        info |= {"config_name": name, "seed": seed, "device": dev.type, "metrics": metrics}
        ckpt = make_checkpoint(model, info, history)
        if out is not None:
            claim.write(lambda fh: torch.save(ckpt, fh))
    print(f"{desc} blocks={config.blocks} on {dev.type}: val_acc={metrics['val_acc']:.3f} "
          f"({metrics['train_seconds']:.0f} s)", flush=True)  # fmt: skip
    return Result(model, ckpt, history)


def _digest(ckpt: dict) -> str:
    """SHA-256 of every entry but the digest: plain entries as JSON, then each tensor's bytes."""
    plain = {k: v for k, v in ckpt.items() if k not in ("state_dict", "digest")}
    h = hashlib.sha256(json.dumps(plain, sort_keys=True).encode())
    for key, t in sorted(ckpt["state_dict"].items()):
        h.update(f"{key}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def seal(checkpoint: dict) -> dict:
    """A copy of ``checkpoint`` with the digest of what it holds now."""
    checkpoint = {k: v for k, v in checkpoint.items() if k != "digest"}
    return {**checkpoint, "digest": _digest(checkpoint)}


def make_checkpoint(model: nn.Module, info: dict, history: dict) -> dict:
    """The sealed checkpoint of a trained model: ``info`` (kind, model, config, metrics...),
    the history and the weights, copied to the CPU."""
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    info = {**info, "metrics": {k: float(v) for k, v in info["metrics"].items()}}
    hist = {k: [float(v) for v in vs] for k, vs in history.items()}
    return seal({"format": FORMAT, **info, "history": hist, "state_dict": state})


def save_checkpoint(checkpoint: dict, path, *, overwrite: bool = False) -> Path:
    """Write ``checkpoint`` with ``torch.save`` atomically (sealed first if it has no digest)."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise TypeError(f"checkpoint: expected a dict with a state_dict, got {type(checkpoint)}")
    checkpoint = checkpoint if "digest" in checkpoint else seal(checkpoint)
    return atomic_write(path, lambda fh: torch.save(checkpoint, fh), overwrite=overwrite)


TYPES = {"format": str, "kind": str, "model": dict, "config": dict, "config_name": str,
         "seed": int, "device": str, "metrics": dict, "history": dict, "state_dict": dict,
         "digest": str}  # fmt: skip


def _check_fields(ckpt: dict, path) -> None:
    """Every entry of the right type, plain values in the dicts, finite weights."""
    for key, kind in TYPES.items():
        if key in ckpt and not isinstance(ckpt[key], kind):
            raise ValueError(f"path: {path} has a {key!r} of type {type(ckpt[key]).__name__}")
    for key in ("model", "state_dict", "digest"):
        if key not in ckpt:
            raise ValueError(f"path: {path} has no {key!r} entry")
    plain = (str, int, float, bool, type(None))
    for key in ("model", "config", "metrics"):
        bad = [k for k, v in ckpt.get(key, {}).items() if not isinstance(v, plain)]
        if bad:
            raise ValueError(f"path: {path} has values of the wrong type in {key!r}: {bad[:3]}")
    for key, t in ckpt["state_dict"].items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"path: {path} state_dict[{key!r}] is not a tensor")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"path: {path} state_dict[{key!r}] holds NaN or inf")


def read_checkpoint(path, build) -> tuple[nn.Module, dict]:
    """Read and verify a checkpoint; ``build(checkpoint)`` makes its model (CPU, eval mode).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Naming the file: not a readable checkpoint of this format, an entry of the wrong type,
        non-finite weights, an invalid model, or weights and config that do not match (each
        other, or the digest stored at training: edited or corrupt).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint at {path}")
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"path: {path} is larger than {MAX_BYTES} bytes: not a checkpoint")
    try:
        ckpt = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever fails to unpickle is "not readable"
        raise ValueError(f"path: {path} is not a readable checkpoint ({err!r:.200})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"path: {path} is not an nlviz checkpoint ({FORMAT}), got {got!r}")
    _check_fields(ckpt, path)
    try:
        model = build(ckpt)
    except (TypeError, ValueError) as err:
        raise ValueError(f"path: {path} describes an invalid model: {err}") from err
    if _digest(ckpt) != ckpt["digest"]:
        raise ValueError(f"path: {path}: weights and config do not match its digest (edited?)")
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        msg = str(err).replace("\n", " ")[:300]
        raise ValueError(f"path: {path} weights do not match its model config: {msg}") from err
    return model.eval(), ckpt


def load_checkpoint(path) -> tuple[nn.Module, dict]:
    """The network of a checkpoint of ``train`` (CPU, eval mode), and the checkpoint."""
    return read_checkpoint(path, build_model)


def main(argv=None) -> int:
    parser = Parser(prog="python -m nlviz.train", description="Train C2D or non-local C2D.")
    parser.add_argument("--config", choices=tuple(CONFIGS), default="quick")
    parser.add_argument("--pairwise", choices=PAIRWISE, default="embedded_gaussian")
    parser.add_argument("--variant", choices=VARIANTS, default="spacetime")
    parser.add_argument("--blocks", type=int, default=None, help="NL blocks (default: config)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = vars(parser.parse_args(argv))
    try:
        result = train(args.pop("config"), **args)
    except (ValueError, TypeError, FileExistsError, RuntimeError) as err:
        parser.fail(err)
    print(f"validation accuracy: {result.val_acc:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
