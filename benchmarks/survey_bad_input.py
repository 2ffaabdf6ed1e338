"""The bad-input survey of issue 22: every case of ``tests/test_bad_input_generated.py`` run
once, its outcome counted per module.

    OMP_NUM_THREADS=1 python benchmarks/survey_bad_input.py [--list] [--usage] [--match TEXT]

The cases, their valid calls and their classification are the test module's (imported, not
copied). They run one at a time in a worker process: a call that hangs past the test's own
time limit in C code, or kills its process, costs that case (the worker is replaced), not the
survey. Outcomes:

- clear: TypeError or ValueError whose message starts with the argument's name;
- unclear: TypeError or ValueError, but the message names another argument or none;
- wrong type: another exception (AttributeError, ZeroDivisionError, MemoryError, torch's);
- silent: no error at all;
- hang: still running at the time limit; crash: the worker died (the signal is listed);
- setup: the valid call of the target fails, so its cases mean nothing (fix the registry).

``--list`` prints every case that is not clear, with what it raised; ``--usage`` where each
name of each ``__all__`` is used outside nlviz (notebooks, tests, benchmarks, README, site).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.util
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "tests" / "test_bad_input_generated.py"
OUTCOMES = ("clear", "unclear", "wrong type", "silent", "hang", "crash", "setup")
SPARE_S = 30.0  # past the test's own limit the worker is killed: a hang in C code


def load_generated():
    """The generated test module, imported from its file (tests/ is not a package)."""
    name = GENERATED.stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, GENERATED)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def _worker(conn) -> None:
    """Run the calls the parent names (("valid", i) or ("case", i)); reply (outcome, detail)."""
    devnull = os.open(os.devnull, os.O_WRONLY)  # tqdm bars, prints and display() of figures
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    import torch

    torch.set_num_threads(1)
    gen = load_generated()
    conn.send("ready")
    while (item := conn.recv()) is not None:
        what, index = item
        if what == "valid":
            outcome = gen.valid_outcome(gen.TARGETS[index])
        else:
            outcome = gen.run(gen.CASES[index])
        conn.send((outcome.kind, outcome.detail))


class Worker:
    """A worker process, started anew after a hang or a crash."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        if not self.conn.poll(300) or self.conn.recv() != "ready":
            raise RuntimeError("the survey's worker did not start")

    def ask(self, item, timeout: float) -> tuple[str, str]:
        self.conn.send(item)
        try:
            if self.conn.poll(timeout):
                return self.conn.recv()
        except (EOFError, ConnectionError):
            pass
        alive = self.proc.is_alive()
        self.stop()
        if alive:
            return "hang", f"killed after {timeout:.0f} s (a hang the alarm did not stop)"
        return "crash", f"the worker died (exit code {self.proc.exitcode})"

    def stop(self) -> None:
        self.proc.join(2)  # a worker told to stop exits by itself
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(10)
        self.conn.close()


def survey(gen, match: str | None) -> tuple[dict, dict]:
    """{case id: (outcome, detail)} and {target: valid call's (outcome, detail)}."""
    targets = [(i, t) for i, t in enumerate(gen.TARGETS) if not match or match in str(t)]
    wanted = {t.key for _, t in targets}
    cases = [(i, c) for i, c in enumerate(gen.CASES)
             if c.target.key in wanted and (not match or match in str(c))]  # fmt: skip
    root = tempfile.mkdtemp(prefix="nlviz-survey-")  # the workers' files, a killed one's too
    old_tmp, os.environ["TMPDIR"] = os.environ.get("TMPDIR"), root
    worker, valid, results = Worker(), {}, {}

    def ask(item, target):
        nonlocal worker
        limit = gen.TIMEOUTS.get(target.key, gen.TIMEOUT_S) + SPARE_S
        kind, detail = worker.ask(item, limit)
        if kind in ("hang", "crash") and not worker.proc.is_alive():
            worker = Worker()
        return kind, detail

    try:
        for i, target in targets:
            valid[target.key] = ask(("valid", i), target)
        for n, (i, case) in enumerate(cases, 1):
            if valid[case.target.key][0] != "accepted":
                results[str(case)] = ("setup", f"the valid call fails: {valid[case.target.key][1]}")
            else:
                kind, detail = ask(("case", i), case.target)
                results[str(case)] = ("silent" if kind == "accepted" else kind, detail)
            if n % 200 == 0:
                print(f"  {n} / {len(cases)} cases", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(OSError):
            worker.conn.send(None)
        worker.stop()
        if old_tmp is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = old_tmp
        shutil.rmtree(root, ignore_errors=True)
    return results, valid


def table(gen, results: dict) -> str:
    """Counts per module: public names, callables tested (with methods), cases, outcomes."""
    names = gen.public_names()
    by_case = {str(c): c for c in gen.CASES}
    counts: dict[str, Counter] = defaultdict(Counter)
    for case_id, (kind, _) in results.items():
        counts[by_case[case_id].target.module][kind] += 1
    callables = Counter(t.module for t in gen.TARGETS)
    header = ["module", "names", "callables", "cases", *OUTCOMES, "clear %"]
    rows, total = [], Counter()
    for module, listed in names.items():
        short = module.removeprefix("nlviz.") if module != "nlviz" else "nlviz"
        c = counts[short]
        n = sum(c.values())
        row = {"names": len(listed), "callables": callables[short], "cases": n, **c}
        total.update(row)
        rows.append([module, *(row.get(h, 0) for h in header[1:-1]),
                     f"{100 * c['clear'] / n:.0f}" if n else "-"])  # fmt: skip
    n = total["cases"]
    rows.append(["total", *(total.get(h, 0) for h in header[1:-1]),
                 f"{100 * total['clear'] / n:.0f}" if n else "-"])  # fmt: skip
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]
    lines = [" | ".join(str(v).rjust(w) if k else str(v).ljust(w)
                        for k, (v, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *rows]]  # fmt: skip
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, lines[1])
    return "\n".join(lines)


# --------------------------------------------------------------------------- usage outside


def _sources() -> dict[str, list[tuple[str, str]]]:
    """{place: [(file, code)]} of the Python outside nlviz, and {place: [(file, text)]} of
    the prose (README, notebooks' markdown, the site's pages)."""
    code, text = defaultdict(list), defaultdict(list)
    for place in ("tests", "benchmarks", "site"):
        for path in sorted((ROOT / place).glob("*.py")):
            if path not in (GENERATED, Path(__file__).resolve()):  # they reach every name
                code[place].append((str(path.relative_to(ROOT)), [path.read_text()]))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] != "code":
                text["notebooks"].append((path.name, "".join(cell["source"])))
        code["notebooks"].append((path.name, [  # a cell sees the imports of the ones before
            re.sub(r"^\s*[%!].*$", "", "".join(c["source"]), flags=re.M)  # magics, shell: out
            for c in cells if c["cell_type"] == "code"]))  # fmt: skip
    text["README"].append(("README.md", (ROOT / "README.md").read_text()))
    for path in sorted((ROOT / "site").glob("*.md")):
        text["site"].append((path.name, path.read_text()))
    return code, text


def _uses(sources: list[str]) -> set[tuple[str, str]]:
    """(module, name) pairs code (a file, or a notebook's cells in order) reaches: ``from
    nlviz.m import name``, ``m.name`` for ``m`` bound to nlviz.m, ``nlviz.m.name``, ``from
    nlviz import name``."""
    found, alias = set(), {"nlviz": "nlviz"}
    for source in sources:
        try:
            found |= _uses_in(ast.parse(source), alias)
        except SyntaxError:
            continue
    return found


def _uses_in(tree, alias: dict) -> set[tuple[str, str]]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nlviz"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if node.module == "nlviz" and importlib.util.find_spec(sub) is not None:
                    alias[a.asname or a.name] = sub
                else:
                    found.add((node.module, a.name))
        elif isinstance(node, ast.Import):
            for a in node.names:  # import nlviz.m as x: x is nlviz.m; import nlviz.m: nlviz
                if a.name.startswith("nlviz"):
                    alias[a.asname or "nlviz"] = a.name if a.asname else "nlviz"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in alias:
                parts = alias[value.id].split(".") + chain[::-1]
                found.add((".".join(parts[:-1]), parts[-1]))
    return found


def usage(gen) -> str:
    """Per module, the names of ``__all__`` no code outside nlviz uses (by the module or a
    re-export), with where the prose mentions them."""
    modules = {m.__name__: m for m in gen.discover_modules()}
    code, text = _sources()
    used: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for place, files in code.items():
        for _, source in files:
            for module, name in _uses(source):
                if module in modules and hasattr(modules[module], name):
                    home = getattr(modules[module], name)
                    for m, mod in modules.items():  # a re-export's use is its home's too
                        if name in getattr(mod, "__all__", ()) and getattr(mod, name) is home:
                            used[(m, name)][place] += 1
    lines = []
    for module, mod in modules.items():
        unused = []
        for name in getattr(mod, "__all__", ()):
            if used[(module, name)]:
                continue
            pattern = re.compile(rf"`(?:[\w.]*\.)?{re.escape(name)}[`(]|nlviz\.\w+\.{name}\b")
            said = sorted({p for p, files in text.items() for _, t in files if pattern.search(t)})
            unused.append(f"{name}" + (f" (mentioned in {', '.join(said)})" if said else ""))
        tested = {"tests", "benchmarks"}
        only_tests = [n for n in getattr(mod, "__all__", ())
                      if used[(module, n)] and set(used[(module, n)]) <= tested]  # fmt: skip
        lines.append(f"{module}: {len(getattr(mod, '__all__', ()))} names")
        lines.append(f"  used by no code outside nlviz: {', '.join(unused) or '-'}")
        lines.append(f"  used only by tests or benchmarks: {', '.join(only_tests) or '-'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print every case not clear")
    parser.add_argument("--usage", action="store_true", help="where the public names are used")
    parser.add_argument("--match", default=None, help="only the cases whose id contains this")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    gen = load_generated()
    print(f"{len(gen.TARGETS)} callables ({len(gen.SKIPPED)} skipped), {len(gen.CASES)} cases, "
          f"from {GENERATED.relative_to(ROOT)}", flush=True)  # fmt: skip
    if args.usage:
        print(usage(gen))
        return 0
    results, valid = survey(gen, args.match)
    print(table(gen, results))
    names = sum(len(v) for v in gen.public_names().values())
    print(f"{names} public names, {len(valid)} callables, {len(results)} cases in "
          f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    broken = {k: v for k, v in valid.items() if v[0] != "accepted"}
    for key, (kind, detail) in broken.items():
        print(f"valid call of nlviz.{key} fails ({kind}): {detail}")
    for target in gen.SKIPPED:
        print(f"skipped: {target}: {gen.skip_reason(target)}")
    if args.list:
        for outcome in OUTCOMES[1:]:
            listed = sorted((k, d) for k, (o, d) in results.items() if o == outcome)
            print(f"\n## {outcome} ({len(listed)})")
            for case_id, detail in listed:
                print(f"{case_id}  {detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
