// artifact_test.cpp - .kiln artifacts: written from a compiled graph, loaded by the runtime
// alone, run from many threads, through the C API, and refused when damaged.
//
// Outputs of a loaded artifact are compared with the JIT-compiled graph (CompiledRun with frozen
// weights) on the same inputs at one thread: the same kernels from the same LLVM, the same
// library calls on the same prepacked weights, so they must agree bit for bit. The JIT itself is
// checked against the reference interpreter by compiled_graph_test and compiled_executor_test.
#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "kiln/codegen/artifact.h"
#include "kiln/codegen/compile.h"
#include "kiln/frontend/models.h"
#include "kiln/runtime.h"
#include "kiln/runtime/artifact.h"
#include "kiln/runtime/artifact_generated.h"
#include "kiln/runtime/cpu_features.h"
#include "kiln/runtime/library_ops.h"
#include "kiln/runtime/npy.h"
#include "test_util.h"

namespace kiln {
namespace {

struct Built {
  std::shared_ptr<const codegen::CompiledGraph> jit;
  std::string bytes;
  std::map<std::string, Tensor> params;
  Shape data;
};

Tensor Random(const Shape& s, uint32_t seed) {
  return Tensor::FromValues(s.dims(), DType::kFloat32,
                            test::RandomValues(size_t(s.NumElements()), seed));
}

Built Build(const Symbol& net, const Shape& data) {
  Graph g = net.ToGraph();
  codegen::CompileOptions o;
  o.allow_reference = false;
  o.infer.shapes = {{"data", data}, {"softmax_label", Shape({data[0]})}};
  Graph typed = g;
  InferShapes(typed, o.infer);
  Built b;
  b.data = data;
  uint32_t seed = 11;
  for (uint32_t v : typed.VariableNodes()) {
    const std::string& name = typed.node(v).name;
    if (name != "data" && name != "softmax_label")
      b.params[name] = Random(typed.shape(Entry{v, 0}), seed++);
  }
  b.jit = codegen::CompileGraph(g, o);
  o.jit = false;
  auto aot = codegen::CompileGraph(g, o);
  b.bytes = codegen::SerializeArtifact(*aot, b.params, o.cpu);
  return b;
}

// The JIT's outputs for input `x`, one thread, frozen weights.
std::vector<Tensor> JitOutputs(const Built& b, const Tensor& x) {
  ThreadPool one(1);
  codegen::CompiledRun run(b.jit, &one);
  for (const auto& [name, t] : b.params) run.Bind(name, t);
  run.Bind("data", x);
  run.FreezeVariables();
  run.Run();
  std::vector<Tensor> out;
  for (size_t k = 0; k < b.jit->graph().outputs().size(); ++k) out.push_back(run.output(k).Clone());
  return out;
}

void ExpectSameBytes(const Tensor& want, const void* got, const std::string& what) {
  ASSERT_EQ(0, std::memcmp(want.raw_data(), got, want.nbytes())) << what;
}

TEST(Artifact, MlpAndLeNetMatchTheJitBitForBit) {
  for (auto [name, net, data] :
       {std::tuple{"mlp", models::Mlp({512, 512}, 10), Shape({16, 784})},
        std::tuple{"lenet", models::LeNet(10, "relu"), Shape({4, 1, 28, 28})}}) {
    SCOPED_TRACE(name);
    Built b = Build(net, data);
    auto model = Artifact::LoadMemory(b.bytes.data(), b.bytes.size(), name);
    ASSERT_EQ(model->inputs().size(), 1u);
    EXPECT_EQ(model->inputs()[0].name, "data");
    EXPECT_EQ(model->inputs()[0].shape, data.dims());
    EXPECT_EQ(model->params().size(), b.params.size());
    ASSERT_EQ(model->outputs().size(), 1u);
    EXPECT_EQ(model->outputs()[0].shape, (std::vector<int64_t>{data[0], 10}));
    Tensor x = Random(data, 99);
    std::vector<Tensor> want = JitOutputs(b, x);
    ArtifactSession s(model);
    s.CopyInput(0, x.raw_data(), x.nbytes());
    s.Run();
    ExpectSameBytes(want[0], s.output(0), "copied input");
    // In place (no copy), and a second run on the same session.
    Tensor x2 = Random(data, 100);
    s.SetInput(0, x2.raw_data());
    s.Run();
    ExpectSameBytes(JitOutputs(b, x2)[0], s.output(0), "input in place");
    // A session on a 2-thread pool gives the JIT's 2-thread results' values (within rounding).
    ThreadPool two(2);
    ArtifactSession s2(model, &two);
    s2.SetInput(0, x.raw_data());
    s2.Run();
    std::vector<double> w = want[0].ToDoubles();
    const float* got = static_cast<const float*>(s2.output(0));
    for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(w[i], got[i], 1e-4 * (std::abs(w[i]) + 1));
  }
}

// The epilogues the JIT runs inside its convolutions and products (D43, D44) travel as the
// library calls' row kernels: the artifact's plan has the JIT's calls, one per group, and the
// first test above shows the outputs equal bit for bit.
TEST(Artifact, EpiloguesTravelAsRowKernels) {
  Built b = Build(models::LeNet(10, "relu"), Shape({2, 1, 28, 28}));
  std::unique_ptr<fb::ModelT> m(fb::GetModel(b.bytes.data())->UnPack());
  size_t rows = 0;
  for (const auto& c : m->calls) rows += c->library >= 0 && !c->kernel.empty();
  EXPECT_GE(rows, 2u);  // LeNet's two convolutions + relu at least
  EXPECT_EQ(m->calls.size(), b.jit->plan().calls.size());
}

TEST(Artifact, LoadsFromAFileWithParametersInPlace) {
  Built b = Build(models::Mlp({64}, 10), Shape({2, 784}));
  std::string path = ::testing::TempDir() + "artifact_test_mlp.kiln";
  WriteFileAtomically(path, b.bytes);
  auto model = Artifact::LoadFile(path);
  EXPECT_EQ(model->file_bytes(), b.bytes.size());
  // Overhead: the file is the parameters plus a little.
  int64_t raw = 0;
  for (const auto& [n, t] : b.params) raw += int64_t(t.nbytes());
  EXPECT_GT(int64_t(b.bytes.size()), raw);
  Tensor x = Random(b.data, 5);
  ArtifactSession s(model);
  s.SetInput(0, x.raw_data());
  s.Run();
  ExpectSameBytes(JitOutputs(b, x)[0], s.output(0), "from file");
  EXPECT_THROW(Artifact::LoadFile(path + ".missing"), RuntimeError);
  EXPECT_THROW(Artifact::LoadFile(::testing::TempDir()), RuntimeError);
}

// One model, 8 threads, each with its own session and input, many runs: every output right.
TEST(Artifact, EightThreadsShareOneModel) {
  Built b = Build(models::LeNet(10, "relu"), Shape({2, 1, 28, 28}));
  auto model = Artifact::LoadMemory(b.bytes.data(), b.bytes.size());
  std::vector<Tensor> inputs, want;
  for (uint32_t t = 0; t < 8; ++t) {
    inputs.push_back(Random(b.data, 1000 + t));
    want.push_back(JitOutputs(b, inputs.back())[0]);
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      ArtifactSession s(model);
      s.SetInput(0, inputs[t].raw_data());
      for (int r = 0; r < 20; ++r) {
        s.Run();
        if (std::memcmp(s.output(0), want[t].raw_data(), want[t].nbytes()) != 0) ++mismatches;
      }
    });
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Artifact, CApiRunsAModelAndReportsErrors) {
  Built b = Build(models::Mlp({32}, 10), Shape({3, 784}));
  kiln_model* model = nullptr;
  ASSERT_EQ(kiln_model_load_memory(b.bytes.data(), b.bytes.size(), &model), KILN_OK)
      << kiln_last_error();
  size_t n_in = 0, n_out = 0, index = 9;
  ASSERT_EQ(kiln_model_num_inputs(model, &n_in), KILN_OK);
  ASSERT_EQ(kiln_model_num_outputs(model, &n_out), KILN_OK);
  EXPECT_EQ(n_in, 1u);
  EXPECT_EQ(n_out, 1u);
  kiln_tensor_info info;
  ASSERT_EQ(kiln_model_input_info(model, 0, &info), KILN_OK);
  EXPECT_STREQ(info.name, "data");
  EXPECT_STREQ(info.dtype_name, "float32");
  EXPECT_EQ(info.ndim, 2);
  EXPECT_EQ(info.bytes, 3u * 784 * 4);
  ASSERT_EQ(kiln_model_find_input(model, "data", &index), KILN_OK);
  EXPECT_EQ(index, 0u);
  EXPECT_EQ(kiln_model_find_input(model, "images", &index), KILN_ERROR_INVALID);
  EXPECT_NE(std::string(kiln_last_error()).find("no input \"images\""), std::string::npos);
  EXPECT_EQ(kiln_model_output_info(model, 1, &info), KILN_ERROR_INVALID);

  kiln_session* s = nullptr;
  ASSERT_EQ(kiln_session_create(model, 1, &s), KILN_OK);
  EXPECT_EQ(kiln_session_run(s), KILN_ERROR_INVALID);
  EXPECT_NE(std::string(kiln_last_error()).find("\"data\" has no value"), std::string::npos);
  Tensor x = Random(b.data, 3);
  EXPECT_EQ(kiln_session_set_input(s, 0, x.raw_data(), 5), KILN_ERROR_INVALID);
  EXPECT_NE(std::string(kiln_last_error()).find("takes 9408 bytes"), std::string::npos);
  // DLPack: wrong dtype, wrong shape, then right.
  int64_t shape[2] = {3, 784};
  DLTensor t{x.raw_data(), {kDLCPU, 0}, 2, {kDLInt, 32, 1}, shape, nullptr, 0};
  EXPECT_EQ(kiln_session_set_input_dlpack(s, 0, &t), KILN_ERROR_INVALID);
  EXPECT_NE(std::string(kiln_last_error()).find("dtype"), std::string::npos);
  t.dtype = {kDLFloat, 32, 1};
  shape[1] = 783;
  EXPECT_EQ(kiln_session_set_input_dlpack(s, 0, &t), KILN_ERROR_INVALID);
  EXPECT_NE(std::string(kiln_last_error()).find("(3x783) is not 3x784"), std::string::npos);
  shape[1] = 784;
  ASSERT_EQ(kiln_session_set_input_dlpack(s, 0, &t), KILN_OK) << kiln_last_error();
  ASSERT_EQ(kiln_session_run(s), KILN_OK) << kiln_last_error();
  const void* out = nullptr;
  size_t bytes = 0;
  ASSERT_EQ(kiln_session_get_output(s, 0, &out, &bytes), KILN_OK);
  Tensor want = JitOutputs(b, x)[0];
  EXPECT_EQ(bytes, want.nbytes());
  ExpectSameBytes(want, out, "C API");
  EXPECT_EQ(kiln_session_free(s), KILN_OK);
  EXPECT_EQ(kiln_model_free(model), KILN_OK);

  EXPECT_EQ(kiln_model_load_file("/nonexistent/model.kiln", &model), KILN_ERROR_SYSTEM);
  EXPECT_NE(std::string(kiln_last_error()).find("/nonexistent/model.kiln"), std::string::npos);
  EXPECT_EQ(kiln_model_load_memory("garbage!", 8, &model), KILN_ERROR_MODEL);
  EXPECT_EQ(kiln_model_load_memory(nullptr, 0, nullptr), KILN_ERROR_INVALID);
}

// Loads `bytes`; the error message must contain `part`.
void ExpectRejected(const std::string& bytes, const std::string& part) {
  try {
    Artifact::LoadMemory(bytes.data(), bytes.size(), "bad.kiln");
    ADD_FAILURE() << "loaded; expected an error containing: " << part;
  } catch (const ArtifactError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// The artifact unpacked, changed by `edit`, and packed again (flatbuffers' object API).
std::string Edited(const std::string& bytes, const std::function<void(fb::ModelT&)>& edit) {
  std::unique_ptr<fb::ModelT> m(fb::GetModel(bytes.data())->UnPack());
  edit(*m);
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(fb::Model::Pack(fbb, m.get()), fb::ModelIdentifier());
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

TEST(Artifact, DamagedOrForeignFilesAreRefusedWithAReason) {
  Built b = Build(models::LeNet(10, "relu"), Shape({1, 1, 28, 28}));
  ExpectRejected("", "not a kiln artifact");
  ExpectRejected(std::string("PK\3\4 this is a zip file"), "no \"KILN\" file identifier");
  ExpectRejected(b.bytes.substr(0, b.bytes.size() / 2), "flatbuffers verifier");
  ExpectRejected(Edited(b.bytes, [](fb::ModelT& m) { m.format_version = 7; }),
                 "format version 7; this runtime reads version 2");
  ExpectRejected(Edited(b.bytes, [](fb::ModelT& m) { m.cpu_features.push_back("warp-drive"); }),
                 "CPU feature \"warp-drive\", which this runtime cannot check");
  std::string lacking;
  for (const std::string& f : CheckableCpuFeatures())
    if (!HostHasCpuFeature(f)) lacking = f;
  if (lacking.empty()) {
    std::printf(
        "note: this machine has every CPU feature kiln checks; the missing-feature "
        "case is covered by the unknown-feature case only\n");
  } else {
    ExpectRejected(Edited(b.bytes, [&](fb::ModelT& m) { m.cpu_features.push_back(lacking); }),
                   "this machine lacks the CPU features " + lacking);
  }
  ExpectRejected(Edited(b.bytes, [](fb::ModelT& m) { m.object[m.object.size() / 2] ^= 0x5a; }),
                 "checksum does not match");
  ExpectRejected(Edited(b.bytes, [](fb::ModelT& m) { m.calls[0]->kernel = "k_missing"; }),
                 "kernel \"k_missing\" is not in the kernel object");
  // Row kernels (a library call's epilogue): missing, without its arguments; a library op
  // called twice (the second call would run the first's row kernel on its own arguments).
  auto row_call = [](fb::ModelT& m) -> fb::CallT& {
    for (auto& c : m.calls)
      if (c->library >= 0 && !c->kernel.empty()) return *c;
    throw std::runtime_error("no library call with a row kernel");
  };
  ExpectRejected(Edited(b.bytes, [&](fb::ModelT& m) { row_call(m).kernel = "k_gone"; }),
                 "kernel \"k_gone\" is not in the kernel object");
  ExpectRejected(Edited(b.bytes,
                        [&](fb::ModelT& m) {
                          fb::CallT& c = row_call(m);
                          const fb::LibraryOpT& l = *m.library_ops[size_t(c.library)];
                          auto op = MakeLibraryOp({LibraryOpKind(l.kind), l.ints, l.reals});
                          c.args.resize(2 + op->num_inputs() + op->num_outputs() + 1);
                        }),
                 "the arguments do not match library op");
  ExpectRejected(Edited(b.bytes,
                        [&](fb::ModelT& m) {
                          auto copy = std::make_unique<fb::CallT>(row_call(m));
                          m.calls.push_back(std::move(copy));
                        }),
                 "has another call");
  ExpectRejected(Edited(b.bytes,
                        [&](fb::ModelT& m) {
                          auto copy = std::make_unique<fb::CallT>(row_call(m));
                          const fb::LibraryOpT& l = *m.library_ops[size_t(copy->library)];
                          auto op = MakeLibraryOp({LibraryOpKind(l.kind), l.ints, l.reals});
                          copy->kernel.clear();
                          copy->args.resize(2 + op->num_inputs() + op->num_outputs() + 1);
                          m.calls.insert(m.calls.begin(), std::move(copy));
                        }),
                 "has another call");
  ExpectRejected(Edited(b.bytes, [](fb::ModelT& m) { m.arena_size = 64; }), "outside the arena");
  ExpectRejected(Edited(b.bytes, [](fb::ModelT& m) { m.params[0]->offset += 4; }),
                 "not aligned to 64 bytes");
  ExpectRejected(Edited(b.bytes, [](fb::ModelT& m) { m.params[0]->bytes += 4; }),
                 "not its shape's size");
  ExpectRejected(Edited(b.bytes, [](fb::ModelT& m) { m.library_ops[0]->ints[0] = -3; }),
                 "library op 0");
  ExpectRejected(Edited(b.bytes, [](fb::ModelT& m) { m.inputs[0]->external = 1 << 20; }),
                 "outside [0, ");
}

// Random damage: every truncation point in the first bytes and thousands of byte flips either
// load (a flip in parameter values or padding changes nothing the loader checks) or throw an
// ArtifactError; nothing crashes. (The libFuzzer target explores further.)
TEST(Artifact, RandomDamageNeverCrashesTheLoader) {
  Built b = Build(models::Mlp({16}, 10), Shape({1, 784}));
  size_t loaded = 0, refused = 0;
  auto attempt = [&](const std::string& bytes) {
    try {
      Artifact::LoadMemory(bytes.data(), bytes.size());
      ++loaded;
    } catch (const ArtifactError&) {
      ++refused;
    }
  };
  for (size_t n = 0; n < b.bytes.size(); n += 1 + n / 16) attempt(b.bytes.substr(0, n));
  std::mt19937 rng(3);
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = b.bytes;
    // Flips concentrate on the metadata and code (the file's start and the middle of the
    // object), where the parameters are not.
    size_t limit = i % 2 ? bytes.size() : std::min<size_t>(bytes.size(), 4096);
    for (int k = 0; k < 1 + i % 4; ++k) bytes[rng() % limit] ^= char(1 + rng() % 255);
    attempt(bytes);
  }
  EXPECT_GT(refused, 100u);
  std::printf("damaged artifacts: %zu loaded, %zu refused\n", loaded, refused);
}

}  // namespace
}  // namespace kiln
