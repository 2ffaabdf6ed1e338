"""Live pairs of Eq. 5's ReLU during training: the concatenation runs of the ablation, retrained.

    python benchmarks/concatenation_live_pairs.py [--jobs 2] [--overwrite] [--require-match]

Notebook 04 asks why a concatenation run of the ablation stays at chance. Eq. 5 is
``f = ReLU(a_i + b_j)`` with ``a_i = w_theta^T theta_i`` and ``b_j = w_phi^T phi_j``; where
a_i + b_j <= 0 for every pair (i, j) the block is dead: f = 0, y = 0, and no gradient reaches
theta, phi, g or w_f through f. This script measures it. For each seed of the committed
ablation (``data/results/ablation_runs.csv``) it retrains
``nlviz.train.train("full", pairwise="concatenation", seed=seed)`` with the same recipe
(``nlviz.train.fit``; the same data, seed, model and optimiser; one torch thread per run, as
``python -m nlviz.experiments --jobs 2 --threads 1`` ran) and records the fraction of live
pairs (a_i + b_j > 0) of the block on validation videos 0-63: before training (step 0), every
quarter of an epoch, and after every epoch, with the loss and the validation accuracy after
each epoch. After the last epoch it measures the test accuracy on the ablation's 1000 test
videos and compares both accuracies with the seed's committed row (tolerance 1e-3); the CSV
records the committed values and whether the rerun matched them (``--require-match``: write
nothing unless every seed matched), the CPU that ran it and the run's fingerprint
(``nlviz.train.run_fingerprint``: ``tests/test_fingerprints.py`` checks it against today's code
and the ablation's row). Output: ``data/results/concatenation_live_pairs.csv``,
written atomically, refused if it exists unless ``--overwrite``. About 100-150 s of CPU per
run.
"""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F

from nlviz.experiments import N_TEST, RUN_COLUMNS, read_csv
from nlviz.fingerprint import machine
from nlviz.pairwise import concatenation_scalars
from nlviz.train import CONFIGS, evaluate, fit, make_data, run_fingerprint
from nlviz.utils import Output, Parser, seed_everything
from nlviz.video import VideoNet, to_tensor

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "data" / "results" / "ablation_runs.csv"
OUT = ROOT / "data" / "results" / "concatenation_live_pairs.csv"
CONFIG = "full"
N_PROBE = 64  # validation videos 0-63: the fixed set on which pairs are counted
PROBES_PER_EPOCH = 4
TOLERANCE = 1e-3
COLUMNS = ("seed", "step", "epoch", "live_fraction", "train_loss", "val_loss", "val_acc",
           "test_acc", "committed_val_acc", "committed_test_acc", "matches_committed", "cpu",
           "fingerprint")  # fmt: skip


def live_fraction(model: VideoNet, videos: torch.Tensor) -> float:
    """Fraction of pairs (i, j) with a_i + b_j > 0 at the model's (first) block, in eval mode.

    Changes no state: eval-mode BatchNorm keeps its statistics, the mode is restored.
    """
    block = model.nonlocal_blocks()[0].block
    seen = {}
    hook = block.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(to_tensor(videos.numpy()).to(next(model.parameters()).device))
            theta = block.theta(seen["x"]).flatten(2).transpose(1, 2)
            phi = block.pool(block.phi(seen["x"])).flatten(2).transpose(1, 2)
            a, b = concatenation_scalars(theta.float(), phi.float(), block.w_f_vector.float())
    finally:
        hook.remove()
        model.train(was_training)
    return float((a[:, :, None] + b[:, None, :] > 0).double().mean())


def _train_step(model, batch, device):
    # the step of nlviz.train.train: uint8 videos -> [-1, 1], cross-entropy on float logits
    x, y = to_tensor(batch[0].numpy()).to(device), batch[1].to(device)
    logits = model(x).float()
    return F.cross_entropy(logits, y), int((logits.argmax(1) == y).sum()), len(y)


def _row(seed, step, per_epoch, live, **metrics) -> dict:
    row = {key: math.nan for key in COLUMNS}
    row.update(seed=seed, step=step, epoch=step / per_epoch, live_fraction=live, **metrics)
    return row


def retrain(seed: int, device: str = "cpu", threads: int = 1) -> list[dict]:
    """One concatenation run of the ablation's recipe; its rows of the output CSV."""
    torch.set_num_threads(threads)
    config, dev = CONFIGS[CONFIG], torch.device(device)
    splits = {"train": config.n_train, "val": config.n_val, "test": N_TEST["classify"]}
    data = {split: make_data(config, split, n) for split, n in splits.items()}
    probe = data["val"][0][:N_PROBE]
    (x, y), gen = data["train"], torch.Generator().manual_seed(seed)
    per_epoch = math.ceil(len(y) / config.batch_size)
    every = max(1, per_epoch // PROBES_PER_EPOCH)
    seed_everything(seed)  # as train(): seeds the weights; the batch order comes from gen
    model = VideoNet(
        variant="spacetime", pairwise="concatenation", blocks=config.blocks, width=config.width
    ).to(dev)
    rows = [_row(seed, 0, per_epoch, live_fraction(model, probe))]
    steps = [0]

    def batches():
        order = torch.randperm(len(y), generator=gen)
        return [(x[i], y[i]) for i in order.split(config.batch_size)]

    def step(model, batch, device):
        done = steps[0]  # optimiser steps taken so far
        if done % every == 0 and done % per_epoch != 0:  # a quarter of an epoch, not its end
            rows.append(_row(seed, done, per_epoch, live_fraction(model, probe)))
        steps[0] += 1
        return _train_step(model, batch, device)

    def validate(model):
        loss, acc = evaluate(model, *data["val"])  # first, exactly as train() validates
        return {"val_loss": loss, "val_acc": acc, "live_fraction": live_fraction(model, probe)}

    t0 = time.perf_counter()
    history = fit(model, batches, step, validate, epochs=config.epochs, lr=config.lr,
                  weight_decay=config.weight_decay, device=dev, desc=f"concatenation/seed{seed}",
                  progress=False)  # fmt: skip
    test_acc = evaluate(model, *data["test"])[1]
    for k, epoch in enumerate(history["epoch"]):
        metrics = {key: history[key][k] for key in ("train_loss", "val_loss", "val_acc")}
        if k == len(history["epoch"]) - 1:
            metrics["test_acc"] = test_acc
        live = history["live_fraction"][k]
        rows.append(_row(seed, epoch * per_epoch, per_epoch, live, **metrics))
    rows.sort(key=lambda r: r["step"])
    stamp = run_fingerprint(CONFIG, pairwise="concatenation", seed=seed)  # what train records
    for row in rows:
        row.update(cpu=machine(), fingerprint=stamp)
    print(f"seed {seed}: val_acc {history['val_acc'][-1]:.4f}, test_acc {test_acc:.4f}, "
          f"live {rows[-1]['live_fraction']:.3f} ({time.perf_counter() - t0:.0f} s)",
          file=sys.stderr, flush=True)  # fmt: skip
    return rows


def committed_runs(path=RUNS) -> dict[int, dict]:
    """The ablation's concatenation rows, by seed."""
    return {
        r["seed"]: r
        for r in read_csv(path, RUN_COLUMNS)
        if r["pairwise"] == "concatenation" and r["config"] == CONFIG
    }


def compare(rows: list[dict], committed: dict[int, dict]) -> dict[int, bool]:
    """Whether each seed's final accuracies equal its committed row to 1e-3 (recorded in rows)."""
    matched = {}
    for seed, ref in committed.items():
        last = [r for r in rows if r["seed"] == seed][-1]
        diffs = [abs(round(last[k], 4) - ref[k]) for k in ("val_acc", "test_acc")]
        matched[seed] = all(d <= TOLERANCE + 1e-9 for d in diffs)  # 1e-9: decimal rounding
        last.update(committed_val_acc=ref["val_acc"], committed_test_acc=ref["test_acc"],
                    matches_committed=int(matched[seed]))  # fmt: skip
        print(f"seed {seed}: rerun val/test {last['val_acc']:.4f} / {last['test_acc']:.4f}, "
              f"committed {ref['val_acc']:.4f} / {ref['test_acc']:.4f}: "
              f"{'matches' if matched[seed] else 'DIFFERS'}", file=sys.stderr)  # fmt: skip
    return matched


def _csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: v if isinstance(v, int | str) else f"{v:.6g}" for k, v in row.items()})
    return buf.getvalue().encode()


def main(argv=None) -> int:
    parser = Parser(prog="concatenation_live_pairs.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT), help="the CSV to write")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (processes)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "mps"),
                        help="the ablation ran on cpu")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--require-match", action="store_true",
                        help="write nothing unless every seed matches its row")  # fmt: skip
    args = parser.parse_args(argv)
    committed = committed_runs()
    seeds = sorted(committed)
    try:
        claim = Output(args.out, overwrite=args.overwrite, name="out")  # refuse before training
    except (ValueError, TypeError, FileExistsError) as err:
        parser.fail(err)
    with claim:
        t0 = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max(1, args.jobs), mp_context=ctx) as pool:
            results = list(pool.map(retrain, seeds, [args.device] * len(seeds)))
        rows = [row for result in results for row in result]
        matched = compare(rows, committed)
        if args.require_match and not all(matched.values()):
            parser.fail(ValueError(f"seeds {[s for s, m in matched.items() if not m]} differ "
                                   f"from {RUNS.name}: nothing written"))  # fmt: skip
        claim.write(lambda fh: fh.write(_csv_bytes(rows)))
    print(f"wrote {args.out} ({len(rows)} rows, {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
