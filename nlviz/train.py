"""The course's one training loop, its checkpoints and the CLI (notebooks 04-06).

    python -m nlviz.train --config quick --pairwise embedded_gaussian --seed 0 --out run.pt

``fit`` is the loop (AdamW, one-cycle schedule, bf16 autocast on CUDA, a tqdm bar) of ``train``
(the video tasks of ``nlviz.video``) and ``nlviz.denoise``. A checkpoint records the CPU that
trained it and the fingerprint of the run's start (``nlviz.fingerprint``).
"""

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from nlviz import utils
from nlviz.checkpoint import make_checkpoint, read_checkpoint, save_checkpoint, seal
from nlviz.fingerprint import fingerprint, machine
from nlviz.nets import VARIANTS, TrackNet, VideoNet
from nlviz.pairwise import PAIRWISE, check_pairwise
from nlviz.utils import Output, Parser, check_bool, check_choice, check_int, check_real, check_type
from nlviz.video import TASKS, generate, to_tensor, track_tensors

__all__ = ["Config", "CONFIGS", "fit", "train", "evaluate", "make_data",
           "run_fingerprint", "seal", "save_checkpoint", "read_checkpoint",
           "load_checkpoint"]  # fmt: skip

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
class _Result:
    """What ``train`` returns: the model (on its device), its checkpoint and the history."""

    model: nn.Module
    checkpoint: dict
    history: dict

    val_acc = property(lambda self: self.checkpoint["metrics"]["val_acc"])  # the last epoch's


def autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing elsewhere."""
    bf16 = device.type == "cuda"
    return torch.autocast(device.type, dtype=torch.bfloat16 if bf16 else None, enabled=bf16)


def _epoch(model, todo, step, opt, sched, avg, clip, device, bar, epoch) -> tuple[float, float]:
    """One pass over the batches ``todo``, ``avg`` (an EMA or None) updated after every step:
    (mean loss, accuracy or nan); a loss that is not finite stops it (ValueError)."""
    model.train()
    loss_sum, right_sum, count = 0.0, 0, 0
    for i, batch in enumerate(todo):
        with autocast(device):
            loss, right, n = step(model, batch, device)
        if not math.isfinite(value := loss.item()):  # before the step: the weights stay finite
            at = f"step {epoch * len(todo) + i + 1} (epoch {epoch + 1})"
            raise ValueError(f"loss: not finite at {at}: {value}; try a lower lr or a clip")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        if avg is not None:
            avg.update_parameters(model)
        loss_sum, count = loss_sum + value * n, count + n
        right_sum = None if right is None else right_sum + right
        bar.update(1)
        bar.set_postfix(loss=f"{value:.3f}")
    return loss_sum / count, math.nan if right_sum is None else right_sum / count


def fit(model, batches, step, validate, *, epochs, lr, weight_decay, device, desc, progress=True,
        clip=None, ema=None, state=None, on_epoch=None):  # fmt: skip
    """Train ``model`` in place with AdamW and a one-cycle schedule; return the history.

    ``batches()``: the batches of the next epoch (called once per epoch); ``step(model, batch,
    device)``: (loss tensor, number right or None, count), a loss not finite stops training;
    ``validate(model)``: a dict of floats, after every epoch. ``clip``: the gradient's global
    norm before each step. ``ema``: validate, and leave in ``model``, an exponential moving
    average of the weights and buffers with this decay per step (``AveragedModel``).
    ``on_epoch(state)`` after every epoch: the history and the state dicts to resume from;
    ``fit(..., state=state)`` goes on as if never stopped (``batches`` must go on too).
    """
    check_type("model", model, nn.Module, "an nn.Module")
    for name, fn in {"batches": batches, "step": step, "validate": validate}.items():
        check_type(name, fn, Callable, "a function")
    check_type("on_epoch", on_epoch, Callable | None, "a function or None")
    check_int("epochs", epochs, minimum=1, maximum=10**5)
    check_real("lr", lr, minimum=0, maximum=1, strict=True)
    check_real("weight_decay", weight_decay, minimum=0, maximum=1)
    check_type("device", device, torch.device, "a torch.device (utils.pick_device)")
    check_type("desc", desc, str, "a str")
    check_bool("progress", progress)
    if clip is not None:
        check_real("clip", clip, minimum=0, strict=True)
    if ema is not None and not 0 < check_real("ema", ema) < 1:
        raise ValueError(f"ema: expected a decay in (0, 1), got {ema}")
    if state is not None and not (isinstance(state, dict) and {"history", "states"} <= set(state)):
        raise TypeError(f"state: expected a dict of on_epoch (history, states), got {state!r:.80}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    todo = batches()
    total = len(todo) * epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)
    history: dict[str, list] = {"epoch": [], "train_loss": [], "train_acc": []}
    ema_fn = None if ema is None else get_ema_multi_avg_fn(ema)
    avg = None if ema is None else AveragedModel(model, use_buffers=True, multi_avg_fn=ema_fn)
    parts = (model, opt, sched) if avg is None else (model, opt, sched, avg)
    if state is not None:
        for part, saved in zip(parts, state["states"], strict=True):
            part.load_state_dict(saved)
        history = state["history"]
    done = len(history["epoch"])
    bar = tqdm(total=total, initial=done * len(todo), desc=desc, disable=not progress,
               file=sys.stderr, leave=False)  # fmt: skip
    for epoch in range(done, epochs):
        todo = batches() if epoch > done else todo
        loss, acc = _epoch(model, todo, step, opt, sched, avg, clip, device, bar, epoch)
        for key, value in {"epoch": epoch + 1, "train_loss": loss, "train_acc": acc}.items():
            history[key].append(value)
        for key, value in validate(model if avg is None else avg.module).items():
            history.setdefault(key, []).append(float(value))
        if on_epoch is not None:
            on_epoch({"history": history, "states": [p.state_dict() for p in parts]})
    bar.close()
    if avg is not None:
        model.load_state_dict(avg.module.state_dict())
    return history


def make_data(config: Config, split: str, n: int, start: int = 0, speed: float = 1.0) -> tuple:
    """Videos ``start`` to ``start + n - 1`` of ``split`` as tensors: uint8 videos (n, T, H, W,
    3), then the labels ("classify"), or the int8 masks and the (n, K) labels ("track"; its
    objects ``speed`` times as fast as in training)."""
    check_type("config", config, Config, "a Config (CONFIGS[name])")
    kw = {"frames": config.frames, "size": config.size, "objects": config.objects, "start": start,
          "speed": speed}  # fmt: skip
    batch = generate(n, task=config.task, split=split, seed=config.data_seed, **kw)
    parts = (batch.masks, batch.labels) if config.task == "track" else (batch.labels,)
    return tuple(torch.from_numpy(p) for p in (batch.videos, *parts))


def _step(model, batch, device):
    """Loss, right answers and count: of the videos ("classify"), or of the object pixels of
    the frames other than the reference frame ("track": background pixels are ignored)."""
    x, y = (to_tensor(batch[0].numpy()), batch[1]) if len(batch) == 2 else track_tensors(*batch)
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
    check_type("model", model, nn.Module, "an nn.Module")
    if len(data) not in (2, 3) or not all(isinstance(t, torch.Tensor) for t in data):
        raise TypeError(f"videos: expected the tensors of make_data, got {data!r:.80}")
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


def _init(config: Config, pairwise: str, variant: str, seed: int,
          attention=None) -> tuple[dict, nn.Module]:  # fmt: skip
    """(architecture, model) of a run as initialised for ``seed``, before any step."""
    utils.seed_everything(seed)
    size = {"labels": config.objects} if config.task == "track" else {"blocks": config.blocks}
    arch = {"variant": variant, "pairwise": pairwise, **size, "width": config.width}
    if attention is not None:  # nlviz.spacetime's blocks
        arch |= {"blocks": config.blocks, "attention": attention}
    return arch, build_model({"kind": config.task, "model": arch})


def _order(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """The next epoch's batches of indices into ``n`` training videos, drawn from ``gen``."""
    return list(torch.randperm(n, generator=gen).split(batch_size))


def _first_batch(config: Config, seed: int) -> torch.Tensor:
    """Indices of the training videos in the first batch of a run of ``seed``."""
    return _order(config.n_train, config.batch_size, torch.Generator().manual_seed(seed))[0]


def _fingerprint(config: Config, arch: dict, model: nn.Module, seed: int, index, batch) -> str:
    """Config, architecture (the pairwise function too: the embedded Gaussian and the dot
    product start from the same weights), seed, the first batch's indices and labels exactly;
    the initial weights and the batch's pixels (videos, masks) projected."""
    exact = {"config": dataclasses.asdict(config), "model": arch, "seed": seed,
             "index": index.tolist(), "labels": batch[-1].tolist()}  # fmt: skip
    return fingerprint(model, exact, batch[:-1])


def run_fingerprint(config="quick", *, pairwise="embedded_gaussian", variant="spacetime", seed=0,
                    blocks=None, attention=None) -> str:  # fmt: skip
    """The fingerprint that ``train`` with these arguments records, computed without training:
    the model initialised for ``seed`` and its first batch, each video generated alone."""
    _, config, seed = _resolve(config, pairwise, variant, seed, blocks)
    index = _first_batch(config, seed)
    parts = [make_data(config, "train", 1, start=int(i)) for i in index]
    batch = tuple(torch.cat(ts) for ts in zip(*parts, strict=True))
    arch_model = _init(config, pairwise, variant, seed, attention)
    return _fingerprint(config, *arch_model, seed, index, batch)


def _resolve(config, pairwise, variant, seed, blocks) -> tuple[str, Config, int]:
    name = config if isinstance(config, str) else "custom"
    config = CONFIGS[check_choice("config", config, tuple(CONFIGS))] if name != "custom" else config
    check_type("config", config, Config, "a name or a Config")
    check_pairwise(pairwise)
    blocks = 0 if check_choice("variant", variant, VARIANTS) == "none" else blocks
    blocks = check_int("blocks", config.blocks if blocks is None else blocks, minimum=0, maximum=4)
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    return name, dataclasses.replace(config, blocks=blocks), seed


def train(config="quick", *, pairwise="embedded_gaussian", variant="spacetime", seed=0,
          device="auto", blocks=None, out=None, overwrite=False, progress=True,
          data=None, attention=None):  # fmt: skip
    """Train C2D (``variant="none"``) or non-local C2D on the video task of ``nlviz.video``;
    return a result with ``model``, ``checkpoint``, ``history`` (per epoch: loss, accuracy).

    Parameters
    ----------
    config : str or Config, a name of ``CONFIGS`` or a ``Config`` (``blocks`` overrides its own)
    seed : int, seeds the weights and the batch order
    out : path, optional, the checkpoint: claimed before training (an existing file is refused
        unless ``overwrite``, as is one another process writes), written atomically after
    data : dict, optional, pre-generated {"train": (videos, labels), "val": (...)} to share
    attention : dict, optional, ``nlviz.spacetime.SpacetimeAttention``'s arguments: its blocks
        replace the non-local block
    """
    name, config, seed = _resolve(config, pairwise, variant, seed, blocks)
    check_bool("progress", progress)
    check_bool("overwrite", overwrite)
    if data is not None and not (isinstance(data, dict) and {"train", "val"} <= data.keys()):
        raise TypeError(f"data: expected a dict of make_data (train, val), got {data!r:.80}")
    dev = device if isinstance(device, torch.device) else utils.pick_device(device)
    claim = nullcontext() if out is None else Output(out, overwrite=overwrite, name="out")
    with claim:
        t0 = time.perf_counter()
        splits = {"train": config.n_train, "val": config.n_val}
        data = data or {split: make_data(config, split, n) for split, n in splits.items()}
        tensors, gen = data["train"], torch.Generator().manual_seed(seed)
        arch, model = _init(config, pairwise, variant, seed, attention)
        index = _first_batch(config, seed)
        fp = _fingerprint(config, arch, model, seed, index, tuple(t[index] for t in tensors))
        model = model.to(dev)

        def batches():
            order = _order(len(tensors[0]), config.batch_size, gen)
            return [tuple(t[i] for t in tensors) for i in order]

        def validate(model):
            return dict(zip(("val_loss", "val_acc"), evaluate(model, *data["val"]), strict=True))

        kw = {"epochs": config.epochs, "lr": config.lr, "weight_decay": config.weight_decay}
        desc = f"{variant}/{pairwise}/seed{seed}"
        history = fit(model, batches, _step, validate, **kw, device=dev, desc=desc,
                      progress=progress)  # fmt: skip
        metrics = {"val_acc": history["val_acc"][-1], "val_loss": history["val_loss"][-1]}
        metrics["train_seconds"] = time.perf_counter() - t0
        info = {"kind": config.task, "model": arch, "config": dataclasses.asdict(config)}
        info |= {"config_name": name, "seed": seed, "device": dev.type, "metrics": metrics,
                 "cpu": machine(), "fingerprint": fp}  # fmt: skip
        ckpt = make_checkpoint(model, info, history)
        if out is not None:
            claim.write(lambda fh: torch.save(ckpt, fh))
    print(f"{desc} blocks={config.blocks} on {dev.type}: val_acc={metrics['val_acc']:.3f} "
          f"({metrics['train_seconds']:.0f} s)", flush=True)  # fmt: skip
    return _Result(model, ckpt, history)


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
    except (ValueError, TypeError, FileExistsError, RuntimeError, OSError) as err:
        parser.fail(err)
    print(f"validation accuracy: {result.val_acc:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
