"""Exception types shared across the package.

Every error a user can cause is raised as a :class:`VideoperlinError` whose message names the
value or file at fault and says what to do, of one of four kinds: :class:`ConfigError` (a setting),
:class:`DataError` (videos, manifests, split and label files), :class:`CheckpointError` (weight
files) and :class:`NumericsError` (a wrong kernel, non-finite training). The CLI prints any of them
as one line, ``videoperlin: error: ...``, and exits 2, without a traceback; catch
:class:`VideoperlinError` to handle them all.
"""

from __future__ import annotations


class VideoperlinError(ValueError):
    """A user-facing error: the message is complete on its own and fits on one line."""


class ConfigError(VideoperlinError):
    """A configuration value (CLI flag, YAML field, constructor argument) is invalid."""


class NumericsError(VideoperlinError):
    """A computation came out wrong: a kernel that fails its check, or a training run whose weights or
    statistics are no longer finite."""


class DataError(VideoperlinError):
    """Input data is unusable: a missing or undecodable video, a malformed manifest, split or label file."""


class CheckpointError(VideoperlinError):
    """A weight or checkpoint file is unreadable, or does not fit the model it is loaded into."""


#: Characters of a value (or of a parser's message) an error quotes.
QUOTE_LIMIT = 80


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters: a message never embeds an
    unbounded value (a 72 MB list from a YAML alias, a pasted file)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text):,} characters)"
