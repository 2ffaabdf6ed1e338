"""The ablation's rows that can live or die, trained again under other kernels.

    ATEN_CPU_CAPABILITY=default python benchmarks/ablation_kernels.py [--jobs 2] [--overwrite]

Notebook 04 asks which of its results another CPU would reproduce. Another CPU changes the
last bits of every float operation (torch dispatches AVX-512, AVX2 or generic kernels; MKL and
oneDNN pick their own paths), and a run that lives or dies on the sign of Eq. 5's ReLU can then
land elsewhere. This script retrains 18 of its 24 runs, seeds 0-2 of the pairwise table (C2D and
one spacetime block of each pairwise function) and of the time-only blocks, with exactly the
committed recipe (``nlviz.experiments``' ``train_one``, one torch thread per run) under whatever
kernels the environment selects; run it under ``ATEN_CPU_CAPABILITY=default`` (torch's generic
kernels), which changes the round-off the way another CPU would, while the code, data and seeds
stay the same (the fingerprints say so). Output: ``data/results/ablation_kernels_runs.csv``,
the runs CSV's columns (the ``cpu`` column names the kernels), written atomically, refused if it
exists unless ``--overwrite``. About 25 minutes on 2 cores.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from nlviz.experiments import RUN_COLUMNS, _csv_bytes, plan, train_one
from nlviz.utils import Output, Parser

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "results" / "ablation_kernels_runs.csv"
CONFIG, SEEDS = "full", (0, 1, 2)


def _one(job: tuple[dict, int]) -> dict:
    torch.set_num_threads(1)  # as python -m nlviz.experiments --jobs 2 --threads 1
    model, seed = job
    row, _ = train_one(CONFIG, model, seed, device="cpu", progress=False)
    print(f"  {model['pairwise']} seed {seed}: test_acc {row['test_acc']:.3f} ({row['cpu']})",
          file=sys.stderr, flush=True)  # fmt: skip
    return row


def main(argv=None) -> int:
    parser = Parser(prog="ablation_kernels.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT), help="the runs CSV to write")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (processes)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.fail(ValueError(f"--jobs: expected an integer >= 1, got {args.jobs}"))
    try:
        claim = Output(args.out, overwrite=args.overwrite, name="out")  # refuse before training
    except (ValueError, TypeError, FileExistsError) as err:
        parser.fail(err)
    models = [m for m in plan("classify") if m["blocks"] <= 1 or m["variant"] == "time"]
    jobs = [(m, s) for s in SEEDS for m in models]
    with claim:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(
            args.jobs, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            rows = list(pool.map(_one, jobs))
        claim.write(lambda fh: fh.write(_csv_bytes(rows, RUN_COLUMNS)))
    print(f"wrote {args.out} ({len(rows)} runs, {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
