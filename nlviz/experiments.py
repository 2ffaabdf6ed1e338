"""The ablations of notebook 04: Table 2a (pairwise functions) and 2d (space / time / spacetime).

``python -m nlviz.experiments`` trains every model of both tables for several seeds with
``nlviz.train.train`` (config ``full`` by default), measures top-1 accuracy on the held-out
test split, and writes

- ``data/results/ablation.csv``: one row per model, columns ``COLUMNS`` (mean and sample std
  over seeds, the device and the summed training seconds);
- ``data/results/ablation_runs.csv``: one row per run (seed), rewritten after every run, so an
  interrupted set keeps what ran and ``--resume`` skips it;
- ``data/checkpoints/<pairwise>.pt``: the seed-0 spacetime model of each pairwise function.

Experiments (the C2D baseline runs are shared by both tables):

- ``pairwise``: C2D baseline and 1 spacetime block with each of the four pairwise functions
  (the paper's Table 2a uses 1 block);
- ``variant``: ``VARIANT_BLOCKS`` embedded-Gaussian blocks (2 in res3, 1 in res4; the
  paper's Table 2d uses 5) applied space-only, time-only and spacetime.

Existing files are never replaced without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from nlviz.pairwise import PAIRWISE
from nlviz.train import CONFIGS, Config, evaluate, make_data, save_checkpoint, train

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "data" / "results" / "ablation.csv"
RUNS = RESULTS.with_name("ablation_runs.csv")
CHECKPOINTS = ROOT / "data" / "checkpoints"
COLUMNS = (
    "experiment",
    "model",
    "pairwise",
    "variant",
    "blocks",
    "top1_mean",
    "top1_std",
    "seeds",
    "device",
    "train_seconds",
)
RUN_COLUMNS = (
    "model",
    "pairwise",
    "variant",
    "blocks",
    "seed",
    "config",
    "val_acc",
    "test_acc",
    "device",
    "train_seconds",
)
VARIANT_BLOCKS = 3
N_TEST = 1000

# The paper's Kinetics top-1 (%), ResNet-50 C2D: Table 2a (1 block) and Table 2d (5 blocks).
PAPER_TOP1 = {
    ("pairwise", "C2D baseline"): 71.8,
    ("pairwise", "gaussian"): 72.5,
    ("pairwise", "embedded_gaussian"): 72.7,
    ("pairwise", "dot_product"): 72.9,
    ("pairwise", "concatenation"): 72.8,
    ("variant", "C2D baseline"): 71.8,
    ("variant", "space"): 72.9,
    ("variant", "time"): 73.1,
    ("variant", "spacetime"): 73.8,
}


def plan() -> list[dict]:
    """The distinct models to train: (model, pairwise, variant, blocks) and their tables."""
    models = [{"model": "C2D", "pairwise": "none", "variant": "none", "blocks": 0}]
    models += [
        {"model": "NL C2D", "pairwise": p, "variant": "spacetime", "blocks": 1} for p in PAIRWISE
    ]
    models += [
        {"model": "NL C2D", "pairwise": "embedded_gaussian", "variant": v, "blocks": VARIANT_BLOCKS}
        for v in ("space", "time", "spacetime")
    ]
    return models


def tables(models: list[dict]) -> list[tuple[str, dict]]:
    """(experiment, model) rows of the two tables, baseline first in each."""
    rows = [("pairwise", m) for m in models if m["blocks"] <= 1]
    rows += [("variant", m) for m in models if m["blocks"] in (0, VARIANT_BLOCKS)]
    return rows


def _write_csv(path: Path, columns, rows: list[dict]) -> None:
    """Write rows atomically (temporary file in the same folder, then ``os.replace``)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".csv.tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(buf.getvalue())
        os.chmod(tmp, 0o644)  # mkstemp makes 0o600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_results(path: str | os.PathLike = RESULTS) -> list[dict]:
    """Rows of an ablation CSV as dicts (numbers converted), checking the columns."""
    path = Path(path)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"path: {path} has columns {reader.fieldnames}, expected {COLUMNS}")
        rows = list(reader)
    for row in rows:
        row["blocks"] = int(row["blocks"])
        row["seeds"] = int(row["seeds"])
        for key in ("top1_mean", "top1_std", "train_seconds"):
            row[key] = float(row[key])
    return rows


def read_runs(path: str | os.PathLike = RUNS) -> list[dict]:
    """Rows of a per-run CSV (one per seed) as dicts, numbers converted."""
    path = Path(path)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != RUN_COLUMNS:
            raise ValueError(
                f"path: {path} has columns {reader.fieldnames}, expected {RUN_COLUMNS}"
            )
        rows = list(reader)
    for row in rows:
        for key in ("blocks", "seed"):
            row[key] = int(row[key])
        for key in ("val_acc", "test_acc", "train_seconds"):
            row[key] = float(row[key])
    return rows


def summarise(runs: list[dict]) -> list[dict]:
    """Per-seed runs -> the rows of ablation.csv (top-1 in %, sample std over seeds)."""
    out = []
    for experiment, m in tables(plan()):
        mine = [
            r
            for r in runs
            if (r["pairwise"], r["variant"], int(r["blocks"]))
            == (m["pairwise"], m["variant"], m["blocks"])
        ]
        if not mine:
            continue
        accs = [100 * float(r["test_acc"]) for r in mine]
        out.append(
            {
                "experiment": experiment,
                "model": m["model"],
                "pairwise": m["pairwise"],
                "variant": m["variant"],
                "blocks": m["blocks"],
                "top1_mean": round(statistics.mean(accs), 2),
                "top1_std": round(statistics.stdev(accs), 2) if len(accs) > 1 else 0.0,
                "seeds": len(accs),
                "device": "+".join(sorted({r["device"] for r in mine})),
                "train_seconds": round(sum(float(r["train_seconds"]) for r in mine), 1),
            }
        )
    return out


def run(
    *,
    config: str = "full",
    seeds: int = 3,
    device: str = "auto",
    out: str | os.PathLike = RESULTS,
    checkpoints: str | os.PathLike | None = CHECKPOINTS,
    overwrite: bool = False,
    resume: bool = False,
) -> list[dict]:
    """Train every model of ``plan()`` for ``seeds`` seeds and write the CSVs (see module doc)."""
    out = Path(out)
    runs_path = out.with_name(out.stem + "_runs.csv")
    ckpt_dir = None if checkpoints is None else Path(checkpoints)
    if out.exists() and not (overwrite or resume):
        raise FileExistsError(f"out: {out} exists; pass --overwrite (or --resume)")
    ckpt_paths = {p: ckpt_dir / f"{p}.pt" for p in PAIRWISE} if ckpt_dir else {}
    existing = [str(p) for p in ckpt_paths.values() if p.exists()]
    if existing and not (overwrite or resume):
        raise FileExistsError(f"checkpoints: {existing} exist; pass --overwrite (or --resume)")
    cfg: Config = CONFIGS[config]
    runs: list[dict] = []
    if resume and runs_path.exists():
        with open(runs_path, newline="") as fh:
            runs = [r for r in csv.DictReader(fh) if r["config"] == config]
    done = {(r["pairwise"], r["variant"], int(r["blocks"]), int(r["seed"])) for r in runs}
    data = {
        "train": make_data(cfg, "train", cfg.n_train),
        "val": make_data(cfg, "val", cfg.n_val),
    }
    test = make_data(cfg, "test", N_TEST)
    for seed in range(seeds):  # seed 0 of every model first: a cut-short set still has them all
        for m in plan():
            key = (m["pairwise"], m["variant"], m["blocks"], seed)
            if key in done:
                continue
            pairwise = "embedded_gaussian" if m["pairwise"] == "none" else m["pairwise"]
            result = train(
                cfg,
                pairwise=pairwise,
                variant=m["variant"],
                blocks=m["blocks"],
                seed=seed,
                device=device,
                data=data,
            )
            test_acc = evaluate(result.model, *test)[1]
            ckpt = result.checkpoint
            ckpt["config_name"] = config
            ckpt["metrics"]["test_acc"] = float(test_acc)
            runs.append(
                {
                    **m,
                    "seed": seed,
                    "config": config,
                    "val_acc": round(result.val_acc, 4),
                    "test_acc": round(test_acc, 4),
                    "device": ckpt["device"],
                    "train_seconds": round(ckpt["metrics"]["train_seconds"], 1),
                }
            )
            _write_csv(runs_path, RUN_COLUMNS, runs)
            print(f"  test_acc={test_acc:.3f}", file=sys.stderr, flush=True)
            if ckpt_paths and seed == 0 and m["variant"] == "spacetime" and m["blocks"] == 1:
                save_checkpoint(ckpt, ckpt_paths[m["pairwise"]], overwrite=True)
    rows = summarise(runs)
    _write_csv(out, COLUMNS, rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nlviz.experiments",
        description="Train the models of the pairwise and variant ablations; write the CSVs.",
    )
    parser.add_argument("--config", choices=tuple(CONFIGS), default="full")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--out", default=str(RESULTS), help="the summary CSV")
    parser.add_argument("--checkpoints", default=str(CHECKPOINTS), help="folder ('' for none)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--resume", action="store_true", help="keep runs already in *_runs.csv")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds: expected an integer >= 1, got {args.seeds}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        rows = run(
            config=args.config,
            seeds=args.seeds,
            device=args.device,
            out=args.out,
            checkpoints=args.checkpoints or None,
            overwrite=args.overwrite,
            resume=args.resume,
        )
    except FileExistsError as err:
        parser.error(str(err))
    for row in rows:
        print(",".join(str(row[c]) for c in COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
