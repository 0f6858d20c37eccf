"""Progress bars: tqdm's, shown on a terminal only.

On a terminal a bar redraws itself in place; written to a log file or a pipe, each redraw would be
another few hundred bytes (a 6-minute pre-training left megabytes of them), so there the bar is off
and the runs' one-line summaries per epoch (the log) say how far they are.
"""

from __future__ import annotations

from typing import Any

from tqdm import tqdm


def progress_bar(iterable: Any = None, *, show: bool = True, **options: Any) -> tqdm:
    """``tqdm(iterable, **options)`` when ``show`` and stderr is a terminal; a silent one otherwise."""
    return tqdm(iterable, disable=None if show else True, **options)
