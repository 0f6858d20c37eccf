"""Family ``layers`` (ours): textured layers that move against each other, with motion boundaries and occlusion.

Our motion VPN (``perlin`` preset ``motion``) drifts the whole frame: a camera pan over one
texture, with no object, no motion boundary, no occlusion. Here a clip is a background and
``layers_count`` foreground layers, each a still Perlin texture of its own frequency and gray
level (or hue, with ``colour``), cut out by a soft mask -- a low-frequency Perlin field thresholded
into blobs -- and moving on its own path (:mod:`videoperlin.vpn.scene` warps and stacks them):

* the **background** pans in a random direction at a random speed up to ``layers_background_speed``
  frame widths per clip -- a nuisance: the whole frame moves;
* the **first foreground layer** moves with the background *plus* its class's relative motion;
* further layers are **distractors** in front of it (they occlude it) moving at random;
* optionally every layer's speed ramps over the clip (``layers_acceleration``), and a camera zooms
  and turns the whole scene (``layers_zoom``, ``layers_rotation``);
* gray levels are independent, so a layer can blend into the background and show itself only by its
  texture's motion; ``layers_separation`` keeps the labelled layer's level that far from the background's;
* textures are faint (gray-level std up to ``layers_contrast``, 0.15): the pan shows only through them.

**Labels**: ``layers_direction`` x ``layers_speed``: the direction (degrees, 0 right, 90 up) and speed
(frame widths per clip) of the first layer's motion *relative to the background*; speed 0 is one
class (the layer rides with the background). Whole-frame motion is random and the same for every
class, so no class can be told by looking at any single region's motion: a class needs the motion
of a layer against the one behind it -- the motion boundary. Classes are balanced (index % classes).
The default preset has 8 directions x 2 speeds (0.25 and 0.5 frame widths, 1.75 and 3.5 px per frame
at 112 px over 16 frames) + 1 still class = 17 classes.

Draws (generator order; counter slots): ``scene`` (camera pan direction and speed, zoom, rotation, and
the background texture's 8: 12 uniforms), ``layer0..2`` (16 uniforms each: texture 8, mask phase 3
and threshold, a distractor's direction and speed, acceleration, the side of a separated level), then
unit vectors for each canvas's lattice (``background``, ``texture0``, ``mask0``, ``texture1``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from videoperlin.config_fields import in_range, option
from videoperlin.noise import Octave, lattice_nodes, noise_std, render_octaves
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
from videoperlin.vpn.scene import Camera, composite, ramp, soft_threshold, tint, trajectory, unit_direction, warp

MAX_LAYERS = 3
#: Texture cells per frame width a layer's texture is drawn from (uniformly), and the mask field's.
TEXTURE_CELLS, MASK_CELLS = (2, 4, 8), 2
SCENE_DRAWS, LAYER_DRAWS = 12, 16
#: Gray levels of textures: U(LEVEL_LOW, LEVEL_LOW + LEVEL_SPAN). A separation up to half the span always fits
#: on one side of any level.
LEVEL_LOW, LEVEL_SPAN = 0.15, 0.7
MAX_SEPARATION = LEVEL_SPAN / 2
#: A texture's contrast (the gray-level std of its field, before clipping to [0, 1]) is U(1/3, 1) of
#: ``layers_contrast``; the default keeps every clip as it was before the option existed.
DEFAULT_CONTRAST = 0.15


def drawn_level(u: Tensor) -> Tensor:
    """A texture's gray level from its level uniform (u1 of its draws)."""
    return LEVEL_LOW + LEVEL_SPAN * u


DIRECTIONS = [0, 45, 90, 135, 180, 225, 270, 315]


@dataclass
class LayersOptions(ColourOption, SourceOptions):
    layers_count: int = option(
        2,
        f"foreground layers (1..{MAX_LAYERS}): the first carries the label, the others are distractors in front of it",
        in_range(1, MAX_LAYERS),
    )
    layers_background_speed: float = option(
        0.5, "largest background (camera pan) speed in frame widths per clip; its direction is uniform", in_range(0, 1)
    )
    layers_acceleration: float = option(
        0.0,
        "each layer's speed ramps from (1 - a) to (1 + a) of its mean over the "
        "clip, a ~ U(-j, j) per layer (0: constant velocity)",
        in_range(0, 1),
    )
    layers_zoom: float = option(
        0.0, "camera zoom over the clip: the scale goes from 1 to 1 + z, z ~ U(-j, j)", in_range(0, 0.5)
    )
    layers_rotation: float = option(0.0, "camera rotation over the clip in degrees, ~ U(-j, j)", in_range(0, 90))
    layers_separation: float = option(
        0.0,
        "least gray-level gap between the labelled layer and the background (0: independent levels, so the "
        f"layer can blend in; at most {MAX_SEPARATION:g}); its level then lies U(gap, room) above or below the "
        "background's",
        in_range(0, MAX_SEPARATION),
    )
    layers_contrast: float = option(
        DEFAULT_CONTRAST,
        "largest texture contrast (gray-level std of a layer's or the background's field, before clipping to "
        "[0, 1]); each texture's is U(1/3, 1) of it",
        in_range(0.01, 0.5),
    )


@dataclass
class LayersLabels(LabelSource):
    layers_direction: list[int] | None = option(
        None, "directions of the first layer's motion relative to the background, degrees (0 right, 90 up)"
    )
    layers_speed: list[float] | None = option(None, "its relative speeds in frame widths per clip (0: rides with it)")


@register
class LayersFamily(Family):
    """Layers moving against each other (module docstring)."""

    name = "layers"
    render_bytes_per_pixel = 32  # at the defaults, measured by benchmarks/render_memory.py
    Options = LayersOptions
    Labels = LayersLabels
    presets: ClassVar[dict[str, dict[str, list]]] = {
        "default": {"layers_direction": DIRECTIONS, "layers_speed": [0, 0.25, 0.5]}
    }
    default_preset = "default"
    description = "textured layers over a panning background, class = a layer's motion relative to it (ours)"

    @classmethod
    def space_from_dict(cls, axes: dict) -> LabelSpace:
        return motion_grid(super().space_from_dict(axes).axes, "layers")

    def arrow(self, label: int) -> tuple[float, float]:
        """The first layer's motion relative to the background."""
        return motion_arrow(self.space.params(label), "layers", self.width)

    def layout(self) -> DrawLayout:
        layers = [f"layer{k}" for k in range(MAX_LAYERS)]
        blocks: dict[str, tuple[int, ...]] = {"background": self.nodes(max(TEXTURE_CELLS))}
        for k in range(MAX_LAYERS):
            blocks.update({f"texture{k}": self.nodes(max(TEXTURE_CELLS)), f"mask{k}": self.nodes(MASK_CELLS)})
        slots = {"scene": 0, **{name: 16 + LAYER_DRAWS * k for k, name in enumerate(layers)}}  # 16 leaves scene room
        return DrawLayout(("scene", *layers, *blocks), slots, blocks)

    @staticmethod
    def nodes(cells: int) -> tuple[int, int, int]:
        """Lattice of a still, tileable canvas of ``cells`` cells per side (one frame of 3D noise)."""
        return lattice_nodes(1, tileable=False), lattice_nodes(cells, tileable=True), lattice_nodes(cells, True)

    def canvas(self, draws, name: str, cells: Tensor, phase: Tensor) -> Tensor:
        """A still, tileable Perlin field (B, 1, H, W) in noise-std units, ``cells`` (B,) per side."""
        nodes = [self.nodes(int(c)) for c in cells.tolist()]
        gradients = draws.unit_vectors(name, nodes)
        counts = torch.stack([torch.ones_like(cells), cells, cells], dim=1)
        field = render_octaves([Octave(gradients, counts, phase, tileable=True)], (1, self.height, self.width))
        return field / noise_std()

    def texture(self, draws, name: str, u: Tensor, level: Tensor | None = None) -> Tensor:
        """A layer's texture (B, C, H, W) from its uniforms: cells (u0), gray level (u1, or ``level``) and
        contrast (u2), phase (u3-5), hue and saturation (u6-7)."""
        cells = torch.tensor(TEXTURE_CELLS, device=u.device)[(u[:, 0] * len(TEXTURE_CELLS)).long().clamp_max(2)]
        field = self.canvas(draws, name, cells, u[:, 3:6])
        level = drawn_level(u[:, 1]) if level is None else level
        contrast = (0.05 + 0.1 * u[:, 2]) * (self.options.layers_contrast / DEFAULT_CONTRAST)  # x 1.0 by default
        gray = (level.float().view(-1, 1, 1, 1) + contrast.float().view(-1, 1, 1, 1) * field).clamp(0.0, 1.0)
        return tint(gray, u[:, 6], u[:, 7] * self.options.colour) if self.options.colour else gray

    def separated_level(self, background: Tensor, u: Tensor) -> Tensor:
        """The labelled layer's gray level (B,), at least ``layers_separation`` from the ``background``'s:
        above it when u15 < 0.5 and there is room (else below), U(gap, room) away by u1."""
        gap = self.options.layers_separation
        room_up, room_down = LEVEL_LOW + LEVEL_SPAN - background, background - LEVEL_LOW
        up = ((u[:, 15] < 0.5) & (room_up >= gap)) | (room_down < gap)
        room = torch.where(up, room_up, room_down)
        return background + torch.where(up, 1.0, -1.0) * (gap + (room - gap) * u[:, 1])

    def motion(self, u: Tensor, direction: Tensor, speed: Tensor) -> Tensor:
        """A layer's own offsets (B, T, 2) in pixels: ``speed`` frame widths per clip along ``direction``,
        ramped by its acceleration draw (u14)."""
        velocity = unit_direction(direction) * (speed * self.width)[:, None]
        return trajectory(velocity, self.options.layers_acceleration * (2 * u[:, 14] - 1), self.frames)

    def plan(self, draws, labels: Tensor) -> Scene:
        """Everything about a batch's scenes, from its draws (:class:`Scene`; the tests check clips against it)."""
        o, batch, device = self.options, len(labels), labels.device
        scene = draws.uniform("scene", SCENE_DRAWS)
        layer_u = [draws.uniform(f"layer{k}", LAYER_DRAWS) for k in range(MAX_LAYERS)]
        s = ramp(self.frames, device)[None, :]
        pan = unit_direction(360 * scene[:, 0]) * (scene[:, 1] * o.layers_background_speed * self.width)[:, None]
        camera = Camera(
            1 + o.layers_zoom * (2 * scene[:, 2:3] - 1) * s,
            o.layers_rotation * (2 * scene[:, 3:4] - 1) * s,
            pan[:, None, :] * s[..., None],
        )
        background_level = drawn_level(scene[:, 5])  # u1 of the background's draws (scene[:, 4:12])
        background = self.texture(draws, "background", scene[:, 4:12], background_level)
        params = [self.space.params(k) for k in labels.tolist()]
        relative = (
            torch.tensor([float(p["layers_direction"]) for p in params], dtype=torch.float64, device=device),
            torch.tensor([float(p["layers_speed"]) for p in params], dtype=torch.float64, device=device),
        )
        layers = []
        for k in range(o.layers_count):
            u = layer_u[k]
            separated = k == 0 and o.layers_separation > 0
            texture = self.texture(
                draws, f"texture{k}", u[:, :8], self.separated_level(background_level, u) if separated else None
            )
            field = self.canvas(draws, f"mask{k}", torch.full((batch,), MASK_CELLS, device=device), u[:, 8:11])
            mask = soft_threshold(field, (0.8 * u[:, 11]).float(), 0.05)  # an edge about a pixel wide
            direction, speed = relative if k == 0 else (360 * u[:, 12], 0.5 * u[:, 13])
            layers.append((texture, mask, self.motion(u, direction, speed)))
        return Scene(camera, background, layers)

    def render(self, draws, labels: Tensor) -> Tensor:
        scene = self.plan(draws, labels)
        size = (self.height, self.width)
        still = torch.zeros(len(labels), self.frames, 2, dtype=torch.float64, device=labels.device)
        out = warp(scene.background, still, scene.camera, size)
        stacked = []
        for texture, mask, offset in scene.layers:
            moved = warp(torch.cat([texture, mask], dim=1), offset, scene.camera, size)
            stacked.append((moved[:, :-1], moved[:, -1:]))
        return composite(out, stacked).clamp(0.0, 1.0)


@dataclass
class Scene:
    """A batch's scenes: the camera, the background canvas (B, C, H, W), and per foreground layer, nearest
    last, its texture (B, C, H, W), its mask (B, 1, H, W) and its own offsets (B, T, 2) in pixels."""

    camera: Camera
    background: Tensor
    layers: list[tuple[Tensor, Tensor, Tensor]]
