#!/usr/bin/env bash
# One lent-GPU session's checks: the GPU tests, the whole suite on a CUDA machine (every `device=auto` path
# then runs on the GPU), and the training-throughput benchmark (ours vs HF LlamaForCausalLM, MFU) at GPT-2-small
# size. Uses the machine's own python and torch (never installs torch); logs go to $OUT (or ./runs/gpu).
#
#   bash scripts/gpu_check.sh gpu-tests | all-tests | bench [EXTRA BENCH FLAGS]
set -u
what=${1:?gpu-tests, all-tests or bench}
shift
out=${OUT:-runs/gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}

case $what in
  gpu-tests)  # what CI can never run
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    $py -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    timeout 200 $py -m pytest -q -m gpu tests -p no:cacheprovider --continue-on-collection-errors 2>&1 | tee "$out/gpu_tests.log" | tail -15 ;;
  all-tests)  # everything else, 8 workers; device=auto now means the GPU
    timeout 300 $py -m pytest -q -n 8 -m "not gpu" tests -p no:cacheprovider --continue-on-collection-errors 2>&1 | tee "$out/all_tests.log" \
      | tail -25 ;;
  bench)  # the MFU target is for the compiled bf16 step at GPT-2-small size, B16 x T1024
    echo "== $*"
    timeout 300 $py benchmarks/bench_train_throughput.py --preset gpt2-small --device cuda --dtype bf16 \
      --seq-len 1024 --vocab-size 50304 --rounds 5 --steps 5 "$@" 2>&1 | tee -a "$out/bench.log" | tail -3 ;;
esac
