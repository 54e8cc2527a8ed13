/* bundle_main.c - the seed MLP (784-128-64-10) as a kiln bundle, run from plain C.
 *
 * kiln-compile --emit-bundle wrote mlp.o, mlp.h and mlp.weights.bin (examples/CMakeLists.txt
 * does it at build time). This program links with mlp.o and the C library alone: no kiln
 * library, no LLVM, no C++ runtime. It owns both memory regions of the model:
 *
 *   bundle_mlp mlp.weights.bin input.npy output.npy [REPEAT]
 *
 * reads the weights and a float32 .npy input of the compiled shape, runs the model, writes the
 * output as a float32 .npy, prints each row's most probable class, and with REPEAT > 0 times
 * that many more runs (minimum and median).
 */
#define _POSIX_C_SOURCE 199309L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlp.h"

#define IN_OFFSET MLP_INPUT_DATA_OFFSET
#define IN_ELEMENTS MLP_INPUT_DATA_ELEMENTS
#define OUT_OFFSET MLP_OUTPUT_SOFTMAX_OUTPUT_OFFSET
#define OUT_ELEMENTS MLP_OUTPUT_SOFTMAX_OUTPUT_ELEMENTS
#define OUT_RANK MLP_OUTPUT_SOFTMAX_OUTPUT_RANK

static const long long out_dims[] = MLP_OUTPUT_SOFTMAX_OUTPUT_DIMS;

static int fail(const char* what, const char* path) {
  fprintf(stderr, "bundle_mlp: %s: %s\n", path, what);
  return 1;
}

/* The whole file, malloc'ed; NULL if it cannot be read. */
static char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  char* data;
  long n;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return NULL;
  }
  data = malloc((size_t)n + 1);
  if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
    free(data);
    data = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return data;
}

/* `bytes` rounded up to a multiple of `align` (aligned_alloc wants that), at least `align`. */
static size_t round_up(size_t bytes, size_t align) {
  return bytes == 0 ? align : (bytes + align - 1) / align * align;
}

/* The float32 data of a .npy file (C order, little-endian) holding `elements` values; returns
 * NULL with a message in *error otherwise. */
static const float* npy_floats(const char* data, size_t size, long long elements,
                               const char** error) {
  size_t header_len, start;
  long long count = 1;
  const char *header, *shape;
  char* end;
  if (size < 10 || memcmp(data, "\x93NUMPY", 6) != 0) {
    *error = "not a .npy file";
    return NULL;
  }
  if (data[6] == 1) {
    header_len = (size_t)(unsigned char)data[8] | (size_t)(unsigned char)data[9] << 8;
    start = 10;
  } else if (size >= 12) {
    header_len = (size_t)(unsigned char)data[8] | (size_t)(unsigned char)data[9] << 8 |
                 (size_t)(unsigned char)data[10] << 16 | (size_t)(unsigned char)data[11] << 24;
    start = 12;
  } else {
    *error = "truncated header";
    return NULL;
  }
  if (start + header_len > size) {
    *error = "truncated header";
    return NULL;
  }
  /* The header is a Python dict literal; a copy with a terminating NUL to search in. */
  {
    static char text[4096];
    size_t n = header_len < sizeof text - 1 ? header_len : sizeof text - 1;
    memcpy(text, data + start, n);
    text[n] = '\0';
    header = text;
  }
  if (!strstr(header, "'descr': '<f4'")) {
    *error = "not float32 ('descr' must be '<f4')";
    return NULL;
  }
  if (!strstr(header, "'fortran_order': False")) {
    *error = "Fortran order is not supported";
    return NULL;
  }
  shape = strstr(header, "'shape': (");
  if (!shape) {
    *error = "no shape in the header";
    return NULL;
  }
  shape += strlen("'shape': (");
  while (*shape && *shape != ')') {
    long long d = strtoll(shape, &end, 10);
    if (end == shape) break;
    count *= d;
    shape = end;
    while (*shape == ',' || *shape == ' ') ++shape;
  }
  if (count != elements) {
    *error = "the array's element count is not the model input's";
    return NULL;
  }
  if (size - start - header_len < (size_t)elements * 4) {
    *error = "truncated data";
    return NULL;
  }
  return (const float*)(const void*)(data + start + header_len);
}

/* Writes `values` as a float32 .npy of shape `dims`; 0 on success. */
static int write_npy(const char* path, const float* values, const long long* dims, int rank,
                     long long elements) {
  char header[256];
  int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  int i, ok;
  FILE* f;
  for (i = 0; i < rank; ++i)
    n += snprintf(header + n, sizeof header - (size_t)n, "%lld%s", dims[i],
                  rank == 1 || i + 1 < rank ? ", " : "");
  n += snprintf(header + n, sizeof header - (size_t)n, "), }");
  while ((10 + n + 1) % 64 != 0) header[n++] = ' '; /* pad so that the data starts aligned */
  header[n++] = '\n';
  f = fopen(path, "wb");
  if (!f) return 1;
  ok = fwrite("\x93NUMPY\x01\x00", 1, 8, f) == 8 && fputc(n & 0xff, f) != EOF &&
       fputc(n >> 8, f) != EOF && fwrite(header, 1, (size_t)n, f) == (size_t)n &&
       fwrite(values, 4, (size_t)elements, f) == (size_t)elements;
  return fclose(f) != 0 || !ok;
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int compare_doubles(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  size_t size = 0;
  char *weights_file, *input_file;
  void *weights, *activations;
  const float *input, *output;
  const char* error = "";
  long long rows, cols, r, c;
  int repeat = argc > 4 ? atoi(argv[4]) : 0;
  if (argc < 4) {
    fprintf(stderr, "usage: bundle_mlp WEIGHTS.bin INPUT.npy OUTPUT.npy [REPEAT]\n");
    return 2;
  }
  /* The weight region: the file's bytes, as they are. */
  weights_file = read_file(argv[1], &size);
  if (!weights_file) return fail("cannot read", argv[1]);
  if (size != MLP_WEIGHTS_SIZE) return fail("not the model's weights (wrong size)", argv[1]);
  weights = aligned_alloc(MLP_WEIGHTS_ALIGN, round_up(MLP_WEIGHTS_SIZE, MLP_WEIGHTS_ALIGN));
  activations =
      aligned_alloc(MLP_ACTIVATIONS_ALIGN, round_up(MLP_ACTIVATIONS_SIZE, MLP_ACTIVATIONS_ALIGN));
  if (!weights || !activations) return fail("out of memory", "aligned_alloc");
  memcpy(weights, weights_file, size);
  free(weights_file);

  /* The input, at its offset in the activation region. */
  input_file = read_file(argv[2], &size);
  if (!input_file) return fail("cannot read", argv[2]);
  input = npy_floats(input_file, size, IN_ELEMENTS, &error);
  if (!input) return fail(error, argv[2]);
  memcpy((char*)activations + IN_OFFSET, input, (size_t)IN_ELEMENTS * sizeof(float));
  free(input_file);

  mlp_run(weights, activations);

  output = (const float*)(const void*)((const char*)activations + OUT_OFFSET);
  if (write_npy(argv[3], output, out_dims, OUT_RANK, OUT_ELEMENTS) != 0)
    return fail("cannot write", argv[3]);
  cols = out_dims[OUT_RANK - 1];
  rows = OUT_ELEMENTS / cols;
  for (r = 0; r < rows; ++r) {
    long long best = 0;
    for (c = 1; c < cols; ++c)
      if (output[r * cols + c] > output[r * cols + best]) best = c;
    printf("row %lld: class %lld (p = %.4f)\n", r, best, (double)output[r * cols + best]);
  }

  if (repeat > 0) {
    double* times = malloc(sizeof(double) * (size_t)repeat);
    int i;
    if (!times) return fail("out of memory", "malloc");
    for (i = 0; i < repeat; ++i) {
      double t0 = now_us();
      mlp_run(weights, activations);
      times[i] = now_us() - t0;
    }
    qsort(times, (size_t)repeat, sizeof(double), compare_doubles);
    printf("%d runs: min %.2f us, median %.2f us\n", repeat, times[0], times[repeat / 2]);
    free(times);
  }
  free(weights);
  free(activations);
  return 0;
}
