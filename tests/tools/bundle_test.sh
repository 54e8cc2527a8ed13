#!/bin/sh
# bundle_test.sh - a bundle end to end, against the same model as a .kiln artifact.
#
#   bundle_test.sh KILN_COMPILE KILN_RUN MAKE_MLP_INPUTS SOURCE_DIR CC WORK_DIR
#
# Makes parameters and an input for the seed MLP (tests/data/mxnet_mlp-symbol.json), compiles
# the model with kiln-compile both to mlp.kiln and as a bundle (mlp.o, mlp.h, mlp.weights.bin),
# builds examples/bundle/bundle_main.c with the C compiler against mlp.o and libm alone, runs
# kiln-run and the C program on the same input, and compares the outputs:
#   - tolerance: |bundle - kiln-run| <= 1e-5 * |kiln-run| + 1e-6 elementwise (NumPy's
#     assert_allclose; softmax probabilities). Not bit-equality: the bundle lowers the matrix
#     products to loop nests, kiln-run uses the runtime's GEMM, and sums round differently;
#   - the object's undefined symbols are all defined by the C library or libm, and its only
#     global definition is mlp_run; a second bundle (another CPU) links beside it.
set -eu
if [ $# -ne 6 ]; then
  echo "usage: $0 KILN_COMPILE KILN_RUN MAKE_MLP_INPUTS SOURCE_DIR CC WORK_DIR" >&2
  exit 2
fi
compile=$1 run=$2 make_inputs=$3 src=$4 cc=$5 work=$6
rm -rf "$work"
mkdir -p "$work/out"

"$make_inputs" "$work" 3 7
"$compile" "$src/tests/data/mxnet_mlp-symbol.json" --params "$work/mlp.params" \
  --shape data=3x784 -o "$work/mlp.kiln" --emit-bundle "$work/bundle"
for f in mlp.o mlp.h mlp.weights.bin; do
  test -s "$work/bundle/$f" || { echo "FAIL: no $f in the bundle" >&2; exit 1; }
done

# The object needs only the C library and libm; it exports mlp_run alone.
libc=$("$cc" -print-file-name=libc.so.6)
libm=$("$cc" -print-file-name=libm.so.6)
nm -D --defined-only "$libc" "$libm" 2>/dev/null | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' |
  sort -u >"$work/libc_libm.txt"
nm -u "$work/bundle/mlp.o" | awk '{ print $NF }' | sort -u >"$work/undefined.txt"
echo "undefined symbols of mlp.o: $(tr '\n' ' ' <"$work/undefined.txt")"
extra=$(comm -23 "$work/undefined.txt" "$work/libc_libm.txt")
if [ -n "$extra" ]; then
  echo "FAIL: mlp.o needs symbols outside libc and libm: $extra" >&2
  exit 1
fi
globals=$(nm -g --defined-only "$work/bundle/mlp.o" | awk '{ print $NF }' | tr '\n' ' ')
if [ "$globals" != "mlp_run " ]; then
  echo "FAIL: mlp.o defines global symbols other than mlp_run: $globals" >&2
  exit 1
fi

# The C program, linked with the object and libm only.
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -I "$work/bundle" "$src/examples/bundle/bundle_main.c" \
  "$work/bundle/mlp.o" -lm -o "$work/bundle_mlp"
if command -v ldd >/dev/null; then
  if ldd "$work/bundle_mlp" | grep -v -E 'linux-vdso|ld-linux|libc\.so|libm\.so' | grep -q .; then
    echo "FAIL: bundle_mlp links more than libc and libm:" >&2
    ldd "$work/bundle_mlp" >&2
    exit 1
  fi
fi

# Two bundles link into one program: nothing but NAME_run is global. (mlp2: the same model for
# another CPU, named after its -o file.)
"$compile" "$src/tests/data/mxnet_mlp-symbol.json" --params "$work/mlp.params" \
  --shape data=1x784 --cpu x86-64-v3 -o "$work/mlp2.kiln" --emit-bundle "$work/bundle2"
cat >"$work/two.c" <<'C'
#include "mlp.h"
#include "mlp2.h"
int main(int argc, char** argv) {
  (void)argv;
  if (argc > 99) {
    mlp_run(0, 0);
    mlp2_run(0, 0);
  }
  return MLP_WEIGHTS_SIZE == MLP2_WEIGHTS_SIZE ? 0 : 1;
}
C
"$cc" -std=c11 -Wall -Werror -I "$work/bundle" -I "$work/bundle2" "$work/two.c" "$work/bundle/mlp.o" \
  "$work/bundle2/mlp2.o" -lm -o "$work/two"
"$work/two"

"$run" "$work/mlp.kiln" --input data="$work/input.npy" --output-dir "$work/out"
"$work/bundle_mlp" "$work/bundle/mlp.weights.bin" "$work/input.npy" "$work/bundle_out.npy"

/usr/bin/python3 - "$work/out/softmax_output.npy" "$work/bundle_out.npy" <<'PY'
import sys
import numpy as np
want, got = np.load(sys.argv[1]), np.load(sys.argv[2])
assert want.shape == got.shape == (3, 10), (want.shape, got.shape)
assert want.dtype == got.dtype == np.float32, (want.dtype, got.dtype)
err = np.abs(got.astype(np.float64) - want)
print("max abs difference %.3g, max relative %.3g" % (err.max(), (err / np.abs(want)).max()))
np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
assert np.allclose(got.sum(axis=1), 1, atol=1e-5)
print("bundle and kiln-run agree")
PY
