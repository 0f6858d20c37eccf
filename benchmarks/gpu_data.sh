#!/usr/bin/env bash
# The real video configs/transfer_gpu.yaml reads, small enough to carry to a GPU machine (the device's
# 64 MiB upload: carry .gpudata). JHMDB's 186 MB originals did not fit; prepared at short side 128 it is ~18 MiB.
#   bash benchmarks/gpu_data.sh [DATA]     (default $VIDEOPERLIN_DATA; rerun to finish an interrupted copy)
# Writes .gpudata/jhmdb (prepared, with the HMDB-51 split-1 files beside the class folders), .gpudata/weizmann
# (prepared) and .gpudata/manifest.csv (the Weizmann rows of the shared manifest: dataset,path,label,group).
set -eu
src=${1:-${VIDEOPERLIN_DATA:?give the data folder as the argument or set VIDEOPERLIN_DATA (docs/guide/data.md)}}
vp() { if command -v videoperlin >/dev/null; then videoperlin "$@"; else python3 -m videoperlin "$@"; fi; }
vp prepare "$src/jhmdb" --short-side 128 --out .gpudata/jhmdb -q
cp "$src"/annotations/hmdb51/*_test_split1.txt .gpudata/jhmdb/
vp prepare "$src/weizmann" --short-side 128 --out .gpudata/weizmann -q
awk -F, 'NR == 1 || $1 == "weizmann" {print $1 "," $2 "," $3 "," $4}' "$src/manifest.csv" > .gpudata/manifest.csv
du -sh .gpudata
