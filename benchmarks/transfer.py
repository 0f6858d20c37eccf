"""Thin wrapper kept for old commands: ``python benchmarks/transfer.py ARGS`` = ``videoperlin transfer ARGS``.

The study lives in the package (:mod:`videoperlin.study`); its default protocol is the built-in
``configs/transfer_default.yaml``. Protocol keys are nested now: ``--set finetune.train.epochs=60``.
"""

import sys

from videoperlin.cli import main

if __name__ == "__main__":
    sys.exit(main(["transfer", *sys.argv[1:]]))
