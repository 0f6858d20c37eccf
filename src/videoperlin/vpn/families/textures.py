"""Family ``textures``: textured objects that move, accelerate, turn and grow over a textured background.

After the strongest synthetic step of Yu, Chen and Gandelsman 2024 ("Learning Video Representations
without Natural Videos": accelerating, transforming *textured* shapes, 89.4 UCF-101 top-1 with
VideoMAE against 85.2 for untextured moving shapes), with the textures of Baradad, Wulff, Wang,
Isola and Torralba 2021 ("Learning to See by Looking at Noise"), written from their descriptions:

* **spectrum**: noise whose amplitude spectrum falls as 1/f^alpha (alpha ~ U(1, 2.5), the range of
  natural images around 2) with random phases and an anisotropy (one axis's frequencies stretched by
  up to 2x), standardised and mapped to a gray level and contrast;
* **dead leaves**: ``LEAVES`` opaque discs of random gray levels, radii drawn from the scale-invariant
  density r^-3 between 3% and 40% of the canvas, later discs hiding earlier ones (occlusion makes the
  sharp edges and flat regions of natural images).

A clip: a still background texture of a random kind at lower contrast, then ``textures_objects``
objects (the labelled one in front), each a shape of :mod:`~videoperlin.vpn.families.shapes`'s four
kinds filled with a texture that is attached to it (it moves, turns and scales with the object).
An object moves with a constant direction, its speed changing from (1 - a) to (1 + a) of its mean
over the clip (a ~ U(-``textures_acceleration``, +)), turns by up to ``textures_rotation`` degrees and
scales by a factor in [1/(1 + s), 1 + s] (s = ``textures_scaling``); the others move in random
directions at up to 0.6 frame widths.

The class is the labelled object's texture kind (``textures_kind``) and motion (``textures_direction``
in degrees, 0 right, 90 up; ``textures_speed`` in frame widths crossed over the clip, 0 = still; one
still class per kind): its path's displacement from the first to the last frame is exactly the
class's. ``colour > 0`` tints each texture with a hue of its own.

Draws (generator order; counter slots): ``objects`` (:data:`OBJECT_DRAWS` uniforms per object),
``background`` (:data:`BACKGROUND_DRAWS`), ``textures`` (per texture: the spectrum's phases, then 3 numbers
per leaf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from videoperlin.config_fields import in_range, option
from videoperlin.vpn.draws import DrawLayout
from videoperlin.vpn.families.shapes import DIRECTIONS, SHAPES, signed_distance
from videoperlin.vpn.family import (
    ColourOption,
    Family,
    LabelSource,
    SourceOptions,
    motion_arrow,
    motion_grid,
    register,
)
from videoperlin.vpn.labels import LabelSpace
from videoperlin.vpn.scene import ramp, tint, trajectory, unit_direction

KINDS = ("spectrum", "dead_leaves")
MAX_OBJECTS = 4
#: Uniforms per object: 0 size, 1 angle, 2-3 path, 4 acceleration, 5 turn, 6 scaling, 7 shape, 8 texture kind,
#: 9 direction, 10 speed (8-10: the other objects'), 11 hue, 12 saturation, 13-16 texture (alpha, anisotropy,
#: level, contrast). The background: 0 kind, 1 hue, 2 saturation, 3-5 texture (alpha, anisotropy, level).
OBJECT_DRAWS, BACKGROUND_DRAWS = 17, 6
#: The background texture's contrast against the objects' 0.4-1.
BACKGROUND_CONTRAST = 0.3
#: Dead leaves per texture and their radius range, as shares of the canvas.
LEAVES, LEAF_RADII = 48, (0.03, 0.4)
#: Spectral exponent range and the largest anisotropy (ratio of the two axes' frequency scales).
ALPHA, ANISOTROPY = (1.0, 2.5), 2.0
SLOTS = {"objects": 0, "background": 64, "textures": 128}


@dataclass
class TexturesOptions(ColourOption, SourceOptions):
    textures_objects: int = option(
        2, f"objects in the clip, the labelled one in front (1..{MAX_OBJECTS})", in_range(1, MAX_OBJECTS)
    )
    textures_size: float = option(
        0.35, "mean object diameter as a share of the frame (each object: x U(0.7, 1.3))", in_range(0.05, 0.6)
    )
    textures_acceleration: float = option(
        0.5,
        "largest acceleration: an object's speed goes from (1 - a) to (1 + a) of its mean, |a| up to this",
        in_range(0, 1),
    )
    textures_rotation: float = option(
        90.0, "largest turn of an object over the clip, degrees either way", in_range(0, 360)
    )
    textures_scaling: float = option(
        0.3, "largest growth or shrinking of an object over the clip (x (1 + s) or / (1 + s))", in_range(0, 1)
    )


@dataclass
class TexturesLabels(LabelSource):
    textures_kind: list[str] | None = option(None, f"texture kinds of the labelled object, from {', '.join(KINDS)}")
    textures_direction: list[int] | None = option(None, "labelled object's directions in degrees (0 right, 90 up)")
    textures_speed: list[float] | None = option(
        None, "labelled object's speeds in frame widths crossed over the clip (0 still)"
    )


def spectrum_textures(phases: Tensor, params: Tensor, size: int) -> Tensor:
    """(N, size, size) standardised 1/f^alpha fields from uniform ``phases`` (N, size * (size // 2 + 1)) and
    ``params`` (N, >= 2): alpha from the first, anisotropy (one axis stretched by up to x2) from the second."""
    fy = torch.fft.fftfreq(size, device=phases.device, dtype=torch.float64)[:, None] * size
    fx = torch.fft.rfftfreq(size, device=phases.device, dtype=torch.float64)[None, :] * size
    alpha = ALPHA[0] + (ALPHA[1] - ALPHA[0]) * params[:, 0]
    stretch = ANISOTROPY ** (2 * params[:, 1] - 1)
    radius = torch.sqrt((fx * stretch.view(-1, 1, 1)) ** 2 + (fy / stretch.view(-1, 1, 1)) ** 2)
    amplitude = radius.clamp_min(1.0) ** -alpha.view(-1, 1, 1)
    amplitude[:, 0, 0] = 0.0  # no mean: the level is set after
    spectrum = amplitude * torch.exp(2j * math.pi * phases.view(-1, size, size // 2 + 1))
    field = torch.fft.irfft2(spectrum, s=(size, size))
    return (
        (field - field.mean(dim=(1, 2), keepdim=True)) / field.std(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    ).float()


def dead_leaves(leaves: Tensor, size: int) -> Tensor:
    """(N, size, size) dead-leaves images in [0, 1] from uniforms ``leaves`` (N, LEAVES, 3): centre x, y
    and radius (scale-invariant, density r^-3) per disc; the disc's gray level reuses its centre draws
    (a hash of both), and a later disc hides what is under it."""
    coords = torch.arange(size, dtype=torch.float32, device=leaves.device)
    low, high = LEAF_RADII[0] ** -2, LEAF_RADII[1] ** -2
    radius = (low - leaves[..., 2] * (low - high)) ** -0.5 * size
    gray = torch.frac(leaves[..., 0] * 7919.0 + leaves[..., 1] * 104729.0).float()
    image = torch.full((len(leaves), size, size), 0.5, device=leaves.device)
    cx, cy = (leaves[..., 0] * size).float(), (leaves[..., 1] * size).float()
    for k in range(leaves.shape[1]):
        inside = (coords[None, None, :] - cx[:, k, None, None]) ** 2 + (
            coords[None, :, None] - cy[:, k, None, None]
        ) ** 2
        image = torch.where(inside <= radius[:, k, None, None].float() ** 2, gray[:, k, None, None], image)
    return image


@register
class TexturesFamily(Family):
    """Textured, accelerating, transforming objects over a textured background (module docstring)."""

    name = "textures"
    render_bytes_per_pixel = 46  # at the defaults, measured by benchmarks/render_memory.py
    Options = TexturesOptions
    Labels = TexturesLabels
    presets: ClassVar[dict[str, dict[str, list]]] = {
        "default": {"textures_kind": list(KINDS), "textures_direction": DIRECTIONS, "textures_speed": [0, 0.3, 0.6]},
    }
    default_preset = "default"
    description = (
        "textured objects moving, accelerating, turning and scaling over a texture; class = texture x direction x speed"
    )

    @classmethod
    def space_from_dict(cls, axes: dict) -> LabelSpace:
        return motion_grid(super().space_from_dict(axes).axes, "textures", {"textures_kind": list(KINDS)})

    @property
    def canvas(self) -> int:
        """Texture canvas side: the frame's larger side."""
        return max(self.height, self.width)

    def texture_draws(self) -> int:
        """Uniforms per texture: the spectrum's phases, then the leaves."""
        return self.canvas * (self.canvas // 2 + 1) + 3 * LEAVES

    def arrow(self, label: int) -> tuple[float, float]:
        return motion_arrow(self.space.params(label), "textures", self.width)

    def layout(self) -> DrawLayout:
        return DrawLayout(("objects", "background", "textures"), SLOTS)

    def textures(self, uniforms: Tensor, kinds: Tensor, params: Tensor) -> Tensor:
        """(N, 1, S, S) textures in [0, 1] of ``kinds`` (N,: index into KINDS) from their uniforms (N, draws)
        and per-texture numbers ``params`` (N, 4): alpha, anisotropy, gray level (uniforms) and contrast."""
        size, phases = self.canvas, self.canvas * (self.canvas // 2 + 1)
        image = torch.empty((len(kinds), size, size), device=uniforms.device)
        spectral = kinds == KINDS.index("spectrum")
        if spectral.any():
            field = spectrum_textures(uniforms[spectral, :phases], params[spectral, :2], size)
            image[spectral] = (0.5 + 0.18 * field).clamp(0.0, 1.0)
        if (~spectral).any():
            image[~spectral] = dead_leaves(uniforms[~spectral, phases:].view(-1, LEAVES, 3), size)
        level, contrast = (0.2 + 0.6 * params[:, 2]).view(-1, 1, 1).float(), params[:, 3].view(-1, 1, 1).float()
        return (level + contrast * (image - 0.5)).clamp(0.0, 1.0)[:, None]

    def poses(self, u: Tensor, direction: Tensor, speed: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Radius (B,), centre (B, T, 2) in pixels from the frame centre (+y up), angle (B, T) in radians and
        scale (B, T) of objects from their uniforms u (B, >= 8); the path keeps the object's centre in frame."""
        o, size = self.options, min(self.height, self.width)
        radius = 0.5 * o.textures_size * size * (0.7 + 0.6 * u[:, 0])
        velocity = unit_direction(direction) * (speed * self.width)[:, None]
        offset = trajectory(velocity, o.textures_acceleration * (2 * u[:, 4] - 1), self.frames)
        half = torch.tensor([self.width / 2, self.height / 2], dtype=torch.float64, device=u.device)
        span = offset.amax(dim=1) - offset.amin(dim=1)
        room = (half[None] - 0.5 * radius[:, None] - span / 2).clamp_min(0.0)
        start = room * (2 * u[:, 2:4] - 1) - (offset.amax(dim=1) + offset.amin(dim=1)) / 2
        s = ramp(self.frames, u.device)[None]
        angle = 2 * math.pi * u[:, 1:2] + math.radians(o.textures_rotation) * (2 * u[:, 5:6] - 1) * s
        scale = (1 + o.textures_scaling) ** ((2 * u[:, 6:7] - 1) * s)
        return radius, start[:, None] + offset, angle, scale

    def paint(
        self, texture: Tensor, shape: Tensor, pose: tuple[Tensor, Tensor, Tensor, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """(colour (B, C, T, H, W), anti-aliased mask (B, 1, T, H, W)) of objects carrying ``texture``
        (B, C, S, S) in object coordinates: it moves, turns and scales with them.

        A pixel's object coordinates are x = R(-angle)(p - centre) / scale (pixels, +y up): per frame a
        row term plus a column term, so each full-size coordinate costs one addition of two small
        tensors. They are written straight into ``grid_sample``'s grid in the texture canvas's normalised
        coordinates (x / (S/2), -y / (S/2)); the mask reads them there (distances scale with 1 / (S/2))."""
        radius, centre, angle, scale = pose
        batch, half, device = len(shape), self.canvas / 2, texture.device
        ys = (self.height - 1) / 2 - torch.arange(self.height, dtype=torch.float64, device=device)
        xs = torch.arange(self.width, dtype=torch.float64, device=device) - (self.width - 1) / 2
        dx = (xs[None, None, :] - centre[..., 0, None])[:, :, None, :]  # (B, T, 1, W)
        dy = (ys[None, None, :] - centre[..., 1, None])[:, :, :, None]  # (B, T, H, 1)
        c, s = (
            (torch.cos(angle) / (scale * half))[..., None, None],
            (torch.sin(angle) / (scale * half))[..., None, None],
        )
        grid = torch.empty((batch, self.frames, self.height, self.width, 2), device=device)
        torch.add((c * dx).float(), (s * dy).float(), out=grid[..., 0])  # x / (S/2)
        torch.sub((s * dx).float(), (c * dy).float(), out=grid[..., 1])  # -y / (S/2)
        x, y = grid[..., 0], -grid[..., 1]
        mask = torch.empty((batch, 1, self.frames, self.height, self.width), device=device)
        for kind in shape.unique().tolist():
            rows = (shape == kind).nonzero()[:, 0]
            distance = signed_distance(SHAPES[kind], x[rows], y[rows], radius[rows].float() / half)
            mask[rows, 0] = torch.sigmoid(-2.0 * half * distance)  # an edge half a pixel wide
        flat = grid.view(batch, self.frames * self.height, self.width, 2)
        colour = F.grid_sample(texture, flat, mode="bilinear", padding_mode="reflection", align_corners=False)
        return colour.view(batch, -1, self.frames, self.height, self.width), mask

    def class_table(self, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(texture kind index, direction degrees, speed in frame widths) of ``labels`` (B,)."""
        params = [self.space.params(k) for k in labels.tolist()]
        device = labels.device
        return (
            torch.tensor([KINDS.index(p["textures_kind"]) for p in params], device=device),
            torch.tensor([float(p["textures_direction"]) for p in params], dtype=torch.float64, device=device),
            torch.tensor([float(p["textures_speed"]) for p in params], dtype=torch.float64, device=device),
        )

    def render(self, draws, labels: Tensor) -> Tensor:
        """The background, then the objects back to front, the labelled one (object 0) last; uniforms as
        :data:`OBJECT_DRAWS` lists them."""
        batch, objects = len(labels), self.options.textures_objects
        u = draws.uniform("objects", OBJECT_DRAWS * MAX_OBJECTS).view(batch, MAX_OBJECTS, OBJECT_DRAWS)[:, :objects]
        b = draws.uniform("background", BACKGROUND_DRAWS)
        uniforms = draws.uniform("textures", (MAX_OBJECTS + 1) * self.texture_draws()).view(batch, MAX_OBJECTS + 1, -1)
        kind, direction, speed = self.class_table(labels)
        kinds = torch.cat([kind[:, None], self.kind_of(u[:, 1:, 8]), self.kind_of(b[:, :1])], dim=1)
        params = torch.cat(
            [
                torch.cat([u[..., 13:16], 0.4 + 0.6 * u[..., 16:17]], dim=-1),
                torch.cat([b[:, 3:6], torch.full_like(b[:, :1], BACKGROUND_CONTRAST)], dim=-1)[:, None],
            ],
            dim=1,
        )
        textures = self.textures(
            torch.cat([uniforms[:, :objects], uniforms[:, -1:]], dim=1).flatten(0, 1),
            kinds.flatten(),
            params.flatten(0, 1),
        ).view(batch, objects + 1, 1, self.canvas, self.canvas)
        out = self.coloured(textures[:, -1], b[:, 1], b[:, 2])[:, :, None, : self.height, : self.width]
        out = out.expand(-1, -1, self.frames, -1, -1)
        for k in reversed(range(objects)):
            d = u[:, k]
            motion = (direction, speed) if k == 0 else (360 * d[:, 9], 0.6 * d[:, 10])
            shape = (d[:, 7] * len(SHAPES)).long().clamp_max(len(SHAPES) - 1)
            colour, mask = self.paint(self.coloured(textures[:, k], d[:, 11], d[:, 12]), shape, self.poses(d, *motion))
            out = torch.lerp(out, colour, mask)
        return out.clamp(0.0, 1.0)

    @staticmethod
    def kind_of(u: Tensor) -> Tensor:
        """Texture kind indices from uniforms (any shape)."""
        return (u * len(KINDS)).long().clamp_max(len(KINDS) - 1)

    def coloured(self, gray: Tensor, hue: Tensor, saturation: Tensor) -> Tensor:
        """``gray`` (B, 1, ...) tinted with a hue and saturation x ``colour`` per texture (unchanged without colour)."""
        return tint(gray, hue, saturation * self.options.colour) if self.options.colour else gray
