"""The clip geometry: frames per clip and frame size, shared by every stage that makes or reads clips.

One place for the 16 x 112 x 112 default (the authors' clips): synthetic clip sources
(:mod:`videoperlin.vpn`), the real-video data config (:class:`videoperlin.data.config.DataConfig`
inherits these fields), the ``generate``/``preview`` flags and the analysis commands all derive it.
"""

from __future__ import annotations

from dataclasses import dataclass

from videoperlin.config_fields import Checked, at_least, option


@dataclass
class ClipGeometry(Checked):
    """Frames per clip and square frame size in pixels."""

    frames: int = option(16, "frames per clip", at_least(1))
    size: int = option(112, "clip height and width in pixels", at_least(1))
