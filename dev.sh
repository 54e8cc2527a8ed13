#!/usr/bin/env bash
# kiln's set-up, build and run script: the two commands of the README's quick start.
#   ./dev.sh demo   install what is missing, build, run the demo
#   ./dev.sh test   install what is missing, build, run every test
# Other verbs: setup (install only), build (set-up and build).
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  llvm-19-dev llvm-19-tools clang-format clang-19 libclang-rt-19-dev
  libopenblas-dev libflatbuffers-dev flatbuffers-compiler
  libgtest-dev zlib1g-dev dataset-fashion-mnist graphviz python3
  libonnx-dev libprotobuf-dev protobuf-compiler python3-onnx python3-numpy python3-torch
)
BUILD_DIR=${KILN_BUILD_DIR:-build}
JOBS=${KILN_JOBS:-$(nproc)}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

setup() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "dev.sh: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

build() {
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

case "${1:-}" in
  setup) setup ;;
  build) setup; build ;;
  demo)
    setup; build
    "$BUILD_DIR/examples/fashion_mnist_demo" ;;
  test)
    setup; build
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" ;;
  *)
    echo "usage: $0 demo|test|build|setup" >&2
    exit 2 ;;
esac
