"""Split in two: reading and writing weight files is :mod:`videoperlin.models.weight_files`
(``read_state_dict``, ``read_checkpoint_file``, ``save_model``); loading weights into a model is
:mod:`videoperlin.models.pretrained` (``load_pretrained``, ``load_model``, ``LoadReport``)."""

raise ImportError(
    "videoperlin.models.checkpoint was split: use videoperlin.models.weight_files (read_state_dict, "
    "read_checkpoint_file, save_model) and videoperlin.models.pretrained (load_pretrained, load_model)"
)
