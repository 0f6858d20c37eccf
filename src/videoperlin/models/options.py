"""Options every registered architecture takes (a field that several architectures share is declared once)."""

from __future__ import annotations

from dataclasses import dataclass

from videoperlin.config_fields import Checked, at_least, in_range, option

#: Model options that regularise training and leave no trace in the weights: fine-tuning keeps its own
#: value where it takes a checkpoint's architecture (``train --init``).
TRAINING_OPTIONS = frozenset({"dropout", "drop_path"})


@dataclass
class CommonOptions(Checked):
    """The options of every architecture: input channels and the classifier's dropout."""

    in_channels: int = option(
        3, "input channels (VPN is grayscale repeated to 3, so RGB networks transfer)", at_least(1)
    )
    dropout: float = option(0.0, "dropout probability before the classifier", in_range(0, 1, high_open=True))
