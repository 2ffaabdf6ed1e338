"""What a click costs in AffinityExplorer: select() and the redraw, under Agg, beside the naive
path (issue: median select + redraw under 20 ms at T=8, a 56x56 feature grid, C=256, embedded
Gaussian, subsampled; first draw under 1 s).

For each pairwise function and two frame sizes (56x56: stride 1; 224x224: stride 4, as a
ResNet res2/res3 grid under 224-pixel frames), one run prints, side by side (medians over
``REPEATS`` queries after one warm-up, milliseconds):

- build + first draw: ``from_block`` (theta and the pooled phi embedded once) and a full draw;
- naive row: ``block.attention(x, query)``, which re-embeds theta, phi, g over all positions
  for one row (what every click cost before the cache), and the cached row (``Source``);
- select: the cached row and the artists updated, no rendering;
- select + redraw: what a click does (``explorer.redraw()``: the frames, colour bars and titles
  kept, the changing artists drawn over them); CPU time of this process beside it;
- select + full draw: the same with ``fig.canvas.draw()``, every artist rendered;
- the mass view (``select(..., mass=0.6)``) with its redraw; peak RSS so far.

Run: ``python benchmarks/bench_explorer.py [--repeats N] [--load]``; ``--load`` runs a busy
process on every core meanwhile (the "machine loaded" case). Timings vary with the CPU and
its load: compare the columns of one run, not runs of different machines.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from nlviz import AffinityExplorer, NonLocalBlock  # noqa: E402
from nlviz.fingerprint import machine  # noqa: E402
from nlviz.pairwise import PAIRWISE  # noqa: E402

T, GRID, C = 8, 56, 256


def ms(seconds: float) -> str:
    return f"{1000 * seconds:7.1f}"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_time(fn, queries, clock=time.perf_counter) -> float:
    fn(*queries[0])  # warm-up
    times = []
    for q in queries:
        start = clock()
        fn(*q)
        times.append(clock() - start)
    return statistics.median(times)


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def row(pairwise: str, size: int, features, queries, rng) -> str:
    block = NonLocalBlock(C, pairwise=pairwise).eval()
    frames = rng.random((T, size, size))
    start = time.perf_counter()
    explorer = AffinityExplorer.from_block(block, features, frames, k=20)
    explorer.fig.canvas.draw()
    first = time.perf_counter() - start
    source = explorer.sources[0]
    with torch.no_grad():
        naive = median_time(lambda t, y, x: block.attention(features, (t, y, x)), queries)
    cached = median_time(lambda t, y, x: source._weights((t, y, x)), queries)
    select = median_time(explorer.select, queries)

    def clicked(t, y, x):
        explorer.select(t, y, x)
        explorer.redraw()

    def full(t, y, x):
        explorer.select(t, y, x)
        explorer.fig.canvas.draw()

    redraw = median_time(clicked, queries)
    redraw_cpu = median_time(clicked, queries, time.process_time)
    full_draw = median_time(full, queries)
    explorer.mass = 0.6
    mass = median_time(clicked, queries)
    explorer.close()
    return (
        f"{pairwise:<18} {f'{size}x{size}':>8} {ms(first):>8} {ms(naive):>8} {ms(cached):>7} "
        f"{ms(select):>7} {ms(redraw):>8} {ms(redraw_cpu):>7} {ms(full_draw):>8} {ms(mass):>7} "
        f"{peak_mib():8.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--load", action="store_true", help="keep every core busy meanwhile")
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    features = torch.randn(1, C, T, GRID, GRID)
    queries = [tuple(int(v) for v in rng.integers(0, (T, GRID, GRID))) for _ in range(args.repeats)]
    stop, spinners = multiprocessing.Event(), []
    if args.load:
        spinners = [
            multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(os.cpu_count())
        ]
        for p in spinners:
            p.start()
    print(f"{machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"matplotlib {matplotlib.__version__}, Python {platform.python_version()}"
          + (", every core busy (--load)" if args.load else ""))  # fmt: skip
    print(f"T={T}, feature grid {GRID}x{GRID}, C={C}; medians of {args.repeats} queries (ms)")
    header = (
        f"{'pairwise':<18} {'frames':>8} {'1st draw':>8} {'naive':>8} {'cached':>7} "
        f"{'select':>7} {'+redraw':>8} {'(CPU)':>7} {'+full':>8} {'mass':>7} {'RSS MiB':>8}"
    )
    print(header)
    print("-" * len(header))
    try:
        for pairwise in PAIRWISE:
            for size in (GRID, 4 * GRID):
                print(row(pairwise, size, features, queries, rng), flush=True)
    finally:
        stop.set()
        for p in spinners:
            p.join()
    plt.close("all")


if __name__ == "__main__":
    main()
