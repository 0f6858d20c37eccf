"""The model zoo: 3D, (2+1)D and mixed ResNets and video transformers from one registry, 2D->3D
inflation, checkpoint loading and import."""

from videoperlin.models.registry import (
    Architecture,
    VideoModel,
    architecture,
    count_parameters,
    create_model,
    list_models,
    load_models,
    model_from_config,
    register_model,
)

load_models()

from videoperlin.models.architectures.resnet3d import VideoResNet  # noqa: E402  (registered by load_models)
from videoperlin.models.architectures.vit import VideoViT  # noqa: E402

__all__ = [
    "Architecture",
    "VideoModel",
    "VideoResNet",
    "VideoViT",
    "architecture",
    "count_parameters",
    "create_model",
    "list_models",
    "model_from_config",
    "register_model",
]
