"""absl flags derived from the configuration dataclasses' fields (decompnet_tf.config).

An entry script defines its flags with `define_flags(ModelConfig, ...)` and turns them into the
frozen dataclasses once with `from_flags(ModelConfig)`: names, defaults, help texts, choices and
bounds are written once, in the dataclass. Bounds are absl validators, so a bad value stops
the script when the flags are parsed, with the flag's name in the message:

    FATAL Flags parsing error: flag --max_images=-5: ... must be >= 0
"""

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
    """Defines one absl flag per field (each `config.setting`) of each dataclass, skipping the
    names in `exclude` (`from_flags` gives those fields their default) and names already defined
    by an earlier class (the `seed` that DataConfig and TrainConfig share). A renamed flag
    (`config.FLAG_ALIASES`) also gets its former name, a deprecated alias for one version."""
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
    """The name of the flag that gives `field` its value: the field's own, or its deprecated
    former name when only that one was given (a deprecation line on stderr names the new
    flag); None when the script defines no flag for it."""
    name, old = _flag_name(field), _old_names(cls).get(field.name)
    if old in flag_values and flag_values[old].present:
        if name in flag_values and flag_values[name].present:
            raise ValueError(f"--{old} and --{name} are the same setting; give --{name} only")
        print(f"warning: --{old} is deprecated and goes in the next version; use --{name}",
              file=sys.stderr)
        return old
    return name if name in flag_values else None


def from_flags(cls, flag_values: flags.FlagValues = flags.FLAGS, **overrides):
    """The dataclass `cls` built from the parsed flags (list flags become tuples of the field's
    element type); `overrides` replace fields, and fields without a flag keep their default."""
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
    """`stored` (a dataclass read from a model dir, e.g. its InferenceConfig) with each field
    whose flag was given on the command line (or in a --flagfile) replacing the stored value.
    A flag not given never does, whatever its default, nor does a field the script defines no
    flag for (absl's `present`: parsed at least once).

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
    """One line: "inference settings: stop_threshold=0.5 (stored), box_source=mask
    (--box_source), ..." (`resolve_settings`'s result), without the fields in `exclude`."""
    items = [f"{f.name}={getattr(settings, f.name)} ({sources.get(f.name, 'stored')})"
             for f in dataclasses.fields(settings) if f.name not in exclude]
    return f"{title}: {', '.join(items)}"
