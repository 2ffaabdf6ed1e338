"""Every committed result is what today's code produces (``nlviz.fingerprint``).

Each committed checkpoint and each results CSV records the fingerprint of the runs that made
it: their initial weights and first training batch. These tests recompute every fingerprint
from today's code, without training (a few seconds), and fail naming the file and the command
that regenerates it when the model, the data or their seeding changed but the committed results
were not regenerated. The first tests check that the fingerprint itself can fail both ways.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from nlviz import denoise
from nlviz import train as T
from nlviz.checkpoint import read_checkpoint
from nlviz.experiments import COLUMNS, RUN_COLUMNS, TRACK_COLUMNS, read_csv, summarise
from nlviz.experiments import _fingerprint as fingerprint  # what today's code gives a run
from nlviz.fingerprint import fingerprint as raw_fingerprint
from nlviz.fingerprint import machine, matches
from nlviz.nets import VideoNet

ROOT = Path(__file__).resolve().parents[1]
RESULTS, CHECKPOINTS = ROOT / "data" / "results", ROOT / "data" / "checkpoints"
REGENERATE = {
    "ablation": "python -m nlviz.experiments --config full --jobs 2 --threads 1 --overwrite",
    "track": "python -m nlviz.experiments --config track-full --jobs 1 --threads 2 --overwrite",
    "spacetime_track": "python -m nlviz.experiments --table spacetime --config track-full "
    "--jobs 2 --threads 1 --overwrite",
    "spacetime_classify": "python -m nlviz.experiments --table spacetime --config full "
    "--jobs 2 --threads 1 --overwrite",
    "concatenation_live_pairs": "python benchmarks/concatenation_live_pairs.py --overwrite",
    "ablation_kernels": "ATEN_CPU_CAPABILITY=default python benchmarks/ablation_kernels.py "
    "--overwrite",
    "denoise": "python -m nlviz.denoise --config full --variant <variant> --seed <seed> "
    "--overwrite --out data/checkpoints/denoiser_<variant>[_seed<seed>].pt (see README), then "
    "python benchmarks/bench_denoise.py --overwrite",
}
AFTER = "then re-execute the notebooks that read it (make execute NB=...) and update the README"

# ------------------------------------------------------------------ the fingerprint itself


def test_the_same_run_gives_the_same_fingerprint_and_another_seed_does_not():
    a = T.run_fingerprint("tiny", pairwise="gaussian", seed=3)
    assert a == T.run_fingerprint("tiny", pairwise="gaussian", seed=3)
    assert matches(a, a)
    assert not matches(a, T.run_fingerprint("tiny", pairwise="gaussian", seed=4))
    assert not matches(a, T.run_fingerprint("tiny", pairwise="dot_product", seed=3))
    assert not matches(a, "not a fingerprint") and not matches(a, a.replace("w=", "w=1,"))


def test_training_records_the_fingerprint_that_is_recomputed():
    for config, kw in [("tiny", {"variant": "time", "blocks": 2}), ("track-tiny", {})]:
        result = T.train(config, seed=2, device="cpu", progress=False, **kw)
        assert result.checkpoint["fingerprint"] == T.run_fingerprint(config, seed=2, **kw)
        assert result.checkpoint["cpu"] == machine()


def _nudged(model: nn.Module, rel: float) -> nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + rel * torch.sign(torch.randn_like(p)))
    return model


def test_round_off_is_ignored_and_a_changed_init_is_not():
    """The tolerance: weights changed in their last bits (1e-7, what another CPU's kernels do)
    and one pixel off by one grey level keep the fingerprint; a changed init does not."""
    cfg = T.CONFIGS["tiny"]
    videos = torch.randint(0, 256, (4, cfg.frames, cfg.size, cfg.size, 3), dtype=torch.uint8)
    exact = {"seed": 0}

    def fp(model, vids=videos):
        return raw_fingerprint(model, exact, (vids,))

    torch.manual_seed(0)
    ref = fp(VideoNet(width=4))
    torch.manual_seed(0)
    assert matches(ref, fp(_nudged(VideoNet(width=4), 1e-7)))
    off_by_one = videos.clone()
    off_by_one[0, 0, 0, 0, 0] ^= 1
    torch.manual_seed(0)
    assert matches(ref, fp(VideoNet(width=4), off_by_one))
    torch.manual_seed(0)
    assert not matches(ref, fp(_nudged(VideoNet(width=4), 1e-2)))
    torch.manual_seed(1)
    assert not matches(ref, fp(VideoNet(width=4)))


class _ReorderedVideoNet(VideoNet):
    """VideoNet with its classifier created before the residual stages: the same modules,
    names and shapes, but the random numbers go to other layers (the kind of change that made
    the old ablation table stale)."""

    def __init__(self, **kw):
        nn.Module.__init__(self)
        fc = nn.Linear(4 * kw["width"], 2)
        VideoNet.__init__(self, **kw)
        self.fc = fc


def test_a_reordered_network_is_caught(monkeypatch):
    kw = {"pairwise": "embedded_gaussian", "seed": 0}
    before = T.run_fingerprint("tiny", **kw)
    monkeypatch.setattr(T, "VideoNet", _ReorderedVideoNet)
    after = T.run_fingerprint("tiny", **kw)
    assert before.split(":")[1] == after.split(":")[1]  # same names and shapes...
    assert not matches(before, after)  # ...other initial weights


def test_changed_data_are_caught(monkeypatch):
    before = T.run_fingerprint("tiny", seed=0)
    tiny = T.CONFIGS["tiny"]
    monkeypatch.setitem(T.CONFIGS, "tiny", dataclasses.replace(tiny, data_seed=1))
    assert not matches(before, T.run_fingerprint("tiny", seed=0))


# ------------------------------------------------------------------ the committed results


def _stale(path: Path, rows, recompute) -> str:
    bad = [label for label, stored in rows if not matches(stored, recompute(label))]
    name = path.stem.removesuffix("_runs")
    return (
        f"{path.relative_to(ROOT)}: {len(bad)} of {len(rows)} runs were made by other code "
        f"than today's (first: {bad[:3]}). Regenerate: {REGENERATE[name]}; {AFTER}."
        if bad
        else ""
    )


RUNS = {"ablation_runs.csv": RUN_COLUMNS, "track_runs.csv": RUN_COLUMNS,
        "ablation_kernels_runs.csv": RUN_COLUMNS, "spacetime_track_runs.csv": TRACK_COLUMNS,
        "spacetime_classify_runs.csv": RUN_COLUMNS}  # fmt: skip


@pytest.mark.parametrize("name", list(RUNS))
def test_runs_csv_is_todays_code(name):
    path = RESULTS / name
    runs = read_csv(path, RUNS[name])
    assert runs and all(r["cpu"] and r["fingerprint"] for r in runs), f"{path}: empty fields"
    keys = ("config", "model", "pairwise", "variant", "blocks", "seed")
    by_label = {tuple(r[k] for k in keys): r for r in runs}

    def recompute(label):
        config, model, pairwise, variant, blocks, seed = label
        model = {"model": model, "pairwise": pairwise, "variant": variant, "blocks": blocks}
        return fingerprint(config, model, seed)

    message = _stale(path, [(k, r["fingerprint"]) for k, r in by_label.items()], recompute)
    assert not message, message


@pytest.mark.parametrize("name", ["ablation", "track", "spacetime_track", "spacetime_classify"])
def test_results_csv_is_its_runs(name):
    """The summary is exactly ``summarise`` of the committed runs (its fingerprint included)."""
    runs = read_csv(RESULTS / f"{name}_runs.csv", RUNS[f"{name}_runs.csv"])
    rows = read_csv(RESULTS / f"{name}.csv", COLUMNS)
    table = "spacetime" if name.startswith("spacetime") else "ablation"
    again = summarise(runs, "track" if name.endswith("track") else "classify", table)
    assert rows == again, f"data/results/{name}.csv is not its runs: {REGENERATE[name]}"


def _checkpoints():
    return sorted(CHECKPOINTS.glob("*.pt"))


@pytest.mark.parametrize("path", _checkpoints(), ids=lambda p: p.name)
def test_checkpoint_is_todays_code(path):
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw.get("cpu") and raw.get("fingerprint"), f"{path.name} records no cpu/fingerprint"
    if raw["kind"] == "denoise":
        _, ckpt = denoise.load_checkpoint(path)
        label = ckpt["model"]["variant"]
        again = denoise.run_fingerprint(
            denoise.Config(**ckpt["config"]), variant=label, seed=ckpt["seed"]
        )
        name = "denoise"
    else:
        _, ckpt = read_checkpoint(path, T.build_model)
        m = ckpt["model"]
        label = f"{m['pairwise']}/{m['variant']}"
        again = T.run_fingerprint(
            T.Config(**ckpt["config"]),
            pairwise=m["pairwise"],
            variant=m["variant"],
            seed=ckpt["seed"],
            blocks=ckpt["config"]["blocks"],
            attention=m.get("attention"),
        )
        name = "track" if ckpt["kind"] == "track" else "ablation"
        name = f"spacetime_{ckpt['kind']}" if "attention" in m else name
    assert matches(ckpt["fingerprint"], again), (
        f"{path.relative_to(ROOT)} ({label}) was made by other code than today's: "
        f"{REGENERATE[name]}; {AFTER}."
    )


def _table_of(p: Path) -> str:
    """The runs CSV (its name without ``_runs.csv``) that a committed checkpoint belongs to."""
    for prefix in ("spacetime_track", "spacetime_classify", "track", "denoiser"):
        if p.name.startswith(prefix + "_"):
            return prefix
    return "ablation"


@pytest.mark.parametrize("name", ["ablation", "track", "spacetime_track", "spacetime_classify"])
def test_seed_0_checkpoints_are_rows_of_their_runs_csv(name):
    runs = read_csv(RESULTS / f"{name}_runs.csv", RUNS[f"{name}_runs.csv"])
    fps = {r["fingerprint"] for r in runs if r["seed"] == 0}
    paths = [p for p in _checkpoints() if _table_of(p) == name]
    assert paths
    for p in paths:
        stored = torch.load(p, map_location="cpu", weights_only=True)["fingerprint"]
        assert stored in fps, f"{p.name} is not the seed-0 run of {name}_runs.csv"


def test_live_pairs_csv_is_the_ablations_concatenation_runs():
    path = RESULTS / "concatenation_live_pairs.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {"fingerprint", "cpu"} <= set(rows[0]), f"{path.name}: no fingerprint column"
    runs = read_csv(RESULTS / "ablation_runs.csv", RUN_COLUMNS)
    committed = {r["seed"]: r["fingerprint"] for r in runs if r["pairwise"] == "concatenation"}
    seeds = sorted({int(r["seed"]) for r in rows})
    model = {"pairwise": "concatenation", "variant": "spacetime", "blocks": 1}
    labelled = [(s, next(r["fingerprint"] for r in rows if int(r["seed"]) == s)) for s in seeds]
    message = _stale(path, labelled, lambda s: fingerprint("full", model, s))
    assert not message, message
    assert all(matches(fp, committed[s]) for s, fp in labelled), "not the ablation's runs"


def test_denoise_csv_measured_the_committed_denoisers():
    """The network rows of denoise.csv record the fingerprint of the checkpoint they measured:
    the committed one (so a retrained denoiser without a new table fails here)."""
    path = RESULTS / "denoise.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {"fingerprint", "cpu"} <= set(rows[0]), f"{path.name}: no fingerprint column"
    nets = {(r["method"], r["seed"]): r["fingerprint"] for r in rows if r["method"][:3] == "CNN"}
    runs = [(v, seed) for v in denoise.VARIANTS for seed in denoise.SEEDS]
    assert len(nets) == len(runs) + len(denoise.SEEDS)  # and the whole-image one in tiles
    stored = {
        torch.load(denoise.checkpoint_path(v, seed), map_location="cpu", weights_only=True)[
            "fingerprint"
        ]
        for v, seed in runs
    }
    assert all(r["cpu"] for r in rows)
    assert set(nets.values()) == stored, (
        f"{path.relative_to(ROOT)} measured other denoisers than the committed ones: "
        "python benchmarks/bench_denoise.py --overwrite"
    )


def test_spacetime_budget_csv_is_todays_code():
    """benchmarks/spacetime_budget.py's longer runs: their fingerprints, recomputed."""
    from nlviz.experiments import _attention

    path = RESULTS / "spacetime_budget.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["model"] for r in rows} == {"joint", "divided", "divided x2"}
    for r in {r["model"]: r for r in rows}.values():
        config = dataclasses.replace(T.CONFIGS["track-full"], epochs=int(r["epochs"]))
        again = T.run_fingerprint(config, attention=_attention("track", r["model"]),
                                  blocks=2 if r["model"] == "divided x2" else 1)  # fmt: skip
        assert matches(r["fingerprint"], again), (
            f"{path.name} ({r['model']}) was made by other code than today's: "
            f"python benchmarks/spacetime_budget.py --overwrite; {AFTER}."
        )
