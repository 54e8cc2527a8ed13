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
    # Train both models in process (extra arguments go to the training program, e.g.
    # --model mlp), then deploy each one trained: kiln-compile it for the whole test set (batch
    # 10000), run it with kiln-run and score its probabilities against the in-process ones.
    shift
    setup; build
    demo_dir="$BUILD_DIR/demo"
    rm -rf "$demo_dir"
    status=0
    "$BUILD_DIR/examples/fashion_mnist_demo" --export-dir "$demo_dir" "$@" || status=$?
    [ "$status" -le 1 ] || exit "$status"
    for m in mlp lenet; do
      [ -f "$demo_dir/$m.params" ] || continue
      if [ "$m" = mlp ]; then shape=10000x784 images=test_images_flat.npy
      else shape=10000x1x28x28 images=test_images.npy; fi
      echo
      echo "== Deploying $m: kiln-compile (data $shape), kiln-run on the test set, scoring =="
      t0=$EPOCHREALTIME
      "$BUILD_DIR/tools/kiln-compile" "$demo_dir/$m-symbol.json" --params "$demo_dir/$m.params" \
        --shape "data=$shape" -o "$demo_dir/$m.kiln"
      t1=$EPOCHREALTIME
      mkdir -p "$demo_dir/$m-out"
      "$BUILD_DIR/tools/kiln-run" "$demo_dir/$m.kiln" --input "data=$demo_dir/$images" \
        --output-dir "$demo_dir/$m-out"
      t2=$EPOCHREALTIME
      awk -v f="$demo_dir/$m.kiln" -v b="$(stat -c %s "$demo_dir/$m.kiln")" \
        -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
          printf "compiled to %s (%.2f MB) in %.1f s; kiln-run over 10000 images in %.1f s\n",
                 f, b / 1e6, t1 - t0, t2 - t1 }'
      "$BUILD_DIR/examples/fashion_mnist_demo" --score "$demo_dir/$m-out/softmax_output.npy" \
        --labels "$demo_dir/test_labels.npy" --name "$m: compiled ($m.kiln), kiln-run" \
        --reference "$demo_dir/$m-probs.npy" --reference-name "$m: trained in process" ||
        status=1
    done
    exit "$status" ;;
  test)
    setup; build
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" ;;
  *)
    echo "usage: $0 demo|test|build|setup" >&2
    exit 2 ;;
esac
