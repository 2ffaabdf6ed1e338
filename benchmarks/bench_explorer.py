"""Latency of AffinityExplorer.select() with the redraw, under Agg (issue: < 100 ms at T=8,
a 56x56 feature grid, C=256).

For each pairwise function and two frame sizes (56x56: stride 1; 224x224: stride 4, as a
ResNet res2/res3 grid under 224-pixel frames), one run prints, side by side:

- embed once: ``block.embed`` over the whole video, paid once when the explorer is built;
- attention(): ``block.attention`` per query, what a click would cost without the cache;
- select: the cached row of the affinity + ``set_data`` on the artists, no rendering;
- select + draw: the same followed by ``fig.canvas.draw()`` (Agg renders every frame), wall
  clock and CPU time of this process (on a shared machine the wall clock also counts the
  time other processes hold the cores);
- peak RSS of the process so far (ru_maxrss).

Medians over 15 queries on frames of the video, after one warm-up query.
Run: ``python benchmarks/bench_explorer.py``.
"""

from __future__ import annotations

import resource
import statistics
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from nlviz import AffinityExplorer, NonLocalBlock  # noqa: E402
from nlviz.pairwise import PAIRWISE  # noqa: E402

T, GRID, C, REPEATS = 8, 56, 256, 15


def ms(seconds: float) -> str:
    return f"{1000 * seconds:8.1f}"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_time(fn, queries, clock=time.perf_counter) -> float:
    times = []
    for q in queries:
        start = clock()
        fn(*q)
        times.append(clock() - start)
    return statistics.median(times)


def main() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    features = torch.randn(1, C, T, GRID, GRID)
    queries = [tuple(int(v) for v in rng.integers(0, (T, GRID, GRID))) for _ in range(REPEATS)]
    print(f"T={T}, feature grid {GRID}x{GRID}, C={C}, medians of {REPEATS} queries (ms)")
    header = (
        f"{'pairwise':<18} {'frames':>8} {'embed once':>10} {'attention()':>11} "
        f"{'select':>8} {'select+draw':>11} {'(CPU time)':>10} {'peak RSS MiB':>12}"
    )
    print(header)
    print("-" * len(header))
    for pairwise in PAIRWISE:
        block = NonLocalBlock(C, pairwise=pairwise).eval()
        for size in (GRID, 4 * GRID):
            frames = rng.random((T, size, size))
            start = time.perf_counter()
            explorer = AffinityExplorer.from_block(block, features, frames)
            build = time.perf_counter() - start
            with torch.no_grad():
                attn = median_time(
                    lambda t, y, x, b=block: b.attention(features, (t, y, x)), queries
                )
            explorer.fig.canvas.draw()  # warm-up: first draw lays out text and fonts
            select = median_time(explorer.select, queries)

            def select_draw(t, y, x, explorer=explorer):
                explorer.select(t, y, x)
                explorer.fig.canvas.draw()

            select_draw(*queries[0])
            both = median_time(select_draw, queries)
            both_cpu = median_time(select_draw, queries, time.process_time)
            print(
                f"{pairwise:<18} {f'{size}x{size}':>8} {ms(build):>10} {ms(attn):>11} "
                f"{ms(select):>8} {ms(both):>11} {ms(both_cpu):>10} {peak_mib():12.0f}"
            )
            explorer.close()
    plt.close("all")


if __name__ == "__main__":
    main()
