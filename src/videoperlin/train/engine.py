"""One engine behind VPN pre-training and real-video training.

``Trainer(config).fit()`` trains for ``train.epochs`` epochs (or ``train.max_steps``), validating every
``train.val_every`` epochs and at the last. The engine owns the network, the objective, the optimiser, the
precision and the loop; what lands in ``train.out`` (``config.yaml``, ``metrics.jsonl``, the checkpoints,
the lock) and the rules for resuming are :class:`~videoperlin.train.lifecycle.RunLifecycle`'s.

With ``resume=True`` it continues from ``last.pt`` exactly where it stopped: model, optimiser,
position within the epoch, best metric and RNG state (the schedule is a function of progress, the
data order and augmentation are functions of (seed, epoch, index)).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import statistics
import time
from typing import Any

import torch
from torch import nn

import videoperlin
from videoperlin.config_fields import to_dict
from videoperlin.data.transforms import normalize
from videoperlin.errors import ConfigError, DataError, NumericsError
from videoperlin.models import create_model
from videoperlin.models.pretrained import load_pretrained
from videoperlin.models.registry import architecture_of, as_video_model, normalize_model_config
from videoperlin.train.batch_sources import build_batches
from videoperlin.train.checkpointing import restore_rng, rng_state
from videoperlin.train.config import (
    RunConfig,
    adopt_init_architecture,
    with_absolute_paths,
)
from videoperlin.train.distributed import all_sum, cleanup_distributed, setup_distributed
from videoperlin.train.lifecycle import RunLifecycle
from videoperlin.train.numerics import Precision, choose_precision, resolve_amp
from videoperlin.train.objectives import Objective
from videoperlin.train.resources import check_set_size, check_step
from videoperlin.train.schedule import lr_factor
from videoperlin.utils.plotting import plot_run_curves
from videoperlin.utils.progress import progress_bar

log = logging.getLogger(__name__)


def freeze_before(model: nn.Module, module_name: str | None) -> list[str]:
    """Freeze every top-level module before ``module_name`` (3D-ResNets-PyTorch's ft_begin_module)."""
    if not module_name:
        return []
    names = [name for name, _ in model.named_children()]
    if module_name not in names:
        raise ConfigError(
            f"train.ft_begin_module {module_name!r} is not a top-level module; choose one of {', '.join(names)}"
        )
    frozen = names[: names.index(module_name)]
    for name in frozen:
        for parameter in getattr(model, name).parameters():
            parameter.requires_grad_(False)
    return frozen


def parameter_groups(network: nn.Module, model: nn.Module, config: RunConfig) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: one per (lr scale, weight decay). With ``optim.layer_decay`` a
    parameter of the model's layer ``i`` of ``L`` (``model.layer_id``) has lr scale decay^(L - i); the
    objective's own modules (``network`` beyond ``model``: a decoder) train at scale 1. Without
    ``optim.decay_norms_and_biases``, biases and norms (``model.no_weight_decay``; any 1-D tensor of
    the objective's) get no weight decay. The defaults make one group of every parameter, in order."""
    o, video = config.optim, as_video_model(model)
    own = {id(p): name for name, p in model.named_parameters()}
    top = max((video.layer_id(name) for name in own.values()), default=0)
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, parameter in network.named_parameters():
        if not parameter.requires_grad:
            continue
        key = own.get(id(parameter))
        scale = o.layer_decay ** (top - video.layer_id(key)) if key is not None else 1.0
        exempt = video.no_weight_decay(key) if key is not None else parameter.ndim <= 1 or name.endswith(".bias")
        decay = o.weight_decay if o.decay_norms_and_biases or not exempt else 0.0
        groups.setdefault((scale, decay), []).append(parameter)
    return [{"params": params, "lr_scale": scale, "weight_decay": decay} for (scale, decay), params in groups.items()]


def build_optimizer(network: nn.Module, model: nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    o = config.optim
    groups = parameter_groups(network, model, config)
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay, betas=(o.betas[0], o.betas[1]))
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov)


class GradNormGuard:
    """Judges each step's total gradient norm: non-finite, or finite nonsense.

    A norm is rejected when it is not finite, above :attr:`CEILING`, or (once :attr:`MIN_HISTORY`
    steps were accepted) more than :attr:`FACTOR` times the median of the last :attr:`WINDOW`
    accepted norms. Healthy training moves its gradient norm by a few x within a hundred steps
    (warmup, lr decay); 100x the running median in one step is a broken kernel or a corrupt batch,
    not learning. The ceiling covers the first steps: our networks start with norms of order 1-10
    (BatchNorm keeps activations unit-scaled), and a step of lr x 1e6 leaves no usable weight.
    The history is part of the checkpoint, so a resumed run judges steps as the uninterrupted one.
    """

    WINDOW, MIN_HISTORY, FACTOR, CEILING = 100, 20, 100.0, 1e6

    def __init__(self) -> None:
        self.norms: collections.deque[float] = collections.deque(maxlen=self.WINDOW)

    def check(self, norm: float) -> str | None:
        """None (and remember ``norm``) when the step may be applied, else what is wrong with it."""
        if not math.isfinite(norm):
            return "non-finite gradient"
        if norm > self.CEILING:
            return f"gradient norm {norm:.3g} above {self.CEILING:.0e}"
        if len(self.norms) >= self.MIN_HISTORY:
            median = statistics.median(self.norms)
            if norm > self.FACTOR * median:
                return f"gradient norm {norm:.3g} over {self.FACTOR:.0f}x the running median {median:.3g}"
        self.norms.append(norm)
        return None

    def state(self) -> list[float]:
        return list(self.norms)

    def load_state(self, norms: list[float]) -> None:
        self.norms = collections.deque(norms, maxlen=self.WINDOW)


class Trainer:
    """Builds data, model and optimiser from a :class:`RunConfig` and runs the loop."""

    def __init__(self, config: RunConfig, resume: bool = False, accept_changes: bool = False) -> None:
        self.config = config = with_absolute_paths(config)
        self.dist, self.device = setup_distributed()
        self._set_determinism()
        self.run = RunLifecycle(config, self.dist)
        if config.task == "pretrain" and not config.data.path:
            check_set_size(max(config.synthetic.num_videos, config.synthetic.val_videos), self.device)
        self.source = build_batches(config, self.dist, self.device)
        self._warn_about_relations()
        self.class_names = self.source.class_names
        self.model = self._build_model()
        d = config.data
        check_step(self.model, (3, d.frames, d.size, d.size), config.train.batch_size, self.device)
        self.objective: Objective = config.objective.objective_class(config.objective.options(), self.model, config)
        self.task_net = self.objective.network()
        self.optimizer = build_optimizer(self.task_net, self.model, config)
        self.precision = self._guard_precision()
        self.grad_guard = GradNormGuard()
        self.scaler = torch.amp.GradScaler("cuda") if self.precision.dtype == torch.float16 else None
        # where the run is: integers, but for the best validation score ("best", a rate)
        self.position: dict[str, Any] = {
            "epoch": 0,
            "step_in_epoch": 0,
            "global_step": 0,
            "best": None,
            "best_epoch": -1,
        }
        self.epoch_totals = self._zero_totals()
        checkpoint = self.run.resume_point(self.config, resume, accept_changes)  # init's architecture adopted
        if checkpoint is not None:
            self._restore(checkpoint)
            p = self.position
            log.info(
                "resumed %s at epoch %d, step %d", self.run.run_dir.checkpoint("last"), p["epoch"], p["step_in_epoch"]
            )
            if self.run.best_is_stale(p):
                self.save("best")
        self.net: nn.Module = self.task_net
        if self.dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.task_net, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

    def _guard_precision(self) -> Precision:
        """The autocast dtype ``train.amp`` asks for, checked by the numerics guard on this model's
        convolutions at this run's clip size (convolutions that fail it are kept in fp32)."""
        d, t = self.config.data, self.config.train
        precision = choose_precision(
            self.model,
            resolve_amp(t.amp, self.device),
            self.device,
            (3, d.frames, d.size, d.size),
            t.batch_size,
            t.channels_last,
        )
        log.info(
            "precision: %s (train.amp %s; %d convolution shapes checked)", precision.describe(), t.amp, precision.probed
        )
        return precision

    def _warn_about_relations(self) -> None:
        """Settings that are valid but probably not meant (each field alone is checked at load)."""
        t, o, steps = self.config.train, self.config.optim, self.source.steps(0)
        if t.accum_steps > steps:
            log.warning(
                "train.accum_steps %d exceeds the %d steps of an epoch: the optimiser steps once per epoch, "
                "at its last micro-batch",
                t.accum_steps,
                steps,
            )
        if o.schedule == "multistep" and any(m >= t.epochs for m in o.milestones):
            log.warning("optim.milestones %s reach train.epochs %d: the later ones never apply", o.milestones, t.epochs)
        if o.warmup_epochs >= t.epochs:
            log.warning(
                "optim.warmup_epochs %g >= train.epochs %d: the learning rate never reaches optim.lr",
                o.warmup_epochs,
                t.epochs,
            )

    def _set_determinism(self) -> None:
        t = self.config.train
        if t.threads:
            torch.set_num_threads(t.threads)
        torch.manual_seed(t.seed + self.dist.rank)
        if t.deterministic:
            # cuBLAS is deterministic only with a fixed workspace, which must be chosen before its first call.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # clip shapes are fixed: let cuDNN pick its fastest kernels

    def _build_model(self) -> nn.Module:
        self.config = adopt_init_architecture(self.config)  # the network a train.init describes
        options = to_dict(self.config.model.options())
        model = create_model(self.config.model.name, num_classes=len(self.class_names), **options)
        if self.config.train.init:
            load_pretrained(model, self.config.train.init, drop_classifier=self.config.train.reset_head)
        frozen = freeze_before(model, self.config.train.ft_begin_module)
        if frozen:
            log.info("frozen modules: %s", ", ".join(frozen))
        model = model.to(self.device)
        if self.config.train.channels_last:
            model = model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]  # not in the stubs
        return model

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        if normalize_model_config(checkpoint["model_config"]) != self.model.config:
            raise ConfigError(
                f"the checkpoint in {self.run.run_dir.path} was trained as {checkpoint['model_config']}, "
                f"not {self.model.config}; resume with the same model settings"
            )
        self.model.load_state_dict(checkpoint["model"])
        self.objective.load_extra_state(checkpoint.get("objective_state") or {})
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scaler is not None and checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.position = dict(checkpoint["position"])
        self.epoch_totals = dict(checkpoint.get("epoch_totals") or self._zero_totals())
        self.grad_guard.load_state(checkpoint.get("grad_norms") or [])
        restore_rng(checkpoint["rng"])

    @staticmethod
    def _zero_totals() -> dict[str, float]:
        return {"loss": 0.0, "correct": 0.0, "count": 0.0, "skipped": 0.0, "wait": 0.0, "seconds": 0.0}

    # ---- checkpoints and logs ------------------------------------------------------------------

    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "model_config": self.model.config,
            "objective_state": self.objective.extra_state(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "position": dict(self.position),
            "global_step": self.position["global_step"],
            "rng": rng_state(),
            "epoch_totals": dict(self.epoch_totals),
            "grad_norms": self.grad_guard.state(),
            "numerics": self.precision.record(),
            "config": self.config.to_dict(),
            "class_names": list(self.class_names),
            "normalization": {"mean": list(self.config.data.mean), "std": list(self.config.data.std)},
            "frames": self.config.data.frames,
            "size": self.config.data.size,
            "videoperlin_version": videoperlin.__version__,
        }

    def save(self, name: str) -> None:
        """Write checkpoints/NAME.pt (:meth:`RunLifecycle.save`: never from a broken model)."""
        p = self.position
        where = f"epoch {p['epoch']}, step {p['step_in_epoch']} ({self.precision.describe()})"
        self.run.save(name, self.model, self.checkpoint_payload, where)

    # ---- the loop -------------------------------------------------------------------------------

    def autocast(self):
        if self.precision.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.precision.dtype)

    def prepare(self, clips: torch.Tensor) -> torch.Tensor:
        clips = normalize(clips.to(self.device, non_blocking=True).float(), self.config.data.mean, self.config.data.std)
        return clips.contiguous(memory_format=torch.channels_last_3d) if self.config.train.channels_last else clips

    def set_lr(self, epoch: int, step: int, steps: int) -> float:
        lr = self.config.optim.lr * lr_factor(epoch + step / max(steps, 1), self.config.optim, self.config.train.epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def fit(self) -> dict[str, Any]:
        """Train to ``train.epochs`` (or ``train.max_steps``); return the last epoch's metrics."""
        record: dict[str, Any] = {}
        try:
            while self.position["epoch"] < self.config.train.epochs:
                epoch = self.position["epoch"]
                train_metrics = self.train_epoch(epoch)
                if train_metrics is None:  # stopped by max_steps
                    return record
                last = epoch + 1 == self.config.train.epochs  # the doc's promise: every N epochs and at the last
                val_metrics = self.validate() if (epoch + 1) % self.config.train.val_every == 0 or last else {}
                record = self.end_epoch(epoch, {**train_metrics, **val_metrics})
            self.write_figures()
        finally:
            self.run.close()
            cleanup_distributed()
        return record

    def end_epoch(self, epoch: int, metrics: dict[str, Any]) -> dict[str, Any]:
        score = self.objective.score
        improved = score in metrics and self.objective.better(metrics[score], self._best())
        if improved:
            self.position["best"], self.position["best_epoch"] = metrics[score], epoch
        self.position.update(epoch=epoch + 1, step_in_epoch=0)
        record = self.run.log_epoch({"epoch": epoch + 1, **metrics, f"best_{score}": self._best()})
        if improved:  # best.pt first: a kill before last.pt repeats this epoch, which writes best.pt again
            self.save("best")
        if self._save_due(epoch):
            self.save("last")
        log.info(
            "epoch %d: %s",
            epoch + 1,
            ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()),
        )
        return record

    def _best(self) -> float | None:
        """The best validation score so far (None: none yet; a checkpoint of an older version kept -1)."""
        best = self.position["best"]
        return None if best is None or (best == -1.0 and self.position["best_epoch"] < 0) else best

    def _save_due(self, epoch: int) -> bool:
        """Whether last.pt is written at the end of ``epoch``: every ``train.save_every`` epochs, and at the last."""
        every, last = self.config.train.save_every, epoch + 1 == self.config.train.epochs
        return last or (every > 0 and (epoch + 1) % every == 0)

    def train_epoch(self, epoch: int) -> dict[str, float] | None:
        """One epoch from the saved position; None if ``train.max_steps`` stopped it."""
        t = self.config.train
        steps = self.source.steps(epoch)
        start = self.position["step_in_epoch"]
        if start == 0:
            self.epoch_totals = self._zero_totals()
        totals = self.epoch_totals  # carries a resumed epoch's partial sums
        self.net.train()
        began = time.perf_counter() - totals["seconds"]
        bar = progress_bar(
            total=steps,
            initial=start,
            desc=f"epoch {epoch + 1}/{t.epochs}",
            unit="step",
            show=t.progress and self.dist.is_main,
            leave=False,
        )
        fetched = time.perf_counter()
        for step, batch in enumerate(self.source.batches(epoch, start), start):
            totals["wait"] += time.perf_counter() - fetched
            totals["skipped"] += batch.bad_videos
            if len(batch.labels):
                self.train_step(batch.clips, batch.labels, epoch, step, steps, totals)
            self.position.update(step_in_epoch=step + 1, global_step=self.position["global_step"] + 1)
            totals["seconds"] = time.perf_counter() - began
            self._update_bar(bar, totals, began)
            if self._should_stop_or_save(step + 1):
                bar.close()
                return None
            fetched = time.perf_counter()
        bar.close()
        if not all_sum([totals["count"]], self.device)[0]:
            raise DataError(
                f"epoch {epoch + 1} trained on no clip: all {int(totals['skipped'])} videos it drew could "
                f"not be decoded (or every step was skipped); run videoperlin check-data on the data"
            )
        return self._epoch_summary(totals, time.perf_counter() - began)

    #: Consecutive rejected steps (non-finite, or a gradient norm out of range) after which the run stops.
    MAX_BAD_STREAK = 10
    #: Extra attempts at a micro-batch whose loss or gradients were rejected (without accumulation).
    BAD_STEP_RETRIES = 2

    def train_step(self, clips, labels, epoch: int, step: int, steps: int, totals: dict[str, float]) -> None:
        """Forward/backward one micro-batch; step the optimiser at accumulation boundaries.

        A step whose loss or gradient is non-finite, or whose gradient norm is far outside its recent
        range (:class:`GradNormGuard`: finite nonsense, such as a wrong kernel's 1e36), is retried
        after restoring the BatchNorm statistics and RNG state; if it is still rejected (or
        gradients are being accumulated) the step is skipped and counted (``nonfinite_steps``,
        ``outlier_steps``), and a streak of skips is an error.
        """
        accum = self.config.train.accum_steps
        boundary = (step + 1) % accum == 0 or step + 1 == steps
        labels = labels.to(self.device)
        inputs = self.prepare(clips)
        buffers = [b.detach().clone() for b in self.task_net.buffers()]
        rng = rng_state()  # a retry must draw the same dropout masks
        attempts = 1 + (self.BAD_STEP_RETRIES if accum == 1 else 0)
        for attempt in range(attempts):
            generator = self.step_generator()  # the same draws on every attempt (and after a resume)
            logits, loss, problem = self._forward_backward(inputs, labels, boundary, accum, generator)
            if problem is None:
                break
            self._restore_buffers(buffers)
            restore_rng(rng)
            self.optimizer.zero_grad(set_to_none=True)
            totals["retried"] = totals.get("retried", 0.0) + (attempt + 1 < attempts)
        if problem is not None:
            self._skip_bad_step(problem, epoch, step, totals)
            return
        self.bad_streak = 0
        if boundary:
            self.set_lr(epoch, step, steps)
            if self.scaler:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        totals["loss"] += float(loss.detach()) * len(labels)
        if logits is not None:
            totals["correct"] += float((logits.argmax(1) == labels).sum())
        totals["count"] += len(labels)

    def step_generator(self) -> torch.Generator:
        """The current step's own generator (masks, mixing, erasing): a function of (train.seed, step)."""
        return torch.Generator().manual_seed(self.config.train.seed * 1_000_003 + self.position["global_step"])

    def _forward_backward(self, inputs, labels, boundary: bool, accum: int, generator: torch.Generator):
        """Loss and gradients of one micro-batch, and what is wrong with them (None: nothing).

        At an optimiser step (without a grad scaler, which handles fp16 overflow itself) the total
        gradient norm is read once (one device sync) and judged by :attr:`grad_guard`.
        """
        net = self.net
        sync = (
            net.no_sync()
            if isinstance(net, nn.parallel.DistributedDataParallel) and not boundary
            else contextlib.nullcontext()
        )
        with sync:
            with self.autocast():
                loss, logits = self.objective.loss(self.net, inputs, labels, generator)
            if not torch.isfinite(loss):
                return logits, loss, "non-finite loss"
            scaled = loss / accum
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        if boundary and self.scaler is None:
            grads = [p.grad for p in self.task_net.parameters() if p.grad is not None]
            if grads:
                # float64: a finite 1e36 gradient must not overflow into an inf norm (it is "finite nonsense")
                norms = torch.stack([torch.linalg.vector_norm(g, dtype=torch.float64) for g in grads])
                norm = float(torch.linalg.vector_norm(norms))
                return logits, loss, self.grad_guard.check(norm)
        return logits, loss, None

    def _restore_buffers(self, buffers: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for saved, current in zip(buffers, self.task_net.buffers()):
                current.copy_(saved)

    def _skip_bad_step(self, problem: str, epoch: int, step: int, totals: dict[str, float]) -> None:
        kind = "outliers" if problem.startswith("gradient norm") else "nonfinite"
        totals[kind] = totals.get(kind, 0.0) + 1
        self.bad_streak = getattr(self, "bad_streak", 0) + 1
        log.warning(
            "%s at epoch %d, step %d even after retries (%s): step skipped",
            problem,
            epoch + 1,
            step + 1,
            self.precision.describe(),
        )
        if self.bad_streak >= self.MAX_BAD_STREAK:
            raise NumericsError(
                f"{self.bad_streak} rejected training steps in a row (epoch {epoch + 1}, step "
                f"{step + 1}; last: {problem}; {self.precision.describe()}); lower optim.lr or set "
                f"train.amp=off"
            )

    def _should_stop_or_save(self, step_in_epoch: int) -> bool:
        t = self.config.train
        accum_boundary = step_in_epoch % t.accum_steps == 0
        if t.checkpoint_every and accum_boundary and self.position["global_step"] % t.checkpoint_every == 0:
            self.save("last")
        if t.max_steps and accum_boundary and self.position["global_step"] >= t.max_steps:
            self.save("last")
            log.info("stopped at step %d (train.max_steps); --resume continues", self.position["global_step"])
            return True
        return False

    def _update_bar(self, bar, totals: dict[str, float], began: float) -> None:
        if bar.disable:
            return
        elapsed = max(time.perf_counter() - began, 1e-9)
        count = max(totals["count"], 1)
        accuracy = {"acc": f"{totals['correct'] / count:.3f}"} if self.objective.uses_labels else {}
        bar.set_postfix(
            loss=f"{totals['loss'] / count:.3f}",
            **accuracy,
            clips_s=f"{totals['count'] / elapsed:.1f}",
            wait=f"{totals['wait'] / elapsed:.0%}",
        )
        bar.update(1)

    def _epoch_summary(self, totals: dict[str, float], seconds: float) -> dict[str, float]:
        loss, correct, count, skipped, wait = all_sum(
            [totals["loss"], totals["correct"], totals["count"], totals["skipped"], totals["wait"]], self.device
        )
        accuracy = {"train_acc": correct / max(count, 1)} if self.objective.uses_labels else {}
        return {
            "train_loss": loss / max(count, 1),
            **accuracy,
            "lr": max(group["lr"] for group in self.optimizer.param_groups),
            "clips": int(count),
            "clips_per_s": count / max(seconds, 1e-9),
            "data_wait": wait / self.dist.world_size / max(seconds, 1e-9),
            "time_s": seconds,
            "bad_videos": int(skipped),
            "nonfinite_steps": int(totals.get("nonfinite", 0)),
            "outlier_steps": int(totals.get("outliers", 0)),
            "retried_steps": int(totals.get("retried", 0)),
            "precision": self.precision.describe(),
            "step": self.position["global_step"],
        }

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The objective's validation metrics on the held-out clips (classify: video-level top-1/top-5 with
        the softmax averaged over each video's windows, clip-level top-1, loss; mae: reconstruction loss)."""
        self.net.eval()
        validator, bad = self.objective.validator(), 0.0
        for batch in self.source.val_batches():
            bad += batch.bad_videos
            if len(batch.labels):
                assert batch.videos is not None, "validation batches name each clip's video"
                with self.autocast():
                    validator.add(self.net, self.prepare(batch.clips), batch.labels.to(self.device), batch.videos)
        *counts, bad = all_sum([*validator.counts(), bad], self.device)
        metrics = validator.metrics(counts)
        if not metrics["val_videos"]:
            raise DataError(
                f"no validation video could be decoded ({int(bad)} skipped); run videoperlin check-data "
                f"on the validation data"
            )
        return {**metrics, "val_bad_videos": int(bad)}

    def write_figures(self) -> None:
        """``figures/conv1.png`` (the first layer's kernels: conv1, or a transformer's patch embedding) and
        the objective's own pictures (mae: ``figures/mae.png``)."""
        if not self.dist.is_main:
            return
        from videoperlin.models.kernels import save_kernel_panel

        stem, name = architecture_of(self.model).stem, architecture_of(self.model).name
        save_kernel_panel(self.model, self.run.run_dir.figures / "conv1.png", f"{name} {stem} after {self.config.task}")
        plot_run_curves(
            self.run.run_dir.metrics(), self.run.run_dir.figures / "curves.png", f"{name}, {self.run.run_dir.path.name}"
        )
        self.objective.write_figures(
            self.run.run_dir.figures, f"{name}, {self.objective.name}", self._validation_sample
        )

    @torch.no_grad()
    def _validation_sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first validation batch, prepared (inputs, video ids): what figures show."""
        batch = next(iter(self.source.val_batches()))
        assert batch.videos is not None, "validation batches name each clip's video"
        return self.prepare(batch.clips), batch.videos
