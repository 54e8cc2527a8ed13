// make_mlp_inputs: parameters and an input for the seed MLP (tests/data/mxnet_mlp-symbol.json),
// the model of the bundle example.
//
//   make_mlp_inputs DIR [BATCH] [SEED]
//
// writes DIR/mlp.params (MXNet's .params format, kiln/frontend/params.h: Xavier-uniform weights,
// small uniform biases) and DIR/input.npy (float32[BATCH, 784] in [0, 1), like pixel values),
// both from a fixed seed, so that every build makes the same files.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "kiln/frontend/params.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/npy.h"

namespace {

kiln::Tensor Uniform(std::vector<int64_t> shape, float limit, std::mt19937& rng) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::uniform_real_distribution<float> dist(-limit, limit);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return kiln::Tensor::FromVector(std::move(shape), v);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_mlp_inputs DIR [BATCH] [SEED]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 4;
  const unsigned seed = argc > 3 ? unsigned(std::atoi(argv[3])) : 2026;
  try {
    std::filesystem::create_directories(dir);
    std::mt19937 rng(seed);
    kiln::ParamFile params;
    const int64_t sizes[] = {784, 128, 64, 10};
    for (int layer = 0; layer < 3; ++layer) {
      const int64_t in = sizes[layer], out = sizes[layer + 1];
      const std::string fc = "fc" + std::to_string(layer + 1);
      params.arg[fc + "_weight"] = Uniform({out, in}, std::sqrt(6.0f / float(in + out)), rng);
      params.arg[fc + "_bias"] = Uniform({out}, 0.1f, rng);
    }
    kiln::SaveParams(dir + "/mlp.params", params);
    std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
    std::vector<float> data(size_t(batch * 784));
    for (float& x : data) x = pixel(rng);
    kiln::WriteNpy(dir + "/input.npy", kiln::Tensor::FromVector({batch, 784}, data));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_mlp_inputs: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
