"""The paper's flag files document every value they set, and set only real train.py flags.

The rule for configs/mnist.flags and configs/kitti.flags: a flag line (``--name=value``) belongs
to a *group*, the run of consecutive flag lines it is part of (a comment line or a blank line
ends a group). Every group must sit directly below a comment block (one or more ``#`` lines, no
blank line between the block and the group's first flag). A group of one flag is documented by
that block whatever it says; in a group of two or more flags the block must name each flag
(its name, e.g. ``batch_size``, appears in the block's text), so a flag cannot hide, unexplained,
under a comment written for its neighbour.

Flag names are checked against the flags train.py defines: the `define_flags(...)` call and the
``flags.DEFINE_*`` calls in its source (read with `ast`, without importing the script) are
replayed on a fresh absl FlagValues.
"""

from __future__ import annotations

import ast
import os

import pytest
from absl import flags

from decompnet_tf import config
from decompnet_tf.config_flags import define_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAG_FILES = ("configs/mnist.flags", "configs/kitti.flags")


def parse_groups(text: str) -> list[tuple[list[str], list[tuple[int, str]]]]:
    """Flag-file text -> [(comment lines above the group, [(line number, flag name)])]: one
    entry per group of consecutive flag lines; the comment list is empty when the line above
    the group is blank or the file's start."""
    groups, comment, flags_run = [], [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("--"):
            flags_run.append((number, line[2:].split("=", 1)[0]))
            continue
        if flags_run:
            groups.append((comment, flags_run))
            comment, flags_run = [], []
        if line.startswith("#"):
            comment = comment + [line]
        else:  # A blank line detaches the comment above it.
            comment = []
    if flags_run:
        groups.append((comment, flags_run))
    return groups


def undocumented(text: str) -> list[str]:
    """'line N: --name (why)' for each flag of `text` that breaks the module's rule."""
    problems = []
    for comment, run in parse_groups(text):
        block = " ".join(comment)
        for number, name in run:
            if not comment:
                problems.append(f"line {number}: --{name} (no comment directly above)")
            elif len(run) > 1 and name not in block:
                problems.append(f"line {number}: --{name} (its group's comment does not name it)")
    return problems


def train_flags() -> tuple[flags.FlagValues, set[str]]:
    """The flags train.py defines, replayed from its source: a fresh FlagValues holding its
    `define_flags(...)` flags, and the names of all its flags (with its own DEFINE_* calls)."""
    with open(os.path.join(ROOT, "train.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    fv, names = flags.FlagValues(), {"flagfile", "helpfull", "help"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if fname == "define_flags":
            define_flags(*(getattr(config, a.id) for a in node.args), flag_values=fv)
        elif fname.startswith("DEFINE_") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(node.args[0].value)
    assert len(fv) > 50, "train.py's define_flags call was not found"
    return fv, names | set(fv)


def test_rule_catches_an_unnamed_flag_in_a_group():
    text = "# lam and gamma: Appendix B.\n--lam=1.0\n--gamma=1.0\n--batch_size=32\n"
    assert undocumented(text) == ["line 4: --batch_size (its group's comment does not name it)"]
    assert undocumented("# ours\n\n--batch_size=32\n") == [
        "line 3: --batch_size (no comment directly above)"]
    assert undocumented("# Ours.\n--batch_size=32\n# Ours.\n--seed=1\n") == []


@pytest.mark.parametrize("path", FLAG_FILES)
def test_every_flag_is_documented(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        problems = undocumented(f.read())
    assert not problems, f"{path}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", FLAG_FILES)
def test_every_flag_is_a_train_flag(path):
    fv, known = train_flags()
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        names = [name for _, run in parse_groups(f.read()) for _, name in run]
    assert names, f"{path} sets no flags"
    unknown = sorted(set(names) - known)
    assert not unknown, f"{path} sets flags train.py does not define: {unknown}"
    # Every value parses and passes the flag's bounds and choices, as train.py would see it.
    fv(["train.py", "--flagfile=" + os.path.join(ROOT, path)])
    assert all(fv[name].present for name in names if name in fv)


def test_root_mnist_flags_is_the_papers_flag_file_from_the_repository_root(monkeypatch):
    """`python train.py --flagfile=mnist.flags`, the command of the project's description,
    works from the repository root and sets what configs/mnist.flags sets."""
    monkeypatch.chdir(ROOT)  # absl opens a nested --flagfile relative to the working dir.
    root, configs = train_flags()[0], train_flags()[0]
    root(["train.py", "--flagfile=mnist.flags"])
    configs(["train.py", "--flagfile=configs/mnist.flags"])
    assert root.flag_values_dict() == configs.flag_values_dict()
    assert root["instance_units"].present  # The nested file was read, not skipped.
