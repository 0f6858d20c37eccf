"""SyntheticDataset: synthetic clips of any formula family, rendered on the fly, deterministic per (seed, index).

Sample ``index`` has class ``index % len(space)`` (balanced to within one clip per class) and every
random number about it is a pure function of (seed, index, draw) (:mod:`videoperlin.vpn.draws`): from
its own seeded CPU generator (``rng="generator"``, the default) or a counter-based hash computed for
the whole batch on the render device (``rng="counter"``). Nothing depends on global RNG state, on
the worker, on the order of access or on which other samples share a batch, so ``ds[i]`` is the same
clip in any process, any DataLoader worker count and any device (up to float rounding on GPUs).

What a clip looks like is its family's business (:mod:`videoperlin.vpn.family`; ``perlin``, the
paper's VPN, by default): ``SyntheticDataset(space, ..., family="perlin", options=PerlinOptions(...))`` or
the family's options as keywords (``octaves=2, contrast_jitter=0.3``). (Before 0.4 the class was
``VPNDataset`` and ``options=`` was ``spec=``; both are still read, with one deprecation line.)

``label_mode="shuffled"`` is a control for transfer studies: the clips are exactly those of the
class-labelled set, but each clip's *target* is a class drawn at random from (seed, index), so the
target carries no information about the clip.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from videoperlin.config_fields import deprecated, to_dict
from videoperlin.errors import ConfigError
from videoperlin.geometry import ClipGeometry
from videoperlin.utils.memory import available_memory, gib
from videoperlin.vpn.draws import BACKENDS, splitmix64
from videoperlin.vpn.family import Family, SourceOptions, get_family

_SHUFFLE_SALT = 0x5EED5A17


def _as_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        return size, size
    if isinstance(size, Sequence) and len(size) == 2 and all(isinstance(s, int) for s in size):
        return int(size[0]), int(size[1])
    raise ConfigError(f"size {size!r} must be an int or a (height, width) pair of ints")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _make_options(family: type[Family], options: SourceOptions | None, values: dict[str, Any]) -> SourceOptions:
    """The given options object, or one built from keyword option values (never both)."""
    if "spec" in values:  # before 0.4
        deprecated("SyntheticDataset(spec=...)", "options=...")
        _require(options is None, "give options=... (spec= is its old name), not both")
        options = values.pop("spec")
    names = list(family.Options.__dataclass_fields__)
    unknown = sorted(set(values) - set(names))
    _require(not unknown, f"unknown {family.name} option(s) {', '.join(unknown)}; options are {', '.join(names)}")
    _require(options is None or not values, "give options=... or the options as keywords, not both")
    _require(
        options is None or isinstance(options, family.Options),
        f"options must be a {family.Options.__name__} for family {family.name}, got {type(options).__name__}",
    )
    return options if options is not None else family.Options(**values)


class SyntheticDataset(Dataset):
    """Map-style dataset of synthetic clips: ``ds[i] -> (clip (3, T, H, W) float32 in [0, 1], label)``.

    ``SyntheticDataset(space, num_videos, frames, size, seed, family="perlin", options=...)``, or the family's
    options as keyword arguments. ``family`` is the family (its instance, the renderer of these clips; the
    argument names it), ``options`` its rendering options. Grayscale families' three channels are one clip repeated as a
    zero-copy ``expand`` view. :meth:`batch` renders many clips in one call on any device.
    """

    def __init__(
        self,
        space: Any,
        num_videos: int = 1000,
        frames: int = ClipGeometry.frames,
        size: int | Sequence[int] = ClipGeometry.size,
        seed: int = 0,
        *,
        family: str = "perlin",
        options: SourceOptions | None = None,
        **option_values: Any,
    ) -> None:
        _require(
            hasattr(space, "names") and hasattr(space, "to_dict"),
            f"space must be a label space, got {type(space).__name__}",
        )
        _require(
            isinstance(num_videos, int) and num_videos >= 1, f"num_videos {num_videos!r} must be a positive integer"
        )
        _require(isinstance(frames, int) and frames >= 1, f"frames {frames!r} must be a positive integer")
        _require(isinstance(seed, int) and seed >= 0, f"seed {seed!r} must be a non-negative integer")
        family_class = get_family(family)
        self.options = _make_options(family_class, options, option_values)
        self.space, self.num_videos, self.frames, self.seed = space, num_videos, frames, seed
        self.height, self.width = _as_size(size)
        _require(self.height >= 1 and self.width >= 1, f"size {size!r} must be positive")
        self.family = family_class(space, self.options, frames, self.height, self.width)
        self.family.check()
        self._cleared: set[tuple[int, torch.device]] = set()  # (clips, device) renders that fit

    @property
    def num_classes(self) -> int:
        return len(self.space)

    def __len__(self) -> int:
        return self.num_videos

    def label(self, index: int) -> int:
        """Class of sample ``index`` (round-robin over classes, so the set is balanced)."""
        return index % len(self.space)

    def target(self, index: int) -> int:
        """Training target of sample ``index``: its class, or a random class with ``label_mode="shuffled"``."""
        if self.options.label_mode == "shuffled":
            return splitmix64(self.seed ^ _SHUFFLE_SALT, index) % len(self.space)
        return self.label(index)

    def _check_index(self, index: int) -> int:
        if isinstance(index, Tensor):
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"SyntheticDataset index must be an int, got {type(index).__name__}")
        if index < 0:
            index += self.num_videos
        if not 0 <= index < self.num_videos:
            raise IndexError(f"SyntheticDataset index {index} out of range for {self.num_videos} videos")
        return index

    def draws(self, indices: Tensor):
        """The random numbers of clips ``indices`` (int64 on the render device), by this set's ``rng``."""
        return BACKENDS[self.options.rng](self.seed, indices, self.family.layout())

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        clips, labels = self.batch([index])
        return clips[0], int(labels[0])

    def batch(self, indices: Iterable[int], device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Render many clips at once: ``(clips (B, 3, T, H, W), labels (B,))`` on ``device``.

        Agrees with ``ds[i]`` to float tolerance; grayscale clips' 3 channels are an ``expand`` view.
        """
        indices = [self._check_index(i) for i in indices]
        if not indices:
            raise ValueError("SyntheticDataset.batch needs at least one index")
        device = torch.device(device) if device is not None else torch.device("cpu")
        self.check_render_memory(len(indices), device)
        index = torch.tensor(indices, dtype=torch.long, device=device)
        clips = self.family.render(self.draws(index), index % len(self.space))
        labels = torch.tensor([self.target(i) for i in indices], dtype=torch.long, device=device)
        return clips.expand(-1, 3, -1, -1, -1), labels

    def check_render_memory(self, clips: int, device: torch.device | str = "cpu") -> None:
        """Refuse (:class:`ConfigError`) a render whose peak exceeds the memory free now, before allocating it
        (once per batch size and device: a training run renders the same size every step)."""
        device = torch.device(device)
        if (clips, device) in self._cleared:
            return
        need = clips * self.frames * self.height * self.width * self.family.render_bytes_per_pixel
        free = available_memory(device)
        if need > free:
            raise ConfigError(
                f"rendering {clips} {self.family.name} clip(s) of {self.frames} frames at {self.height}x{self.width} "
                f"needs about {gib(need)} but {gib(free)} is available; lower the frames "
                f"(--frames, data.frames), the size (--size, data.size) or the batch (--batch-size, train.batch_size)"
            )
        self._cleared.add((clips, device))

    def sample_params(self, index: int):
        """Everything random about sample ``index`` (families that describe a clip this way, e.g. perlin)."""
        index = self._check_index(index)
        describe = getattr(self.family, "sample_params", None)
        if describe is None:
            raise ConfigError(f"the {self.family.name} family does not describe its clips by sample parameters")
        return describe(self.draws(torch.tensor([index])), self.label(index))

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this dataset exactly (JSON-serialisable; ``dataset.json``'s ``synthetic``)."""
        return {
            "family": self.family.name,
            "label_space": self.space.to_dict(),
            "num_videos": self.num_videos,
            "frames": self.frames,
            "size": [self.height, self.width],
            "seed": self.seed,
            **to_dict(self.options),
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> SyntheticDataset:
        """Inverse of :meth:`to_dict`; also reads records written before an option (or families) existed:
        the option's default applies, and the family is ``perlin``."""
        record = dict(record)
        kind = get_family(record.pop("family", "perlin"))
        try:
            space = kind.space_from_dict(record.pop("label_space"))
            geometry = {key: record.pop(key) for key in ("num_videos", "frames", "size", "seed")}
        except KeyError as exc:
            raise ConfigError(
                f"dataset record lacks {exc.args[0]!r}; it was not written by SyntheticDataset.to_dict"
            ) from None
        size = geometry.pop("size")
        return cls(space, size=tuple(size) if isinstance(size, list) else size, family=kind.name, **geometry, **record)


__all__ = ["SyntheticDataset", "splitmix64"]
