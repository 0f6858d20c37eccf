#!/usr/bin/env bash
# Every GPU check of the project in one run (benchmarks/results/gpu/ holds its output from an H200):
#   bash benchmarks/gpu.sh OUT [SECONDS]        (after bash benchmarks/gpu_data.sh; carry .gpudata)
# 1. the -m gpu tests, 2. VPN generation clips/s (benchmarks/generate.py), 3. training clips/s and the data's
# share of a VPN step (benchmarks/training.py), 4. the engine's own data_wait in `videoperlin pretrain`,
# 5. the GPU transfer study (configs/transfer_gpu.yaml: JHMDB split 1 and Weizmann from .gpudata/) in what is
#    left of SECONDS (default 540).
# Runs from the repository root with the package importable (pip install -e . or PYTHONPATH=src).
set -u
out=${1:?usage: benchmarks/gpu.sh OUT [SECONDS]}
budget=${2:-540}
work=$(mktemp -d)
mkdir -p "$out"
export PYTHONUNBUFFERED=1
log="$out/bench.log"
step() { echo -e "\n===== $* ($(date +%T), ${SECONDS}s)" | tee -a "$log"; }

step environment
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import torch, sys; print('python', sys.version.split()[0], '| torch', torch.__version__, '| CUDA',
torch.version.cuda, '| cuDNN', torch.backends.cudnn.version(), '|', torch.cuda.get_device_name())"; } 2>&1 | tee -a "$log"

step "pytest -m gpu"
timeout 200 python3 -m pytest -m gpu -q -rA -p no:cacheprovider tests/ > "$out/tests.log" 2>&1
echo "pytest exit $?; $(tail -1 "$out/tests.log")" | tee -a "$log"

step "benchmarks/generate.py"
timeout 150 python3 benchmarks/generate.py --skip-cpu --seconds 0.6 --json "$out/generate.json" 2>&1 | tee -a "$log"

step "benchmarks/training.py"
timeout 120 python3 benchmarks/training.py --json "$out/training.json" 2>&1 | tee -a "$log"

step "videoperlin pretrain: the engine's data_wait (motion, r3d18, 16x112x112, batch 64, bf16)"
for rng in generator counter; do
  timeout 90 python3 -m videoperlin pretrain --preset motion --num-videos 3200 --set vpn.val_videos=256 --epochs 2 \
    --batch-size 64 --size 112 --frames 16 --model r3d18 --amp bf16 --set train.channels_last=true \
    --set vpn.rng=$rng --out "$work/pretrain-$rng" -q >> "$log" 2>&1
  echo "rng=$rng: $(tail -1 "$work/pretrain-$rng/metrics.jsonl" 2>/dev/null)" | tee -a "$log"
done

left=$((budget - SECONDS - 15))
step "videoperlin transfer --config transfer_gpu (${left}s left)"
if [ "$left" -gt 60 ]; then
  timeout "$left" python3 -m videoperlin transfer --config transfer_gpu --out "$work/transfer" \
    > "$out/transfer.log" 2>&1   # its data: .gpudata/ (bash benchmarks/gpu_data.sh, carried)
  echo "transfer exit $?" | tee -a "$log"
  cp "$work/transfer/report.md" "$work/transfer/results.csv" "$out/" 2>/dev/null
fi
step done
