# Sphinx configuration of the course's website; site/build.py prepares the sources and runs it.
import json
import re
import sys
from pathlib import Path

from sphinx.domains.math import MathDomain

_here = Path(__file__).resolve().parent
sys.path.insert(0, str(_here))
import courseinfo  # noqa: E402  (site/courseinfo.py: the repository, from pyproject.toml)

repository = courseinfo.repository_url()
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
# Its loader and the components courseinfo.py names, not the 1.2 MB tex-chtml.js bundle.
mathjax_path = f"mathjax/{courseinfo.MATHJAX_LOADER}.js"
# The TeX set-up that tests/test_math.py checks with (site/mathcheck.js): an undefined macro is
# an error, drawn in red with its message.
mathjax3_config = {
    "loader": {"load": courseinfo.MATHJAX_COMPONENTS},
    "tex": json.loads((_here / "mathjax-tex.json").read_text(encoding="utf-8")),
}

html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,
    "use_download_button": False,  # it would offer the site's copy; each page links the notebook
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "repository_url": repository,  # the header's repository button
    "use_repository_button": True,
    # every page's footer: the repository and how to run the course (_templates/)
    "footer_content_items": ["nlviz-run.html", "copyright.html"],
}
# _templates/layout.html drops FontAwesome's 1.5 MB script from every page's head (its CSS and
# fonts draw the same icons); _templates/nlviz-run.html is the footer's run note.
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["nlviz-site.css"]
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
# The notebooks' figures have white backgrounds; readers can still switch to dark.
html_context = {
    "default_mode": "light",
    "nlviz_repository": repository,
    "nlviz_clone_folder": courseinfo.clone_folder(repository),
}
html_favicon = "_static/favicon.svg"  # else browsers ask for /favicon.ico and get a 404


class PageMath(MathDomain):
    """Sphinx's math domain, except that a page "has equations" only when its own text does.

    Sphinx also counts the pages in a page's toctree, so the landing page, whose toctree holds
    every notebook, would load MathJax for no equation at all."""

    def has_equations(self, docname: str | None = None) -> bool:
        if docname is None:
            return super().has_equations()
        return bool(self.data["has_equations"].get(docname, False))


def setup(app):
    app.add_domain(PageMath, override=True)
