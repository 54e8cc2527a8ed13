#!/usr/bin/env bash
# Issue 5's end-to-end table: kiln (compiled, and the reference interpreter) against PyTorch 1.13
# and ONNX Runtime 1.30 at 1 and 2 threads, measured in the same run. Prints every
# `who case median_ms min_ms` line, then a table of ratios (peer median / kiln median: above 1
# means kiln is faster; the same for minimums).
#   bench/e2e.sh [RUNS] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-200}
BUILD=${2:-build}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
export KILN_PEERS_DIR="$BUILD/peers"
bash bench/peers.sh "$RUNS" | sed 's/^\(torch\|ort\) /\1 /' | tee -a "$OUT"
for t in 1 2; do
  echo "# threads $t" | tee -a "$OUT"
  OPENBLAS_NUM_THREADS=$t "$BUILD/bench/kiln_models_bench" --peers-dir "$BUILD/peers" \
    --threads "$t" --runs "$RUNS" --interpreter-runs "$([ "$t" = 1 ] && echo 3 || echo 0)" \
    | tee -a "$OUT"
done
/usr/bin/python3 - "$OUT" <<'PY'
import sys
rows, threads = {}, None
for line in open(sys.argv[1]):
    p = line.split()
    if line.startswith("# threads"):
        threads = int(p[2]); continue
    if len(p) == 4 and p[0] in ("kiln", "interpreter", "torch", "ort"):
        rows[(threads, p[0], p[1])] = (float(p[2]), float(p[3]))
cases = ["mlp_infer_b1", "mlp_infer_b64", "mlp_infer_b256", "mlp_train_b64",
         "resnet18_infer_b1", "resnet18_infer_b16"]
print("\n| threads | case | kiln median/min ms | PyTorch median/min | ratio | ORT median/min | ratio | interpreter median | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
for t in (1, 2):
    for c in cases:
        k = rows.get((t, "kiln", c))
        if not k: continue
        cells = [str(t), c, f"{k[0]:.3f} / {k[1]:.3f}"]
        for who in ("torch", "ort", "interpreter"):
            v = rows.get((t, who, c))
            if v and who == "interpreter":
                cells += [f"{v[0]:.1f}", f"{v[0]/k[0]:.0f}x"]
            elif v:
                cells += [f"{v[0]:.3f} / {v[1]:.3f}", f"{v[0]/k[0]:.2f} / {v[1]/k[1]:.2f}"]
            else:
                cells += ["-", "-"]
        print("| " + " | ".join(cells) + " |")
PY
