"""Reference networks of other frameworks for the conversion tests.

* torchvision: the real ``torchvision.models.video.resnet`` when torchvision is installed (the
  optional ``frameworks`` extra). ``import torchvision`` fails next to the pinned CPU torch while it
  registers its compiled operators, but the video ResNet definitions are pure PyTorch: they are
  loaded here with the package's ``__init__`` (the operator registration) skipped. Without the
  extra, the tests check our export against the key names and shapes of torchvision's three video
  ResNets recorded from the real library (``data/torchvision_video_resnets.json``).
* mmaction2: its ``Recognizer3D(ResNet3d | ResNet2Plus1d, I3DHead)`` written here from the
  published layer definitions and parameter names (mmaction2 needs mmcv/mmengine, which cannot be
  installed next to the pinned torch): ``ConvModule`` = conv + ``bn`` (+ ReLU), ``Conv2plus1d`` =
  ``conv_s``, ``bn_s``, ReLU, ``conv_t`` with the middle width ``int(3 k^2 N_in N_out / (k^2 N_in
  + 3 N_out))``, a ``1 x 3 x 3`` stem max-pool, optional ``pool2`` after the first stage, stage
  strides per axis and per-stage inflation.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

from torch import nn


def torchvision_video_resnet():
    """torchvision's ``models/video/resnet.py`` module, or None when torchvision is not installed."""
    if "torchvision" not in sys.modules:  # a bare package object: its __init__ would register compiled ops
        spec = importlib.util.find_spec("torchvision")
        if spec is None or not spec.submodule_search_locations:
            return None
        package = types.ModuleType("torchvision")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["torchvision"] = package
    import torchvision.models.video.resnet as module

    return module


def torchvision_shapes_file() -> Path:
    return Path(__file__).with_name("data") / "torchvision_video_resnets.json"


# ---- mmaction2 ---------------------------------------------------------------------------------------


class Conv2plus1d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, stride, padding):
        super().__init__()
        (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = kernel, stride, padding
        mid = int(3 * (cin * cout * kh * kw) / (cin * kh * kw + 3 * cout))
        self.conv_s = nn.Conv3d(cin, mid, (1, kh, kw), (1, sh, sw), (0, ph, pw), bias=False)
        self.bn_s = nn.BatchNorm3d(mid)
        self.relu = nn.ReLU(inplace=True)
        self.conv_t = nn.Conv3d(mid, cout, (kt, 1, 1), (st, 1, 1), (pt, 0, 0), bias=False)

    def forward(self, x):
        return self.conv_t(self.relu(self.bn_s(self.conv_s(x))))


class ConvModule(nn.Module):
    def __init__(self, cin, cout, kernel, stride=(1, 1, 1), padding=(0, 0, 0), two_plus_one=False, act=True):
        super().__init__()
        self.conv = (
            Conv2plus1d(cin, cout, kernel, stride, padding)
            if two_plus_one
            else nn.Conv3d(cin, cout, kernel, stride, padding, bias=False)
        )
        self.bn = nn.BatchNorm3d(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return nn.functional.relu(x) if self.act else x


class BasicBlock3d(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, ss, ts, downsample, inflate, two_plus_one):
        super().__init__()
        kernel, pad = ((3, 3, 3), (1, 1, 1)) if inflate else ((1, 3, 3), (0, 1, 1))
        self.conv1 = ConvModule(cin, planes, kernel, (ts, ss, ss), pad, two_plus_one)
        self.conv2 = ConvModule(planes, planes, kernel, (1, 1, 1), pad, two_plus_one, act=False)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return nn.functional.relu(self.conv2(self.conv1(x)) + identity)


class Bottleneck3d(nn.Module):  # style "pytorch", inflate_style "3x3x3"
    expansion = 4

    def __init__(self, cin, planes, ss, ts, downsample, inflate, two_plus_one):
        super().__init__()
        kernel, pad = ((3, 3, 3), (1, 1, 1)) if inflate else ((1, 3, 3), (0, 1, 1))
        self.conv1 = ConvModule(cin, planes, (1, 1, 1), two_plus_one=two_plus_one)
        self.conv2 = ConvModule(planes, planes, kernel, (ts, ss, ss), pad, two_plus_one)
        self.conv3 = ConvModule(planes, planes * 4, (1, 1, 1), two_plus_one=two_plus_one, act=False)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return nn.functional.relu(self.conv3(self.conv2(self.conv1(x))) + identity)


ARCH = {18: (BasicBlock3d, (2, 2, 2, 2)), 34: (BasicBlock3d, (3, 4, 6, 3)), 50: (Bottleneck3d, (3, 4, 6, 3))}


class ResNet3d(nn.Module):
    """mmaction2's ResNet3d / ResNet2Plus1d (``type``) from the keyword arguments of its config."""

    def __init__(
        self,
        type,
        depth,
        in_channels,
        base_channels,
        conv1_kernel,
        conv1_stride_t,
        pool1_stride_t,
        with_pool2,
        spatial_strides,
        temporal_strides,
        inflate,
        conv_cfg=None,
        **_,
    ):
        super().__init__()
        two_plus_one = (conv_cfg or {}).get("type") == "Conv2plus1d"
        self.with_pool2 = with_pool2 and type == "ResNet3d"  # "no pool2 in R(2+1)d"
        self.conv1 = ConvModule(
            in_channels,
            base_channels,
            tuple(conv1_kernel),
            (conv1_stride_t, 2, 2),
            tuple((k - 1) // 2 for k in conv1_kernel),
            two_plus_one,
        )
        self.maxpool = nn.MaxPool3d((1, 3, 3), (pool1_stride_t, 2, 2), (0, 1, 1))
        self.pool2 = nn.MaxPool3d((2, 1, 1), (2, 1, 1))
        block, counts = ARCH[depth]
        cin = base_channels
        for i, blocks in enumerate(counts):
            planes, ss, ts = base_channels * 2**i, spatial_strides[i], temporal_strides[i]
            down = (
                ConvModule(cin, planes * block.expansion, (1, 1, 1), (ts, ss, ss), two_plus_one=two_plus_one, act=False)
                if ss != 1 or cin != planes * block.expansion
                else None
            )
            layers = [block(cin, planes, ss, ts, down, inflate[i], two_plus_one)]
            cin = planes * block.expansion
            layers += [block(cin, planes, 1, 1, None, inflate[i], two_plus_one) for _ in range(1, blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            if i == 1 and self.with_pool2:
                x = self.pool2(x)
        return x


class I3DHead(nn.Module):
    def __init__(self, num_classes, in_channels, **_):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.fc_cls = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        return self.fc_cls(self.avg_pool(x).flatten(1))


class Recognizer3D(nn.Module):
    def __init__(self, backbone: dict, cls_head: dict):
        super().__init__()
        self.backbone = ResNet3d(**backbone)
        self.cls_head = I3DHead(**cls_head)

    def forward(self, x):
        return self.cls_head(self.backbone(x))


def record_torchvision_shapes(path: Path | None = None) -> dict:
    """Write the key names and shapes of torchvision's r3d_18, mc3_18 and r2plus1d_18 (400 classes) from
    the real library (``python -c 'import framework_references as f; f.record_torchvision_shapes()'`` in tests/)."""
    import json

    module = torchvision_video_resnet()
    if module is None:
        raise RuntimeError("torchvision is not installed (pip install -c constraints.txt -e '.[frameworks]')")
    shapes = {
        name: {k: list(v.shape) for k, v in getattr(module, name)(num_classes=400).state_dict().items()}
        for name in ("r3d_18", "mc3_18", "r2plus1d_18")
    }
    models = [
        f"{json.dumps(name)}: {{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in keys.items()) + "\n}"
        for name, keys in shapes.items()
    ]
    (path or torchvision_shapes_file()).parent.mkdir(exist_ok=True)
    (path or torchvision_shapes_file()).write_text("{\n" + ",\n".join(models) + "\n}\n")
    return shapes
