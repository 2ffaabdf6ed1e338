"""The ablations of notebook 04: Table 2a (pairwise functions) and 2d (space / time / spacetime).

``python -m nlviz.experiments`` trains every model of both tables for several seeds with
``nlviz.train.train`` (config ``full`` by default), measures top-1 accuracy on the held-out
test split, and writes

- ``data/results/ablation.csv``: one row per model, columns ``COLUMNS`` (mean and sample std
  over seeds, the device and the summed training seconds);
- ``data/results/ablation_runs.csv``: one row per run (seed), rewritten after every run, so an
  interrupted set keeps what ran and ``--resume`` skips it;
- ``data/checkpoints/<pairwise>.pt``: the seed-0 spacetime model of each pairwise function,
  and ``embedded_gaussian_3blocks.pt``, the seed-0 spacetime model of the variant table.

Experiments (the C2D baseline runs are shared by both tables):

- ``pairwise``: C2D baseline and 1 spacetime block with each of the four pairwise functions
  (the paper's Table 2a uses 1 block);
- ``variant``: ``VARIANT_BLOCKS`` embedded-Gaussian blocks (2 in res3, 1 in res4; the
  paper's Table 2d uses 5) applied space-only, time-only and spacetime.

Existing files are never replaced without ``--overwrite``. ``--jobs 2 --threads 1`` trains two
runs at once (the fastest way on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import csv
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from nlviz._checks import check_choice, check_int
from nlviz.pairwise import PAIRWISE
from nlviz.train import CONFIGS, evaluate, make_data, save_checkpoint, train

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


_DATA: dict = {}


def _data(config: str) -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
    """Train/val data and the test split of ``config``, generated once per process."""
    if config not in _DATA:
        cfg = CONFIGS[config]
        _DATA.clear()
        data = {
            "train": make_data(cfg, "train", cfg.n_train),
            "val": make_data(cfg, "val", cfg.n_val),
        }
        _DATA[config] = (data, make_data(cfg, "test", N_TEST))
    return _DATA[config]


def train_one(
    config: str, model: dict, seed: int, device: str = "auto", progress: bool = True
) -> tuple[dict, dict]:
    """Train one model of ``plan()`` for one seed: (its row of the runs CSV, its checkpoint)."""
    data, test = _data(config)
    pairwise = "embedded_gaussian" if model["pairwise"] == "none" else model["pairwise"]
    result = train(
        CONFIGS[config],
        pairwise=pairwise,
        variant=model["variant"],
        blocks=model["blocks"],
        seed=seed,
        device=device,
        data=data,
        progress=progress,
    )
    test_acc = evaluate(result.model, *test)[1]
    ckpt = result.checkpoint
    ckpt["config_name"] = config
    ckpt["metrics"]["test_acc"] = float(test_acc)
    row = {
        **model,
        "seed": seed,
        "config": config,
        "val_acc": round(result.val_acc, 4),
        "test_acc": round(test_acc, 4),
        "device": ckpt["device"],
        "train_seconds": round(ckpt["metrics"]["train_seconds"], 1),
    }
    return row, ckpt


def checkpoint_name(model: dict) -> str | None:
    """File name under which the seed-0 run of ``model`` is kept, or None if it is not kept.

    The 1-block spacetime model of each pairwise function is ``<pairwise>.pt``; the
    ``VARIANT_BLOCKS``-block spacetime model is ``embedded_gaussian_<n>blocks.pt``.
    """
    if model["variant"] != "spacetime":
        return None
    if model["blocks"] == 1:
        return f"{model['pairwise']}.pt"
    return f"{model['pairwise']}_{model['blocks']}blocks.pt"


def _order(row: dict) -> tuple[int, int]:
    keys = [(m["pairwise"], m["variant"], m["blocks"]) for m in plan()]
    return int(row["seed"]), keys.index((row["pairwise"], row["variant"], int(row["blocks"])))


def run(
    *,
    config: str = "full",
    seeds: int = 3,
    device: str = "auto",
    out: str | os.PathLike = RESULTS,
    checkpoints: str | os.PathLike | None = CHECKPOINTS,
    overwrite: bool = False,
    resume: bool = False,
    jobs: int = 1,
    threads: int | None = None,
) -> list[dict]:
    """Train every model of ``plan()`` for ``seeds`` seeds and write the CSVs (see module doc).

    ``jobs`` > 1 trains that many runs at once in worker processes, each with ``threads``
    torch threads (default: the CPU cores shared out); the results do not depend on it.
    """
    out = Path(out)
    runs_path = out.with_name(out.stem + "_runs.csv")
    ckpt_dir = None if checkpoints is None else Path(checkpoints)
    if out.exists() and not (overwrite or resume):
        raise FileExistsError(f"out: {out} exists; pass --overwrite (or --resume)")
    names = {checkpoint_name(m) for m in plan()} - {None}
    existing = [str(ckpt_dir / n) for n in sorted(names) if ckpt_dir and (ckpt_dir / n).exists()]
    if existing and not (overwrite or resume):
        raise FileExistsError(f"checkpoints: {existing} exist; pass --overwrite (or --resume)")
    check_choice("config", config, tuple(CONFIGS))
    jobs = check_int("jobs", jobs, minimum=1)
    runs: list[dict] = []
    if resume and runs_path.exists():
        with open(runs_path, newline="") as fh:
            runs = [r for r in csv.DictReader(fh) if r["config"] == config]
    done = {(r["pairwise"], r["variant"], int(r["blocks"]), int(r["seed"])) for r in runs}
    # seed 0 of every model first: a cut-short set still has them all
    todo = [
        (m, seed)
        for seed in range(seeds)
        for m in plan()
        if (m["pairwise"], m["variant"], m["blocks"], seed) not in done
    ]
    pool = None
    if jobs > 1:
        threads = threads or max(1, (os.cpu_count() or 1) // jobs)
        pool = ProcessPoolExecutor(
            jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=torch.set_num_threads,
            initargs=(threads,),
        )
        futures = [pool.submit(train_one, config, m, seed, device, False) for m, seed in todo]
        results = (f.result() for f in as_completed(futures))
    else:
        if threads:
            torch.set_num_threads(threads)
        results = (train_one(config, m, seed, device) for m, seed in todo)
    try:
        for row, ckpt in results:
            runs.append(row)
            runs.sort(key=_order)
            _write_csv(runs_path, RUN_COLUMNS, runs)
            print(
                f"  {row['model']} {row['pairwise']}/{row['variant']} blocks={row['blocks']} "
                f"seed={row['seed']}: test_acc={row['test_acc']:.3f} "
                f"({row['train_seconds']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
            name = checkpoint_name(row)
            if ckpt_dir is not None and name and row["seed"] == 0:
                save_checkpoint(ckpt, ckpt_dir / name, overwrite=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
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
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per run")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--resume", action="store_true", help="keep runs already in *_runs.csv")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds: expected an integer >= 1, got {args.seeds}")
    if args.jobs < 1:
        parser.error(f"--jobs: expected an integer >= 1, got {args.jobs}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads: expected an integer >= 1, got {args.threads}")
    try:
        rows = run(
            config=args.config,
            seeds=args.seeds,
            device=args.device,
            out=args.out,
            checkpoints=args.checkpoints or None,
            overwrite=args.overwrite,
            resume=args.resume,
            jobs=args.jobs,
            threads=args.threads,
        )
    except FileExistsError as err:
        parser.error(str(err))
    for row in rows:
        print(",".join(str(row[c]) for c in COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
