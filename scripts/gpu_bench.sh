#!/usr/bin/env bash
# The one device command for the GPU training benchmarks (issue 10.1-10.2) and the training
# smoke check (issue 6): installs the carried wheels, runs scripts/bench_train_gpu.py on the
# Qwen2.5-0.5B then 1.5B shape (SFT then DPO, TRL defaults vs optimized, equivalence checks,
# 0.5B SFT lever ablation, kernel profile of 1.5B SFT), then scripts/gpu_check.sh. Output is
# tee'd into $OUT (bench.log, results.jsonl, summary.json, gpu_check.log). Wall time: the bench
# starts no case after BENCH_DEADLINE_S (default 270 s), gpu_check is capped at 150 s: ~6-7 min.
#
# Wheels (.whl/ is git-ignored: fill it here, where pip works; ~55 MB, one version of each):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 liger-kernel==0.8.5 \
#     pyarrow==24.0.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
#     typing-inspection==0.4.5 orjson==3.13.0
# (pyarrow is installed only where the device's is older than datasets needs; pydantic and
# orjson are for gpu_check; the rest is on the device image, see KINDS.md.)
#
# Device:   run(command="bash scripts/gpu_bench.sh", carry=[".whl"], timeout_s=600)
# Override: BENCH_ARGS="--shapes configs/model/qwen2.5-0.5b.yaml --recipes sft" GPU_CHECK=0 bash scripts/gpu_bench.sh
# CPU:      SMOKE=1 OUT=/tmp/out bash scripts/gpu_bench.sh      (tiny model, same code path, ~30 s)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu_bench_out}
SITE=${SITE:-/tmp/site}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1 HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1
start=$(date +%s)

# 1. carried wheels (only when trl/datasets, or liger on a GPU run, are not importable already)
need="import trl, datasets"
[ -z "${SMOKE:-}" ] && need="$need, liger_kernel"
if ! "$PY" -c "$need" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  wheels=()
  for w in .whl/*.whl; do
    case "$(basename "$w")" in
      pyarrow-*)  # only when the installed pyarrow is older than datasets needs
        "$PY" -c "import pyarrow,sys; sys.exit(int(pyarrow.__version__.split('.')[0]) < 24)" 2>/dev/null || wheels+=("$w") ;;
      *) wheels+=("$w") ;;
    esac
  done
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}" \
    || { echo "gpu_bench: wheel install failed" >&2; exit 2; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'EOF' 2>&1 | tee "$OUT/env.txt"
import importlib.metadata as md, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
for m in ("transformers", "trl", "datasets", "accelerate", "liger-kernel", "triton", "pyarrow", "tokenizers"):
    try:
        print(m, md.version(m))
    except md.PackageNotFoundError:
        print(m, "MISSING")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader | tee -a "$OUT/env.txt"

# 2. the benchmark (0.5B then 1.5B; SFT then DPO; ablation; profile)
if [ -n "${SMOKE:-}" ]; then
  BENCH_DEFAULT="--cpu-smoke --ablation"
else
  BENCH_DEFAULT="--ablation --deadline-s ${BENCH_DEADLINE_S:-270}"
fi
# shellcheck disable=SC2086
timeout "${BENCH_TIMEOUT_S:-390}" "$PY" scripts/bench_train_gpu.py ${BENCH_ARGS:-$BENCH_DEFAULT} --out "$OUT" \
  2>&1 | tee "$OUT/bench.log"
bench_rc=${PIPESTATUS[0]}

# 3. the training engineer's smoke check (issue 6), if present
check_rc=0
if [ "${GPU_CHECK:-1}" = 0 ]; then
  echo "gpu_bench: GPU_CHECK=0; gpu_check skipped" | tee "$OUT/gpu_check.log"
elif [ -f scripts/gpu_check.sh ]; then
  if [ -n "${SMOKE:-}" ]; then
    CHECK_ARGS=${CHECK_ARGS:---model configs/model/tiny.yaml --steps 6 --rows 24 --seq-len 256 --chars 200 --batch-size 4 --lr 3e-3}
  fi
  # shellcheck disable=SC2086
  GPU_CHECK_SITE="$SITE" timeout "${CHECK_TIMEOUT_S:-150}" bash scripts/gpu_check.sh ${CHECK_ARGS:-} \
    2>&1 | tee "$OUT/gpu_check.log"
  check_rc=${PIPESTATUS[0]}
else
  echo "gpu_bench: scripts/gpu_check.sh not found; skipped" | tee "$OUT/gpu_check.log"
fi
echo "gpu_bench: bench rc=$bench_rc, gpu_check rc=$check_rc, wall $(( $(date +%s) - start )) s"
grep -h "^ratio optimized" "$OUT/bench.log" | tail -1
[ "$bench_rc" -eq 0 ] && [ "$check_rc" -eq 0 ]
