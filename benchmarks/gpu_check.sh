#!/usr/bin/env bash
# GPU checks and CLIP throughput on a CUDA machine that has torch and torchvision but maybe
# not this project installed (no network needed):
#   bash benchmarks/gpu_check.sh [WHEEL_DIR] [STEPS]
# STEPS: any of diag, bench, tests (default: all three, in that order). VARIANTS (";"-separated bench_clip
# flag sets) overrides the benchmark variants.
# WHEEL_DIR (optional): wheels installed first into /tmp/site (clip-anytorch, ftfy, wcwidth,
# setuptools<81, nvidia-nvimgcodec-cu13, nvidia-nvjpeg). Without an install, the source tree
# is imported as `mmcurate` through symlinks mmcurate/{filters,pipelines,schemas}, made here
# and removed on exit. Logs go to $OUT (or /tmp/gpu_check).
set -u
export PYTHONUNBUFFERED=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOGS=${OUT:-/tmp/gpu_check}; mkdir -p "$LOGS"
if [ -n "${1:-}" ] && [ -d "$1" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$1"/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
cd "$ROOT"
if ! python3 -c "import mmcurate.filters" 2>/dev/null; then
  for sub in filters pipelines schemas; do ln -s "../$sub" "$ROOT/mmcurate/$sub"; done
  trap 'rm -f "$ROOT"/mmcurate/{filters,pipelines,schemas}' EXIT
fi
export PYTHONPATH=$ROOT:${PYTHONPATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
STEPS=${2:-diag,bench,tests}
QUIET="nvjpeg2k|nvtiff|NVIDIA.*wheel|nvJPEG2000|nvTIFF|pkg_resources"
case $STEPS in *diag*) python3 benchmarks/diag_decode.py --seconds 2 2>&1 | grep -v -E "$QUIET" | tee "$LOGS/diag_decode.log";; esac
case $STEPS in *bench*)
B="python3 benchmarks/bench_clip.py --n 40000 --batch 8192 --chunk 512 --prep-threads 2"
# default: the best configuration so far, then the untried decoders and CUDA-graph replay
BEST="--compile --prep-threads 3 --tokenize-workers 2"
DEFAULT="--decoder torchvision $BEST;--decoder cpu $BEST;--decoder mixed $BEST;--decoder nvimgcodec-gpu $BEST;--decoder torchvision --compile-mode reduce-overhead --prep-threads 3 --tokenize-workers 2"
IFS=';' read -ra SETS <<< "${VARIANTS:-$DEFAULT}"
for flags in "${SETS[@]}"; do
  echo "== $B $flags"
  $B $flags --json "$LOGS/bench_$(echo $flags | tr -c 'a-z0-9' _).json" 2>&1 | grep -v -E "$QUIET" | tail -3
done
;; esac
case $STEPS in *tests*) python3 -m pytest -q -p no:cacheprovider tests/gpu 2>&1 | tee "$LOGS/pytest_gpu.log" | tail -15;; esac
