#!/usr/bin/env bash
# What reduced-scale JPEG decoding does to the features: `ovr extract` on the
# same photos with extract.jpeg_dct_scaling = true and false (full decode),
# compared image by image (benches/compare_features.py; the full decode is
# the reference). For scale, the bicubic vs bilinear resize filter on the
# same photos, and optionally (OLD_OVR=path/to/previous/ovr) the previous
# preprocessing (v1: full decode, f32 triangle resize) against v2 with
# filter = bilinear and the default bicubic on emoji PNGs (EMOJI=dir of
# 64 px PNGs in class folders, e.g. <cache>/datasets/emoji40/...).
#
#   benches/decode_accuracy.sh [PHOTOS_DIR]
#
# PHOTOS_DIR (default $TMPDIR/ovr-photos-varied) is made by
# `photos_vs_pillow.py varied` when missing. Env: PYTHON, OVR, WEIGHTS as in
# photos_vs_pillow.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OVR=${OVR:-./target/release/ovr}
DIR=${1:-${TMPDIR:-/tmp}/ovr-photos-varied}
WEIGHTS=${WEIGHTS:-$HOME/.cache/ovr/weights/efficientnet-lite0.safetensors}
[ -d "$DIR" ] || "$PY" benches/photos_vs_pillow.py varied "$DIR"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

run() { # BINARY ROOT NAME [--set ...]: features of every image into $WORK/NAME
  local bin=$1 root=$2 name=$3
  shift 3
  "$bin" --quiet --config configs/image-folder.toml --set dataset.root="$root" \
    --set dataset.val_fraction=0 --set dataset.test_fraction=0 \
    --set cache_dir="$WORK/cache-$name" --set backbone.weights="$WEIGHTS" "$@" extract >/dev/null
  mkdir -p "$WORK/$name"
  cp "$(find "$WORK/cache-$name/features" -path '*by-content*' -prune -o -name 'train.safetensors' -print | head -1)" "$WORK/$name/"
}

echo "| comparison | images | max abs | mean abs | max rel | mean rel | min cos | mean cos |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
run "$OVR" "$DIR" dct
run "$OVR" "$DIR" full --set extract.jpeg_dct_scaling=false
run "$OVR" "$DIR" bilinear --set extract.filter=bilinear
"$PY" benches/compare_features.py "$WORK/dct" "$WORK/full" --label "DCT-scaled vs full decode (bicubic)" \
  --group '_(\d+x\d+_g\d)\.jpg' 
"$PY" benches/compare_features.py "$WORK/bilinear" "$WORK/dct" --label "bilinear vs bicubic (DCT-scaled)"
if [ -n "${OLD_OVR:-}" ] && [ -n "${EMOJI:-}" ]; then
  run "$OLD_OVR" "$EMOJI" old
  run "$OVR" "$EMOJI" v2bilinear --set extract.filter=bilinear
  run "$OVR" "$EMOJI" v2bicubic
  "$PY" benches/compare_features.py "$WORK/v2bilinear" "$WORK/old" --label "emoji: v2 bilinear vs v1"
  "$PY" benches/compare_features.py "$WORK/v2bicubic" "$WORK/old" --label "emoji: v2 bicubic vs v1"
fi
