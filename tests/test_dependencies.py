"""Every third-party package that the library or an entry script imports at run time is a
runtime dependency in pyproject.toml: CI installs the dev extra, so a package that only the dev
extra brings (pycocotools, say) would pass CI and fail a user's `pip install -e .`."""

import ast
import importlib.metadata
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What `pip install -e .` must be enough for: the library, the TFDS builders, the README's entry
# scripts.
SOURCES = ("decompnet_tf", "tfds_builders", "train.py", "evaluate.py", "export.py",
           "predict.py", "render_samples.py")
OURS = {"decompnet_tf", "tfds_builders", "tests"}
# Imports the code guards with a clear message, with the reason. None today.
OPTIONAL: dict[str, str] = {}


def _python_files(path):
    if path.endswith(".py"):
        yield path
        return
    for folder, _, files in os.walk(path):
        yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))


def imported_modules(paths) -> dict[str, set[str]]:
    """Top-level module -> the files importing it, from every import statement (lazy ones
    inside functions included; relative imports are the project's own)."""
    found: dict[str, set[str]] = {}
    for top in paths:
        for path in _python_files(os.path.join(ROOT, top)):
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(os.path.relpath(path, ROOT))
    return found


def normalise(name: str) -> str:
    """PEP 503 name normalisation: "Absl_Py" -> "absl-py"."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_dependencies() -> set[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+.
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    return {normalise(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", d).group(0)) for d in deps}


def test_normalise_and_parse_helpers():
    assert normalise("Absl_Py") == "absl-py"
    assert normalise("opencv.python__headless") == "opencv-python-headless"
    found = imported_modules(["train.py"])
    assert "absl" in found and "train.py" in found["absl"]


def test_every_runtime_import_is_a_declared_dependency():
    declared = declared_dependencies()
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module, files in sorted(imported_modules(SOURCES).items()):
        if module in OURS or module in sys.stdlib_module_names or module in OPTIONAL:
            continue
        dists = {normalise(d) for d in distributions.get(module, [])}
        assert dists, f"{module} (imported by {sorted(files)}) is not installed here"
        if not dists & declared:
            missing.append(f"{module} (distribution {sorted(dists)}, imported by "
                           f"{sorted(files)})")
    assert not missing, ("imported at run time but not in [project].dependencies of "
                         "pyproject.toml (the dev extra is not installed by users): "
                         + "; ".join(missing))
