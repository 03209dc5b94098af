"""Imports run one way (docs/architecture.md): each rule below names a layer and the project
modules it must not import, read from every import statement (lazy ones inside functions
included) without running any of them."""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_SCRIPTS = ("train", "evaluate", "export", "predict", "render_samples")

# layer (a module or package prefix) -> prefixes it must not import.
NEVER = {
    "decompnet_tf.config": ("decompnet_tf.",),
    "decompnet_tf.keras_compat": ("decompnet_tf.",),
    "decompnet_tf.ops": ("decompnet_tf.models", "decompnet_tf.data", "decompnet_tf.engine",
                         "decompnet_tf.eval", "decompnet_tf.export", "decompnet_tf.losses"),
    "decompnet_tf.data.kitti_labels": ("decompnet_tf.", "tfds_builders"),
    "decompnet_tf.models": ("decompnet_tf.data", "decompnet_tf.eval", "decompnet_tf.export",
                            "decompnet_tf.losses", "decompnet_tf.matching",
                            "decompnet_tf.engine", "decompnet_tf.model_io",
                            "decompnet_tf.detectors"),
    "decompnet_tf.data": ("decompnet_tf.models", "decompnet_tf.engine", "decompnet_tf.eval",
                          "decompnet_tf.export"),
    "decompnet_tf.eval": ("decompnet_tf.engine", "decompnet_tf.export", "tfds_builders"),
    "decompnet_tf.export": ("decompnet_tf.engine", "decompnet_tf.eval", "decompnet_tf.detectors",
                            "decompnet_tf.data", "tfds_builders"),
    "decompnet_tf.detectors": ("decompnet_tf.engine", "decompnet_tf.eval",
                               "decompnet_tf.export", "tfds_builders"),
    "decompnet_tf.model_io": ("decompnet_tf.engine", "decompnet_tf.eval",
                              "decompnet_tf.export", "tfds_builders"),
    "decompnet_tf.engine": ("decompnet_tf.eval", "decompnet_tf.export", "tfds_builders"),
    "decompnet_tf": ENTRY_SCRIPTS,
    # The builders stand alone: of decompnet_tf only the pure KITTI label module.
    "tfds_builders": ("decompnet_tf.config", "decompnet_tf.ops", "decompnet_tf.models",
                      "decompnet_tf.engine", "decompnet_tf.eval", "decompnet_tf.export",
                      "decompnet_tf.data.builders", "decompnet_tf.data.pipeline",
                      "decompnet_tf.losses", "decompnet_tf.matching", "decompnet_tf.detectors",
                      "decompnet_tf.model_io", "decompnet_tf.postprocess"),
}


def module_name(path: str) -> str:
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def project_imports(path: str) -> set[str]:
    """The dotted names a file imports (`from a import b` gives a.b as well as a, since b may
    be a module)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def library_files():
    for top in ("decompnet_tf", "tfds_builders"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix if prefix.endswith(".") else prefix + ".")


def violations() -> list[str]:
    found = []
    for script in ENTRY_SCRIPTS[1:]:  # All but train.py.
        path = os.path.join(ROOT, f"{script}.py")
        if os.path.exists(path):
            found += [f"{script}.py imports {name} (only train.py imports the engine)"
                      for name in sorted(project_imports(path))
                      if _matches(name, "decompnet_tf.engine")]
    for path in library_files():
        module = module_name(path)
        for layer, never in NEVER.items():
            if not _matches(module, layer):
                continue
            for name in sorted(project_imports(path)):
                bad = [p for p in never if _matches(name, p) and not _matches(name, layer)]
                if bad:
                    found.append(f"{module} imports {name} (layer {layer} never imports "
                                 f"{bad[0]})")
    return found


def test_the_rules_see_an_import_that_breaks_them(tmp_path, monkeypatch):
    bad = tmp_path / "decompnet_tf" / "eval"
    bad.mkdir(parents=True)
    (bad / "leak.py").write_text("def f():\n    from tfds_builders.decomp_kitti import x\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
    (bad / "fine.py").write_text("from decompnet_tf.data.kitti_labels import DIFFICULTIES\n")
    assert violations()[0] == ("decompnet_tf.eval.leak imports tfds_builders.decomp_kitti (layer "
                               "decompnet_tf.eval never imports tfds_builders)")
    assert not [v for v in violations() if "fine" in v]


def test_imports_run_one_way():
    found = violations()
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", ["decompnet_tf.eval.kitti", "decompnet_tf.data.kitti_labels"])
def test_kitti_evaluation_loads_no_dataset_builder(module):
    """Scoring KITTI detections needs the devkit's difficulty rules, not TFDS or the builder."""
    code = (f"import sys, {module}; "
            "print(sorted(m for m in ('tfds_builders', 'tensorflow_datasets', 'cv2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.stdout.strip().splitlines()[-1] == "[]"
