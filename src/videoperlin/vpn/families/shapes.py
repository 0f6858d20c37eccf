"""Family ``shapes``: a shape moving over a background -- the peers' simplest synthetic videos, as an anchor.

Written from the description in Yu, Chen and Gandelsman 2024 ("Learning Video Representations
without Natural Videos"): synthetic shapes moving across the frame, where *moving* circles took
VideoMAE from 51.4 to 85.2 top-1 on UCF-101 (static ones: 67.8). Here the task is supervised, so a
class is a shape and a motion: ``shapes_shape`` (circle, square, triangle, cross) x
``shapes_direction`` (degrees, 0 right, 90 up) x ``shapes_speed`` (frame widths crossed over the
clip; 0 = still, one still class per shape). The ``circles`` preset is the peers' moving circles.

A clip: one labelled object of random size (diameter ``shapes_size`` x U(0.7, 1.3) of the frame),
orientation and gray level, contrasting with a random flat background (or, with
``shapes_background: texture``, a still Perlin texture), its path placed at random so that it
stays in the frame; optionally ``shapes_distractors`` more shapes of random kind and motion, behind
it. Edges are anti-aliased (a sigmoid of the signed distance, half a pixel wide). ``colour > 0``
gives object and background hues of their own.

Draws (generator order; counter slots): ``object`` (11 uniforms), ``distractors`` (8 per possible
distractor), ``texture`` (the background texture's gradients), ``texture_phase`` (3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor

from videoperlin.config_fields import in_range, option
from videoperlin.noise import Octave, lattice_nodes, render_octaves
from videoperlin.vpn.draws import DrawLayout
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
from videoperlin.vpn.scene import ramp, tint, unit_direction

SHAPES = ("circle", "square", "triangle", "cross")
DIRECTIONS = [0, 45, 90, 135, 180, 225, 270, 315]
MAX_DISTRACTORS = 3
OBJECT_DRAWS, DISTRACTOR_DRAWS = 11, 8
#: The background texture: a still Perlin field of 4 x 4 cells (one frame of 3D noise).
TEXTURE_CELLS = (1, 4, 4)
TEXTURE_NODES = tuple(lattice_nodes(c, tileable=False) for c in TEXTURE_CELLS)
SLOTS = {"object": 0, "distractors": 16, "texture_phase": 48}


@dataclass
class ShapesOptions(ColourOption, SourceOptions):
    shapes_size: float = option(
        0.3, "mean object diameter as a share of the frame (each object: x U(0.7, 1.3))", in_range(0.05, 0.5)
    )
    shapes_distractors: int = option(
        0,
        f"further moving shapes of random kind and motion, behind the labelled one (0..{MAX_DISTRACTORS})",
        in_range(0, MAX_DISTRACTORS),
    )
    shapes_background: Literal["flat", "texture"] = option(
        "flat", "background: a flat gray level, or a still Perlin texture"
    )


@dataclass
class ShapesLabels(LabelSource):
    shapes_shape: list[str] | None = option(None, f"shapes, from {', '.join(SHAPES)}")
    shapes_direction: list[int] | None = option(None, "shape motion directions in degrees (0 right, 90 up)")
    shapes_speed: list[float] | None = option(None, "shape speeds in frame widths crossed over the clip (0 still)")


def signed_distance(kind: str, x: Tensor, y: Tensor, radius: Tensor) -> Tensor:
    """Signed distance in pixels (negative inside) to a ``kind`` shape of ``radius`` (B,) centred at the
    origin of object coordinates x, y (B, T, H, W): circle of that radius, square of half-side
    0.8 r, equilateral triangle of inradius r / 2 (apex up), plus sign of arms r long and 0.7 r wide."""
    r = radius.view(-1, 1, 1, 1)
    if kind == "circle":
        return torch.hypot(x, y) - r
    if kind == "square":
        return torch.maximum(x.abs(), y.abs()) - 0.8 * r
    if kind == "triangle":
        normals = [(math.cos(a), math.sin(a)) for a in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))]
        faces = [nx * x + ny * y for nx, ny in normals]
        return torch.maximum(torch.maximum(faces[0], faces[1]), faces[2]) - 0.5 * r
    arm = 0.35 * r
    return torch.minimum(torch.maximum(x.abs() - r, y.abs() - arm), torch.maximum(x.abs() - arm, y.abs() - r))


@register
class ShapesFamily(Family):
    """Shapes moving over a background (module docstring)."""

    name = "shapes"
    render_bytes_per_pixel = 14  # at the defaults, measured by benchmarks/render_memory.py
    Options = ShapesOptions
    Labels = ShapesLabels
    presets: ClassVar[dict[str, dict[str, list]]] = {
        "default": {"shapes_shape": list(SHAPES), "shapes_direction": DIRECTIONS, "shapes_speed": [0, 0.3, 0.6]},
        "circles": {"shapes_shape": ["circle"], "shapes_direction": DIRECTIONS, "shapes_speed": [0, 0.3, 0.6]},
    }
    default_preset = "default"
    description = "a shape moving over a background, class = shape x direction x speed (the peers' anchor)"

    @classmethod
    def space_from_dict(cls, axes: dict) -> LabelSpace:
        return motion_grid(super().space_from_dict(axes).axes, "shapes", {"shapes_shape": list(SHAPES)})

    def arrow(self, label: int) -> tuple[float, float]:
        return motion_arrow(self.space.params(label), "shapes", self.width)

    def layout(self) -> DrawLayout:
        return DrawLayout(("object", "distractors", "texture", "texture_phase"), SLOTS, {"texture": TEXTURE_NODES})

    def class_table(self, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(shape index, direction degrees, speed in frame widths) of ``labels`` (B,)."""
        params = [self.space.params(k) for k in labels.tolist()]
        device = labels.device
        return (
            torch.tensor([SHAPES.index(p["shapes_shape"]) for p in params], device=device),
            torch.tensor([float(p["shapes_direction"]) for p in params], dtype=torch.float64, device=device),
            torch.tensor([float(p["shapes_speed"]) for p in params], dtype=torch.float64, device=device),
        )

    def paths(self, u: Tensor, direction: Tensor, speed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Radius (B,), centre (B, T, 2) in pixels from the frame centre (+y up), and orientation (B,) of
        objects from their uniforms u (B, >= 4): the path's midpoint is placed so the object stays in."""
        size = min(self.height, self.width)
        radius = 0.5 * self.options.shapes_size * size * (0.7 + 0.6 * u[:, 0])
        velocity = unit_direction(direction) * (speed * self.width)[:, None]
        half = torch.tensor([self.width / 2, self.height / 2], dtype=torch.float64, device=u.device)
        room = (half[None] - radius[:, None] - velocity.abs() / 2).clamp_min(0.0)
        midpoint = room * (2 * u[:, 2:4] - 1)
        centre = midpoint[:, None] + velocity[:, None] * (ramp(self.frames, u.device)[None, :, None] - 0.5)
        return radius, centre, 2 * math.pi * u[:, 1]

    def object_mask(self, shape: Tensor, radius: Tensor, centre: Tensor, angle: Tensor) -> Tensor:
        """Anti-aliased masks (B, 1, T, H, W) of objects of kinds ``shape`` (B,) on their paths (float32:
        positions of a few hundred pixels lose nothing)."""
        device, centre, angle = centre.device, centre.float(), angle.float()
        ys = (self.height - 1) / 2 - torch.arange(self.height, dtype=torch.float32, device=device)
        xs = torch.arange(self.width, dtype=torch.float32, device=device) - (self.width - 1) / 2
        mask = torch.empty((len(shape), 1, self.frames, self.height, self.width), device=device)
        for kind in shape.unique().tolist():
            rows = (shape == kind).nonzero()[:, 0]
            dx = xs[None, None, None, :] - centre[rows, :, 0, None, None]
            dy = ys[None, None, :, None] - centre[rows, :, 1, None, None]
            c, s = torch.cos(angle[rows]).view(-1, 1, 1, 1), torch.sin(angle[rows]).view(-1, 1, 1, 1)
            distance = signed_distance(SHAPES[kind], c * dx + s * dy, -s * dx + c * dy, radius[rows].float())
            mask[rows, 0] = torch.sigmoid(distance * -2.0)  # an edge half a pixel wide
        return mask

    def background(self, draws, level: Tensor) -> Tensor:
        """(B, 1, 1, H, W) background gray: flat at ``level`` (B,), or a still Perlin texture around it."""
        flat = level.float().view(-1, 1, 1, 1, 1)
        gradients = draws.unit_vectors("texture", [TEXTURE_NODES] * len(level))
        phase = draws.uniform("texture_phase", 3)
        if self.options.shapes_background == "flat":
            return flat
        cells = torch.tensor(TEXTURE_CELLS, device=level.device).expand(len(level), 3)
        field = render_octaves([Octave(gradients, cells, phase, False)], (1, self.height, self.width))
        return (flat + 0.6 * field[:, None]).clamp(0.0, 1.0)

    def coloured(self, gray: Tensor, hue: Tensor, saturation: Tensor) -> Tensor:
        """``gray`` (B, 1, ...) tinted with a hue and saturation x ``colour`` per clip (unchanged without colour)."""
        return tint(gray, hue, saturation * self.options.colour) if self.options.colour else gray

    def render(self, draws, labels: Tensor) -> Tensor:
        """Object uniforms: 0 size, 1 orientation, 2-3 path midpoint, 4 background level, 5 contrast, 6 its
        sign, 7-8 hue and saturation, 9-10 the background's; a distractor's: 0-3 the same, 4 shape,
        5 direction, 6 speed (up to 0.6), 7 gray level (and hue)."""
        batch = len(labels)
        u = draws.uniform("object", OBJECT_DRAWS)
        more = draws.uniform("distractors", DISTRACTOR_DRAWS * MAX_DISTRACTORS).view(batch, MAX_DISTRACTORS, -1)
        level = 0.2 + 0.6 * u[:, 4]
        out = self.coloured(self.background(draws, level), u[:, 9], u[:, 10]).expand(-1, -1, self.frames, -1, -1)
        for k in range(self.options.shapes_distractors):  # behind the labelled object: painted first
            d = more[:, k]
            shape = (d[:, 4] * len(SHAPES)).long().clamp_max(len(SHAPES) - 1)
            mask = self.object_mask(shape, *self.paths(d, 360 * d[:, 5], 0.6 * d[:, 6]))
            out = torch.lerp(
                out, self.coloured((0.1 + 0.8 * d[:, 7]).float().view(-1, 1, 1, 1, 1), d[:, 7], d[:, 6]), mask
            )
        shape, direction, speed = self.class_table(labels)
        mask = self.object_mask(shape, *self.paths(u, direction, speed))
        contrast = (0.25 + 0.2 * u[:, 5]) * torch.where(u[:, 6] < 0.5, -1.0, 1.0)
        fill = level + torch.where((level + contrast - 0.5).abs() > 0.48, -contrast, contrast)  # stays in [0, 1]
        fill = self.coloured(fill.float().view(-1, 1, 1, 1, 1), u[:, 7], u[:, 8])
        return torch.lerp(out, fill, mask).clamp_(0.0, 1.0)
