"""Each family's peak memory while rendering, per output pixel: the figure the up-front check counts.

``SyntheticDataset.batch`` refuses a render whose estimate, ``clips x frames x height x width x
Family.render_bytes_per_pixel``, exceeds the memory free now. This measures the real peak of each
registered family, in a fresh process per family: the growth of the peak resident size when a batch is
rendered after a one-clip warm-up, divided by the batch's output pixels (one channel, one frame). A
declared figure above the measured one would refuse renders that fit; one far below lets an
out-of-memory through to the fallback message.

    python benchmarks/render_memory.py [--clips 8] [--frames 16] [--size 128]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

MEASURE = """
import json, resource, sys, torch
torch.set_num_threads(1)
from videoperlin.api import SyntheticClips
family, clips, frames, size = sys.argv[1], *map(int, sys.argv[2:5])
ds = SyntheticClips(family, num_videos=max(clips, 2), frames=frames, size=size).dataset
ds.batch([0])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
ds.batch(range(clips))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"measured": (after - before) / (clips * frames * size * size),
                  "declared": type(ds.family).render_bytes_per_pixel}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    from videoperlin.vpn.family import load_families

    print(f"{'family':<10} {'measured B/px':>14} {'declared B/px':>14}")
    for name in sorted(load_families()):
        argv = [sys.executable, "-c", MEASURE, name, str(args.clips), str(args.frames), str(args.size)]
        result = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
        print(f"{name:<10} {result['measured']:>14.1f} {result['declared']:>14d}")


if __name__ == "__main__":
    main()
