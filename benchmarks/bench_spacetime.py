"""Time and peak memory of spacetime attention's modes (nlviz.spacetime) as the clip grows.

    python benchmarks/bench_spacetime.py                  # -> data/results/spacetime_cost.csv
    python benchmarks/bench_spacetime.py --quick --out /tmp/quick.csv --threads 1
    python benchmarks/bench_spacetime.py --device cuda --overwrite   # CPU rows, then CUDA rows

``SpacetimeAttention(64, mode=..., heads=2, inter_channels=48)`` (windowed: window (2, 7, 7), no
shift), B = 1, float32, train mode, forward + backward of ``output.sum()``, on two sweeps:
  "frames": T = 2, 4, 8, 16, 32, 64 at H = W = 14;   "space": H = W = 7, 14, 28, 56 at T = 8
(--quick: T = 2, 4, 8 and H = W = 7, 14, fewer repeats). Each point runs in a FRESH process,
as in bench_block.py: extra peak = peak RSS during the first call minus the RSS just before
(Linux: VmHWM reset; else ru_maxrss); CUDA: max_memory_allocated minus the bytes before. Time:
the fastest of up to 10 calls after the first, within 3 s. The anchor "joint N x N" is joint
attention with ``scaled_dot_product_attention`` held to its math kernel, which stores the N x N
weights of every head (as the naive form does); a point of it that would take more than
--max-gib (heads x N^2 x 16 B, fwd + bwd) is not run, its row says why in `skipped`. The
summary gives each mode's time as a multiple of its time at the sweep's first point (the
machine is noisy), and the log-log slope of time against N (points with N >= 1000, or all where
fewer than two) next to that of ``nlviz.spacetime.pairs`` (per head).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # nlviz without install
from bench_block import GIB, MIB, _current_rss, _peak_rss, _reset_peak_rss  # noqa: E402

CHANNELS, INTER, HEADS, WINDOW = 64, 48, 2, (2, 7, 7)
MODES = ("joint", "divided", "axial", "windowed", "joint N x N")
FIT_MIN_N = 1000
FIELDS = ("sweep", "mode", "T", "H", "W", "N", "pairs", "seconds", "peak_mib", "device", "cpu",
          "threads", "skipped")  # fmt: skip


def sweeps(quick: bool) -> list[tuple[str, tuple[int, int, int]]]:
    """[(sweep, (T, H, W)), ...]."""
    frames, sides = ((2, 4, 8), (7, 14)) if quick else ((2, 4, 8, 16, 32, 64), (7, 14, 28, 56))
    return [("frames", (t, 14, 14)) for t in frames] + [("space", (8, s, s)) for s in sides]


def measure(mode, shape, device="cpu", repeats=10, budget_s=3.0, threads=None) -> dict:
    """One point in THIS process (use a fresh one): {'seconds', 'extra_bytes', 'threads'}."""
    import torch

    from nlviz.spacetime import SpacetimeAttention

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    naive = mode == "joint N x N"  # the anchor: the N x N weights stored (the math kernel)
    block = SpacetimeAttention(CHANNELS, mode="joint" if naive else mode, heads=HEADS,
                               inter_channels=INTER, window=WINDOW).to(device).train()  # fmt: skip

    def step(x):
        block.zero_grad(set_to_none=True)
        x.grad = None
        with sdpa_kernel(SDPBackend.MATH) if naive else contextlib.nullcontext():
            block(x).sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()

    step(torch.randn(1, CHANNELS, 1, 2, 2, device=device, requires_grad=True))  # one-time set-up
    x = torch.randn(1, CHANNELS, *shape, device=device, requires_grad=True)
    if device == "cuda":
        step(x)  # kernels chosen and loaded before measuring
        block.zero_grad(set_to_none=True)
        x.grad = None
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        _reset_peak_rss()
        before = _current_rss()
    start = time.perf_counter()
    step(x)
    times = [time.perf_counter() - start]
    extra = torch.cuda.max_memory_allocated() - before if device == "cuda" else _peak_rss() - before
    while len(times) < repeats + 1 and sum(times) < budget_s:
        start = time.perf_counter()
        step(x)
        times.append(time.perf_counter() - start)
    return {"seconds": min(times[1:] or times), "extra_bytes": max(int(extra), 0),
            "threads": torch.get_num_threads()}  # fmt: skip


def measure_in_subprocess(timeout_s: float = 1200.0, **kwargs) -> dict:
    """``measure(**kwargs)`` in a fresh Python process: {'error': ...} if it failed."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(kwargs)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env=dict(os.environ, PYTHONWARNINGS="ignore"))  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout_s:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["killed"])[-1][:80]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(device: str, args, cpu: str, threads: int) -> list[dict]:
    """Every point of both sweeps on ``device``, one row each (printed as it comes)."""
    import torch

    from nlviz.spacetime import pairs

    name = "cpu" if device == "cpu" else f"cuda ({torch.cuda.get_device_name()})"
    print(f"\n== {name}: B=1, C={CHANNELS}, C'={INTER}, heads={HEADS}, windowed {WINDOW}, "
          f"fwd+bwd, torch {torch.__version__}, {threads} CPU threads")  # fmt: skip
    rows = []
    for sweep, (T, H, W) in sweeps(args.quick):
        for mode in MODES:
            n, p = T * H * W, pairs(mode.split()[0], (T, H, W), WINDOW)
            values = (sweep, mode, T, H, W, n, p, None, None, name, cpu, threads, "")
            row = dict(zip(FIELDS, values, strict=True))
            need = HEADS * p * 4 * 4 / GIB if mode == "joint N x N" else 0.0
            if need > args.max_gib:
                row["skipped"] = f"N x N = {n}^2: {need:.3g} GiB > --max-gib {args.max_gib:g}"
            else:
                r = measure_in_subprocess(mode=mode, shape=[T, H, W], device=device,
                                          repeats=3 if args.quick else 10,
                                          budget_s=1.0 if args.quick else 3.0,
                                          threads=args.threads)  # fmt: skip
                if "error" in r:
                    row["skipped"] = f"error: {r['error']}"
                else:
                    row.update(seconds=float(f"{r['seconds']:.4g}"), threads=r["threads"],
                               peak_mib=round(r["extra_bytes"] / MIB, 1))  # fmt: skip
            cost = row["skipped"] or f"{row['seconds'] * 1e3:9.1f} ms {row['peak_mib']:8.1f} MiB"
            print(f"  {sweep:>6} {mode:>11} {T:>3}x{H}x{W:<3} N={n:>6} pairs={p:>11,}  {cost}",
                  flush=True)  # fmt: skip
            rows.append(row)
    return rows


def slopes(rows: list[dict]):
    """(time slope, pairs slope, note) of log-log fits against N, or None (< 2 points)."""
    import numpy as np

    done = [r for r in rows if r["seconds"] is not None]
    big = [r for r in done if r["N"] >= FIT_MIN_N]
    use, note = (big, "") if len(big) >= 2 else (done, f" (all N: < 2 points >= {FIT_MIN_N})")
    if len(use) < 2:
        return None
    n = np.log([r["N"] for r in use])
    fit = [np.polyfit(n, np.log([r[k] for r in use]), 1)[0] for k in ("seconds", "pairs")]
    return fit[0], fit[1], note


def summary(rows: list[dict]) -> None:
    """Per device and sweep: time as a multiple of the first point's, and the slopes."""
    for device in dict.fromkeys(r["device"] for r in rows):
        for sweep in ("frames", "space"):
            part = [r for r in rows if r["device"] == device and r["sweep"] == sweep]
            print(f"\n== {sweep} sweep, {device}: time / the mode's time at the first point")
            print(f"{'T x H x W':>10} {'N':>6} " + " ".join(f"{m:>12}" for m in MODES))
            for shape in dict.fromkeys((r["T"], r["H"], r["W"]) for r in part):
                cells = []
                for mode in MODES:
                    r = next(r for r in part if (r["T"], r["H"], r["W"]) == shape
                             and r["mode"] == mode)  # fmt: skip
                    first = next(q["seconds"] for q in part if q["mode"] == mode)
                    ok = r["seconds"] is not None and first is not None
                    ratio = f"x{r['seconds'] / first:.2f}" if ok else "-"
                    cells.append(f"{ratio:>12}")
                print(f"{'x'.join(map(str, shape)):>10} {shape[0] * shape[1] * shape[2]:>6} "
                      + " ".join(cells))  # fmt: skip
            for mode in MODES:
                fit = slopes([r for r in part if r["mode"] == mode])
                text = "n/a (fewer than 2 points)" if fit is None else (
                    f"time ~ N^{fit[0]:.2f}   pairs formula ~ N^{fit[1]:.2f}{fit[2]}")  # fmt: skip
                print(f"  slope {mode:>11}: {text}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 2, 4, 8; H = W = 7, 14")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                        help="cuda: CPU and CUDA rows; auto: cuda if available")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("data/results/spacetime_cost.csv"))
    parser.add_argument("--max-gib", type=float, default=6.0, help="skip larger points")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # one measurement, in this fresh process
        print(json.dumps(measure(**json.loads(args.worker))))
        return 0
    import torch

    from nlviz.experiments import _csv_bytes
    from nlviz.fingerprint import machine
    from nlviz.utils import Output

    try:  # the output is claimed before anything is measured (the course's one overwrite rule)
        claim = Output(args.out, overwrite=args.overwrite, name="out")
    except (FileExistsError, ValueError) as err:
        parser.error(str(err))

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    start, cpu, threads = time.perf_counter(), machine(), torch.get_num_threads()
    with claim:
        rows = [r for d in ["cpu"] + ["cuda"] * cuda for r in run(d, args, cpu, threads)]
        summary(rows)
        claim.write(lambda fh: fh.write(_csv_bytes(rows, FIELDS)))
    print(f"\nwrote {len(rows)} rows to {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
