// random_test.cpp - the counter-based random numbers of random ops (kiln/ir/random.h, D50):
// Philox4x32-10 against Random123's published known answers, the statistics of the keep
// decision, the kernel IR's random_bits intrinsic against the C++ function, and Dropout and
// rrelu compiled against the reference interpreter.
//
// Tolerances: Dropout's masks and outputs are bit-identical (an integer comparison and one
// product, rounded once, on both sides). rrelu's slopes lower + width u are computed in double
// on both sides, but compiled code may fuse the multiply-add: outputs within 1e-15 relative
// (float64) and exactly equal after rounding to float32 except where the double results
// straddle a rounding boundary (1 ulp of float32 allowed).
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "kiln/codegen/artifact.h"
#include "kiln/codegen/bundle.h"
#include "kiln/codegen/compile.h"
#include "kiln/codegen/llvm_jit.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/random.h"
#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/thread_pool.h"
#include "test_util.h"

namespace kiln {
namespace {

TEST(Random, Philox4x32x10MatchesRandom123KnownAnswers) {
  using W = std::array<uint32_t, 4>;
  EXPECT_EQ(Philox4x32x10({0, 0, 0, 0}, {0, 0}),
            (W{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(
      Philox4x32x10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
      (W{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(
      Philox4x32x10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
      (W{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
  // RandomBits packs (counter, stream) into the counter words and the seed into the key.
  EXPECT_EQ(RandomBits(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull),
            int64_t(0xd16cfe09));
}

TEST(Random, StreamsAndThresholds) {
  EXPECT_NE(RandomStream("drop0"), RandomStream("drop1"));
  // Streams are exact in a double (compute definitions hold constants as doubles).
  EXPECT_LT(RandomStream("a very long node name that exceeds sixteen bytes"), uint64_t(1) << 52);
  EXPECT_EQ(KeepThreshold(0), 0);
  EXPECT_EQ(KeepThreshold(1), int64_t(1) << 32);
  EXPECT_EQ(KeepThreshold(0.5), int64_t(1) << 31);
  EXPECT_EQ(KeepThreshold(1e-12), 1);  // any p > 0 drops something
  EXPECT_EQ(RandomUnit(0), 0.0);
  EXPECT_LT(RandomUnit(0xffffffff), 1.0);
}

// The fraction kept over 2^20 draws is 1 - p within 5 standard deviations, the mean of the
// unit values is 1/2 within 5 sigma, and successive seeds and streams are uncorrelated at
// that level (a bias of the packing would show as a shifted fraction).
TEST(Random, KeepFractionsAndMeans) {
  const int64_t n = int64_t(1) << 20;
  for (double p : {0.1, 0.5, 0.9}) {
    for (uint64_t seed : {0ull, 1ull, 0x123456789abcdefull}) {
      int64_t kept = 0;
      double sum = 0;
      const int64_t t = KeepThreshold(p);
      for (int64_t i = 0; i < n; ++i) {
        int64_t b = RandomBits(seed, RandomStream("dropout0"), uint64_t(i));
        kept += b >= t;
        sum += RandomUnit(b);
      }
      double sigma = std::sqrt(p * (1 - p) / double(n));
      EXPECT_NEAR(double(kept) / double(n), 1 - p, 5 * sigma) << "p " << p << " seed " << seed;
      EXPECT_NEAR(sum / double(n), 0.5, 5 * std::sqrt(1.0 / 12 / double(n))) << "seed " << seed;
    }
  }
  // Neighbouring draws of one stream: the fraction of pairs both kept is (1 - p)^2.
  int64_t both = 0;
  const int64_t t = KeepThreshold(0.5);
  for (int64_t i = 0; i + 1 < n; i += 2)
    both += RandomBits(7, 11, uint64_t(i)) >= t && RandomBits(7, 11, uint64_t(i + 1)) >= t;
  EXPECT_NEAR(double(both) / double(n / 2), 0.25, 5 * std::sqrt(0.25 * 0.75 / double(n / 2)));
}

// random_bits in a vectorised kernel, for counters around 2^32 (the high counter word) and a
// length that is not a multiple of the vector width, against RandomBits.
TEST(Random, KernelIntrinsicMatchesTheReference) {
  using namespace codegen;
  const int64_t n = 1003;
  Buffer out = MakeBuffer("out", DType::kInt64, {n});
  Var i = MakeVar("i"), seed = MakeVar("seed");
  const int64_t stream = int64_t(RandomStream("node"));
  const int64_t base = (int64_t(1) << 32) - 500;
  Kernel k;
  k.name = "draws";
  k.buffers = {out};
  k.scalars = {seed};
  k.body =
      For(i, IntImm(0), IntImm(n), ForKind::kVectorize,
          Store(out, {Ref(i)},
                Call(Intrinsic::kRandomBits, {Ref(seed), IntImm(stream), Ref(i) + IntImm(base)})));
  VerifyKernel(k);
  EXPECT_NE(PrintKernel(k).find("random_bits("), std::string::npos) << PrintKernel(k);
  LLVMJit jit;
  KernelFn fn = jit.Compile({k})[0];
  std::vector<int64_t> got(size_t(n), -1);
  for (uint64_t s : {0ull, 42ull, 0xfedcba9876543210ull}) {
    void* args[] = {got.data(), &s};
    fn(args, 0, 1);
    for (int64_t j = 0; j < n; ++j)
      ASSERT_EQ(got[size_t(j)], RandomBits(s, uint64_t(stream), uint64_t(j + base)))
          << "seed " << s << " element " << j;
  }
}

TEST(Random, RandomBitsOnFloatsIsRejectedByTheVerifier) {
  using namespace codegen;
  Buffer out = MakeBuffer("out", DType::kInt64, {1});
  Kernel k;
  k.name = "bad";
  k.buffers = {out};
  k.body = Store(out, {IntImm(0)},
                 Call(Intrinsic::kRandomBits, {FloatImm(1), FloatImm(2), FloatImm(3)}));
  EXPECT_THROW(VerifyKernel(k), InternalError);
}

struct Case {
  std::string text;
  bool is_train;
};

// Compiles `text`, runs it at 1 and 2 threads with `seed`, and compares every output with the
// interpreter's under the same seed and mode, within rel_tol |want| + abs_tol. Returns the
// compiled graph.
std::shared_ptr<const codegen::CompiledGraph> CompareWithInterpreter(const Case& c, uint64_t seed,
                                                                     double rel_tol,
                                                                     double abs_tol = 0) {
  Graph g = ParseGraph(c.text);
  Graph typed = g;
  InferShapes(typed, {});
  codegen::CompileOptions o;
  o.is_train = c.is_train;
  std::map<std::string, Tensor> vars;
  uint32_t vseed = 5;
  for (uint32_t v : typed.VariableNodes()) {
    const Shape& s = typed.shape(Entry{v, 0});
    vars[typed.node(v).name] = Tensor::FromValues(
        s.dims(), typed.dtype(Entry{v, 0}), test::RandomValues(size_t(s.NumElements()), vseed++));
    o.infer.shapes[typed.node(v).name] = s;
    o.infer.dtypes[typed.node(v).name] = typed.dtype(Entry{v, 0});
  }
  InterpretOptions io;
  io.is_train = c.is_train;
  io.seed = seed;
  std::vector<Tensor> ref = Interpret(g, vars, io);
  auto cg = codegen::CompileGraph(g, o);
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    codegen::CompiledRun run(cg, &pool);
    for (const auto& [n, t] : vars) run.Bind(n, t);
    run.Run(c.is_train, seed);
    for (size_t i = 0; i < ref.size(); ++i) {
      SCOPED_TRACE(c.text + "\noutput " + std::to_string(i) + ", " + std::to_string(threads) +
                   " threads, seed " + std::to_string(seed) + "\n" + cg->Report());
      std::vector<double> want = ref[i].ToDoubles(), got = run.output(i).ToDoubles();
      EXPECT_EQ(got.size(), want.size());
      if (got.size() != want.size()) continue;
      int bad = 0;
      for (size_t j = 0; j < want.size() && bad < 5; ++j)
        if (!(std::fabs(got[j] - want[j]) <= rel_tol * std::fabs(want[j]) + abs_tol)) {
          ++bad;
          ADD_FAILURE() << "element " << j << ": got " << got[j] << ", want " << want[j];
        }
    }
  }
  return cg;
}

std::string DropoutGraph(const std::string& dtype, const std::string& dims,
                         const std::string& attrs) {
  return "graph {\n  %x = var : " + dtype + "[" + dims + "]\n  %r = relu(%x)\n" +
         "  %d = Dropout(%r) {" + attrs +
         "}\n  %y = elemwise_mul(%d, %x)\n  return %d, %d#1, %y\n}";
}

// Dropout compiled (a kernel of its own, with relu before it and a product after) equals the
// interpreter bit for bit: every p, shared axes, odd and empty shapes, both float types, both
// modes, three seeds, 1 and 2 threads; and no reference call is left.
TEST(Random, DropoutCompiledEqualsTheInterpreter) {
  std::vector<Case> cases;
  for (const char* t : {"float32", "float64"})
    for (const char* p : {"0", "0.3", "0.5", "1"}) {
      cases.push_back({DropoutGraph(t, "7, 33", std::string("p=") + p), true});
      cases.push_back(
          {DropoutGraph(t, "3, 5, 17", std::string("p=") + p + ", axes=\"(0, 2)\""), true});
    }
  cases.push_back({DropoutGraph("float32", "1000", "p=0.25"), true});
  cases.push_back({DropoutGraph("float32", "4, 0, 3", "p=0.5"), true});
  cases.push_back({DropoutGraph("float32", "", "p=0.5"), true});  // a scalar
  cases.push_back({DropoutGraph("float32", "9, 65", "p=0.5"), false});
  cases.push_back({DropoutGraph("float32", "9, 65", "p=0.5, mode=always"), false});
  cases.push_back({DropoutGraph("float64", "2, 3, 4", "p=0.6, mode=always, axes=\"(1,)\""), false});
  for (const Case& c : cases)
    for (uint64_t seed : {0ull, 1ull, 0x9e3779b97f4a7c15ull}) {
      auto cg = CompareWithInterpreter(c, seed, 0.0);
      EXPECT_NE(cg->Report().find("0 on reference kernels"), std::string::npos) << cg->Report();
    }
}

// A Dropout after a FullyConnected or a convolution runs in the library call's epilogue, on its
// rows, drawing the interpreter's mask (the masks are exact: 0 or 1 / (1 - p); the products are
// float32 sums of 20 or 27 terms in [-1, 1] against double sums, within 1e-5).
TEST(Random, DropoutInsideTheLibraryEpilogue) {
  const std::string fc =
      "graph {\n  %x = var : float32[8, 20]\n  %w = var : float32[16, 20]\n"
      "  %b = var : float32[16]\n  %fc = FullyConnected(%x, %w, %b) {num_hidden=16}\n"
      "  %r = relu(%fc)\n  %d = Dropout(%r) {p=0.5}\n  return %d, %d#1\n}";
  const std::string conv =
      "graph {\n  %x = var : float32[2, 3, 9, 9]\n  %w = var : float32[5, 3, 3, 3]\n"
      "  %c = Convolution(%x, %w) {kernel=\"(3, 3)\", num_filter=5, no_bias=True}\n"
      "  %d = Dropout(%c) {p=0.25}\n  return %d, %d#1\n}";
  for (const std::string& text : {fc, conv}) {
    auto cg = CompareWithInterpreter({text, true}, 17, 0.0, 1e-5);
    EXPECT_TRUE(cg->epilogues_in_gemm()) << cg->Report();
    EXPECT_NE(cg->RandomCalls(), "") << cg->Report();
  }
}

// Seeds and node names decide the masks: another seed or another name draws another mask, the
// same ones the same mask.
TEST(Random, DropoutMasksFollowSeedsAndNames) {
  auto mask = [](const std::string& name, uint64_t seed) {
    Graph g = ParseGraph("graph {\n  %x = var : float32[64, 64]\n  %" + name +
                         " = Dropout(%x) {p=0.5}\n  return %" + name + "#1\n}");
    codegen::CompileOptions o;
    o.is_train = true;
    codegen::CompiledRun run(codegen::CompileGraph(g, o));
    run.Bind("x", Tensor::Zeros({64, 64}, DType::kFloat32));
    run.Run(true, seed);
    return run.output(0).ToDoubles();
  };
  std::vector<double> a = mask("d", 1);
  EXPECT_EQ(a, mask("d", 1));
  EXPECT_NE(a, mask("d", 2));
  EXPECT_NE(a, mask("e", 1));
  int64_t kept = 0;
  for (double v : a) kept += v != 0;
  EXPECT_NEAR(double(kept) / 4096, 0.5, 5 * std::sqrt(0.25 / 4096));
}

// rrelu: slopes drawn in training, their mean in inference; compiled as a kernel.
TEST(Random, RreluCompiledMatchesTheInterpreter) {
  for (const char* t : {"float32", "float64"})
    for (bool train : {true, false}) {
      std::string text = std::string("graph {\n  %x = var : ") + t +
                         "[5, 131]\n  %y = LeakyReLU(%x) {act_type=rrelu, lower_bound=0.1, "
                         "upper_bound=0.4}\n  return %y, %y#1\n}";
      double tol = std::string(t) == "float32" ? std::ldexp(1.0, -23) : 1e-15;
      auto cg = CompareWithInterpreter({text, train}, 3, tol);
      EXPECT_NE(cg->Report().find("0 on reference kernels"), std::string::npos) << cg->Report();
    }
}

// Artifacts and bundles carry no seed: a graph that draws is refused with the nodes named,
// and no file is left behind.
TEST(Random, ArtifactsAndBundlesRefuseRandomNodes) {
  Graph g = ParseGraph(
      "graph {\n  %x = var : float32[4, 8]\n  %mc = Dropout(%x) {p=0.5, mode=always}\n"
      "  return %mc\n}");
  codegen::CompileOptions o;
  auto cg = codegen::CompileGraph(g, o);
  try {
    codegen::SerializeArtifact(*cg, {}, o.cpu, {});
    ADD_FAILURE() << "an artifact of a random node was written";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("Dropout (node \"mc\")"), std::string::npos) << e.what();
  }
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("random_bundle_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  try {
    codegen::EmitBundle(g, o, {}, {}, dir.string(), "mc");
    ADD_FAILURE() << "a bundle of a random node was written";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("node \"mc\""), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "mc.o"));
  EXPECT_FALSE(fs::exists(dir / "mc.h"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kiln
