"""Typed, documented, checked dataclass fields: where an option's default, type, allowed values
and meaning are written down once.

    @dataclass
    class OptimConfig(Checked):
        lr: float = option(0.1, "base learning rate", greater_than(0))
        name: Literal["sgd", "adamw"] = option("sgd", "optimiser")

Everything else is derived from such a field: the check that runs in ``__post_init__``
(:class:`Checked`), the config key and its ``--set`` parsing (:func:`parse_text`), command-line
flags with their type, choices and help (:func:`add_field_arguments`), and the text an error
shows. An error is a :class:`FieldError` naming the field, the value and the rule.

Supported annotations: ``bool``, ``int``, ``float`` (finite), ``str``, ``Literal[...]``, ``X | None``,
``list[X]``, ``dict[str, X]``, ``Any`` and nested :class:`Checked` dataclasses (from mappings).

Why not pydantic or jsonargparse: the project's flags are fixed by name (``--no-random-phase``,
``--shard I/N``) and every error must be one line that names the field; the stdlib dataclass plus
this module (the whole type system we need) does that without a new dependency.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import logging
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import Any, Literal

from videoperlin.errors import ConfigError, quoted

log = logging.getLogger(__name__)

#: A rule on a field's (already typed) value: returns what is wrong ("must be >= 1") or None.
Check = Callable[[Any], "str | None"]


class FieldError(ConfigError):
    """A field's value is invalid; ``key`` is its (dotted) name, ``problem`` what is wrong."""

    def __init__(self, key: str, problem: str, doc: str | None = None) -> None:
        self.key, self.problem, self.doc = key, problem, doc
        super().__init__(f"{key} {problem}" + (f" ({doc})" if doc else ""))

    def under(self, prefix: str) -> FieldError:
        """The same error for the field seen from an enclosing section (``prefix`` like ``synthetic.``)."""
        return FieldError(f"{prefix}{self.key}", self.problem, self.doc)


def option(default: Any, doc: str, check: Check | None = None, renamed: Mapping[str, str] | None = None) -> Any:
    """A dataclass field with a one-line ``doc`` and an optional ``check`` (lists are copied per instance);
    ``renamed`` maps values of old versions to today's (read with one deprecation line)."""
    metadata = {"doc": doc, "check": check, "renamed": dict(renamed or {})}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


# ---- checks ----------------------------------------------------------------------------------------


def _skip_none(rule: Callable[[Any], bool], text: str) -> Check:
    """A check from a predicate; None passes, and a list passes when every item does."""

    def check(value: Any) -> str | None:
        if isinstance(value, list):
            bad = [v for v in value if v is not None and not rule(v)]
            return f"has {bad[0]!r}; each item {text}" if bad else None
        return None if value is None or rule(value) else text

    return check


def at_least(bound: float) -> Check:
    """Value (or every item of a list) >= ``bound``."""
    return _skip_none(lambda v: v >= bound, f"must be >= {bound}")


def greater_than(bound: float) -> Check:
    """Value > ``bound``."""
    return _skip_none(lambda v: v > bound, f"must be > {bound}")


def in_range(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Check:
    """Value in the interval from ``low`` to ``high`` (closed unless said open)."""

    def inside(v: float) -> bool:
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    return _skip_none(inside, f"must be in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")


#: The largest seed: every seed the toolkit derives from one (per rank, per step, per clip) stays within what
#: torch's and numpy's generators take.
SEED_MAX = 2**32 - 1


def seed_range() -> Check:
    """A seed: 0 to :data:`SEED_MAX`."""
    return in_range(0, SEED_MAX)


def bounded_int(low: int, high: int | None = None, flag: str = "value") -> Callable[[str], int]:
    """An argparse ``type=`` for an integer flag from ``low`` (to ``high``): a one-line error naming the bounds."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{quoted(text)} is not an integer") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{value} must be {bounds}")
        return value

    parse.__name__ = "INT"
    return parse


def one_of(values: typing.Iterable[str]) -> Check:
    """Value among ``values`` (for open sets held as data elsewhere, e.g. a presets table)."""
    allowed = tuple(values)
    return _skip_none(lambda v: v in allowed, f"must be one of {', '.join(allowed)}")


# ---- coercion --------------------------------------------------------------------------------------


def _union_options(annotation: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return None


def _coerce_scalar(value: Any, annotation: Any, key: str) -> Any:
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise FieldError(key, f"{quoted(value)} must be a finite number")
        return float(value)
    if annotation is str and isinstance(value, str):
        return value
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    hint = " (YAML reads unquoted on/off/yes/no as booleans: quote it)" if isinstance(value, bool) else ""
    raise FieldError(key, f"expects {names.get(annotation, annotation)}, got {quoted(value)}{hint}")


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """``value`` checked against (and converted to) ``annotation``; a :class:`FieldError` names ``key``."""
    options = _union_options(annotation)
    if options is not None:
        if value is None and type(None) in options:
            return None
        errors = []
        for choice in (o for o in options if o is not type(None)):
            try:
                return coerce(value, choice, key)
            except FieldError as exc:
                errors.append(exc)
        raise errors[0]
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed or isinstance(value, bool) != any(isinstance(a, bool) for a in allowed):
            raise FieldError(key, f"{quoted(value)} must be one of {', '.join(map(str, allowed))}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise FieldError(key, f"expects a list, got {quoted(value)}")
        (item,) = typing.get_args(annotation)
        return [coerce(v, item, key) for v in value]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise FieldError(key, f"expects a mapping, got {quoted(value)}")
        _, item = typing.get_args(annotation)
        return {str(k): coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return build(annotation, value, f"{key}.") if not isinstance(value, annotation) else value
    return _coerce_scalar(value, annotation, key)


# ---- dataclasses made of such fields -------------------------------------------------------------


@cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass's fields."""
    return typing.get_type_hints(cls)


def field_doc(cls: type, name: str) -> str:
    """The one-line doc of field ``name`` of ``cls``."""
    return next(f.metadata.get("doc", "") for f in dataclasses.fields(cls) if f.name == name)


def check_field(cls: type, name: str, value: Any, key: str | None = None) -> Any:
    """``value`` coerced to field ``name``'s type and passed through its check (errors name ``key``)."""
    key = key or name
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    doc = spec.metadata.get("doc")
    value = current_value(spec, value, key)
    try:
        value = coerce(value, field_types(cls)[name], key)
    except FieldError as exc:
        raise FieldError(exc.key, exc.problem, exc.doc or doc) from None
    check = spec.metadata.get("check")
    problem = check(value) if check else None
    if problem:
        raise FieldError(key, f"{quoted(value)} {problem}", doc)
    return value


_DEPRECATIONS_SHOWN: set[str] = set()
_READING_STORED_RECORDS = 0


@contextlib.contextmanager
def stored_records() -> Iterator[None]:
    """Within: old names are read as today's without a deprecation line -- for records the toolkit wrote
    itself (a run's ``config.yaml``, a checkpoint's config), which no user is asked to rename."""
    global _READING_STORED_RECORDS
    _READING_STORED_RECORDS += 1
    try:
        yield
    finally:
        _READING_STORED_RECORDS -= 1


def deprecated(old: str, new: str) -> None:
    """Log, once per process, that ``old`` (a section, key or value of an older version) is read as ``new``."""
    if not _READING_STORED_RECORDS and old not in _DEPRECATIONS_SHOWN:
        _DEPRECATIONS_SHOWN.add(old)
        log.warning("deprecated: %s is now %s (read as such; rename it in your files and commands)", old, new)


def current_name(renamed: Mapping[str, str], name: str, what: str) -> str:
    """``name`` as of today: an old one (a key of ``renamed``) is read as its new name with one deprecation line
    (``what`` says what it names: "config section")."""
    if name in renamed:
        deprecated(f"{what} {name!r}", repr(renamed[name]))
        return renamed[name]
    return name


def current_value(spec: dataclasses.Field, value: Any, key: str) -> Any:
    """``value`` of field ``spec``, an old version's value read as today's (:func:`option`'s ``renamed``)."""
    return current_name(spec.metadata.get("renamed") or {}, value, key) if isinstance(value, str) else value


class Checked:
    """Mixin for dataclasses of :func:`option` fields: every field is coerced and checked on
    construction; override :meth:`check_relations` for rules between fields."""

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):  # type: ignore[arg-type]
            object.__setattr__(self, spec.name, check_field(type(self), spec.name, getattr(self, spec.name)))
        self.check_relations()

    def check_relations(self) -> None:
        """Cross-field rules; raise a :class:`FieldError` naming the field at fault."""


def build(cls: type, mapping: Any, prefix: str = "") -> Any:
    """An instance of dataclass ``cls`` from a mapping; unknown keys and bad values name ``prefix + key``."""
    if not isinstance(mapping, Mapping):
        raise FieldError(prefix.rstrip(".") or cls.__name__, f"expects a mapping of fields, got {quoted(mapping)}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in mapping if k not in names]
    if unknown:
        raise ConfigError(f"unknown field {prefix}{unknown[0]}; valid fields: {', '.join(prefix + n for n in names)}")
    try:
        return cls(**mapping)
    except FieldError as exc:
        raise exc.under(prefix) from None


def to_dict(obj: Any) -> Any:
    """A dataclass (nested) as plain dicts and lists, for YAML/JSON."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else obj


# ---- text (command line, --set) ---------------------------------------------------------------

_NONE_WORDS = ("null", "none", "~", "")
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def parse_text(text: str, annotation: Any, key: str) -> Any:
    """Command-line text to a value of ``annotation`` (``"1,2,4"`` or ``[1, 2, 4]`` for lists; YAML for mappings)."""
    text = text.strip()
    options = _union_options(annotation)
    if options is not None:
        if type(None) in options and text.lower() in _NONE_WORDS:
            return None
        return parse_text(text, next(o for o in options if o is not type(None)), key)
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if text.lower() not in _BOOL_WORDS:
            raise FieldError(key, f"expects true or false, got {quoted(text)}")
        return _BOOL_WORDS[text.lower()]
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise FieldError(key, f"value {quoted(text)} is not an integer") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise FieldError(key, f"value {quoted(text)} is not a number") from None
    if origin is list and not text.startswith("["):
        (item,) = typing.get_args(annotation)
        return [parse_text(part, item, key) for part in text.split(",") if part.strip()]
    if origin is Literal:
        return coerce(text, annotation, key)
    if annotation is str:
        return text
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise FieldError(key, f"value {quoted(text)} is not valid YAML") from None


def type_name(annotation: Any) -> str:
    """A short metavar for ``annotation``: INT, FLOAT, {a,b}, INT,INT..."""
    options = _union_options(annotation)
    if options is not None:
        return type_name(next(o for o in options if o is not type(None)))
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "{" + ",".join(map(str, typing.get_args(annotation))) + "}"
    if origin is list:
        return f"{type_name(typing.get_args(annotation)[0])},..."
    return {int: "INT", float: "FLOAT", str: "TEXT", bool: "BOOL"}.get(annotation, "YAML")


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) of every field of ``cls``, nested dataclasses flattened."""
    rows = []
    for spec in dataclasses.fields(cls):
        annotation = field_types(cls)[spec.name]
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            rows += describe(annotation, f"{prefix}{spec.name}.")
            continue
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()  # type: ignore[operator]
        rows.append((f"{prefix}{spec.name}", type_name(annotation), repr(default), spec.metadata.get("doc", "")))
    return rows


def add_field_arguments(
    parser: Any, cls: type, skip: typing.Container[str] = (), defaults: Mapping[str, Any] | None = None
) -> None:
    """One flag per field of ``cls``: ``--name-with-dashes VALUE``; a bool that defaults to True is
    ``--no-name``, one that defaults to False a bare ``--name``. Help text = the field's doc and default."""
    defaults = dict(defaults or {})
    for spec in dataclasses.fields(cls):
        if spec.name in skip:
            continue
        annotation, flag = field_types(cls)[spec.name], spec.name.replace("_", "-")
        default = defaults.get(spec.name, spec.default if spec.default is not dataclasses.MISSING else None)
        doc = spec.metadata.get("doc", "")
        if annotation is bool:
            parser.add_argument(
                f"--no-{flag}" if default else f"--{flag}",
                dest=spec.name,
                default=default,
                action="store_false" if default else "store_true",
                help=doc,
            )
            continue
        parser.add_argument(
            f"--{flag}",
            dest=spec.name,
            default=default,
            metavar=type_name(annotation),
            type=text_parser(annotation, f"--{flag}"),
            help=f"{doc} (default: {default})",
        )


def text_parser(annotation: Any, key: str) -> Callable[[str], Any]:
    """An argparse ``type=`` for ``annotation`` whose errors are one-line :class:`FieldError` s."""

    def parse(text: str) -> Any:
        try:
            return parse_text(text, annotation, key)
        except FieldError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{key} ")) from None

    parse.__name__ = type_name(annotation)
    return parse


def values_of(cls: type, source: Any) -> dict[str, Any]:
    """The values of ``cls``'s fields read off ``source`` (an argparse namespace or any object)."""
    return {f.name: getattr(source, f.name) for f in dataclasses.fields(cls) if hasattr(source, f.name)}


# ---- sections built from a registry -----------------------------------------------------------


def union_fields(classes: typing.Iterable[type]) -> list[tuple[str, Any, Any]]:
    """(name, type, field) of the fields of ``classes``, in order, each name once: the fields of a
    config section made from a registry (model options, clip-source options, objective options)."""
    rows: dict[str, tuple[str, Any, Any]] = {}
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name not in rows:
                copy_ = dataclasses.field(default=f.default, default_factory=f.default_factory, metadata=f.metadata)
                rows[f.name] = (f.name, hints[f.name], copy_)
    return list(rows.values())


def check_foreign_fields(section: Any, mine: typing.Container[str], owners: Callable[[str], str], chosen: str) -> None:
    """Refuse a field of ``section`` that is not one of ``mine`` (the chosen entry's) and differs from its
    default: ``owners(name)`` says whose option it is, ``chosen`` names the entry (the error's words)."""
    for f in dataclasses.fields(section):
        if f.name in mine:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
        if getattr(section, f.name) != default:
            raise FieldError(f.name, f"is an option of {owners(f.name)}, not {chosen}; leave {f.name} out")


def shared_field_conflict(new: type, old: type) -> str | None:
    """The first field ``new`` and ``old`` both have with another type, default or doc (registries refuse it)."""
    mine = {f.name: f for f in dataclasses.fields(new)}
    for f in dataclasses.fields(old):
        twin = mine.get(f.name)
        if twin is not None and (twin.type, twin.default, twin.metadata.get("doc")) != (
            f.type,
            f.default,
            f.metadata.get("doc"),
        ):
            return f.name
    return None
