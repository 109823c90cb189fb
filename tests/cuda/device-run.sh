#!/usr/bin/env bash
# Runs the CUDA checks of `ovr` on a machine with an NVIDIA GPU and no network,
# using binaries built elsewhere by tests/cuda/build.sh (`--package` puts this
# script, bin/ovr, bin/ovr-it and configs/ into one bundle). No cargo needed
# there. Steps: the GPU tests of tests/it/gpu.rs (bin/ovr-it gpu::, CUDA vs
# CPU results; a test that skips for want of a GPU counts as failed here),
# then `ovr bench extract` and `ovr bench train` on the GPU.
#
# Usage: device-run.sh CACHE_DIR [--bin PATH] [--config FILE] [--device cuda:N]
#                      [--log FILE] [--step-timeout SECONDS] [--cpu-baseline]
#   CACHE_DIR   an ovr cache carried beside the bundle (what `--cache-dir` takes):
#               weights/efficientnet-lite0.safetensors, datasets/emoji40/ and,
#               to skip re-extraction, features/ (build.sh --package --cache DIR
#               copies exactly that subset into the bundle's cache/)
#   --bin       the CUDA build of ovr (default: bin/ovr beside this script,
#               else target-cuda/release/ovr of the repo); the test binary is
#               bin/ovr-it beside it (the step is left out when it is missing)
#   --config    default: configs/emoji40.toml beside this script, else the repo's
#   --device    default cuda:0
#   --log       default: $OUT/device-run.log when $OUT is set, else ./device-run-<time>.log
#   --step-timeout  seconds per step (default 240)
#   --cpu-baseline  also run the two benches on --device cpu, for comparison
# Extra arguments for the benches: OVR_EXTRACT_ARGS (default
# "--batch-sizes 1,32,128,256"), OVR_TRAIN_ARGS (default "--lanes 1,2,4,8").
# Prints a Markdown summary (and the benches' own tables) on stdout; the log
# file has everything, stderr included. Exit status: 0 when every step passed.
set -uo pipefail

die() { echo "device-run.sh: $*" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." 2>/dev/null && pwd) || repo=""
cache="" bin="" config="" device="cuda:0" log="" step_timeout=240 cpu_baseline=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=${2:-}; shift ;;
    --config) config=${2:-}; shift ;;
    --device) device=${2:-}; shift ;;
    --log) log=${2:-}; shift ;;
    --step-timeout) step_timeout=${2:-}; shift ;;
    --cpu-baseline) cpu_baseline=1 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    -*) die "unknown option \`$1\` (see --help)" ;;
    *) [ -z "$cache" ] || die "one CACHE_DIR only (got \`$cache\` and \`$1\`)"; cache=$1 ;;
  esac
  shift
done
[ -n "$cache" ] || die "usage: device-run.sh CACHE_DIR [options] (see --help)"
[ -d "$cache" ] || die "no cache folder $cache"
cache=$(cd "$cache" && pwd)
case "$step_timeout" in ''|*[!0-9]*) die "--step-timeout takes whole seconds" ;; esac

pick() { for f in "$@"; do [ -n "$f" ] && [ -e "$f" ] && { echo "$f"; return 0; }; done; return 1; }
bin=$(pick "$bin" "$here/bin/ovr" "${repo:+$repo/target-cuda/release/ovr}") \
  || die "no ovr binary: pass --bin (build it with tests/cuda/build.sh --package)"
config=$(pick "$config" "$here/configs/emoji40.toml" "${repo:+$repo/configs/emoji40.toml}") \
  || die "no configs/emoji40.toml: pass --config"

if [ -z "$log" ]; then
  if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then log=$OUT/device-run.log
  else log=$PWD/device-run-$(date +%Y%m%d-%H%M%S).log; fi
fi
: >"$log" || die "cannot write $log"
note() { echo "$*" | tee -a "$log" >&2; }

# 1. The GPU and its driver.
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA driver on this machine"
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>>"$log") \
  || die "nvidia-smi failed (see $log)"
note "GPU: $gpu"

# 2. The CUDA libraries the binary links (cudart, cublas, cublasLt, curand,
# nvrtc: PyTorch's wheels bring them under site-packages/nvidia/*/lib) and
# libcuda.so.1 (the driver's folder).
libdirs=()
add_dir() {
  [ -d "$1" ] || return 0
  local x
  for x in ${libdirs[@]+"${libdirs[@]}"}; do [ "$x" = "$1" ] && return 0; done
  libdirs+=("$1")
}
for py in python3 /opt/torch/.venv/bin/python3; do
  command -v "$py" >/dev/null 2>&1 || [ -x "$py" ] || continue
  while IFS= read -r d; do add_dir "$d"; done < <("$py" - 2>/dev/null <<'EOF'
import glob, os, site, sys
roots = set(site.getsitepackages() + [site.getusersitepackages()] + sys.path)
for r in sorted(r for r in roots if r and os.path.isdir(r)):
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib"))):
        print(d)
EOF
)
done
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64 \
         /usr/local/cuda/targets/x86_64-linux/lib; do
  add_dir "$d"
done
if [ ${#libdirs[@]} -gt 0 ]; then
  LD_LIBRARY_PATH=$(IFS=:; echo "${libdirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH
fi
note "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
missing=$(ldd "$bin" 2>&1 | grep 'not found' || true)
if [ -n "$missing" ]; then
  note "missing libraries for $bin:"; note "$missing"
  die "install or carry the CUDA 13 runtime libraries (pip wheels nvidia-cuda-runtime, nvidia-cublas, nvidia-curand, nvidia-cuda-nvrtc) and rerun"
fi
ldd "$bin" 2>&1 | grep -E 'libcuda|libcudart|libcublas|libcurand|libnvrtc' >>"$log"
"$bin" --help >/dev/null 2>>"$log" || die "$bin does not start (see $log)"

# 3. The benches.
extract_args=${OVR_EXTRACT_ARGS:---batch-sizes 1,32,128,256}
train_args=${OVR_TRAIN_ARGS:---lanes 1,2,4,8}
rows=()
out_last=""
run_step() {
  local name=$1; shift
  local out t0 t1 rc
  note ""
  note "## $name"
  note "\$ $*"
  t0=$(date +%s.%N)
  out=$(timeout --kill-after=10 "$step_timeout" "$@" 2> >(tee -a "$log" >&2))
  rc=$?
  t1=$(date +%s.%N)
  echo "$out" >>"$log"
  out_last=$out
  echo ""; echo "### $name"; echo ""; echo "$out"
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
  local status=ok
  [ $rc -eq 0 ] || status="failed (exit $rc$([ $rc -eq 124 ] && echo ', timed out'))"
  rows+=("| $name | $status | $secs |")
}
tests_bin=$(dirname "$bin")/ovr-it
if [ -x "$tests_bin" ]; then
  # The GPU tests are always ignored (visible as such in a plain run);
  # --ignored runs them, and each fails naming why when no GPU is usable.
  # shellcheck disable=SC2016
  run_step "GPU tests (ovr-it gpu::)" env OVR_CACHE="$cache" sh -c 'exec "$0" "$@" 2>&1' \
    "$tests_bin" gpu:: --ignored --test-threads=1 --nocapture
  case "$out_last" in
    *". 0 passed"*) rows[${#rows[@]}-1]="| GPU tests (ovr-it gpu::) | failed (none ran) | - |" ;;
  esac
else
  note "no $tests_bin: GPU tests left out"
fi
ovr=("$bin" --cache-dir "$cache" --config "$config")
# shellcheck disable=SC2086
run_step "bench extract on $device" "${ovr[@]}" bench extract --device "$device" $extract_args
# shellcheck disable=SC2086
run_step "bench train on $device" "${ovr[@]}" bench train --device "$device" $train_args
if [ "$cpu_baseline" = 1 ]; then
  # shellcheck disable=SC2086
  run_step "bench extract on cpu" "${ovr[@]}" bench extract --device cpu $extract_args
  # shellcheck disable=SC2086
  run_step "bench train on cpu" "${ovr[@]}" bench train --device cpu $train_args
fi

# 4. The summary.
failed=0
{
  echo ""
  echo "## Summary"
  echo ""
  echo "GPU: $gpu; binary: $bin$( [ -f "$here/BUILD-INFO.txt" ] && echo "; $(sed -n 's/^commit: //p' "$here/BUILD-INFO.txt")" )"
  echo ""
  echo "| step | status | wall s |"
  echo "|---|---|---:|"
  printf '%s\n' "${rows[@]}"
} | tee -a "$log"
for r in "${rows[@]}"; do case "$r" in *failed*) failed=1 ;; esac; done
echo "" >&2
echo "log: $log" >&2
exit $failed
