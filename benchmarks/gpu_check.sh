#!/usr/bin/env bash
# Every GPU check of the project in one prepared run, sized for a short lease of a GPU machine
# (about 8 minutes on an H100/H200, each part under its own time limit so one hang cannot eat
# the rest). Run it from the repository root on a machine with CUDA, PyTorch and transformers 5:
#
#     bash benchmarks/gpu_check.sh              # results in ./gpu-results (or in $OUT when set)
#
# It needs no project install: the benchmarks and the CUDA tests import only torch,
# transformers and the repository's own packages (put on PYTHONPATH here). Wheels in ./.whl
# (another transformers, say) are installed first into /tmp/site, ahead of what the machine has.
#
# In order of what matters most:
#   1. tests/models/test_fast_decode_cuda.py: CUDA-graph replay gives exactly the static step's
#      codes (plain, melody, Coco-Mulla, per-take generators), progress and cancel with queued
#      steps, torch.compile's reduce-overhead mode;
#   2. bench_musicgen.py --official: stock vs fast (CUDA graphs), small / medium / large, fp16;
#   3. bench_musicgen.py --sizes medium --mode graph compiled: CUDA graphs vs torch.compile;
#   4. bench_cocomulla.py --official large: the adapter's cost on the fast loop;
#   5. bench_coalesce.py --size medium: concurrent callers batched.
set -uo pipefail

PY=${PYTHON:-python3}
RESULTS=${OUT:-gpu-results}
mkdir -p "$RESULTS"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

# part NAME SECONDS COMMAND...: run one part under its limit, its output in $RESULTS/NAME.txt
part() {
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s): $*"
    local start=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | grep -v -e "Warning" -e "warnings.warn" -e "^\[transformers\]" \
        | tee "$RESULTS/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    echo
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    "$PY" -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__, '| cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
} 2>&1 | tee "$RESULTS/machine.txt"
echo
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check.sh: torch sees no CUDA device here; run it on a machine with a GPU" >&2
    exit 2
fi

part cuda_tests 150 "$PY" -m pytest -q -p no:cacheprovider tests/models/test_fast_decode_cuda.py
part musicgen 180 "$PY" benchmarks/bench_musicgen.py --official --device cuda --dtype float16 --seconds 5 --repeats 1
part musicgen_compile 150 "$PY" benchmarks/bench_musicgen.py --sizes medium --device cuda --dtype float16 --seconds 5 \
    --repeats 1 --mode graph compiled
part cocomulla 90 "$PY" benchmarks/bench_cocomulla.py --official large --device cuda --dtype float16 --seconds 5 --repeats 1
part coalesce 60 "$PY" benchmarks/bench_coalesce.py --size medium --device cuda --dtype float16 --repeats 1
echo "results in $RESULTS/"
