// rnn_kernel_test.cpp - LSTM, GRU and RNN_tanh as runtime-library calls (kiln/runtime/rnn.h):
// compiled graphs against the reference interpreter, artifacts, damaged descriptions, and the
// speed against the reference kernel.
//
// Tolerance: each output element within 2e-5 * (1 + |reference|). The compiled layer computes in
// float32 (GEMM sums of I or H products, gates through float32 exp/tanh polynomials with errors
// of a few 1e-7) against the reference kernel's double; errors then pass through S steps of the
// recurrence, where with weights in [-1, 1] and H <= 37 they grow by a small factor per step.
// The largest error measured over every case here is printed (2.9e-6); 2e-5 leaves margin
// while catching any wrong gate, bias or index (those give errors of order 0.1).
// Every case runs on a 1-thread and a 2-thread pool, whose outputs must be bit-identical.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "kiln/codegen/artifact.h"
#include "kiln/codegen/compile.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/artifact.h"
#include "kiln/runtime/artifact_generated.h"
#include "kiln/runtime/library_ops.h"
#include "kiln/runtime/rnn.h"
#include "test_util.h"

namespace kiln {
namespace {

struct Layer {
  std::string op = "LSTM";  // LSTM, GRU or RNN_tanh
  std::string attrs;        // beyond hidden_size, e.g. "direction=reverse, clip=0.5"
  int64_t seq = 4, batch = 3, input = 7, hidden = 5;
  bool bidirectional = false;
  bool layout1 = false;
};

int64_t Gates(const std::string& op) {
  return op == "LSTM" ? 4 : op == "GRU" ? 3 : 1;
}

// The layer as a one-node graph over variables x, w, r, b, h0 (and c0, p for LSTM).
std::string LayerText(const Layer& l) {
  const int64_t d = l.bidirectional ? 2 : 1, g = Gates(l.op), h = l.hidden;
  auto dims = [](std::vector<int64_t> v) {
    std::string s;
    for (int64_t x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
    return "float32[" + s + "]";
  };
  std::string state = l.layout1 ? dims({l.batch, d, h}) : dims({d, l.batch, h});
  std::string attrs = StrCat("hidden_size=", h, l.layout1 ? ", layout=1" : "",
                             l.attrs.empty() ? "" : ", ", l.attrs);
  if (l.bidirectional && l.attrs.find("direction") == std::string::npos)
    attrs += ", direction=bidirectional";
  const bool lstm = l.op == "LSTM";
  return StrCat("graph {\n  %x = var : ",
                l.layout1 ? dims({l.batch, l.seq, l.input}) : dims({l.seq, l.batch, l.input}),
                "\n  %w = var : ", dims({d, g * h, l.input}),
                "\n  %r = var : ", dims({d, g * h, h}), "\n  %b = var : ", dims({d, 2 * g * h}),
                "\n  %h0 = var : ", state,
                lstm ? StrCat("\n  %c0 = var : ", state, "\n  %p = var : ", dims({d, 3 * h})) : "",
                "\n  %y = ", l.op, "(%x, %w, %r, %b, %h0", lstm ? ", %c0, %p" : "", ") {", attrs,
                "}\n  return %y, %y#1", lstm ? ", %y#2" : "", "\n}\n");
}

// Random values in [-scale, scale] for every variable of `g`, their shapes into `shapes`.
std::map<std::string, Tensor> RandomVariables(const Graph& g, double scale, uint32_t seed,
                                              std::map<std::string, Shape>& shapes) {
  Graph typed = g;
  InferShapes(typed, {});
  std::map<std::string, Tensor> vars;
  for (uint32_t v : typed.VariableNodes()) {
    const Shape& s = typed.shape(Entry{v, 0});
    vars[typed.node(v).name] =
        Tensor::FromValues(s.dims(), DType::kFloat32,
                           test::RandomValues(size_t(s.NumElements()), seed++, -scale, scale));
    shapes[typed.node(v).name] = s;
  }
  return vars;
}

double g_largest_error = 0;  // over every comparison, relative to 1 + |reference|

// Prints g_largest_error once every test has run (the figure the tolerance is judged against).
class PrintLargestError : public ::testing::Environment {
  void TearDown() override {
    std::printf("largest error against the reference: %.3g * (1 + |reference|)\n", g_largest_error);
  }
};
::testing::Environment* const kPrintLargestError =
    ::testing::AddGlobalTestEnvironment(new PrintLargestError);

void ExpectNearReference(const std::vector<Tensor>& ref, const std::vector<Tensor>& got,
                         const std::string& what) {
  ASSERT_EQ(ref.size(), got.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_EQ(ShapeString(ref[i].shape()), ShapeString(got[i].shape())) << what;
    std::vector<double> want = ref[i].ToDoubles(), have = got[i].ToDoubles();
    for (size_t j = 0; j < want.size(); ++j) {
      const double err = std::abs(want[j] - have[j]) / (1 + std::abs(want[j]));
      g_largest_error = std::max(g_largest_error, err);
      ASSERT_LE(err, 2e-5) << what << ": output " << i << " element " << j << ": reference "
                           << want[j] << ", compiled " << have[j];
    }
  }
}

// Compiles the layer (no reference call allowed), runs it at 1 and 2 threads against the
// interpreter, and checks that both thread counts give the same bits.
void CheckText(const std::string& text, double scale = 1) {
  SCOPED_TRACE(text);
  Graph g = ParseGraph(text);
  codegen::CompileOptions o;
  o.allow_reference = false;
  std::map<std::string, Tensor> vars = RandomVariables(g, scale, 5, o.infer.shapes);
  std::vector<Tensor> ref = Interpret(g, vars);
  auto cg = codegen::CompileGraph(g, o);
  const std::string report = cg->Report();
  EXPECT_NE(report.find("1 runtime-library calls"), std::string::npos) << report;
  EXPECT_NE(report.find("0 on reference kernels"), std::string::npos) << report;
  std::vector<std::vector<Tensor>> by_threads;
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    codegen::CompiledRun run(cg, &pool);
    for (const auto& [n, t] : vars) run.Bind(n, t);
    run.Run();
    std::vector<Tensor> out;
    for (size_t k = 0; k < ref.size(); ++k) out.push_back(run.output(k).Clone());
    ExpectNearReference(ref, out, StrCat(threads, " thread(s)"));
    by_threads.push_back(std::move(out));
  }
  for (size_t k = 0; k < ref.size(); ++k)
    EXPECT_EQ(0, std::memcmp(by_threads[0][k].raw_data(), by_threads[1][k].raw_data(),
                             by_threads[0][k].nbytes()))
        << "output " << k << " differs between 1 and 2 threads";
}

void CheckLayer(const Layer& l, double scale = 1) {
  CheckText(LayerText(l), scale);
}

TEST(RnnKernel, EveryCellDirectionLayoutAndVariant) {
  for (const char* op : {"LSTM", "GRU", "RNN_tanh"})
    for (const char* direction : {"forward", "reverse", "bidirectional"})
      for (bool layout1 : {false, true}) {
        // The cell's own flag, a clip small enough to bind, and both.
        std::string flag = std::string(op) == "LSTM"  ? "input_forget=True"
                           : std::string(op) == "GRU" ? "linear_before_reset=True"
                                                      : "";
        std::vector<std::string> variants{"", "clip=0.5"};
        if (!flag.empty()) variants.insert(variants.end(), {flag, flag + ", clip=0.3"});
        for (const std::string& v : variants) {
          Layer l;
          l.op = op, l.layout1 = layout1;
          l.bidirectional = std::string(direction) == "bidirectional";
          l.attrs = StrCat("direction=", direction, v.empty() ? "" : ", ", v);
          CheckLayer(l);
        }
      }
}

// Peepholes: the LSTM cases above draw P at random; here the gates saturate (inputs and weights
// in [-6, 6]), which takes exp and tanh to the ends of their ranges.
TEST(RnnKernel, SaturatedGates) {
  for (const char* op : {"LSTM", "GRU", "RNN_tanh"}) {
    Layer l;
    l.op = op, l.bidirectional = true;
    CheckLayer(l, 6);
  }
}

// Sizes where the GEMMs take their blocked paths with several row blocks and column panels,
// and size-one extents.
TEST(RnnKernel, LargerAndSizeOneShapes) {
  for (const char* op : {"LSTM", "GRU", "RNN_tanh"}) {
    Layer big;
    big.op = op, big.seq = 3, big.batch = 20, big.input = 45, big.hidden = 37;
    big.bidirectional = true;
    CheckLayer(big, 0.3);  // |weights| <= 0.3: sums of 37 terms stay out of saturation
    Layer one;
    one.op = op, one.seq = 1, one.batch = 1, one.input = 1, one.hidden = 1, one.layout1 = true;
    CheckLayer(one);
  }
}

// No steps (the final states are the initial ones) and no batch rows.
TEST(RnnKernel, EmptySequenceAndBatch) {
  for (const char* op : {"LSTM", "GRU", "RNN_tanh"})
    for (bool layout1 : {false, true}) {
      Layer l;
      l.op = op, l.layout1 = layout1, l.bidirectional = true;
      l.seq = 0;
      CheckLayer(l);
      l.seq = 4, l.batch = 0;
      CheckLayer(l);
    }
}

// A layer between other ops: its outputs feed compiled kernels (and one is also a graph output).
TEST(RnnKernel, OutputsFeedOtherKernels) {
  CheckText(R"(graph {
    %x = var : float32[4, 3, 7]
    %w = var : float32[1, 15, 7]
    %r = var : float32[1, 15, 5]
    %b = var : float32[1, 30]
    %h0 = var : float32[1, 3, 5]
    %x2 = relu(%x)
    %y = GRU(%x2, %w, %r, %b, %h0) {hidden_size=5, direction=reverse}
    %s = sigmoid(%y)
    %t = elemwise_add(%y#1, %h0)
    return %s, %t, %y#1
  })");
}

// RnnForward allocates what its workspace lacks (a plan run on a larger pool than it was made
// for passes none): the full workspace, one whose GEMM scratch is short (sized for one thread,
// less 64 bytes), one short of the fixed arrays, and none give the same bits. A GRU without
// linear_before_reset: its two products per step share the GEMM scratch.
TEST(RnnKernel, MissingOrShortWorkspaceIsAllocated) {
  RnnShape s;
  s.cell = RnnCell::kGru, s.direction = RnnDirection::kBidirectional;
  s.seq = 5, s.batch = 17, s.input = 9, s.hidden = 33;
  std::vector<int64_t> in_bytes, out_bytes;
  RnnArgBytes(s, in_bytes, out_bytes);
  std::vector<std::vector<float>> in, out;
  uint32_t seed = 40;
  for (int64_t b : in_bytes) {
    std::vector<double> v = test::RandomValues(size_t(b / 4), seed++);
    in.emplace_back(v.begin(), v.end());
  }
  std::vector<const void*> in_ptrs;
  for (auto& v : in) in_ptrs.push_back(v.data());
  ThreadPool pool(2);
  const int64_t full = RnnWorkspaceBytes(s, 2);
  std::vector<std::vector<float>> results;
  for (int64_t bytes : {full, RnnWorkspaceBytes(s, 1) - 64, full / 4, int64_t(0)}) {
    std::vector<float> ws(size_t(full / 4 + 16));
    void* aligned = ws.data() + (64 - reinterpret_cast<uintptr_t>(ws.data()) % 64) / 4 % 16;
    std::vector<float> y(size_t(out_bytes[0] / 4)), yh(size_t(out_bytes[1] / 4));
    void* out_ptrs[2] = {y.data(), yh.data()};
    RnnForward(s, in_ptrs.data(), out_ptrs, bytes ? aligned : nullptr, bytes, &pool);
    y.insert(y.end(), yh.begin(), yh.end());
    results.push_back(std::move(y));
  }
  for (size_t i = 1; i < results.size(); ++i) EXPECT_EQ(results[0], results[i]) << "case " << i;
}

// --- Descriptions ---

LibraryOpDesc RnnDesc(std::vector<int64_t> ints, double clip = 0) {
  return LibraryOpDesc{LibraryOpKind::kRnn, std::move(ints), {clip}};
}

void ExpectRefused(const LibraryOpDesc& d, const std::string& part) {
  try {
    MakeLibraryOp(d);
    ADD_FAILURE() << "accepted; expected an error containing: " << part;
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("library op RNN"), std::string::npos) << e.what();
  }
}

TEST(RnnKernel, DescriptionsAreValidated) {
  // cell, direction, layout, seq, batch, input, hidden, has_clip, lbr, input_forget
  const std::vector<int64_t> good{1, 2, 0, 4, 3, 7, 5, 1, 0, 0};
  auto op = MakeLibraryOp(RnnDesc(good, 0.5));
  std::vector<int64_t> in, out;
  op->ArgBytes(in, out);
  EXPECT_EQ(in, (std::vector<int64_t>{4 * 4 * 3 * 7, 4 * 2 * 20 * 7, 4 * 2 * 20 * 5, 4 * 2 * 40,
                                      4 * 2 * 3 * 5, 4 * 2 * 3 * 5, 4 * 2 * 15}));
  EXPECT_EQ(out, (std::vector<int64_t>{4 * 4 * 2 * 3 * 5, 4 * 2 * 3 * 5, 4 * 2 * 3 * 5}));
  auto with = [&](size_t i, int64_t v) {
    std::vector<int64_t> ints = good;
    ints[i] = v;
    return ints;
  };
  ExpectRefused(RnnDesc(with(6, -3)), "integer 6 is -3, not a size");
  ExpectRefused(RnnDesc(with(3, -1)), "integer 3 is -1, not a size");
  ExpectRefused(RnnDesc(with(0, 7)), "cell 7 is not 0 (tanh), 1 (LSTM) or 2 (GRU)");
  ExpectRefused(RnnDesc(with(1, -1)), "direction -1 is not");
  ExpectRefused(RnnDesc(with(2, 2)), "layout 2 is not 0 or 1");
  ExpectRefused(RnnDesc(with(7, 2)), "integer 7 is 2, not a flag");
  ExpectRefused(RnnDesc(with(8, 1)), "linear_before_reset on a non-GRU cell");
  ExpectRefused(RnnDesc(good, -0.5), "clip -0.5");
  ExpectRefused(RnnDesc(good, NAN), "real 0 is not finite");
  ExpectRefused(RnnDesc({1, 2, 0, 4, 3, 7}), "has 6 integers and 1 reals; expected 10 and 1");
  // Products that would overflow: hidden 2^30 squared, and every size at its largest.
  ExpectRefused(RnnDesc({1, 0, 0, 1, 1, 1, int64_t(1) << 30, 0, 0, 0}), "sizes too large");
  ExpectRefused(RnnDesc({1, 0, 0, int64_t(1) << 40, int64_t(1) << 40, 1, 1, 0, 0, 0}),
                "sizes too large");
}

// --- Artifacts ---

void ExpectArtifactRefused(const std::string& bytes, const std::string& part) {
  try {
    Artifact::LoadMemory(bytes.data(), bytes.size(), "bad.kiln");
    ADD_FAILURE() << "loaded; expected an error containing: " << part;
  } catch (const ArtifactError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// A bidirectional LSTM with peepholes and clip: written to an artifact with its weights as
// parameters, loaded by the runtime alone, run; its outputs equal the JIT's (frozen weights,
// one thread) bit for bit. A damaged description is refused, naming the problem.
TEST(RnnKernel, LstmArtifactRoundTripsBitForBit) {
  Layer l;
  l.bidirectional = true, l.layout1 = true;
  l.attrs = "direction=bidirectional, clip=0.7";
  Graph g = ParseGraph(LayerText(l));
  codegen::CompileOptions o;
  o.allow_reference = false;
  std::map<std::string, Tensor> vars = RandomVariables(g, 1, 21, o.infer.shapes);
  std::map<std::string, Tensor> params = vars;
  params.erase("x");
  auto jit = codegen::CompileGraph(g, o);
  o.jit = false;
  auto aot = codegen::CompileGraph(g, o);
  const std::string bytes = codegen::SerializeArtifact(*aot, params, o.cpu);
  auto model = Artifact::LoadMemory(bytes.data(), bytes.size(), "lstm.kiln");
  ASSERT_EQ(model->inputs().size(), 1u);
  ASSERT_EQ(model->outputs().size(), 3u);

  ThreadPool one(1);
  codegen::CompiledRun run(jit, &one);
  for (const auto& [n, t] : vars) run.Bind(n, t);
  run.FreezeVariables();
  run.Run();
  ArtifactSession s(model);
  s.CopyInput(0, vars["x"].raw_data(), vars["x"].nbytes());
  s.Run();
  std::vector<Tensor> ref = Interpret(g, vars), got;
  for (size_t k = 0; k < 3; ++k) {
    const Tensor& want = run.output(k);
    EXPECT_EQ(0, std::memcmp(want.raw_data(), s.output(k), want.nbytes())) << "output " << k;
    got.push_back(want.Clone());
  }
  ExpectNearReference(ref, got, "JIT with frozen weights");

  auto edited = [&](const std::function<void(fb::ModelT&)>& edit) {
    std::unique_ptr<fb::ModelT> m(fb::GetModel(bytes.data())->UnPack());
    edit(*m);
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(fb::Model::Pack(fbb, m.get()), fb::ModelIdentifier());
    return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  };
  ExpectArtifactRefused(edited([](fb::ModelT& m) { m.library_ops[0]->ints[6] = -5; }),
                        "integer 6 is -5, not a size");
  ExpectArtifactRefused(edited([](fb::ModelT& m) { m.library_ops[0]->ints[0] = 9; }),
                        "cell 9 is not");
  // A hidden size that disagrees with the buffers the plan gives the call (argument 3 is W).
  ExpectArtifactRefused(edited([](fb::ModelT& m) { m.library_ops[0]->ints[6] = 6; }),
                        "argument 3 is not the library op's tensor");
}

}  // namespace
}  // namespace kiln
