"""Video encoding with PyAV (H.264 in MP4 by default; the container and codec of a file name for
:mod:`videoperlin.data.prepare`)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from videoperlin.errors import ConfigError

#: H.264 constant-rate-factor used for exported VPN videos. CRF 10 with the ``medium`` preset is
#: visually lossless: the decoded-minus-original error of a VPN clip is about 1 gray level
#: (tests/test_export.py checks the bound). Lower is better quality and bigger files.
DEFAULT_CRF = 10
#: x264's CRF range for 8-bit video (0 lossless, 51 worst): a value outside it is clamped or rejected below us.
CRF_RANGE = (0, 51)


def check_crf(crf: int) -> None:
    """Refuse (:class:`ConfigError`) a ``--crf`` outside :data:`CRF_RANGE`."""
    if not CRF_RANGE[0] <= crf <= CRF_RANGE[1]:
        raise ConfigError(f"--crf {crf} is outside x264's range {CRF_RANGE[0]}..{CRF_RANGE[1]} (0 lossless, 51 worst)")


DEFAULT_FPS = 25

#: libx264 settings that make the same frames the same file. With the defaults, 5-7 of 24 VPN clips
#: encoded 8 times each came out in more than one version (decoded frames up to 6 gray levels apart);
#: the macroblock-tree rate control is the cause (with ``no-mbtree`` 0 of 24 at 64 and 112 px, with
#: aq or psy off still 1 of 12). Costs ~55% larger files at the same CRF. One thread per file: exports
#: encode several files at once instead (vpn.export).
REPRODUCIBLE_X264 = {"threads": "1", "x264-params": "no-mbtree=1"}


def encode_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int | Fraction = DEFAULT_FPS,
    crf: int = DEFAULT_CRF,
    container_format: str = "mp4",
    codec: str = "libx264",
    options: dict[str, str] | None = None,
) -> None:
    """Encode uint8 frames, (T, H, W) grayscale or (T, H, W, 3) RGB, as yuv420p (H.264 by default).

    ``container_format`` is given explicitly so ``path`` may have any name (e.g. a temp file).
    ``options`` replace the encoder settings beside ``crf`` (default: ``preset medium`` and
    :data:`REPRODUCIBLE_X264`). Odd sizes are not supported by yuv420p; they raise a ValueError naming the size.
    """
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4):
        raise ValueError(f"frames must be uint8 (T, H, W) or (T, H, W, 3), got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {height}x{width}")
    pixel_format = "gray" if frames.ndim == 3 else "rgb24"
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        settings = {"preset": "medium", **REPRODUCIBLE_X264} if options is None else options
        stream.options = {"crf": str(crf), **settings}
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format=pixel_format)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


#: Container and codec a re-encoded file gets from its suffix, so a prepared copy keeps every file name
#: (split files and manifests name the files). WebM holds no H.264: VP9 there.
CONTAINERS = {
    ".mp4": ("mp4", "libx264"),
    ".m4v": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".avi": ("avi", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
}
