"""Compatibility: :class:`VPNSpec` (the perlin family's rendering options) moved to
:mod:`videoperlin.vpn.families.perlin`; ``label_mode`` and ``rng``, which every family has, are
:class:`videoperlin.vpn.family.SourceOptions`."""

from videoperlin.vpn.families.perlin import VPNSpec
from videoperlin.vpn.family import RNG, LabelMode

__all__ = ["RNG", "LabelMode", "VPNSpec"]
