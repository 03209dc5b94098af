"""absl flags derived from the configuration dataclasses' fields (`define_flags`, then
`from_flags`); bounds are absl validators, so a bad value stops the script at parse time."""

from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Any

from absl import flags

from decompnet_tf import config


def _flag_name(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or field.name


def _cli_fields(cls) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if "help" in f.metadata]


def _element_type(hint) -> type:
    """tuple[int, ...] -> int."""
    return typing.get_args(hint)[0]


def _is_tuple(hint) -> bool:
    return typing.get_origin(hint) is tuple


def _list_validator(name: str, lower, upper, element: type):
    def check(values) -> bool:
        for v in values:
            try:
                v = element(v)
            except (TypeError, ValueError):
                raise flags.ValidationError(
                    f"--{name}: {v!r} is not a {element.__name__}") from None
            if lower is not None and v < lower:
                raise flags.ValidationError(f"--{name}: {v} must be >= {lower}")
            if upper is not None and v > upper:
                raise flags.ValidationError(f"--{name}: {v} must be <= {upper}")
        return True

    return check


def _define(name: str, default, help_text: str, hint, meta, flag_values) -> None:
    lower, upper, kw = meta.get("lower"), meta.get("upper"), {"flag_values": flag_values}
    if _is_tuple(hint):  # Each element is checked: a list flag has no bounds of its own.
        flags.DEFINE_list(name, None if default is None else [str(v) for v in default],
                          help_text, **kw)
        check = _list_validator(name, lower, upper, _element_type(hint))
        flags.register_validator(name, lambda v: v is None or check(v), **kw)
    elif meta.get("choices"):
        flags.DEFINE_enum(name, default, list(meta["choices"]), help_text, **kw)
    elif hint is bool:
        flags.DEFINE_boolean(name, default, help_text, **kw)
    elif hint in (int, float):  # absl's own bounds: checked at parse time, in --help.
        define = flags.DEFINE_integer if hint is int else flags.DEFINE_float
        define(name, default, help_text, lower_bound=lower, upper_bound=upper, **kw)
    elif hint is str or type(None) in typing.get_args(hint):
        flags.DEFINE_string(name, default, help_text, **kw)
    else:
        raise TypeError(f"{name}: no flag type for {hint}")


def _old_names(cls) -> dict[str, str]:
    """{field name: its former flag name} of the renamed flags of `cls`."""
    return {new: old for old, new in config.FLAG_ALIASES.get(cls.__name__, {}).items()}


def define_flags(*classes, flag_values: flags.FlagValues = flags.FLAGS,
                 exclude: tuple[str, ...] = ()) -> None:
    """Defines one absl flag per `config.setting` field, except names in `exclude` or already
    defined (the shared `seed`); `config.FLAG_ALIASES` adds deprecated former names."""
    for cls in classes:
        old_names = _old_names(cls)
        for field, hint in _cli_fields(cls):
            name = _flag_name(field)
            if name in flag_values or name in exclude:
                continue
            _define(name, field.default, field.metadata["help"], hint, field.metadata,
                    flag_values)
            if field.name in old_names:
                _define(old_names[field.name], None, f"Deprecated: use --{name} (this name "
                        "goes in the next version).", hint, field.metadata, flag_values)


def _given(cls, field: dataclasses.Field, flag_values: flags.FlagValues) -> str | None:
    """The flag that gives `field` its value: its own, or its deprecated alias if only that was
    given (with a warning on stderr); None when the script defines no flag for it."""
    name, old = _flag_name(field), _old_names(cls).get(field.name)
    if old in flag_values and flag_values[old].present:
        if name in flag_values and flag_values[name].present:
            raise ValueError(f"--{old} and --{name} are the same setting; give --{name} only")
        print(f"warning: --{old} is deprecated and goes in the next version; use --{name}",
              file=sys.stderr)
        return old
    return name if name in flag_values else None


def aliased(name: str, old: str, flag_values: flags.FlagValues = flags.FLAGS):
    """The value of a script's own flag --name, or of its deprecated former name --old when only
    that was given (with the deprecation line `_given` prints for renamed settings)."""
    if flag_values[old].present:
        if flag_values[name].present:
            raise ValueError(f"--{old} and --{name} are the same setting; give --{name} only")
        print(f"warning: --{old} is deprecated and goes in the next version; use --{name}",
              file=sys.stderr)
        return flag_values[old].value
    return flag_values[name].value


def from_flags(cls, flag_values: flags.FlagValues = flags.FLAGS, **overrides):
    """The dataclass `cls` from the parsed flags; `overrides` replace fields, and fields
    without a flag keep their default."""
    values = {}
    for field, hint in _cli_fields(cls):
        name = None if field.name in overrides else _given(cls, field, flag_values)
        if name is None:
            continue
        value = flag_values[name].value
        if _is_tuple(hint):
            value = tuple(_element_type(hint)(v) for v in value)
        values[field.name] = value
    return cls(**values, **overrides)


def resolve_settings(stored, flag_values: flags.FlagValues = flags.FLAGS):
    """`stored` (e.g. a model dir's InferenceConfig) with the flags given on the command line.

    Only flags present (absl's `present`, also from a --flagfile) replace a stored value; a
    default never does.

    Returns:
      (the resolved dataclass, {field name: "stored" or "--flag"}: where each value came from).
    """
    values, sources = {}, {}
    for field, hint in _cli_fields(type(stored)):
        name = _given(type(stored), field, flag_values)
        if name is not None and flag_values[name].present:
            value = flag_values[name].value
            values[field.name] = (tuple(_element_type(hint)(v) for v in value)
                                  if _is_tuple(hint) else value)
            sources[field.name] = f"--{name}"
    sources = {f.name: sources.get(f.name, "stored") for f in dataclasses.fields(stored)}
    return dataclasses.replace(stored, **values), sources


def describe_settings(settings, sources: dict[str, str], title: str = "inference settings",
                      exclude: tuple[str, ...] = ()) -> str:
    """One line of `resolve_settings`'s result: "title: stop_threshold=0.5 (stored), ..."."""
    items = [f"{f.name}={getattr(settings, f.name)} ({sources.get(f.name, 'stored')})"
             for f in dataclasses.fields(settings) if f.name not in exclude]
    return f"{title}: {', '.join(items)}"
