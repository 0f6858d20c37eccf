"""3D CNN model zoo: 3D and (2+1)D ResNets, 2D->3D inflation, checkpoint loading and import."""

from videoperlin.models.registry import count_parameters, create_model, list_models, model_from_config
from videoperlin.models.resnet3d import VideoResNet

__all__ = ["VideoResNet", "count_parameters", "create_model", "list_models", "model_from_config"]
