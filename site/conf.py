# Sphinx configuration of the course's website; site/build.py prepares the sources and runs it.
import json
import re
from pathlib import Path

_here = Path(__file__).resolve().parent
_readme = (_here.parent / "README.md").read_text(encoding="utf-8")
project = re.search(r"^# (.+)$", _readme, re.M).group(1).strip()
html_title = project
author = "the course's authors"
copyright = "the course's authors"
language = "en"

# githubpages writes .nojekyll: GitHub Pages then serves the folders whose names start with _
extensions = ["myst_nb", "sphinx.ext.githubpages"]
exclude_patterns = ["_orig", "**/.ipynb_checkpoints"]

# The notebooks are committed executed: show their outputs, never run them.
nb_execution_mode = "off"
nb_merge_streams = True
# No widget manager from a CDN: site/build.py turned widget outputs into notes.
nb_ipywidgets_js = {}

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
# `$$...$$` inside a paragraph is display math, as JupyterLab renders it
myst_dmath_double_inline = True

# MathJax 3.2.2 from npm (the version JupyterLab 4 renders notebooks with), served from
# _static/mathjax; site/build.py copies it there. A relative path is relative to _static.
mathjax_path = "mathjax/tex-chtml.js"
# The TeX set-up that tests/test_math.py checks with (site/mathcheck.js): an undefined macro is
# an error, drawn in red with its message.
mathjax3_config = {"tex": json.loads((_here / "mathjax-tex.json").read_text(encoding="utf-8"))}

html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,
    "use_download_button": False,  # it would offer the site's copy; each page links the notebook
    "show_navbar_depth": 1,
    "show_toc_level": 2,
}
html_static_path = ["_static"]
html_css_files = ["nlviz-site.css"]
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
# The notebooks' figures have white backgrounds; readers can still switch to dark.
html_context = {"default_mode": "light"}
html_favicon = "_static/favicon.svg"  # else browsers ask for /favicon.ico and get a 404
