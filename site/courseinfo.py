"""What site/build.py and site/conf.py share: the course's repository and MathJax's parts.

``[project.urls] Repository`` in pyproject.toml is where the course is published, its one
setting; the site's header button, its footer, the landing page and every notebook's run note
take the URL and the clone command from here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a page with math loads of MathJax 3 (conf.py) and what the build copies (build.py): its
# loader, then the TeX input that tests/test_math.py checks with (site/mathcheck.js), CommonHTML
# output and the hidden MathML that screen readers read; not the 1.2 MB tex-chtml.js bundle,
# whose contextual menu alone is 0.4 MB.
MATHJAX_LOADER = "startup"
MATHJAX_COMPONENTS = ["input/tex", "output/chtml", "a11y/assistive-mml"]


def repository_url(root: Path = ROOT) -> str:
    """``[project.urls] Repository`` of pyproject.toml, without a trailing slash."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # Python 3.10: read the one table by hand
        table = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        found = table and re.search(r'^Repository\s*=\s*"([^"]+)"', table[1], re.M)
        url = found[1] if found else ""
    else:
        url = tomllib.loads(text).get("project", {}).get("urls", {}).get("Repository", "")
    if not url.startswith("https://"):
        raise SystemExit("pyproject.toml: set [project.urls] Repository to the course's https URL")
    return url.rstrip("/")


def clone_folder(url: str) -> str:
    """The folder that ``git clone url`` makes."""
    name = url.rsplit("/", 1)[-1]
    return name[: -len(".git")] if name.endswith(".git") else name


def run_commands(url: str) -> str:
    """The shell lines that fetch the course and open it in JupyterLab."""
    return f"git clone {url}\ncd {clone_folder(url)}\nmake lab"
