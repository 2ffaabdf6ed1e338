"""The course's GPU check (``make gpu-check``): one command, nothing read from the network.

On a CUDA machine it
1. executes every notebook top to bottom with ``NLVIZ_DEVICE=cuda`` (execution only, in a
   temporary folder: the committed notebooks are not touched, outputs are not compared);
2. trains the ``full`` video config (bf16 autocast) and times it;
3. times the whole ablation of notebook 04 (``nlviz.experiments``, every model, every seed);
4. checks that a checkpoint written on the GPU loads on the CPU with ``weights_only=True`` and
   gives the GPU model's outputs;
and prints one table. ``--device cpu --quick`` runs the same steps small, to test the script.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

from nlviz import experiments
from nlviz.train import CONFIGS, load_checkpoint, train
from nlviz.video import generate, to_tensor

ROOT = Path(__file__).resolve().parents[1]


def _row(rows, step, seconds, result, ok=True):
    rows.append((step, f"{seconds:.1f}", result, "ok" if ok else "FAILED"))
    print(f"  {step}: {result} ({seconds:.1f} s)", file=sys.stderr, flush=True)


def run_notebooks(rows, device, timeout):
    os.environ["NLVIZ_DEVICE"] = device
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        try:
            NotebookClient(
                nb,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            ).execute()
            _row(rows, f"notebook {path.stem}", time.perf_counter() - t0, "executed")
        except Exception as err:  # noqa: BLE001 - report every notebook, then fail
            _row(rows, f"notebook {path.stem}", time.perf_counter() - t0, str(err)[:60], False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "mps"))
    parser.add_argument("--quick", action="store_true", help="tiny configs (to test the script)")
    parser.add_argument("--skip-notebooks", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-check: no CUDA device here; nothing to check", file=sys.stderr)
        return 2
    name = "tiny" if args.quick else "full"
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_notebooks:
            run_notebooks(rows, args.device, timeout=600)
        t0 = time.perf_counter()
        result = train(name, device=args.device, out=tmp / "gpu.pt", progress=False)
        _row(
            rows,
            f"train {name} (bf16 on cuda)",
            time.perf_counter() - t0,
            f"val_acc {result.val_acc:.3f}",
        )
        t0 = time.perf_counter()
        table = experiments.run(
            config=name, device=args.device, out=tmp / "ablation.csv", checkpoints=None
        )
        best = max(r["top1_mean"] for r in table)
        _row(
            rows,
            f"ablation ({len(experiments.plan())} models x 3 seeds)",
            time.perf_counter() - t0,
            f"best top-1 {best:.1f}%",
        )
        t0 = time.perf_counter()
        raw = torch.load(tmp / "gpu.pt", map_location="cpu", weights_only=True)
        model, _ = load_checkpoint(tmp / "gpu.pt")
        config = CONFIGS[name]
        x = to_tensor(generate(8, split="test", frames=config.frames, size=config.size).videos)
        with torch.no_grad():
            gap = (
                (model(x) - result.model.float().eval()(x.to(args.device)).cpu()).abs().max().item()
            )
        ok = raw["device"] == args.device and gap < 1e-2
        _row(
            rows,
            "GPU checkpoint on the CPU",
            time.perf_counter() - t0,
            f"max logit gap {gap:.1e}",
            ok,
        )
    print("\n| step | seconds | result | status |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    device = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    print(f"\ndevice: {device}; torch {torch.__version__}")
    return 0 if all(r[3] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
