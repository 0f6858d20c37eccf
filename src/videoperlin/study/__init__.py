"""The transfer study: does VPN initialization help 3D CNNs on real video?

Arms, each fine-tuned with the same recipe and budget:

* ``scratch`` -- random initialization (every other arm is paired with it);
* pre-trained arms (``pretrain_arms`` of the protocol): ``vpn-low`` / ``vpn-high`` -- low- / high-frequency
  VPN with the same number of videos, steps and schedule; ``shuffled`` -- the ``vpn-low`` clips with
  random labels (does the frequency label carry the benefit, or mere exposure to noise?);
* ``inflated`` -- 2D ResNet weights inflated to 3D (``inflate_from``; r3d architectures only).

Every arm runs for every architecture, dataset, fold (or fixed split), fine-tuning seed and
pre-training seed; the metric is the final epoch's video-level top-1 on the held-out data.
:mod:`~videoperlin.study.protocol` says what runs, :mod:`~videoperlin.study.runs` runs it (cached,
resumable), :mod:`~videoperlin.study.report` writes the results. Command: ``videoperlin transfer``.
"""
