"""Text files a user hands us (manifests, split files, label files, recipes, protocols), read one way.

Encodings: UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8" writes one), and UTF-16 with
a byte-order mark (Excel's "Unicode text"). Anything else -- another encoding, or a binary file -- is
refused in one line naming the file and the encoding to use. YAML is parsed by PyYAML's safe loader
with a bound on what its aliases expand to, so a small file cannot expand into gigabytes ("billion
laughs"); its errors read ``file:line: what``, quoting at most :data:`QUOTE_LIMIT` characters of the
parser's message.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml

from videoperlin.errors import QUOTE_LIMIT, ConfigError, DataError

#: Values a YAML document may hold once its aliases are expanded (a recipe holds a few hundred).
MAX_YAML_VALUES = 100_000


def read_text(path: str | Path, what: str, error: type[Exception] = DataError) -> str:
    """The text of ``path`` (a ``what``: "manifest", "--config"...), decoded as described above."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body = "utf-16", data
    else:
        encoding, body = "utf-8", data.removeprefix(codecs.BOM_UTF8)
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} {path} is not {encoding.upper()} text (undecodable byte at offset {exc.start}); "
            f"save it as UTF-8 (Excel: 'CSV UTF-8')"
        ) from None
    if "\x00" in text:
        raise error(f"{what} {path} holds NUL characters: it is a binary file, not text; give a UTF-8 text file")
    return text


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing a document whose aliases expand it past :data:`MAX_YAML_VALUES` values.

    Aliases share one node, so a 430-byte document of nested aliases is small to parse and expands
    into 9**7 values only when something walks it (a merge, a copy, an error message). The expanded
    size is counted on the node graph before construction, each distinct node once."""

    def construct_document(self, node: yaml.Node) -> Any:
        if _expanded_size(node, {}) > MAX_YAML_VALUES:
            raise yaml.MarkedYAMLError(
                problem=f"its aliases (*name) expand it past {MAX_YAML_VALUES:,} values: refused",
                problem_mark=node.start_mark,
            )
        return super().construct_document(node)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values in ``node`` with every alias expanded (a node reached again through a cycle counts once)."""
    key = id(node)
    if key not in memo:
        memo[key] = 1
        if isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(_expanded_size(child, memo) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[key] = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    return memo[key]


def parse_yaml(text: str, where: str, error: type[Exception] = ConfigError) -> Any:
    """``text`` parsed as YAML (safe, aliases bounded); errors read ``where:line: what``."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)
    except yaml.MarkedYAMLError as exc:
        line = f":{exc.problem_mark.line + 1}" if exc.problem_mark is not None else ""
        raise error(f"{where}{line}: not valid YAML: {str(exc.problem or exc.context)[:QUOTE_LIMIT]}") from None
    except yaml.YAMLError as exc:
        raise error(f"{where}: not valid YAML: {str(exc).splitlines()[0][:QUOTE_LIMIT]}") from None


def read_yaml_file(path: str | Path, what: str, error: type[Exception] = ConfigError) -> Any:
    """A YAML file a user handed us: :func:`read_text`, then :func:`parse_yaml`."""
    return parse_yaml(read_text(path, what, error), str(path), error)


def read_csv_rows(path: str | Path, what: str, error: type[Exception] = DataError) -> list[dict[str, str]]:
    """The rows of a CSV file with a header line, as ``{column: value}`` (:func:`read_text`, then csv)."""
    return list(csv.DictReader(io.StringIO(read_text(path, what, error), newline="")))


def read_mapping_file(path: str | Path, what: str, holds: str) -> dict[str, Any]:
    """A JSON or YAML (by suffix) mapping from ``path``, a ``what``; a file not holding a mapping is
    refused saying it must hold ``holds``. Errors name the file."""
    path = Path(path)
    text = read_text(path, what, ConfigError)
    if path.suffix in (".yaml", ".yml"):
        mapping = parse_yaml(text, str(path))
    else:
        try:
            mapping = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{what} {path} is not valid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(mapping, dict):
        raise ConfigError(f"{what} {path} must hold {holds}")
    return mapping
