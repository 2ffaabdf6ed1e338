"""The two install routes (pip: requirements.txt, conda: environment.yml) cannot drift."""

import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Import names that differ from their distribution names.
DIST_OF_IMPORT = {"skimage": "scikit-image", "yaml": "pyyaml", "cv2": "opencv-python-headless"}


def requirements() -> dict[str, str]:
    """Map of lower-case distribution name -> version specifier, from requirements.txt."""
    reqs = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", line)
        assert match, f"requirements.txt: cannot parse {line!r}"
        reqs[match.group(1).lower()] = match.group(2).replace(" ", "")
    return reqs


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def test_environment_pip_section_installs_requirements_file():
    env = environment()
    assert env["channels"] == ["conda-forge"]
    pip_sections = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert len(pip_sections) == 1 and list(pip_sections[0]) == ["pip"]
    assert pip_sections[0]["pip"] == ["-r requirements.txt"]


def test_environment_conda_packages_do_not_duplicate_requirements():
    # Only the interpreter and pip come from conda; every library comes from requirements.txt.
    conda = [d for d in environment()["dependencies"] if isinstance(d, str)]
    names = {re.split(r"[=<>! ]", d, maxsplit=1)[0].lower() for d in conda}
    assert names == {"python", "pip"}
    assert "python=3.11" in conda
    assert not names & set(requirements())


def test_every_requirement_is_bounded_and_torch_pinned():
    reqs = requirements()
    for name, spec in reqs.items():
        assert spec, f"{name} has no version bound"
        assert "==" in spec or "<" in spec, f"{name}{spec} has no upper bound"
    assert reqs["torch"] == "==2.13.0"
    for named in ("numpy", "torch", "matplotlib", "scikit-image", "jupyterlab", "ipywidgets"):
        assert named in reqs
    for named in ("ipympl", "nbval", "pytest", "tqdm"):
        assert named in reqs


def test_nlviz_imports_only_listed_packages():
    reqs = requirements()
    stdlib = set(sys.stdlib_module_names)
    missing = set()
    for path in (ROOT / "nlviz").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in stdlib or top == "nlviz":
                    continue
                dist = DIST_OF_IMPORT.get(top, top).lower()
                if dist not in reqs and top not in {"IPython"}:  # IPython comes with ipykernel
                    missing.add(f"{path.name}: {top}")
    assert not missing, f"imported but not in requirements.txt: {sorted(missing)}"


def test_python_version_agrees_with_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    minimum = re.search(r'requires-python = ">=3\.(\d+)"', text)
    assert minimum and int(minimum.group(1)) <= 11


def test_installed_versions_satisfy_requirements():
    from importlib.metadata import PackageNotFoundError, version

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    for name, spec in requirements().items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            raise AssertionError(
                f"{name} is listed in requirements.txt but not installed"
            ) from None
        # Local build tags (torch 2.13.0+cpu) satisfy ==2.13.0.
        assert Version(installed.public) in SpecifierSet(spec), f"{name} {installed} vs {spec}"
