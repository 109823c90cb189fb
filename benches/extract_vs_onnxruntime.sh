#!/usr/bin/env bash
# ovr's native CPU engine vs onnxruntime on EfficientNet-Lite0, side by side.
#
# Interleaves RUNS (default 3) runs of `ovr bench extract` (native engine)
# and benches/onnxruntime_baseline.py at each batch size (default 1 and 32),
# both with THREADS threads (default 2; OVR_THREADS for ovr, intra-op
# threads for onnxruntime), and prints per batch size the median images/s of
# each, their ratio, the % of the arithmetic limit (as the onnxruntime script
# computes it from lscpu / /proc/cpuinfo) and the mean CPU MHz sampled from
# /proc/cpuinfo during the runs. Set CANDLE=1 to add the old candle engine
# (`--depthwise direct`) to each run.
#
#   cargo build --release
#   pip install onnx onnxruntime                  # numpy, Pillow too
#   benches/extract_vs_onnxruntime.sh
#   THREADS=2 RUNS=5 IMAGES=128 BATCHES="1 8 32" PYTHON=/path/to/python benches/extract_vs_onnxruntime.sh
#
# Other processes on the machine (cargo builds) distort both runtimes; the
# interleaving spreads the distortion evenly, a quiet machine removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
RUNS=${RUNS:-3}
IMAGES=${IMAGES:-64}
BATCHES=${BATCHES:-"1 32"}
PYTHON=${PYTHON:-python3}
OVR=${OVR:-target/release/ovr}
[ -x "$OVR" ] || { echo "build first: cargo build --release ($OVR missing)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill "$sampler" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# Sample the CPU clock every 0.5 s while the runs go.
( while true; do awk -F: '/cpu MHz/ {s += $2; n++} END {if (n) printf "%.0f\n", s / n}' /proc/cpuinfo; sleep 0.5; done ) > "$tmp/mhz" &
sampler=$!

engines="native"
[ "${CANDLE:-0}" = 1 ] && engines="native direct"
for run in $(seq "$RUNS"); do
  for b in $BATCHES; do
    for e in $engines; do
      OVR_THREADS=$THREADS RAYON_NUM_THREADS=$THREADS "$OVR" bench extract --depthwise "$e" \
        --batch-sizes "$b" --images "$IMAGES" 2>/dev/null \
        | awk -F'|' -v e="$e" -v b="$b" '$2 ~ e && $3+0 == b {gsub(/ /, "", $6); print "ovr-" e, b, $6}' >> "$tmp/rates"
    done
    "$PYTHON" benches/onnxruntime_baseline.py --threads "$THREADS" --batch-sizes "$b" --images "$IMAGES" > "$tmp/ort.txt" 2>&1 \
      || { cat "$tmp/ort.txt" >&2; exit 1; }
    awk -F'|' -v b="$b" '$2 ~ /onnxruntime/ && $4+0 == b {gsub(/ /, "", $7); print "onnxruntime", b, $7}' "$tmp/ort.txt" >> "$tmp/rates"
    grep -o 'arithmetic limit: [0-9.]* images/s' "$tmp/ort.txt" | awk '{print $3}' > "$tmp/limit"
  done
  echo "run $run/$RUNS done" >&2
done
kill "$sampler" 2>/dev/null || true

"$PYTHON" - "$tmp/rates" "$tmp/limit" "$tmp/mhz" "$THREADS" "$RUNS" "$IMAGES" <<'PY'
import statistics, sys
rates, limit, mhz, threads, runs, images = sys.argv[1:]
rows = {}
for line in open(rates):
    name, b, r = line.split()
    rows.setdefault((name, int(b)), []).append(float(r))
lim = float(open(limit).read().split()[0])
clock = [float(x) for x in open(mhz).read().split()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"EfficientNet-Lite0 224x224, {threads} threads, {runs} interleaved runs x {images} images, CPU {cpu}")
print(f"CPU MHz during the runs (/proc/cpuinfo): mean {statistics.mean(clock):.0f}, min {min(clock):.0f}, max {max(clock):.0f}")
print(f"arithmetic limit (onnxruntime_baseline.py): {lim:.0f} images/s")
print()
print("| batch | runtime | images/s (median) | all runs | % of arithmetic limit | ratio to onnxruntime |")
print("|---:|---|---:|---|---:|---:|")
for b in sorted({b for _, b in rows}):
    ort = statistics.median(rows[("onnxruntime", b)])
    for name in sorted({n for n, bb in rows if bb == b}, key=lambda n: n != "ovr-native"):
        v = rows[(name, b)]
        m = statistics.median(v)
        print(f"| {b} | {name} | {m:.1f} | {', '.join(f'{x:.0f}' for x in v)} | {100 * m / lim:.1f} % | {m / ort:.2f} |")
PY
