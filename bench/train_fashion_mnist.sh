#!/usr/bin/env bash
# train_fashion_mnist.sh - the training figures of docs/performance.md: the demo's defaults
# (MLP 5 epochs, LeNet with ReLU 2 epochs) on the reference interpreter, timed as a whole.
# Usage: bench/train_fashion_mnist.sh [BUILD_DIR] [extra fashion_mnist_demo options]
set -euo pipefail
build=${1:-build}
shift || true
time "$build/examples/fashion_mnist_demo" --quiet-ir "$@"
