"""Training loop, checkpoints and CLI for the video task of ``nlviz.video`` (notebook 04).

One function, ``train(...)``, is used by the notebook, by ``nlviz.experiments`` and by the CLI::

    python -m nlviz.train --config quick --pairwise embedded_gaussian --variant spacetime \\
        --seed 0 --device auto --out run.pt [--overwrite]

Configs (``CONFIGS``): ``quick`` (under a minute on a 2-core CPU), ``full`` (the runs of the
ablation tables) and ``tiny`` (for the unit tests). The data are regenerated from their seeds
(``nlviz.video.generate``), so a checkpoint only stores weights, config and metrics, all plain
types: ``torch.load(path, weights_only=True)`` works and a GPU checkpoint loads on a CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nlviz._checks import check_choice, check_int
from nlviz.pairwise import PAIRWISE, check_pairwise
from nlviz.utils import pick_device, seed_everything
from nlviz.video import VARIANTS, VideoNet, generate, to_tensor

FORMAT = "nlviz-video-checkpoint-1"


@dataclass(frozen=True)
class Config:
    """Sizes of one training run (the data are generated from ``data_seed``)."""

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


CONFIGS = {
    "tiny": Config(n_train=64, n_val=32, epochs=2, width=4, size=16, frames=4),
    "quick": Config(n_train=1500, n_val=300, epochs=4, width=8),
    "full": Config(n_train=6000, n_val=500, epochs=6, width=8),
}


@dataclass
class Result:
    """What ``train`` returns: the model, its checkpoint dict and the per-epoch history."""

    model: nn.Module
    checkpoint: dict
    history: dict

    @property
    def val_acc(self) -> float:
        return self.checkpoint["metrics"]["val_acc"]


def make_data(config: Config, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 videos (n, T, H, W, 3) as a tensor and int64 labels for ``split``."""
    batch = generate(n, split=split, seed=config.data_seed, frames=config.frames, size=config.size)
    return torch.from_numpy(batch.videos), torch.from_numpy(batch.labels)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


@torch.no_grad()
def evaluate(
    model: nn.Module, videos: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 64
) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy) of ``model`` in eval mode on uint8 videos."""
    device = next(model.parameters()).device
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(labels), batch_size):
        x = to_tensor(videos[i : i + batch_size].numpy()).to(device)
        y = labels[i : i + batch_size].to(device)
        with _autocast(device):
            logits = model(x).float()
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    return loss / len(labels), correct / len(labels)


def build_model(model_config: dict) -> VideoNet:
    """A ``VideoNet`` from the ``"model"`` dict of a checkpoint."""
    return VideoNet(**model_config)


def train(
    config: str | Config = "quick",
    *,
    pairwise: str = "embedded_gaussian",
    variant: str = "spacetime",
    seed: int = 0,
    device: str | torch.device = "auto",
    blocks: int | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    data: dict | None = None,
) -> Result:
    """Train a C2D (``variant="none"``) or non-local C2D on the "same colour?" task.

    AdamW with a one-cycle cosine schedule, cross-entropy, bf16 autocast on CUDA; seeded by
    ``seed`` (weights, batch order). ``blocks`` overrides the config's number of non-local
    blocks. ``data`` may hold pre-generated {"train": (videos, labels), "val": (...)} to share
    between runs. Writes the checkpoint to ``out`` (atomically; refuses to overwrite an
    existing file unless ``overwrite``) and prints a final line with the validation accuracy.
    """
    name = config if isinstance(config, str) else "custom"
    if isinstance(config, str):
        config = CONFIGS[check_choice("config", config, tuple(CONFIGS))]
    if not isinstance(config, Config):
        raise TypeError(f"config: expected a name or a Config, got {type(config).__name__}")
    check_pairwise(pairwise)
    check_choice("variant", variant, VARIANTS)
    seed = check_int("seed", seed, minimum=0)
    if blocks is not None:
        config = dataclasses.replace(config, blocks=check_int("blocks", blocks, minimum=0))
    if variant == "none":
        config = dataclasses.replace(config, blocks=0)
    if out is not None:
        out = Path(out)
        if out.exists() and not overwrite:
            raise FileExistsError(f"out: {out} exists; pass overwrite=True (--overwrite)")
    dev = device if isinstance(device, torch.device) else pick_device(device)

    t0 = time.perf_counter()
    if data is None:
        data = {
            "train": make_data(config, "train", config.n_train),
            "val": make_data(config, "val", config.n_val),
        }
    x_train, y_train = data["train"]
    x_val, y_val = data["val"]

    seed_everything(seed)
    model_config = {
        "variant": variant,
        "pairwise": pairwise,
        "blocks": config.blocks,
        "width": config.width,
    }
    model = build_model(model_config).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(y_train) / config.batch_size)
    total = steps_per_epoch * config.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total)
    gen = torch.Generator().manual_seed(seed)
    history = {"epoch": [], "train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    bar = tqdm(
        total=total,
        desc=f"{variant}/{pairwise}/seed{seed}",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    )
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(y_train), generator=gen)
        run_loss, run_correct = 0.0, 0
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            x = to_tensor(x_train[idx].numpy()).to(dev)
            y = y_train[idx].to(dev)
            with _autocast(dev):
                logits = model(x).float()
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run_loss += loss.item() * len(idx)
            run_correct += (logits.argmax(1) == y).sum().item()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        val_loss, val_acc = evaluate(model, x_val, y_val)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(run_loss / len(y_train))
        history["train_acc"].append(run_correct / len(y_train))
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
        bar.set_postfix(loss=f"{run_loss / len(y_train):.3f}", val_acc=f"{val_acc:.3f}")
    bar.close()
    seconds = time.perf_counter() - t0

    model = model.float().cpu()
    checkpoint = {
        "format": FORMAT,
        "config": dataclasses.asdict(config),
        "config_name": name,
        "model": model_config,
        "seed": seed,
        "device": dev.type,
        "metrics": {
            "val_acc": float(history["val_acc"][-1]),
            "val_loss": float(history["val_loss"][-1]),
            "train_seconds": float(seconds),
        },
        "history": {k: [float(v) for v in vals] for k, vals in history.items()},
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    if out is not None:
        save_checkpoint(checkpoint, out, overwrite=overwrite)
    model.to(dev)
    print(
        f"{variant}/{pairwise} blocks={config.blocks} seed={seed} on {dev.type}: "
        f"val_acc={history['val_acc'][-1]:.3f} ({seconds:.0f} s)",
        flush=True,
    )
    return Result(model, checkpoint, history)


def save_checkpoint(checkpoint: dict, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write ``checkpoint`` with ``torch.save`` atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"path: {path} exists; pass overwrite=True (--overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".pt.tmp")
    os.close(fd)
    try:
        torch.save(checkpoint, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0o600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike) -> tuple[VideoNet, dict]:
    """Rebuild the model of a checkpoint on the CPU, in eval mode: returns (model, checkpoint).

    Raises FileNotFoundError if ``path`` is missing and ValueError naming the file when it is
    not a readable checkpoint of this format or its weights do not fit the model it describes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"path: {path} is not a readable checkpoint ({err!r:.200})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"path: {path} is not an nlviz video checkpoint (format {got!r})")
    for key in ("model", "state_dict", "config", "metrics"):
        if key not in ckpt:
            raise ValueError(f"path: {path} has no {key!r} entry")
    try:
        model = build_model(ckpt["model"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"path: {path} describes an invalid model: {err}") from err
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        msg = str(err).replace("\n", " ")[:300]
        raise ValueError(f"path: {path} weights do not match its model config: {msg}") from err
    model.eval()
    return model, ckpt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nlviz.train",
        description="Train C2D or non-local C2D on the synthetic 'same colour?' video task.",
    )
    parser.add_argument("--config", choices=tuple(CONFIGS), default="quick")
    parser.add_argument("--pairwise", choices=PAIRWISE, default="embedded_gaussian")
    parser.add_argument("--variant", choices=VARIANTS, default="spacetime")
    parser.add_argument(
        "--blocks", type=int, default=None, help="non-local blocks (default: config)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    if Path(args.out).exists() and not args.overwrite:
        parser.error(f"--out {args.out} exists; pass --overwrite to replace it")
    result = train(
        args.config,
        pairwise=args.pairwise,
        variant=args.variant,
        seed=args.seed,
        device=args.device,
        blocks=args.blocks,
        out=args.out,
        overwrite=args.overwrite,
    )
    print(f"validation accuracy: {result.val_acc:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
