// bundle_test.cpp - EmitBundle (kiln/codegen/bundle.h): the header's constants, the weight file,
// and the object's NAME_run, mapped with the runtime's object loader and run on caller-owned
// regions, against the reference interpreter.
//
// Tolerance: 1e-5 * sqrt(K) * (largest |reference| + 1) per element, K the longest contraction
// (1 without matrix products): float32 code against the interpreter's double arithmetic.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/codegen/bundle.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/npy.h"
#include "kiln/runtime/object_loader.h"
#include "test_util.h"

namespace kiln::codegen {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system's temporary directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "kiln_bundle_XXXXXX").string();
    path_ = mkdtemp(pattern.data()) ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The header's `#define NAME VALUE` lines.
std::map<std::string, std::string> Defines(const std::string& header) {
  std::map<std::string, std::string> out;
  std::istringstream in(header);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("#define ", 0) != 0) continue;
    size_t sp = line.find(' ', 8);
    out[line.substr(8, sp - 8)] = sp == std::string::npos ? "" : line.substr(sp + 1);
  }
  return out;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
using Region = std::unique_ptr<char, AlignedFree>;

Region Allocate(int64_t bytes) {
  size_t n = size_t((std::max<int64_t>(bytes, 1) + 63) / 64 * 64);
  Region r(static_cast<char*>(std::aligned_alloc(64, n)));
  std::memset(r.get(), 0xAB, n);  // garbage: the model must not read what it did not write
  return r;
}

// Emits `text` as bundle `name` with `params`, runs it on `inputs`, and compares each output with
// the interpreter (which also gets `all`: values the compiled graph drops, such as labels).
// Sets `defines` to the header's defines.
void EmitRunCompare(std::map<std::string, std::string>* defines, const std::string& text,
                    const std::map<std::string, Tensor>& params,
                    const std::map<std::string, Tensor>& inputs,
                    const std::vector<std::string>& output_names, const std::string& name,
                    int64_t k = 1, std::map<std::string, Tensor> all = {}) {
  Graph g = ParseGraph(text);
  CompileOptions o;
  for (const auto& [n, t] : inputs) all[n] = t;
  for (const auto& [n, t] : params) all[n] = t;
  std::vector<Tensor> ref = Interpret(g, all);
  TempDir dir;
  const std::string sub = dir.path() + "/out/nested";  // created by EmitBundle
  EmitBundle(g, o, params, output_names, sub, name);
  const std::string header = ReadFileBytes(sub + "/" + name + ".h");
  const std::string weights = ReadFileBytes(sub + "/" + name + ".weights.bin");
  const std::string object = ReadFileBytes(sub + "/" + name + ".o");
  std::map<std::string, std::string>& d = *defines;
  d = Defines(header);
  std::string p;
  for (char c : name) p += char(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(d.at(p + "_WEIGHTS_ALIGN"), "64");
  EXPECT_EQ(d.at(p + "_ACTIVATIONS_ALIGN"), "64");
  EXPECT_EQ(std::to_string(weights.size()), d.at(p + "_WEIGHTS_SIZE"));
  EXPECT_NE(header.find("void " + name + "_run(const void* weights, void* activations);"),
            std::string::npos)
      << header;
  EXPECT_NE(header.find("extern \"C\""), std::string::npos);

  std::unique_ptr<LoadedObject> obj = LoadedObject::Load(object.data(), object.size());
  auto run = reinterpret_cast<void (*)(const void*, void*)>(obj->Find(name + "_run"));
  EXPECT_TRUE(run) << "no " << name << "_run in the object";
  if (!run) return;
  Region w = Allocate(int64_t(weights.size()));
  std::memcpy(w.get(), weights.data(), weights.size());
  Region a = Allocate(std::stoll(d.at(p + "_ACTIVATIONS_SIZE")));
  for (const auto& [n, t] : inputs) {
    std::string key = p + "_INPUT_" + n;
    for (char& c : key) c = char(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(std::to_string(t.nbytes()), d.at(key + "_SIZE"));
    std::memcpy(a.get() + std::stoll(d.at(key + "_OFFSET")), t.raw_data(), t.nbytes());
  }
  for (int repeat = 0; repeat < 2; ++repeat) {  // a second run on the same regions
    run(w.get(), a.get());
    for (size_t i = 0; i < ref.size(); ++i) {
      std::string key = p + "_OUTPUT_" + output_names[i];
      for (char& c : key) c = char(std::toupper(static_cast<unsigned char>(c)));
      ASSERT_TRUE(d.count(key + "_OFFSET")) << key << "\n" << header;
      ASSERT_EQ(std::to_string(ref[i].nbytes()), d.at(key + "_SIZE"));
      Tensor got =
          Tensor::View(a.get() + std::stoll(d.at(key + "_OFFSET")), ref[i].shape(), ref[i].dtype());
      std::vector<double> want = ref[i].ToDoubles(), have = got.ToDoubles();
      double scale = 1;
      for (double x : want) scale = std::max(scale, std::abs(x) + 1);
      const double tol = 1e-5 * std::sqrt(double(k)) * scale;
      for (size_t j = 0; j < want.size(); ++j)
        ASSERT_NEAR(want[j], have[j], tol) << "output " << output_names[i] << " element " << j;
    }
  }
  // The weights were only read.
  EXPECT_EQ(std::memcmp(w.get(), weights.data(), weights.size()), 0);
}

Tensor Random(std::vector<int64_t> shape, uint32_t seed) {
  int64_t n = 1;
  for (int64_t x : shape) n *= x;
  return Tensor::FromValues(shape, DType::kFloat32, test::RandomValues(size_t(n), seed));
}

TEST(Bundle, ElementwiseSoftmaxWithParametersAndOddOutputs) {
  // Outputs: a fused result, an intermediate (also read by the softmax), a parameter (copied
  // out of the weights) and an input (the input's own buffer).
  const char* text = R"(graph {
    %x = var : float32[3, 37]
    %w = var : float32[37]
    %b = var : float32[3, 37]
    %s = broadcast_mul(%x, %w)
    %t = elemwise_add(%s, %b)
    %a = Activation(%t) {act_type=tanh}
    %p = softmax(%a)
    return %p, %t, %w, %x
  })";
  std::map<std::string, Tensor> params = {{"w", Random({37}, 1)}, {"b", Random({3, 37}, 2)}};
  std::map<std::string, Tensor> inputs = {{"x", Random({3, 37}, 3)}};
  std::map<std::string, std::string> d;
  ASSERT_NO_FATAL_FAILURE(
      EmitRunCompare(&d, text, params, inputs, {"prob", "pre", "weight", "data"}, "tiny"));
  // Parameters at 64-byte offsets: w (148 bytes) then b; the file is the region.
  EXPECT_EQ(d.at("TINY_WEIGHTS_SIZE"), std::to_string(192 + 448));
  EXPECT_EQ(d.at("TINY_OUTPUT_DATA_OFFSET"), d.at("TINY_INPUT_X_OFFSET"));
  EXPECT_EQ(d.at("TINY_INPUT_X_DIMS"), "{3, 37}");
  EXPECT_EQ(d.at("TINY_INPUT_X_DTYPE"), "\"float32\"");
  EXPECT_EQ(d.at("TINY_NUM_INPUTS"), "1");
  EXPECT_EQ(d.at("TINY_NUM_OUTPUTS"), "4");
  for (const char* k : {"TINY_INPUT_X_OFFSET", "TINY_OUTPUT_PROB_OFFSET", "TINY_OUTPUT_PRE_OFFSET",
                        "TINY_OUTPUT_WEIGHT_OFFSET"})
    EXPECT_EQ(std::stoll(d.at(k)) % 64, 0) << k;
}

TEST(Bundle, WeightFileHoldsTheParametersAtTheirOffsets) {
  const char* text = R"(graph {
    %x = var : float32[5]
    %u = var : float32[3]
    %v = var : float32[5]
    %y = elemwise_mul(%x, %v)
    return %y, %u
  })";
  Tensor u = Random({3}, 4), v = Random({5}, 5);
  Graph g = ParseGraph(text);
  TempDir dir;
  CompileOptions o;
  EmitBundle(g, o, {{"u", u}, {"v", v}}, {"y", "u"}, dir.path(), "w2");
  std::string weights = ReadFileBytes(dir.path() + "/w2.weights.bin");
  ASSERT_EQ(weights.size(), 128u);
  EXPECT_EQ(std::memcmp(weights.data(), u.raw_data(), 12), 0);
  EXPECT_EQ(std::memcmp(weights.data() + 64, v.raw_data(), 20), 0);
  EXPECT_EQ(weights.substr(12, 52), std::string(52, '\0'));
}

TEST(Bundle, SharedOutputsGetOneBuffer) {
  const char* text = R"(graph {
    %x = var : float32[4, 8]
    %e = exp(%x)
    return %e, %e
  })";
  std::map<std::string, std::string> d;
  ASSERT_NO_FATAL_FAILURE(
      EmitRunCompare(&d, text, {}, {{"x", Random({4, 8}, 6)}}, {"first", "second"}, "twice"));
  EXPECT_EQ(d.at("TWICE_OUTPUT_FIRST_OFFSET"), d.at("TWICE_OUTPUT_SECOND_OFFSET"));
  EXPECT_EQ(d.at("TWICE_WEIGHTS_SIZE"), "0");
}

TEST(Bundle, AGraphWithoutKernelsCopiesItsParameterOutputs) {
  const char* text = R"(graph {
    %x = var : int32[3]
    %w = var : float32[2, 2]
    return %w, %x
  })";
  Tensor x = Tensor::FromValues({3}, DType::kInt32, {1, -2, 3});
  std::map<std::string, std::string> d;
  ASSERT_NO_FATAL_FAILURE(
      EmitRunCompare(&d, text, {{"w", Random({2, 2}, 7)}}, {{"x", x}}, {"w_out", "x_out"}, "none"));
  EXPECT_EQ(d.at("NONE_OUTPUT_X_OUT_OFFSET"), d.at("NONE_INPUT_X_OFFSET"));
  EXPECT_EQ(d.at("NONE_OUTPUT_X_OUT_DTYPE"), "\"int32\"");
}

TEST(Bundle, SanitisedNamesStayDistinct) {
  const char* text = R"(graph {
    %"in.a" = var : float32[6]
    %"in-a" = var : float32[6]
    %y = elemwise_add(%"in.a", %"in-a")
    return %y
  })";
  Graph g = ParseGraph(text);
  TempDir dir;
  EmitBundle(g, CompileOptions{}, {}, {"out/1"}, dir.path(), "names");
  auto d = Defines(ReadFileBytes(dir.path() + "/names.h"));
  EXPECT_TRUE(d.count("NAMES_INPUT_IN_A_OFFSET"));
  EXPECT_TRUE(d.count("NAMES_INPUT_IN_A_2_OFFSET"));
  EXPECT_TRUE(d.count("NAMES_OUTPUT_OUT_1_OFFSET"));
}

TEST(Bundle, TheMlpLowersWithoutTheLibrary) {
  const char* text = R"(graph {
    %data = var : float32[2, 784]
    %fc1_weight = var : float32[128, 784]
    %fc1_bias = var : float32[128]
    %fc1 = FullyConnected(%data, %fc1_weight, %fc1_bias) {num_hidden=128}
    %relu1 = Activation(%fc1) {act_type=relu}
    %fc2_weight = var : float32[64, 128]
    %fc2_bias = var : float32[64]
    %fc2 = FullyConnected(%relu1, %fc2_weight, %fc2_bias) {num_hidden=64}
    %relu2 = Activation(%fc2) {act_type=relu}
    %fc3_weight = var : float32[10, 64]
    %fc3_bias = var : float32[10]
    %fc3 = FullyConnected(%relu2, %fc3_weight, %fc3_bias) {num_hidden=10}
    %softmax_label = var : float32[2]
    %softmax = SoftmaxOutput(%fc3, %softmax_label)
    return %softmax
  })";
  std::map<std::string, Tensor> params;
  uint32_t seed = 10;
  for (auto [n, s] :
       std::vector<std::pair<std::string, std::vector<int64_t>>>{{"fc1_weight", {128, 784}},
                                                                 {"fc1_bias", {128}},
                                                                 {"fc2_weight", {64, 128}},
                                                                 {"fc2_bias", {64}},
                                                                 {"fc3_weight", {10, 64}},
                                                                 {"fc3_bias", {10}}})
    params[n] = Random(s, seed++);
  std::map<std::string, Tensor> inputs = {{"data", Random({2, 784}, 99)}};
  // The interpreter reads the label; the compiled inference graph drops it, and the header
  // leaves it out.
  std::map<std::string, std::string> d;
  ASSERT_NO_FATAL_FAILURE(EmitRunCompare(&d, text, params, inputs, {"softmax_output"}, "mlp", 784,
                                         {{"softmax_label", Tensor::Zeros({2}, DType::kFloat32)}}));
  EXPECT_FALSE(d.count("MLP_INPUT_SOFTMAX_LABEL_OFFSET"));
  EXPECT_EQ(d.at("MLP_NUM_INPUTS"), "1");
}

TEST(Bundle, ConvolutionAndPoolingLowerWithoutTheLibrary) {
  const char* text = R"kir(graph {
    %data = var : float32[2, 3, 12, 12]
    %w = var : float32[8, 3, 3, 3]
    %b = var : float32[8]
    %c = Convolution(%data, %w, %b) {kernel="(3, 3)", num_filter=8, pad="(1, 1)"}
    %r = Activation(%c) {act_type=relu}
    %p = Pooling(%r) {kernel="(2, 2)", stride="(2, 2)", pool_type=max}
    return %p
  })kir";
  std::map<std::string, std::string> d;
  ASSERT_NO_FATAL_FAILURE(
      EmitRunCompare(&d, text, {{"w", Random({8, 3, 3, 3}, 20)}, {"b", Random({8}, 21)}},
                     {{"data", Random({2, 3, 12, 12}, 22)}}, {"pooled"}, "conv", 27));
  EXPECT_EQ(d.at("CONV_OUTPUT_POOLED_DIMS"), "{2, 8, 6, 6}");
}

TEST(Bundle, BadNameIsAUserError) {
  Graph g = ParseGraph(R"(graph {
    %x = var : float32[2]
    %y = exp(%x)
    return %y
  })");
  TempDir dir;
  EXPECT_THROW(EmitBundle(g, CompileOptions{}, {}, {}, dir.path(), "9lives"), UserError);
  EXPECT_THROW(EmitBundle(g, CompileOptions{}, {}, {}, dir.path(), "a-b"), UserError);
  EXPECT_THROW(EmitBundle(g, CompileOptions{}, {}, {"a", "b"}, dir.path(), "ok"), UserError);
}

TEST(Bundle, WrongParameterShapeIsAUserError) {
  Graph g = ParseGraph(R"(graph {
    %x = var : float32[2]
    %w = var : float32[2]
    %y = elemwise_add(%x, %w)
    return %y
  })");
  TempDir dir;
  EXPECT_THROW(EmitBundle(g, CompileOptions{}, {{"w", Random({3}, 1)}}, {}, dir.path(), "bad"),
               UserError);
}

}  // namespace
}  // namespace kiln::codegen
