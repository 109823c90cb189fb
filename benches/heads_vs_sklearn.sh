#!/usr/bin/env bash
# Heads with their C search: ovr vs scikit-learn's LogisticRegression on the
# same cached features, same grid, same tolerance, interleaved in one run.
#
#   benches/heads_vs_sklearn.sh [CONFIG] [ROUNDS] [TOLS]
#   e.g. benches/heads_vs_sklearn.sh configs/emoji40.toml 3 "1e-4 1e-6"
#
# Needs: a release build (target/release/ovr), the config's features already
# extracted (`ovr --config CONFIG extract`), and a Python with numpy and
# scikit-learn (PYTHON=/path/to/python, default python3). Threads: ovr uses
# its default lanes (2) on all cores; scikit-learn gets OMP/OPENBLAS threads =
# the core count. Prints, per tolerance, the median wall time of each side,
# their ratio, the accuracies, and the CPU MHz seen during the run.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/emoji40.toml}
rounds=${2:-3}
tols=${3:-"1e-4 1e-6"}
py=${PYTHON:-python3}
ovr=./target/release/ovr
cores=$(nproc)
export OMP_NUM_THREADS=$cores OPENBLAS_NUM_THREADS=$cores MKL_NUM_THREADS=$cores
grid=$(sed -n 's/^c_grid *= *\[\(.*\)\]/\1/p' "$config" | tr -d ' ')
[ -n "$grid" ] || grid="0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3"
features=$($ovr --config "$config" extract 2>/dev/null | sed -n 's/.* -> \(.*\)\/train.safetensors/\1/p' | head -1)
[ -d "$features" ] || { echo "no features for $config: run ovr --config $config extract" >&2; exit 1; }
out=$(mktemp -d)
mhz() { awk -F: '/cpu MHz/ {s += $2; n++} END {if (n) printf "%.0f", s / n}' /proc/cpuinfo; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores; features: $features"
echo "grid: $grid; rounds: $rounds (interleaved)"
for tol in $tols; do
  : >"$out/ovr-$tol"; : >"$out/sk-$tol"; : >"$out/mhz-$tol"
  for r in $(seq "$rounds"); do
    $ovr -q --config "$config" --set "train.tol=$tol" bench train --lanes 2 --fuse 0 >"$out/ovr-$tol-$r.txt"
    mhz >>"$out/mhz-$tol"; echo >>"$out/mhz-$tol"
    awk -F'|' '$2 ~ /^ *2 *$/ {print $5}' "$out/ovr-$tol-$r.txt" >>"$out/ovr-$tol"
    "$py" benches/sklearn_baseline.py "$features" --grid "$grid" --tol "$tol" >"$out/sk-$tol-$r.txt"
    mhz >>"$out/mhz-$tol"; echo >>"$out/mhz-$tol"
    awk -F'|' '$2 ~ /total/ {print $4}' "$out/sk-$tol-$r.txt" >>"$out/sk-$tol"
  done
  o=$(median <"$out/ovr-$tol"); s=$(median <"$out/sk-$tol"); m=$(grep . "$out/mhz-$tol" | median)
  echo
  echo "## tol = $tol"
  echo "ovr (last round):"; grep '^|' "$out/ovr-$tol-$rounds.txt"
  echo "scikit-learn (last round):"; grep '^|' "$out/sk-$tol-$rounds.txt"
  printf 'median wall s: ovr %s (heads, selection and grid extensions), scikit-learn %s; ratio %.1fx; CPU %s MHz\n' \
    "$o" "$s" "$(echo "$s / $o" | bc -l)" "$m"
done
rm -rf "$out"
