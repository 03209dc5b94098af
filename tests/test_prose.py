"""Limits on the package's prose: flag help texts and docstring density."""

import ast
import dataclasses
import inspect
from pathlib import Path

from decompnet_tf import config

PACKAGE = Path(__file__).resolve().parents[1] / "decompnet_tf"
MAX_HELP_CHARS = 200
MAX_DOCSTRING_SHARE = 0.18


def _help_texts():
    for _, cls in inspect.getmembers(config, dataclasses.is_dataclass):
        for field in dataclasses.fields(cls):
            if "help" in field.metadata:  # What config_flags turns into a flag.
                yield f"{cls.__name__}.{field.name}", field.metadata["help"]


def _docstring_lines(tree: ast.AST) -> int:
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                count += first.end_lineno - first.lineno + 1
    return count


def test_every_flag_help_text_is_short():
    texts = dict(_help_texts())
    assert texts
    too_long = {name: len(text) for name, text in texts.items() if len(text) >= MAX_HELP_CHARS}
    assert not too_long, f"help texts of {MAX_HELP_CHARS}+ characters: {too_long}"


def test_docstrings_are_a_small_share_of_the_package():
    doc = total = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        total += len(source.splitlines())
        doc += _docstring_lines(ast.parse(source))
    assert doc / total <= MAX_DOCSTRING_SHARE, (
        f"docstring lines are {doc}/{total} = {doc / total:.1%} of decompnet_tf/")
