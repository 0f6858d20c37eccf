"""VideoMAE checkpoints: the original release's layout (which ours is) and Hugging Face's.

The VideoMAE release (Tong et al. 2022, github.com/MCG-NJU/VideoMAE) writes two layouts, both in a
``{"model": state_dict}`` file:

* fine-tuned networks (``modeling_finetune``): ``patch_embed.proj``, ``blocks.N.{norm1, attn.qkv,
  attn.q_bias, attn.v_bias, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``fc_norm``, ``head`` -- our
  :class:`~videoperlin.models.architectures.vit.VideoViT` names, one for one;
* pre-trained masked autoencoders (``modeling_pretrain``): the encoder under ``encoder.`` with a final
  ``encoder.norm``, then ``encoder_to_decoder``, ``mask_token`` and ``decoder.*``. Fine-tuning keeps
  the encoder's blocks and starts ``fc_norm`` and ``head`` afresh, as the release's fine-tuning does.

Hugging Face transformers' ``VideoMAEModel`` / ``VideoMAEForVideoClassification`` /
``VideoMAEForPreTraining`` rename the same tensors (``embeddings.patch_embeddings.projection``,
``encoder.layer.N.attention.attention.{query,key,value}`` with ``q_bias``/``v_bias``,
``layernorm_before``, ``intermediate.dense``, ``output.dense``, ``layernorm_after``, ``fc_norm``,
``classifier``; under ``videomae.`` in the task models). Both are read; ``--to videomae`` writes the
release's fine-tuned layout (:func:`to_videomae`) and :func:`to_huggingface` the other.

Conversion is strict: a tensor with no counterpart here (learned position embeddings, layer scale
``gamma_1``/``gamma_2``, a final ``norm`` instead of mean pooling) is refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from videoperlin.errors import CheckpointError, ConfigError
from videoperlin.models.architectures.vit import LAYER_NORM_EPS, SHAPES, VideoViT
from videoperlin.models.registry import architecture_of, create_model

#: Our block names -> Hugging Face's, inside one block (the qkv projection is split into three).
_HF_BLOCK = {
    "norm1": "layernorm_before",
    "attn.proj": "attention.output.dense",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
    "attn.q_bias": "attention.attention.query.bias",
    "attn.v_bias": "attention.attention.value.bias",
}
#: Older transformers releases (and the checkpoints on the Hub) name the query and value biases so.
_HF_OLD_BIAS = {
    "attention.attention.q_bias": "attention.attention.query.bias",
    "attention.attention.v_bias": "attention.attention.value.bias",
}
_HF_TOP = {"patch_embed.proj": "embeddings.patch_embeddings.projection", "fc_norm": "fc_norm", "head": "classifier"}
_HF_QKV = ("query", "key", "value")
#: Keys of pre-training that fine-tuning does not use (the decoder, the encoder's last norm).
_PRETRAIN_ONLY = re.compile(r"(encoder\.norm\.|encoder\.head\.|encoder_to_decoder\.|mask_token|decoder\.|pos_embed$)")
_HF_PRETRAIN_ONLY = re.compile(r"(encoder_to_decoder\.|mask_token|decoder\.|position_embeddings)")


def is_videomae_layout(state: Mapping[str, Tensor]) -> bool:
    """Whether ``state`` is a VideoMAE pre-training checkpoint or a Hugging Face VideoMAE model (a
    fine-tuned release checkpoint already has our names)."""
    return any(k.startswith("encoder.patch_embed.") or "patch_embeddings.projection" in k for k in state)


def _unwrapped(state: Mapping[str, Any]) -> dict[str, Tensor]:
    for key in ("model", "module", "state_dict"):
        if key in state and isinstance(state[key], Mapping):
            return dict(state[key])
    return dict(state)


def _refuse_unknown(state: Mapping[str, Tensor], source: str) -> None:
    for key in state:
        if key == "pos_embed" or key.endswith(".pos_embed"):
            raise CheckpointError(
                f"{source}: {key} holds learned position embeddings; videoperlin's transformers use VideoMAE's "
                f"fixed sine-cosine ones, so these weights cannot be carried over"
            )
        if ".gamma_" in key or key.endswith((".lambda_1", ".lambda_2")):
            raise CheckpointError(f"{source}: {key} is a layer-scale factor, which videoperlin's transformers lack")
        if key.startswith("norm.") or key.startswith("layernorm."):
            raise CheckpointError(
                f"{source}: {key} is a final LayerNorm over all tokens (no mean pooling); videoperlin's "
                f"transformers classify from the mean of the tokens (fc_norm)"
            )


def _from_huggingface(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    state = {k.removeprefix("videomae."): v for k, v in state.items() if not _HF_PRETRAIN_ONLY.match(k)}
    out: dict[str, Tensor] = {}
    inverse_top = {theirs: ours for ours, theirs in _HF_TOP.items()}
    inverse_block = {theirs: ours for ours, theirs in _HF_BLOCK.items()}
    for key, value in state.items():
        match = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", key)
        if match:
            block, rest = match.groups()
            rest = _HF_OLD_BIAS.get(rest, rest)
            if rest in inverse_block:  # the query and value biases
                out[f"blocks.{block}.{inverse_block[rest]}"] = value
                continue
            name, _, kind = rest.rpartition(".")
            if name.startswith("attention.attention."):
                continue  # the query, key and value weights: joined below
            out[f"blocks.{block}.{inverse_block[name]}.{kind}" if name in inverse_block else key] = value
            continue
        head, _, kind = key.rpartition(".")
        out[f"{inverse_top[head]}.{kind}" if head in inverse_top else key] = value
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k))})
    for block in blocks:
        prefix = f"encoder.layer.{block}.attention.attention"
        out[f"blocks.{block}.attn.qkv.weight"] = torch.cat([state[f"{prefix}.{n}.weight"] for n in _HF_QKV])
    return out


def from_videomae(state: Mapping[str, Any], source: str = "checkpoint") -> dict[str, Tensor]:
    """A VideoMAE state dict (release fine-tuned or pre-trained, or Hugging Face) in our names."""
    state = _unwrapped(state)
    if any("patch_embeddings.projection" in k for k in state):
        state = _from_huggingface(state)
    elif any(k.startswith("encoder.patch_embed.") for k in state):
        state = {k.removeprefix("encoder."): v for k, v in state.items() if not _PRETRAIN_ONLY.match(k)}
    _refuse_unknown(state, source)
    return state


def to_videomae(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """Our transformer's state dict as the release writes a fine-tuned network: ``{"model": state}``."""
    return {"model": dict(state)}


def to_huggingface(state: Mapping[str, Tensor], prefix: str = "videomae.") -> dict[str, Tensor]:
    """Our transformer's state dict in ``VideoMAEForVideoClassification``'s names (``prefix=""`` for the
    bare ``VideoMAEModel``, which has no ``fc_norm`` or ``classifier``)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        match = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
        if match is None:
            head, _, kind = key.rpartition(".")
            top = head in ("fc_norm", "head")
            out[("" if top else prefix) + f"{_HF_TOP[head]}.{kind}"] = value
            continue
        block, rest = match.groups()
        base = f"{prefix}encoder.layer.{block}."
        if rest == "attn.qkv.weight":
            for name, part in zip(_HF_QKV, value.chunk(3)):
                out[f"{base}attention.attention.{name}.weight"] = part
            continue
        if rest in _HF_BLOCK:  # the query and value biases
            out[base + _HF_BLOCK[rest]] = value
            continue
        name, _, kind = rest.rpartition(".")
        out[f"{base}{_HF_BLOCK[name]}.{kind}"] = value
    return out


def infer_config(state: Mapping[str, Tensor], source: str = "checkpoint") -> dict[str, Any]:
    """The ``model.config`` of a transformer state dict in our names: width -> registered name, depth,
    tubelet and patch sizes and channels from the embedding, classes from the head."""
    if "patch_embed.proj.weight" not in state:
        raise CheckpointError(f"{source} has no patch_embed.proj.weight: it is not a video transformer's state dict")
    width, channels, tubelet, patch, _ = state["patch_embed.proj.weight"].shape
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    names = [n for n, shape in SHAPES.items() if (shape.width, shape.depth) == (width, depth)]
    if not names:
        known = ", ".join(f"{n} ({s.width} wide, {s.depth} blocks)" for n, s in SHAPES.items())
        raise CheckpointError(f"{source}: a transformer {width} wide with {depth} blocks is not registered ({known})")
    head = state.get("head.weight")
    return {
        "name": names[0],
        "num_classes": int(head.shape[0]) if head is not None else 400,
        "in_channels": int(channels),
        "tubelet_size": int(tubelet),
        "patch_size": int(patch),
    }


def import_videomae(state: Mapping[str, Any], source: str = "checkpoint") -> torch.nn.Module:
    """Our transformer holding a VideoMAE checkpoint's weights, strictly: every tensor placed with its
    shape, none left over (the decoder of a pre-training checkpoint is left out, as fine-tuning does)."""
    ours = from_videomae(state, source)
    config = infer_config(ours, source)
    model = create_model(**config)
    if "head.weight" not in ours:  # a pre-trained encoder: no classifier yet
        ours = {**ours, **{k: v for k, v in model.state_dict().items() if k.startswith(("head.", "fc_norm."))}}
    expected = model.state_dict()
    extra = sorted(set(ours) - set(expected))
    missing = sorted(set(expected) - set(ours))
    wrong = [k for k in ours if k in expected and ours[k].shape != expected[k].shape]
    if extra or missing or wrong:
        first = (extra or missing or wrong)[0]
        raise CheckpointError(
            f"{source} does not map onto {config['name']} strictly ({len(extra)} tensors without a place, e.g. "
            f"{extra[:1]}; {len(missing)} missing, e.g. {missing[:1]}; {len(wrong)} of another shape): first {first}"
        )
    model.load_state_dict(ours, strict=True)
    return model


def check_exportable(model: torch.nn.Module) -> None:
    """Refuse, naming the model, a network with no VideoMAE counterpart (the ResNets)."""
    arch = architecture_of(model)
    if "videomae" not in arch.frameworks:
        raise ConfigError(
            f"{arch.name} has no VideoMAE counterpart: VideoMAE's networks are transformers (vit_*); "
            f"{arch.name} converts to {', '.join(arch.frameworks) or 'no other framework'}"
        )


def videomae_settings(model: torch.nn.Module) -> dict[str, Any]:
    """How to build the VideoMAE release's network that loads :func:`to_videomae`'s file strictly."""
    check_exportable(model)
    assert isinstance(model, VideoViT), "the VideoMAE networks are VideoViT"
    shape, options = model.shape, model.options
    return {
        "framework": "videomae",
        "builder": "modeling_finetune.VisionTransformer (github.com/MCG-NJU/VideoMAE)",
        "kwargs": {
            "embed_dim": shape.width,
            "depth": shape.depth,
            "num_heads": shape.heads,
            "mlp_ratio": shape.mlp_ratio,
            "patch_size": options.patch_size,
            "tubelet_size": options.tubelet_size,
            "in_chans": options.in_channels,
            "num_classes": model.num_classes,
            "qkv_bias": True,
            "use_mean_pooling": True,
            "init_values": 0.0,
            "use_learnable_pos_emb": False,
            "norm_layer": f"LayerNorm(eps={LAYER_NORM_EPS})",
        },
        "huggingface": "transformers.VideoMAEForVideoClassification with the same sizes, use_mean_pooling=True, "
        f"layer_norm_eps={LAYER_NORM_EPS} (videoperlin.models.videomae.to_huggingface renames the tensors)",
    }
