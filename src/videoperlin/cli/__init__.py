"""The ``videoperlin`` command line: one table of commands, :data:`COMMANDS`.

Each command is a :class:`Command`: its one-line help, the function that adds its flags and the
function that runs it (whose docstring is the command's description). Flags that set config
fields are generated from the fields themselves (type, choices, doc), so they cannot drift from
the configs. Built on the standard library's argparse: flag names such as ``--num-videos``,
``--shard I/N`` and a bare ``--gif`` are fixed by the project's interface and argparse spells
them exactly so. Every user error -- a bad flag or a :class:`~videoperlin.errors.VideoperlinError`
raised later -- is printed as one line, ``videoperlin: error: ...``, with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from videoperlin.cli import analysis, models, study, training, vpn
from videoperlin.errors import VideoperlinError
from videoperlin.utils.memory import configure_allocator


@dataclass(frozen=True)
class Command:
    """One command: help line, flags, action -- or a group of sub-commands."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    run: Callable[[argparse.Namespace], int] | None = None
    sub: dict[str, Command] = field(default_factory=dict)


COMMANDS: dict[str, Command] = {
    "families": Command("list the formula families of synthetic clips", vpn.families_arguments, vpn.run_families),
    "generate": Command(
        "render a synthetic clip set (VPN or another family) to disk", vpn.generate_arguments, vpn.run_generate
    ),
    "preview": Command("draw a grid of a family's classes (and a GIF)", vpn.preview_arguments, vpn.run_preview),
    "pretrain": Command(
        "pre-training on synthetic clips rendered on the fly (VPN by default)",
        training.pretrain_arguments,
        training.run_training,
    ),
    "train": Command(
        "train on real video, from scratch or --init CHECKPOINT", training.train_arguments, training.run_training
    ),
    "evaluate": Command(
        "evaluate a checkpoint on its run's data (or other data)", training.evaluate_arguments, training.run_evaluate
    ),
    "check-data": Command("scan a dataset for problems", training.check_data_arguments, training.run_check_data),
    "prepare": Command(
        "re-encode a dataset at its training resolution (same layout, split files and manifest)",
        training.prepare_arguments,
        training.run_prepare,
    ),
    "config": Command(
        "print every run-config field with its value, type and doc", training.config_arguments, training.run_config
    ),
    "transfer": Command(
        "transfer study: does VPN initialization help on real video?", study.transfer_arguments, study.run_transfer
    ),
    "models": Command("list models with parameters and FLOPs", models.models_arguments, models.run_models),
    "convert": Command(
        "convert weights between videoperlin, torchvision, mmaction2 and 3D-ResNets-PyTorch",
        models.convert_arguments,
        models.run_convert,
    ),
    "inflate": Command("inflate 2D ResNet weights to a 3D model", models.inflate_arguments, models.run_inflate),
    "visualize": Command(
        "pictures of kernels and samples",
        sub={
            "kernels": Command(
                "conv1 kernels of checkpoints side by side", analysis.kernels_arguments, analysis.run_kernels
            ),
            "samples": Command("a real clip beside VPN clips (GIF)", analysis.samples_arguments, analysis.run_samples),
        },
    ),
    "tuning": Command(
        "direction/orientation tuning of a layer with drifting gratings", analysis.tuning_arguments, analysis.run_tuning
    ),
    "predictors": Command(
        "does a pre-training property (VPN accuracy, direction selectivity) predict transfer? rank correlations",
        analysis.predictors_arguments,
        analysis.run_predictors,
    ),
    "plot": Command(
        "plots of runs",
        sub={
            "curves": Command("a metric vs epoch for several runs", analysis.curves_arguments, analysis.run_curves),
        },
    ),
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block), like every other error of the program."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"videoperlin: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _add_commands(parser: argparse.ArgumentParser, commands: dict[str, Command], dest: str) -> None:
    sub = parser.add_subparsers(dest=dest, metavar="COMMAND", required=True)
    for name, command in commands.items():
        description = command.run.__doc__ if command.run else command.help
        child = sub.add_parser(name, help=command.help, description=description)
        if command.sub:
            _add_commands(child, command.sub, f"{dest}_{name}")
            continue
        if command.arguments:
            command.arguments(child)
        _add_verbosity(child)
        child.set_defaults(func=command.run)


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q`` and ``-v`` on every command, from here (a command may define ``-q`` with its own help)."""
    if "-q" not in parser._option_string_actions:
        parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no log lines but errors")
    # SUPPRESS: given after the command it sets verbose; not given, it leaves `videoperlin -v COMMAND`'s value
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug messages")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, built from :data:`COMMANDS`."""
    import videoperlin

    parser = Parser(prog="videoperlin", description=videoperlin.__doc__)
    parser.add_argument("--version", action="version", version=f"videoperlin {videoperlin.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    _add_commands(parser, COMMANDS, "command")
    return parser


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed allocation (host or CUDA)."""
    text = str(exc)
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``videoperlin`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the command line as given, for records such as a study's report
    quiet = getattr(args, "quiet", False)  # -q: no progress bar, and only errors on stderr
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR if quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        logging.getLogger(__name__).debug("allocator: %s", configure_allocator())
        return args.func(args)
    except VideoperlinError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        # An error re-raised from a DataLoader worker carries the worker's traceback; keep its last line.
        message = lines[-1].split(": ", 1)[-1] if "Traceback" in str(exc) else " ".join(lines)
        print(f"videoperlin: error: {message}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:
        if not out_of_memory(exc):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
        print(
            f"videoperlin: error: out of memory ({first}); lower data.size, data.frames or train.batch_size, "
            f"or free memory (the up-front estimate missed this one: please report it)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(
            "videoperlin: interrupted; rerun the same command to continue (training runs: add --resume)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
