#!/usr/bin/env bash
# The peers of the issue-5 benchmark table: PyTorch 1.13 (Debian) and ONNX Runtime 1.30 (npm,
# CPU), each at 1 and 2 threads, on the MLP 784-512-512-10 (inference at batch 1, 64, 256; a
# training step at batch 64, PyTorch only) and torchvision's ResNet-18 (inference at batch 1 and
# 16). Prints `peer case median_ms min_ms` lines; bench/README.md says how kiln's own figures
# are put beside them.
#   bench/peers.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-200}
missing=()
for p in python3-torch python3-torchvision python3-onnx python3-numpy; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "peers.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# onnxruntime-node's install script downloads GPU binaries and fails offline; the CPU build in
# the package runs without it.
if [ ! -d bench/peers/node_modules/onnxruntime-node ]; then
  (cd bench/peers && npm install --ignore-scripts --no-save onnxruntime-node@1.30.0 >&2)
fi
OUT=${KILN_PEERS_DIR:-build/peers}
mkdir -p "$OUT"
for t in 1 2; do
  echo "# threads $t"
  OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t /usr/bin/python3 bench/peers/torch_bench.py \
    --threads "$t" --runs "$RUNS" --out "$OUT"
  node bench/peers/ort_bench.js "$OUT" "$t" "$RUNS"
done
