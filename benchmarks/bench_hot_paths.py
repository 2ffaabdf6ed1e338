"""The hot paths of two versions of nlviz side by side: a training step and an explorer click.

Issue 22 added checks at every public entry point; this says whether the two paths that run
thousands of times (a training step, a click in the explorer) got slower. Each path is timed
in a child process per version, the versions alternating round by round so that the machine's
drift hits both alike; the table gives the median over rounds and the ratio after / before.

- classify step: one AdamW step of ``nlviz.train.fit`` on the "quick" video task (VideoNet
  width 8, one spacetime block, batch 32 of 8 x 32 x 32 videos), per step;
- denoise step: one step of ``nlviz.denoise``'s "full" training (the windowed variant, width
  48, depth 8, batch 16 of 64 x 64 patches, clipping and the EMA), each batch drawn as the
  version's own training loop draws it, per step;
- click: ``AffinityExplorer.select`` + ``redraw`` at T = 8, a 28 x 28 grid, C = 64, under Agg.

Run: ``python benchmarks/bench_hot_paths.py --against REV [--at REV2] [--rounds N]``: REV (a
commit, e.g. the one before the change) is checked out in a temporary git worktree and imported
from there, against this working tree or, with ``--at``, commit REV2 checked out the same way.
Timings vary with the CPU and its load: read the ratios of one run, not times across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("classify step", "denoise step", "click")


def _classify_step(steps: int) -> float:
    import torch

    from nlviz import train as T

    config = T.CONFIGS["quick"]
    data = T.make_data(config, "train", config.batch_size * 2)
    _, model = T._init(config, "embedded_gaussian", "spacetime", 0)
    batches = [tuple(t[i : i + config.batch_size] for t in data) for i in (0, config.batch_size)]
    kw = {"lr": config.lr, "weight_decay": config.weight_decay, "device": torch.device("cpu")}
    T.fit(model, lambda: batches, T._step, lambda m: {}, epochs=1, desc="warm-up", progress=False,
          **kw)  # fmt: skip
    start = time.perf_counter()
    T.fit(model, lambda: batches * (steps // 2), T._step, lambda m: {}, epochs=1, desc="timed",
          progress=False, **kw)  # fmt: skip
    return (time.perf_counter() - start) / steps


def _denoise_step(steps: int) -> float:
    import numpy as np
    import torch

    from nlviz import denoise as D

    config = D.CONFIGS["full"]
    _, model, regions, _ = D._init(config, "windowed", 0)
    draw = getattr(D, "_sample_batch", D.sample_batch)  # what the version's training calls
    rng, sigmas = np.random.default_rng(0), (config.sigma_min, config.sigma_max)

    def batches(n):
        return lambda: [
            draw(regions, rng, config.batch_size, config.patch, sigmas) for _ in range(n)
        ]

    kw = {"lr": config.lr, "weight_decay": config.weight_decay, "device": torch.device("cpu"),
          "clip": config.clip, "ema": config.ema, "progress": False}  # fmt: skip
    D.fit(model, batches(2), D._step, lambda m: {}, epochs=1, desc="warm-up", **kw)
    start = time.perf_counter()
    D.fit(model, batches(steps), D._step, lambda m: {}, epochs=1, desc="timed", **kw)
    return (time.perf_counter() - start) / steps


def _click(clicks: int) -> float:
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import torch

    from nlviz import AffinityExplorer, NonLocalBlock

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    block = NonLocalBlock(64).eval()
    features = torch.randn(1, 64, 8, 28, 28)
    explorer = AffinityExplorer.from_block(block, features, rng.random((8, 56, 56)), k=20)
    explorer.fig.canvas.draw()
    queries = [tuple(int(v) for v in rng.integers(0, (8, 28, 28))) for _ in range(clicks + 1)]
    times = []
    for q in queries:
        start = time.perf_counter()
        explorer.select(*q)
        explorer.redraw()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def child() -> None:
    import torch

    torch.set_num_threads(1)
    print(json.dumps({"classify step": _classify_step(16), "denoise step": _denoise_step(6),
                      "click": _click(25)}))  # fmt: skip


def _measure(tree: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--child"], env=env, cwd=tree, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="the version to compare with (a git commit)")
    parser.add_argument("--at", help="the version measured (default: this working tree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child()
    if not args.against:
        parser.error("--against: expected a git commit to compare with, e.g. HEAD~1")
    git = ["git", "-C", str(ROOT), "worktree"]
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": Path(tmp) / "before", "after": Path(tmp) / "after" if args.at else ROOT}
        made = [(trees[k], rev) for k, rev in (("before", args.against), ("after", args.at)) if rev]
        try:
            for tree, rev in made:
                subprocess.run([*git, "add", "--detach", str(tree), rev], check=True,
                               capture_output=True)  # fmt: skip
            runs = {"before": [], "after": []}
            for r in range(args.rounds):
                for name in ("before", "after")[:: 1 - 2 * (r % 2)]:
                    runs[name].append(_measure(trees[name]))
                print(f"  round {r + 1} / {args.rounds}", file=sys.stderr, flush=True)
        finally:
            for tree, _ in made:
                subprocess.run([*git, "remove", "--force", str(tree)], capture_output=True)
    from nlviz.fingerprint import machine

    at = args.at or "the working tree"
    print(f"{machine()}, 1 thread, median of {args.rounds} rounds: {args.against} -> {at}")
    print(f"{'path':<14} {'before ms':>10} {'after ms':>10} {'after / before':>15}")
    for path in PATHS:
        b, a = (1000 * statistics.median(r[path] for r in runs[k]) for k in ("before", "after"))
        print(f"{path:<14} {b:10.2f} {a:10.2f} {a / b:15.2f}")


if __name__ == "__main__":
    main()
