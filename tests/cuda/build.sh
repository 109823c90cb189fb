#!/usr/bin/env bash
# Builds `ovr` with `--features cuda` on a machine with no GPU and no CUDA
# install: the CUDA 13.0 compiler, headers and link-time libraries come as
# pinned PyPI wheels (pip), a stub libcuda.so stands in for the driver at link
# time, and `cargo build --release --features cuda` runs against them.
# `--package` then puts the binary, the integration-test binary (for the GPU
# tests in tests/it/gpu.rs), tests/cuda/device-run.sh and the configs into a
# bundle to carry to a GPU machine, as a tarball under 60 MiB. See docs/gpu.md.
#
# Usage: tests/cuda/build.sh [--package [--cache DIR]] | [--cargo ARGS...] | --help
#   --package     after the build, also build the test binary (`cargo test
#                 --no-run`), write the bundle folder and a .tar.gz of it
#   --cache DIR   with --package: copy what the device run reads from the ovr
#                 cache DIR into the bundle's cache/ folder: EfficientNet-Lite0
#                 weights (GPU tests, benches) and the emoji40 images (benches)
#   --cargo ARGS  instead of the build, run `cargo ARGS` in the same environment,
#                 with a loadable driver stub on LD_LIBRARY_PATH so that test
#                 binaries start here and see "no driver", e.g.
#                 --cargo clippy --release --features cuda --all-targets -- -D warnings
#                 --cargo test --release --features cuda --lib device
#
# Environment (all optional):
#   OVR_CUDA_TOOLCHAIN  where the wheels and the toolkit view go
#                       (default: $OVR_CACHE/cuda-toolchain, else .cuda-toolchain/)
#   CARGO_TARGET_DIR    default: target-cuda/ (keeps the CPU build in target/ intact)
#   CUDA_COMPUTE_CAP    GPU architecture the kernels are compiled for (default 90:
#                       H100/H200; candle-kernels turns 90 into sm_90a). No GPU is
#                       there to detect it.
#   CUDAFORGE_THREADS   parallel nvcc jobs of candle-kernels (default: all cores)
#   OVR_BUNDLE_DIR      default: $CARGO_TARGET_DIR/ovr-cuda-bundle
#   PYTHON              python with pip (default python3)
# Runs fine under `nice -n 19`: every child inherits the niceness; cargo's
# jobs follow CARGO_BUILD_JOBS and nvcc's threads CUDAFORGE_THREADS.
set -euo pipefail

# The pins: one CUDA release (13.0), the one the GPU machines' driver
# (580.x) and PyTorch build (cu130) carry, so the libraries the binary links
# (libcudart.so.13, libcublas.so.13, libcurand.so.10, ...) are already there.
# Change them together.
PINS=(
  nvidia-cuda-nvcc==13.0.88      # nvcc, ptxas, fatbinary (bin/)
  nvidia-cuda-crt==13.0.88       # include/crt/*: host_config.h and friends nvcc needs
  nvidia-nvvm==13.0.88           # cicc and libdevice (nvvm/)
  nvidia-cuda-runtime==13.0.96   # cuda_runtime.h, cuda.h, cuda_fp16.h, cuda_bf16.h, cuda_fp8.h; libcudart.so.13
  nvidia-cuda-cccl==13.0.85      # thrust/cub/libcu++ headers (candle's MoE kernels use thrust)
  nvidia-cuda-nvrtc==13.0.88     # libnvrtc.so.13 (cudarc links it)
  nvidia-curand==10.4.0.35       # libcurand.so.10 (cudarc links it)
  nvidia-cublas==13.1.0.3        # libcublas.so.13, libcublasLt.so.13 (cudarc links them)
)
BUNDLE_LIMIT_MIB=60

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "[build.sh $(date +%H:%M:%S)] $*" >&2; }
needed_libs() { readelf -d "$1" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' '; }

# The whole script runs from main, so editing this file while a build runs
# does not change what the running build does.
main() {
  local package=0 cache_src="" cargo_args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --package) package=1 ;;
      --cache) [ $# -ge 2 ] || die "--cache needs a folder"; cache_src=$2; shift ;;
      --cargo) shift; [ $# -gt 0 ] || die "--cargo needs cargo arguments"; cargo_args=("$@"); break ;;
      -h|--help) sed -n '2,33p' "${BASH_SOURCE[0]}"; exit 0 ;;
      *) die "unknown argument \`$1\` (allowed: --package, --cache DIR, --cargo ARGS..., --help)" ;;
    esac
    shift
  done
  [ -z "$cache_src" ] || [ "$package" = 1 ] || die "--cache only makes sense with --package"
  [ ${#cargo_args[@]} -eq 0 ] || [ "$package" = 0 ] || die "--cargo and --package exclude each other"

  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  cd "$ROOT"
  PYTHON=${PYTHON:-python3}
  if [ -n "${OVR_CUDA_TOOLCHAIN:-}" ]; then
    TC=$OVR_CUDA_TOOLCHAIN
  elif [ -n "${OVR_CACHE:-}" ]; then
    TC=$OVR_CACHE/cuda-toolchain
  else
    TC=$ROOT/.cuda-toolchain
  fi
  mkdir -p "$TC"
  TC=$(cd "$TC" && pwd)
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-cuda}
  export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
  # candle-kernels' nvcc jobs: cudaforge uses half the cores by default (one on
  # a 2-core machine); the GGUF/MoE objects dominate the build, so use them all.
  export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-$(nproc 2>/dev/null || echo 2)}

  install_wheels
  toolkit_view
  driver_stub
  build_env

  if [ ${#cargo_args[@]} -gt 0 ]; then
    # Test binaries load this libcuda.so.1; every driver call answers
    # CUDA_ERROR_STUB_LIBRARY, i.e. "no driver".
    export LD_LIBRARY_PATH=$CUDA/lib64/stubs-run:$LD_LIBRARY_PATH
    log "cargo ${cargo_args[*]}"
    exec cargo "${cargo_args[@]}"
  fi

  local start elapsed bin
  start=$(date +%s)
  cargo build --release --features cuda
  elapsed=$(($(date +%s) - start))
  bin=$CARGO_TARGET_DIR/release/ovr
  [ -x "$bin" ] || die "no binary at $bin"
  log "built $bin in ${elapsed}s"
  log "needs at run time: $(needed_libs "$bin")"
  [ "$package" = 1 ] || return 0
  local tests
  tests=$(cargo test --release --features cuda --test it --no-run --message-format=json \
    | "$PYTHON" -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "it" and m.get("executable"):
        print(m["executable"])') || die "building the test binary failed"
  [ -x "$tests" ] || die "no integration-test binary found"
  bundle "$bin" "$tests" "$elapsed" "$cache_src"
}

# 1. The wheels, installed once per pin set (a stamp file holds the pins).
install_wheels() {
  pins_text=$(printf '%s\n' "${PINS[@]}")
  if [ -f "$TC/site/.pins" ] && [ "$(cat "$TC/site/.pins")" = "$pins_text" ]; then
    return 0
  fi
  log "installing the CUDA wheels into $TC/site"
  command -v "$PYTHON" >/dev/null || die "needs $PYTHON with pip"
  rm -rf "$TC/site.tmp"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --target "$TC/site.tmp" "${PINS[@]}" \
    || die "pip install of the CUDA wheels failed"
  printf '%s\n' "$pins_text" >"$TC/site.tmp/.pins"
  rm -rf "$TC/site"
  mv "$TC/site.tmp" "$TC/site"
}

# 2. A toolkit view the build scripts understand: bin/ include/ nvvm/ point
# into the wheels (site/nvidia/cu13); lib64/ holds unversioned links (the
# linker's -lcublas needs libcublas.so).
toolkit_view() {
  local nvcc_real top d f name
  nvcc_real=$(find "$TC/site/nvidia" -path '*/bin/nvcc' -type f | head -n 1)
  [ -n "$nvcc_real" ] || die "no bin/nvcc under $TC/site/nvidia (wheel layout changed?)"
  top=$(dirname "$(dirname "$nvcc_real")")
  CUDA=$TC/cuda
  mkdir -p "$CUDA/lib64/stubs" "$CUDA/lib64/stubs-run"
  for d in bin include nvvm; do ln -sfn "$top/$d" "$CUDA/$d"; done
  for f in "$top"/lib/lib*.so.*; do
    name=$(basename "$f")
    ln -sfn "$f" "$CUDA/lib64/$name"
    ln -sfn "$f" "$CUDA/lib64/${name%%.so.*}.so"
  done
}

# cudarc (candle's CUDA crate) is built with `dynamic-linking`: the binary
# links libcuda.so.1, which only a driver install has. lib64/stubs/libcuda.so
# exports every driver function cudarc declares under the real soname, so the
# binary records libcuda.so.1 and binds the real one where it runs. Each stub
# returns 34 (CUDA_ERROR_STUB_LIBRARY). As in CUDA's own stubs folder there is
# no libcuda.so.1 file beside it, so a build never runs against it by mistake;
# stubs-run/ has that name for `--cargo` test runs only.
driver_stub() {
  local cudarc_dir sys_rs c=$CUDA/lib64/stubs/libcuda-stub.c
  cudarc_dir=$(cargo metadata --format-version 1 --features cuda --manifest-path "$ROOT/Cargo.toml" \
    | "$PYTHON" -c 'import json,sys,os; m=json.load(sys.stdin); print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"]=="cudarc"))') \
    || die "could not locate the cudarc sources (cargo metadata)"
  sys_rs=$cudarc_dir/src/driver/sys/mod.rs
  [ -f "$sys_rs" ] || die "no $sys_rs"
  grep -ohE 'pub unsafe fn cu[A-Za-z0-9_]+' "$sys_rs" | awk '{print $4}' | sort -u \
    | awk '{print "int " $1 "(void) { return 34; }"}' >"$c.tmp"
  [ -s "$c.tmp" ] || die "found no driver functions in $sys_rs"
  if [ -f "$CUDA/lib64/stubs/libcuda.so" ] && cmp -s "$c.tmp" "$c"; then
    rm -f "$c.tmp"
  else
    log "writing the libcuda.so stub from $sys_rs"
    mv "$c.tmp" "$c"
    ${CC:-cc} -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA/lib64/stubs/libcuda.so.tmp" "$c"
    mv "$CUDA/lib64/stubs/libcuda.so.tmp" "$CUDA/lib64/stubs/libcuda.so"
  fi
  ln -sfn ../stubs/libcuda.so "$CUDA/lib64/stubs-run/libcuda.so.1"
}

# 3. The environment of the build scripts (cudarc, candle-kernels via cudaforge).
build_env() {
  export PATH=$CUDA/bin:$PATH
  export NVCC=$CUDA/bin/nvcc CUDA_HOME=$CUDA CUDA_ROOT=$CUDA CUDA_PATH=$CUDA
  # ld resolves the libraries' own dependencies (libcublas -> libcublasLt) here.
  export LD_LIBRARY_PATH=$CUDA/lib64:$CUDA/lib64/stubs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LIBRARY_PATH=$CUDA/lib64:$CUDA/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}
  nvcc_version=$(nvcc --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
  log "nvcc $nvcc_version, CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
}

# 4. The bundle: stripped binaries, device script, configs, build facts and,
# with --cache, the cache subset the benches read.
bundle() {
  local bin=$1 tests=$2 elapsed=$3 cache_src=$4 B size_mib
  B=${OVR_BUNDLE_DIR:-$CARGO_TARGET_DIR/ovr-cuda-bundle}
  rm -rf "$B" "$B.tar.gz"
  mkdir -p "$B/bin" "$B/configs"
  cp "$bin" "$B/bin/ovr"
  cp "$tests" "$B/bin/ovr-it"
  strip "$B/bin/ovr" "$B/bin/ovr-it" 2>/dev/null || log "strip not found: the bundle keeps the symbols"
  cp "$ROOT/tests/cuda/device-run.sh" "$B/device-run.sh"
  chmod +x "$B/device-run.sh" "$B/bin/ovr" "$B/bin/ovr-it"
  cp "$ROOT"/configs/*.toml "$B/configs/"
  {
    echo "ovr --features cuda bundle"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) (cargo build ${elapsed}s)"
    echo "nvcc: $nvcc_version; CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"
    echo "wheels: $(echo "$pins_text" | tr '\n' ' ')"
    echo "needs: $(needed_libs "$bin")"
  } >"$B/BUILD-INFO.txt"
  if [ -n "$cache_src" ]; then
    [ -d "$cache_src" ] || die "--cache: no folder $cache_src"
    log "copying the bench cache subset from $cache_src"
    mkdir -p "$B/cache/weights" "$B/cache/datasets"
    cp "$cache_src/weights/efficientnet-lite0.safetensors" "$B/cache/weights/" \
      || die "--cache: no weights/efficientnet-lite0.safetensors (run \`ovr fetch weights efficientnet-lite0\`)"
    if [ -d "$cache_src/datasets/emoji40" ]; then
      cp -r "$cache_src/datasets/emoji40" "$B/cache/datasets/"
    else
      log "--cache: no datasets/emoji40 (\`ovr fetch dataset emoji40\`): the GPU tests will run, the benches will not"
    fi
    # No features: they are as large as the rest of the bundle together, and
    # the device run extracts them again on the GPU (in the first `bench train`).
  fi
  tar -C "$(dirname "$B")" -czf "$B.tar.gz" "$(basename "$B")"
  size_mib=$(($(stat -c %s "$B.tar.gz") / 1048576))
  log "bundle: $B ($(du -sh "$B" | cut -f1)), $B.tar.gz (${size_mib} MiB)"
  [ "$size_mib" -lt "$BUNDLE_LIMIT_MIB" ] \
    || log "warning: the tarball is over ${BUNDLE_LIMIT_MIB} MiB; carry less of the cache"
}

main "$@"
