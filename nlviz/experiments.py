"""The ablations of notebook 04 (Tables 2a and 2d), notebook 05's track table and, with
``--table spacetime``, notebook 07's attention modes: ``python -m nlviz.experiments`` trains
every model of ``plan()`` for several seeds with ``nlviz.train.train``, tests each and writes
the runs CSV (a row per run, rewritten after each: ``--resume`` skips what ran), the results
CSV (mean and sample std over seeds) and the seed-0 checkpoints of ``_checkpoint_name``.
``--jobs N`` trains N runs at once in worker processes (one per GPU when there are several)."""

import csv
import hashlib
import io
import multiprocessing
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from nlviz.pairwise import PAIRWISE
from nlviz.train import CONFIGS, evaluate, make_data, run_fingerprint, seal, train
from nlviz.utils import Output, Parser, as_path, check_bool, check_choice, check_int, pick_device
from nlviz.video import track_tensors

__all__ = ["PAPER_TOP1", "COLUMNS", "RUN_COLUMNS", "TRACK_COLUMNS", "SPACETIME", "WINDOWS",
           "SPEEDS", "plan", "summarise", "read_csv", "run"]  # fmt: skip

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "data" / "results" / "ablation.csv"  # "classify"; "track": track.csv
CHECKPOINTS = ROOT / "data" / "checkpoints"
COLUMNS = ("experiment", "model", "pairwise", "variant", "blocks", "top1_mean", "top1_std",
           "seeds", "device", "cpu", "train_seconds", "fingerprint")  # fmt: skip
RUN_COLUMNS = ("model", "pairwise", "variant", "blocks", "seed", "config", "val_acc", "test_acc",
               "device", "cpu", "train_seconds", "fingerprint")  # fmt: skip
SPEEDS = (0.5, 1.5, 2.0)  # spacetime "track": test accuracy at these speeds too (trained at 1)
TRACK_COLUMNS = (*RUN_COLUMNS, "acc_frame1", "acc_frame2", "acc_frame3",
                 *(f"acc_speed{s:g}" for s in SPEEDS))  # fmt: skip
INTS = {"blocks", "seeds", "seed"}
FLOATS = {"top1_mean", "top1_std", "train_seconds", "val_acc", "test_acc", *TRACK_COLUMNS[12:]}
VARIANT_BLOCKS = 3
TABLES = ("ablation", "spacetime")
N_TEST = {"classify": 1000, "track": 500}  # test videos
_DATA: dict = {}  # train_one's train/val/test data, generated once per process

# Notebook 07: name -> (blocks, SpacetimeAttention's arguments), 2 heads and C' = 24 in all;
# and per task two windows (t_w, h_w, w_w), in cells of the features' grid.
SPACETIME = {"joint": (1, {"mode": "joint"}), "divided": (1, {"mode": "divided"}),
             "divided x2": (2, {"mode": "divided"}), "axial": (1, {"mode": "axial"})}  # fmt: skip
WINDOWS = {"track": ((4, 3, 3), (4, 6, 6)), "classify": ((8, 2, 2), (4, 4, 4))}

# The paper's Kinetics top-1 (%), ResNet-50 C2D: Table 2a (1 block) and Table 2d (5 blocks).
PAPER_TOP1 = {("pairwise", "C2D baseline"): 71.8, ("pairwise", "gaussian"): 72.5,
              ("pairwise", "embedded_gaussian"): 72.7, ("pairwise", "dot_product"): 72.9,
              ("pairwise", "concatenation"): 72.8,
              ("variant", "C2D baseline"): 71.8, ("variant", "space"): 72.9,
              ("variant", "time"): 73.1, ("variant", "spacetime"): 73.8}  # fmt: skip


def plan(task: str = "classify", table: str = "ablation") -> list[dict]:
    """The distinct models to train: C2D, 1 spacetime block of each pairwise function, and
    ("classify") ``VARIANT_BLOCKS`` embedded-Gaussian blocks in space, time and spacetime;
    ``table="spacetime"``: C2D, the embedded Gaussian block and each model of ``SPACETIME``."""
    nl = "NL" if check_choice("task", task, tuple(N_TEST)) == "track" else "NL C2D"
    models = [{"model": "C2D", "pairwise": "none", "variant": "none", "blocks": 0}]
    pairwise = PAIRWISE if check_choice("table", table, TABLES) == "ablation" else PAIRWISE[1:2]
    models += [{"model": nl, "pairwise": p, "variant": "spacetime", "blocks": 1} for p in pairwise]
    if table == "spacetime":
        return models + [{"model": n, "pairwise": "embedded_gaussian", "variant": "spacetime",
                          "blocks": b} for n, (b, _) in _models(task).items()]  # fmt: skip
    if task == "track":
        return models
    return models + [
        {"model": "NL C2D", "pairwise": "embedded_gaussian", "variant": v, "blocks": VARIANT_BLOCKS}
        for v in ("space", "time", "spacetime")
    ]


def _models(task: str) -> dict:
    """``SPACETIME`` and the two windowed models of ``task``: name -> (blocks, arguments)."""
    windows = {f"windowed {'x'.join(map(str, w))}": (1, {"mode": "windowed", "window": w})
               for w in WINDOWS[task]}  # fmt: skip
    return {n: (b, {**kw, "heads": 2, "inter_channels": 24 // b})
            for n, (b, kw) in (SPACETIME | windows).items()}  # fmt: skip


def _attention(task: str, name: str) -> dict | None:
    """The ``SpacetimeAttention`` arguments of a model of ``plan(task, "spacetime")``, or None."""
    return _models(task).get(name, (1, None))[1]


def _tables(models: list[dict], task: str = "classify", table="ablation") -> list[tuple]:
    """(experiment, model) rows of the tables, the C2D baseline first in each."""
    if check_choice("table", table, TABLES) == "spacetime":
        return [("spacetime", m) for m in models]
    if check_choice("task", task, tuple(N_TEST)) == "track":
        return [("track", m) for m in models]
    rows = [("pairwise", m) for m in models if m["blocks"] <= 1]
    return rows + [("variant", m) for m in models if m["blocks"] in (0, VARIANT_BLOCKS)]


def _key(row: dict) -> tuple:
    return row["model"], row["pairwise"], row["variant"], int(row["blocks"])


def _checkpoint_name(model: dict, task: str = "classify", table: str = "ablation") -> str | None:
    """``<pairwise>.pt`` for a 1-block spacetime model, ``<pairwise>_<n>blocks.pt`` for more;
    ``track_<pairwise>.pt`` for "track"; table "spacetime": ``spacetime_<task>_<model>.pt``
    for the models of ``SPACETIME``, none for the reference rows (notebook 04's)."""
    track = check_choice("task", task, tuple(N_TEST)) == "track"
    if check_choice("table", table, TABLES) == "spacetime":
        name = model["model"].replace(" ", "_")
        return f"spacetime_{task}_{name}.pt" if _attention(task, model["model"]) else None
    if model["variant"] != "spacetime":
        return None
    suffix = "" if model["blocks"] == 1 else f"_{model['blocks']}blocks"
    return f"{'track_' * track}{model['pairwise']}{suffix}.pt"


def summarise(runs: list[dict], task: str = "classify", table: str = "ablation") -> list[dict]:
    """Rows of the runs CSV -> rows of the results CSV (accuracy in %, sample std over seeds)."""
    bad = not isinstance(runs, list) or any(not isinstance(r, dict) for r in runs)
    if bad or any(not r.keys() >= set(RUN_COLUMNS) for r in runs):
        raise TypeError(f"runs: expected rows of a runs CSV (read_csv), got {runs!r:.80}")
    out = []
    for experiment, m in _tables(plan(task, table), task, table):
        accs = [100 * float(r["test_acc"]) for r in runs if _key(r) == _key(m)]
        if not accs:
            continue
        mine = [r for r in runs if _key(r) == _key(m)]
        out.append({"experiment": experiment, **m,
                    "top1_mean": round(statistics.mean(accs), 2),
                    "top1_std": round(statistics.stdev(accs), 2) if len(accs) > 1 else 0.0,
                    "seeds": len(accs), "device": "+".join(sorted({r["device"] for r in mine})),
                    "cpu": " + ".join(sorted({r["cpu"] for r in mine})),
                    "train_seconds": round(sum(float(r["train_seconds"]) for r in mine), 1),
                    "fingerprint": _combined(mine)})  # fmt: skip
    return out


def _combined(runs: list[dict]) -> str:
    """The fingerprint of a row of the results CSV: SHA-256 (12 hex) of its runs' seeds and
    fingerprints, as the runs CSV holds them."""
    ordered = sorted(runs, key=lambda r: r["seed"])
    text = "\n".join(f"{r['seed']} {r['fingerprint']}" for r in ordered)
    return "runs:" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _fingerprint(config: str, model: dict, seed: int) -> str:
    """The fingerprint today's code gives the run of a model of ``plan()`` (no training)."""
    pairwise = "embedded_gaussian" if model["pairwise"] == "none" else model["pairwise"]
    attention = _attention(CONFIGS[config].task, model.get("model", ""))
    return run_fingerprint(config, pairwise=pairwise, variant=model["variant"],
                           blocks=model["blocks"], seed=seed, attention=attention)  # fmt: skip


def read_csv(path, columns=COLUMNS) -> list[dict]:
    """Rows of a results CSV (``COLUMNS``) or runs CSV (``RUN_COLUMNS``), numbers converted;
    ValueError naming the file when its columns or any value are not as expected."""
    if not (path := as_path("path", path)).is_file():
        raise FileNotFoundError(f"path: no CSV file at {path}")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != tuple(columns):
            raise ValueError(f"path: {path} has columns {reader.fieldnames}, expected {columns}")
        rows = list(reader)
    for n, row in enumerate(rows, start=2):
        try:
            for key in INTS & set(row):
                row[key] = int(row[key])
            for key in FLOATS & set(row):
                row[key] = float(row[key])
        except (TypeError, ValueError) as err:
            raise ValueError(f"path: {path} line {n} has a bad value ({err})") from None
    return rows


def _csv_bytes(rows: list[dict], columns) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


@torch.no_grad()
def _track_breakdown(model, data: dict) -> dict:
    """Track test accuracy per frame (but the reference frame), and at ``SPEEDS``."""
    model.eval()
    device, right, count = next(model.parameters()).device, 0, 0
    for i in range(0, len(data["test"][0]), 64):
        x, y = track_tensors(*(t[i : i + 64] for t in data["test"]))
        y, hit = y.to(device), model(x.to(device)).argmax(1)
        right = right + ((hit == y) & (y >= 0)).sum((0, 2, 3))
        count = count + (y >= 0).sum((0, 2, 3))
    out = {f"acc_frame{t}": round(float(right[t] / count[t]), 4) for t in range(1, len(right))}
    for s in SPEEDS:
        out[f"acc_speed{s:g}"] = round(evaluate(model, *data[f"speed{s:g}"])[1], 4)
    return out


def train_one(config: str, model: dict, seed: int, device="auto", progress=True,
              table="ablation"):  # fmt: skip
    """Train one model of ``plan()`` for one seed: (its row of the runs CSV, its checkpoint)."""
    cfg, spacetime = CONFIGS[config], table == "spacetime"
    if config not in _DATA:
        _DATA.clear()
        splits = {"train": cfg.n_train, "val": cfg.n_val, "test": N_TEST[cfg.task]}
        _DATA[config] = {split: make_data(cfg, split, n) for split, n in splits.items()}
        if spacetime and cfg.task == "track":
            for s in SPEEDS:
                _DATA[config][f"speed{s:g}"] = make_data(cfg, "test", N_TEST["track"], speed=s)
    data = _DATA[config]
    pairwise = "embedded_gaussian" if model["pairwise"] == "none" else model["pairwise"]
    result = train(cfg, pairwise=pairwise, variant=model["variant"], blocks=model["blocks"],
                   seed=seed, device=device, data=data, progress=progress,
                   attention=_attention(cfg.task, model["model"]))  # fmt: skip
    test_acc = evaluate(result.model, *data["test"])[1]
    metrics = {**result.checkpoint["metrics"], "test_acc": float(test_acc)}
    ckpt = seal({**result.checkpoint, "metrics": metrics, "config_name": config})
    row = {**model, "seed": seed, "config": config, "val_acc": round(result.val_acc, 4),
           "test_acc": round(test_acc, 4), "device": ckpt["device"], "cpu": ckpt["cpu"],
           "train_seconds": round(ckpt["metrics"]["train_seconds"], 1),
           "fingerprint": ckpt["fingerprint"]}  # fmt: skip
    if spacetime and cfg.task == "track":
        row |= _track_breakdown(result.model, data)
    return row, ckpt


def _worker_init(threads: int, counter) -> None:
    """Torch threads per worker; with several GPUs, worker k uses GPU k mod their number."""
    torch.set_num_threads(threads)
    with counter.get_lock():
        k, counter.value = counter.value, counter.value + 1
    if torch.cuda.device_count() > 1:
        torch.cuda.set_device(k % torch.cuda.device_count())


def _runs(todo, config, device, jobs, threads, table):
    """Yield (row, checkpoint) of each (model, seed) in ``todo``, as they finish."""
    if jobs == 1:
        if threads:
            torch.set_num_threads(threads)
        yield from (train_one(config, m, seed, device, True, table) for m, seed in todo)
        return
    ctx = multiprocessing.get_context("spawn")
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init,
                             initargs=(threads, ctx.Value("i", 0))) as pool:  # fmt: skip
        args = (device, False, table)
        futures = [pool.submit(train_one, config, m, seed, *args) for m, seed in todo]
        try:
            yield from (f.result() for f in as_completed(futures))
        finally:
            pool.shutdown(cancel_futures=True)


def run(*, config="full", seeds=3, device="auto", out=None, checkpoints=CHECKPOINTS,
        overwrite=False, resume=False, jobs=1, threads=None,
        table="ablation") -> list[dict]:  # fmt: skip
    """Train every model of ``plan(task, table)`` for ``seeds`` seeds, the task of ``config``
    ("full": the ablation, "track-full": the track table; ``table="spacetime"``: notebook 07's);
    write the CSVs and checkpoints. Every output is claimed before the first run
    (``nlviz.utils.Output``): existing files are refused unless ``overwrite`` or ``resume``
    (which keeps the runs already in the runs CSV)."""
    check_choice("config", config, tuple(CONFIGS))
    check_choice("table", table, TABLES)
    pick_device(device)
    seeds = check_int("seeds", seeds, minimum=1, maximum=100)
    jobs = check_int("jobs", jobs, minimum=1, maximum=64)
    threads = None if threads is None else check_int("threads", threads, minimum=1, maximum=256)
    replace = check_bool("overwrite", overwrite) or check_bool("resume", resume)
    task = CONFIGS[config].task
    default = RESULTS if task == "classify" else RESULTS.with_name("track.csv")
    default = RESULTS.with_name(f"spacetime_{task}.csv") if table == "spacetime" else default
    columns = TRACK_COLUMNS if table == "spacetime" and task == "track" else RUN_COLUMNS
    if (out := default if out is None else as_path("out", out)).is_dir():
        raise ValueError(f"out: expected a file path, got the folder {out}")
    runs_path, models = out.with_name(out.stem + "_runs.csv"), plan(task, table)
    names = sorted({_checkpoint_name(m, task, table) for m in models} - {None})
    folder = None if checkpoints is None else as_path("checkpoints", checkpoints)
    paths = [out, runs_path] + ([folder / n for n in names] if folder else [])
    claims = []
    try:
        for path in paths:
            arg = "out" if path == out else "checkpoints"  # the argument its errors name
            claims.append(Output(path, overwrite=replace, name=arg))
        runs = read_csv(runs_path, columns) if resume and runs_path.exists() else []
        runs = [r for r in runs if r["config"] == config]
        done = {(*_key(r), r["seed"]) for r in runs}
        todo = [(m, s) for s in range(seeds) for m in models if (*_key(m), s) not in done]
        order = [_key(m) for m in models]
        for row, ckpt in _runs(todo, config, device, jobs, threads, table):
            runs = sorted([*runs, row], key=lambda r: (r["seed"], order.index(_key(r))))
            claims[1].write(lambda fh, rs=runs: fh.write(_csv_bytes(rs, columns)))
            print(f"  {row['model']} {row['pairwise']}/{row['variant']} blocks={row['blocks']} "
                  f"seed={row['seed']}: test_acc={row['test_acc']:.3f} "
                  f"({row['train_seconds']:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
            name = _checkpoint_name(row, task, table)
            if folder is not None and name and row["seed"] == 0:
                claims[2 + names.index(name)].write(lambda fh, c=ckpt: torch.save(c, fh))
        rows = summarise(runs, task, table)
        claims[0].write(lambda fh: fh.write(_csv_bytes(rows, COLUMNS)))
    finally:
        for claim in claims:
            claim.close()
    return rows


def main(argv=None) -> int:
    parser = Parser(prog="python -m nlviz.experiments",
                    description="Train the models of the ablations; write the CSVs.")  # fmt: skip
    parser.add_argument("--config", choices=tuple(CONFIGS), default="full")
    parser.add_argument("--table", choices=TABLES, default="ablation", help="spacetime: nb 07")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--out", default=None, help="the summary CSV (default: data/results/)")
    parser.add_argument("--checkpoints", default=str(CHECKPOINTS), help="folder ('' for none)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per run")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--resume", action="store_true", help="keep runs already in *_runs.csv")
    args = vars(parser.parse_args(argv))
    try:
        rows = run(**args | {"checkpoints": args["checkpoints"] or None})
    except (ValueError, TypeError, FileExistsError, RuntimeError, OSError) as err:
        parser.fail(err)
    for row in rows:
        print(",".join(str(row[c]) for c in COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
