"""Find malformed math in the markdown cells of notebooks.

    python site/mathcheck.py [NOTEBOOK ...]    (default: notebooks/*.ipynb)

Finds the math the way JupyterLab reads it: ``$...$``, ``$$...$$``, ``\\(...\\)``,
``\\[...\\]`` and ``\\begin{env}...\\end{env}``, outside code (fenced blocks, code spans,
<code>/<pre>) and never across a blank line; ``\\$`` is a dollar sign. The site's markdown
parser (myst's dollarmath) reads the same once site/build.py has turned ``\\(`` and ``\\[``
into dollars. Reports:

- unbalanced: a delimiter opened and not closed in its paragraph, or a closer never opened;
- empty: math with nothing in it;
- space at edge: ``$`` math that starts or ends with a space (``$ and $``: a ``$`` missing
  or one too many, the usual way a paragraph's dollars pair up wrongly);
- prose in math: three words in a row inside math, outside ``\\text{}`` and the like;
- tex outside math: a TeX command such as ``\\theta`` in the prose (a ``$`` missing);
- dollar in braces: ``$\\text{a $b$}$``, which JupyterLab reads as one piece of math and the
  site's markdown parser (myst) as two;
- tex error: TeX that MathJax, the renderer of the site and of JupyterLab, rejects
  (site/mathcheck.js, run with node; MathJax from site/node_modules, which `make unit` and
  `make site` install).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SITE = Path(__file__).resolve().parent
CHECKER = SITE / "mathcheck.js"
MATHJAX = SITE / "node_modules" / "mathjax"

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HTML_CODE = re.compile(r"<(pre|code)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.S | re.I)
TICKS = re.compile(r"`+")
BLANK_LINE = re.compile(r"\n[ \t]*\n")
TOKEN = re.compile(
    r"\\\\|\\\$|\$\$|\$|\\\(|\\\)|\\\[|\\\]|\\begin\{(?P<begin>[A-Za-z]+\*?)\}"
    r"|\\end\{(?P<end>[A-Za-z]+\*?)\}|\{|\}"
)
CLOSER = {"$": "$", "$$": "$$", r"\(": r"\)", r"\[": r"\]"}
COMMAND = re.compile(r"(?<!\\)\\[A-Za-z]+")
# groups whose argument is text, not math: their words are no sign of a lost `$`
TEXT_GROUP = re.compile(
    r"\\(?:text\w*|math(?:rm|it|bf|sf|tt|cal|bb|frak|scr)|operatorname\*?|mbox|hbox|"
    r"label|tag|ref|eqref)\s*\{[^{}]*\}"
)
WORDS = re.compile(r"[A-Za-z]{2,}[,;:.]?(?:\s+[A-Za-z]{2,}[,;:.]?){2,}")


@dataclass(frozen=True)
class Math:
    """One piece of math in a markdown text: its TeX, display or inline, where it starts."""

    tex: str
    display: bool
    start: int
    delim: str


@dataclass(frozen=True)
class Problem:
    kind: str
    message: str
    snippet: str
    notebook: str = ""
    cell: int = -1
    offset: int = 0  # where in the cell's source

    def __str__(self) -> str:
        where = f"{self.notebook} cell {self.cell}: " if self.notebook else ""
        return f"{where}{self.kind}: {self.message}: {self.snippet!r}"


def snippet(text: str, start: int, end: int | None = None, width: int = 30) -> str:
    """The text around [start, end) (at most 80 characters of it), on one line."""
    end = start + 1 if end is None else min(end, start + 80)
    lo, hi = max(0, start - width), min(len(text), end + width)
    out = " ".join(text[lo:hi].split())
    return ("..." if lo > 0 else "") + out + ("..." if hi < len(text) else "")


def mask_code(text: str) -> str:
    """text with code (fenced blocks, code spans, <pre>, <code>, comments) blanked out."""
    chars = list(text)

    def blank(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            if chars[i] != "\n":
                chars[i] = " "

    lines, offset, fence = text.splitlines(keepends=True), 0, None
    for line in lines:  # fenced code blocks, to their closing fence or the end
        match = FENCE.match(line)
        if fence is None and match:
            fence, start = match[1], offset
        elif fence and line.strip().startswith(fence) and not line.strip(fence[0]).strip():
            blank(start, offset + len(line))
            fence = None
        offset += len(line)
    if fence is not None:
        blank(start, len(text))
    text = "".join(chars)
    for match in HTML_CODE.finditer(text):
        blank(*match.span())
    text = "".join(chars)
    pos = 0
    while match := TICKS.search(text, pos):  # code spans: a run of n backticks to the next
        run = match[0]
        closing = re.compile(rf"(?<!`){run}(?!`)")
        end = closing.search(text, match.end())
        if end and not BLANK_LINE.search(text, match.end(), end.start()):
            blank(match.start(), end.end())
            pos = end.end()
        else:
            pos = match.end()
    return "".join(chars)


def paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of the blocks of text between blank lines."""
    spans, start = [], 0
    for match in BLANK_LINE.finditer(text):
        spans.append((start, match.start() + 1))
        start = match.end() - 1
    spans.append((start, len(text)))
    return spans


def scan(text: str) -> tuple[list[Math], list[Problem]]:
    """The math of a markdown text and the problems that need no renderer to see."""
    masked = mask_code(text)
    found: list[Math] = []
    problems: list[Problem] = []
    prose: list[tuple[int, int]] = []  # outside math and code

    def problem(kind: str, message: str, lo: int, hi: int | None = None) -> None:
        problems.append(Problem(kind, message, snippet(text, lo, hi), offset=lo))

    for lo, hi in paragraphs(masked):
        pos, opened = lo, None  # opened: (delimiter, env, start, content start, depth)
        for token in TOKEN.finditer(masked, lo, hi):
            tok = token[0]
            if opened is None:
                if tok in ("\\\\", "\\$", "{", "}"):
                    continue
                if tok in CLOSER or token["begin"]:
                    prose.append((pos, token.start()))
                    content = token.start() if token["begin"] else token.end()
                    opened = [tok, token["begin"], token.start(), content, 0]
                else:  # \) \] \end{...} with nothing open
                    message = f"`{tok}` closes math that was never opened"
                    problem("unbalanced", message, token.start())
                continue
            delim, env, start, content, depth = opened
            if delim == "$" and tok == "$" and depth > 0:
                message = "`$` inside braces of `$` math: JupyterLab reads on, the site stops"
                problem("dollar in braces", message, token.start())
            if tok == "{":
                opened[4] += 1
            elif tok == "}":
                opened[4] -= 1
            elif env and token["begin"] == env:
                opened[4] += 1  # the same environment nested: its \end is not ours
            elif env and token["end"] == env:
                if depth > 0:
                    opened[4] -= 1
                    continue
                found.append(Math(masked[start : token.end()], True, start, env))
                opened, pos = None, token.end()
            elif not env and depth <= 0 and (tok == CLOSER[delim] or (delim, tok) == ("$", "$$")):
                display = delim in ("$$", r"\[")
                found.append(Math(masked[content : token.start()], display, start, delim))
                opened, pos = None, token.end()
                if delim == "$" and tok == "$$":  # `$a$$b$`: one closes, one opens
                    opened, pos = ["$", None, token.start() + 1, token.end(), 0], token.start() + 1
        if opened is not None:
            delim, env, start = opened[0], opened[1], opened[2]
            name = f"\\begin{{{env}}}" if env else delim
            problem("unbalanced", f"`{name}` opened here is not closed in its paragraph", start)
            pos = hi
        prose.append((pos, hi))

    for math in found:
        inner = math.tex
        if math.delim in ("$", "$$", r"\(", r"\["):
            end = math.start + len(math.delim) + len(inner) + len(CLOSER[math.delim])
        else:
            end = math.start + len(inner)
        if not inner.strip():
            problem("empty", "math with nothing in it", math.start, end)
            continue
        if math.delim == "$" and inner != inner.strip():
            problem(
                "space at edge",
                "`$` math starts or ends with a space: a `$` is missing or extra",
                math.start,
                end,
            )
        words = WORDS.search(COMMAND.sub(" ", TEXT_GROUP.sub(" ", inner)))
        if words:
            problem(
                "prose in math",
                f"words inside math ({' '.join(words[0].split())!r}): a `$` is missing or extra",
                math.start,
                end,
            )
    for lo, hi in prose:  # one problem per stretch of prose, naming its commands
        commands = list(COMMAND.finditer(masked, lo, hi))
        if commands:
            names = ", ".join(dict.fromkeys(f"`{c[0]}`" for c in commands))
            message = f"TeX outside math ({names}): a `$` is missing"
            problem("tex outside math", message, commands[0].start(), commands[-1].end())
    return found, problems


def tex_errors(items: list[Math]) -> list[str | None]:
    """MathJax's error for each piece of math (None where it renders), via node."""
    if not items:
        return []
    node = shutil.which("node")
    if node is None:
        raise FileNotFoundError("node is not installed")
    if not (MATHJAX / "es5" / "tex-chtml.js").is_file():
        raise FileNotFoundError(f"MathJax is missing in {MATHJAX}: run `make site` (npm ci)")
    payload = json.dumps([{"tex": m.tex, "display": m.display} for m in items])
    done = subprocess.run(
        [node, str(CHECKER)], input=payload, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"{CHECKER.name} failed: {done.stderr[-2000:]}")
    errors = json.loads(done.stdout)
    assert len(errors) == len(items), (len(errors), len(items))
    return errors


def check_texts(texts: list[str]) -> list[list[Problem]]:
    """All problems of each markdown text, MathJax's included (one node run for all)."""
    scanned = [scan(text) for text in texts]
    errors = iter(tex_errors([m for found, _ in scanned for m in found]))
    out = []
    for text, (found, problems) in zip(texts, scanned, strict=True):
        problems = list(problems)
        for math, error in zip(found, errors, strict=False):
            if error is not None:
                end = math.start + len(math.delim) + len(math.tex)
                where = snippet(text, math.start, end)
                problems.append(Problem("tex error", f"MathJax: {error}", where, offset=math.start))
        out.append(sorted(problems, key=lambda p: p.offset))
    return out


def markdown_cells(path: Path) -> list[tuple[int, str]]:
    """(index, source) of the markdown cells of a notebook; indices count all cells from 0."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        (i, "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "markdown"
    ]


def check_notebooks(paths: list[Path]) -> dict[str, list[Problem]]:
    """The problems of each notebook's markdown cells, by notebook file name."""
    cells = [(Path(p).name, i, src) for p in paths for i, src in markdown_cells(Path(p))]
    results = check_texts([src for _, _, src in cells])
    out: dict[str, list[Problem]] = {Path(p).name: [] for p in paths}
    for (name, index, _), problems in zip(cells, results, strict=True):
        out[name] += [
            Problem(p.kind, p.message, p.snippet, name, index, p.offset) for p in problems
        ]
    return out


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((SITE.parent / "notebooks").glob("*.ipynb"))
    found = check_notebooks(paths)
    for problems in found.values():
        for p in problems:
            print(p)
    total = sum(map(len, found.values()))
    print(f"{total} math problem(s) in {len(paths)} notebook(s) (cells counted from 0)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
