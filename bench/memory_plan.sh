#!/usr/bin/env bash
# memory_plan.sh - the memory-planning figures of docs/performance.md: for the MLP, LeNet and
# ResNet-18 (batch 1 inference), the arena against its lower bound and the naive total.
# Usage: bench/memory_plan.sh [BUILD_DIR]   (after ./dev.sh build)
set -euo pipefail
build=${1:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$build/examples/build_models" "$dir" > /dev/null
printf '%-10s %12s %12s %12s %8s %8s\n' model arena lower-bound naive arena/lb arena/naive
for spec in "mlp data=1x784" "lenet data=1x1x28x28" "resnet18 data=1x3x224x224"; do
  set -- $spec
  "$build/tools/kiln-dump" "$dir/$1.json" --shape "$2" --memory | awk -v m="$1" '
    /^arena size:/ {a=$3} /^lower bound:/ {l=$3} /^naive total:/ {n=$3}
    END {printf "%-10s %12d %12d %12d %8.3f %8.3f\n", m, a, l, n, a/l, a/n}'
done
