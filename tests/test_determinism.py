"""Training is bit-identical run to run, with 1 and with 2 threads, on every CPU.

torch 2.13 on AMD CPUs corrupts the heap (one thread) and gives run-to-run differences (two
threads) when a channels-last 5-D tensor goes through conv backward. Each run here is its own
subprocess, so a crash fails the test instead of killing the test runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nlviz.nets import _fold, _unfold
from nlviz.video import VideoNet, generate, to_tensor

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from nlviz.train import Config, train
config = Config(n_train=64, n_val=32, epochs=2, width=4, size=16, frames=4, lr=5e-3)
for variant in ("none", "spacetime", "none", "spacetime"):  # twice each: the heap has changed
    run = train(config, variant=variant, seed=1, device="cpu", progress=False)
    print(json.dumps({variant: run.history["train_loss"] + run.history["val_loss"]}))
"""


def _start(threads: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(threads)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _histories(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"training crashed (exit {proc.returncode}): {err[-2000:]}"
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("threads", [1, 2])
def test_training_is_bit_identical_across_runs(threads):
    """Fails on the permuted layout: a crash with 1 thread, other losses with 2 (AMD)."""
    if threads == 1:  # two one-thread processes side by side fit two cores
        procs = [_start(1), _start(1)]
        first, second = (_histories(p) for p in procs)
    else:  # one at a time: two 2-thread processes would share the cores, not the test
        first, second = _histories(_start(2)), _histories(_start(2))
    assert len(first) == 4
    assert first[:2] == first[2:]  # the same process, twice: every float, not only to rounding
    assert first == second  # another process


def test_tensors_fed_to_convolutions_are_contiguous():
    videos = generate(2, frames=4, size=16).videos
    x = to_tensor(videos)
    assert x.shape == (2, 3, 4, 16, 16) and x.is_contiguous()
    folded = _fold(x)
    assert folded.shape == (8, 3, 16, 16) and folded.is_contiguous()
    assert _unfold(folded, 4).is_contiguous()
    np.testing.assert_array_equal(_unfold(folded, 4).numpy(), x.numpy())
    seen = []
    model = VideoNet(variant="time", blocks=3, width=4)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Conv3d):
            m.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].is_contiguous()))
    model(x)
    assert seen and all(seen)
