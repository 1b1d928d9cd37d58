#!/usr/bin/env bash
# GPU smoke check on a machine without network: SFT then DPO (~50 steps each) for one role on a
# Qwen2.5-0.5B-shaped random-init model in bf16; prints tokens/s and peak memory per phase, then a
# JSON summary as the last line; then two 2-step padding-free SFT trials of one key check the shared
# prepared set (data.prepared_cache) on the device: stored, then loaded, same first loss. torch and transformers must be installed; trl, datasets and the
# few small packages tracebridge.train needs travel as wheels in .whl/ (fill it where pip works):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl trl==1.16.0 datasets==5.2.0 pyarrow==24.0.0 dill==0.4.1 multiprocess==0.70.19 \
#     pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 orjson==3.13.0
#
# The model YAML (and any model key=value) goes through the typed schema as in every command when
# omegaconf is installed (add omegaconf and antlr4-python3-runtime wheels to .whl/ for a machine without it);
# without it, unknown keys and wrong number types are still refused by name. A bad model config exits 2.
#
# Usage:    scripts/gpu_check.sh                      (defaults: --model configs/model/qwen2.5-0.5b.yaml --steps 50)
# Override: scripts/gpu_check.sh --steps 100 --batch-size 16 --seq-len 2048
# Model key: scripts/gpu_check.sh --steps 100 num_hidden_layers=12 dtype=bfloat16
# CPU:      scripts/gpu_check.sh --model configs/model/tiny.yaml --steps 3 --rows 16 --seq-len 128
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SITE=${GPU_CHECK_SITE:-/tmp/tracebridge_gpu_site}

if ! "$PY" -c "import trl, datasets, pydantic, orjson" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "gpu_check: trl/datasets missing and no wheels in .whl/ (see the header of $0)" >&2
    exit 2
  fi
  wheels=()
  for w in .whl/*.whl; do
    case "$(basename "$w")" in
      pyarrow-*)  # only when the installed pyarrow is older than datasets needs
        "$PY" -c "import pyarrow,sys; sys.exit(int(pyarrow.__version__.split('.')[0]) < 24)" 2>/dev/null || wheels+=("$w") ;;
      *) wheels+=("$w") ;;
    esac
  done
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}"
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
"$PY" -c "import torch, transformers, trl, datasets; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'transformers', transformers.__version__, 'trl', trl.__version__, 'datasets', datasets.__version__)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec "$PY" -m tracebridge.train.gpu_check "$@"
