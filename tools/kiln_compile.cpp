// kiln-compile: a model (kiln text IR, MXNet symbol JSON + .params, or ONNX) to a .kiln artifact
// that the runtime (kiln-run, libkiln_rt.so) loads without a compiler.
#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include "kiln/codegen/artifact.h"
#include "kiln/codegen/bundle.h"
#include "kiln/codegen/compile.h"
#include "kiln/frontend/onnx.h"
#include "kiln/frontend/params.h"
#include "kiln/runtime/npy.h"
#include "tool_util.h"

namespace kiln::tools {
namespace {

constexpr const char* kUsage =
    "usage: kiln-compile MODEL [--params FILE] -o OUT.kiln [--target cpu] [--cpu NAME]\n"
    "                    [--shape NAME=AxBxC]... [--dtype NAME=DTYPE]... [-O0|-O1|-O2|-O3]\n"
    "                    [--dump-after PASS|all]... [--time-passes] [--emit-bundle DIR]\n"
    "  MODEL            kiln text IR (.kir), MXNet symbol JSON (.json) or ONNX (.onnx)\n"
    "  --params FILE    parameter values (MXNet .params, also what kiln saves) for a .kir or\n"
    "                   .json model; ONNX models carry their own initializers. Variables with a\n"
    "                   value are stored in the artifact; the others are its inputs\n"
    "  -o OUT.kiln      the artifact to write (written whole or not at all)\n"
    "  --target cpu     the only target so far\n"
    "  --cpu NAME       an LLVM CPU name (znver4, skylake-avx512, x86-64-v3); default: this\n"
    "                   machine's CPU and features\n"
    "  --shape, --dtype the inputs' shapes and dtypes (repeatable)\n"
    "  -O0 .. -O3       the graph optimisation level (default -O3)\n"
    "  --dump-after     print the IR to stderr after the named pass, or after every pass\n"
    "  --time-passes    print the time of every pass and of each compile phase to stderr\n"
    "  --emit-bundle DIR  also write DIR/NAME.o, NAME.h and NAME.weights.bin: a self-contained\n"
    "                   object with a C header (NAME: the output file's stem, or \"model\")\n";

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string OutputName(const Graph& g, const Entry& e) {
  const Node& n = g.node(e.node);
  if (n.is_variable()) return n.name;
  return n.num_outputs() > 1 ? StrCat(n.name, "_output", e.index) : n.name + "_output";
}

std::string Stem(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find('.');
  base = base.substr(0, dot);
  std::string out;
  for (char c : base) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "model_" + out;
  return out;
}

int Main(int argc, char** argv) {
  ArgReader args(argc, argv);
  std::string file, params_path, out, bundle_dir, value;
  codegen::CompileOptions options;
  options.allow_reference = false;
  options.jit = false;
  bool time_passes = false;
  while (!args.done()) {
    if (args.Option("--params", &params_path) || args.Option("-o", &out) ||
        args.Option("--emit-bundle", &bundle_dir)) {
    } else if (args.Option("--target", &value)) {
      if (value == "cuda" || value == "gpu")
        throw UnsupportedError("--target cuda: the CUDA backend is not built yet; use cpu");
      if (value != "cpu") throw UsageError("--target " + value + ": expected cpu");
    } else if (args.Option("--cpu", &value)) {
      options.cpu.cpu = value;
    } else if (args.Option("--dump-after", &value)) {
      if (value == "all")
        options.passes.print_after_all = true;
      else
        options.passes.print_after.insert(value);
    } else if (args.Flag("--time-passes")) {
      time_passes = true;
    } else if (args.peek().size() == 3 && args.peek().starts_with("-O") && args.peek()[2] >= '0' &&
               args.peek()[2] <= '3') {
      options.opt_level = args.next()[2] - '0';
    } else if (args.Flag("--help") || args.Flag("-h")) {
      std::cout << kUsage;
      return 0;
    } else {
      ReadCommonArg(args, options.infer, file);
    }
  }
  if (file.empty()) throw UsageError("no model given");
  if (out.empty() && bundle_dir.empty()) throw UsageError("no output: give -o OUT.kiln");

  Clock::time_point t0 = Clock::now();
  Graph graph;
  std::map<std::string, Tensor> params;
  std::vector<std::string> output_names;
  if (file.ends_with(".onnx")) {
    if (!params_path.empty())
      throw UsageError("--params: an ONNX model carries its parameters (initializers)");
    OnnxImportOptions io;
    for (const auto& [name, shape] : options.infer.shapes)
      if (shape.rank_known()) io.input_shapes[name] = shape.dims();
    OnnxModel m = ImportOnnxFile(file, io);
    graph = std::move(m.graph);
    params = std::move(m.params);
    output_names = m.output_names;
  } else {
    graph = LoadGraph(file, options.infer);
    if (!params_path.empty()) {
      ParamFile p = LoadParams(params_path);
      params = std::move(p.arg);
      for (auto& [name, t] : p.aux) params[name] = std::move(t);
    }
    for (const Entry& e : graph.outputs()) output_names.push_back(OutputName(graph, e));
  }
  // Parameters the graph does not have are a mistake worth naming (a wrong file).
  std::set<std::string> variables;
  for (uint32_t v : graph.VariableNodes()) variables.insert(graph.node(v).name);
  for (const auto& [name, t] : params) {
    if (!variables.count(name))
      throw UserError(StrCat(params_path.empty() ? file : params_path, ": parameter \"", name,
                             "\" is not a variable of the model"));
    options.infer.shapes.emplace(name, Shape(t.shape()));
    options.infer.dtypes.emplace(name, t.dtype());
  }
  const double load_ms = MsSince(t0);

  std::shared_ptr<const codegen::CompiledGraph> cg = codegen::CompileGraph(graph, options);
  double object_ms = 0, write_ms = 0;
  if (!out.empty()) {
    t0 = Clock::now();
    std::string bytes = codegen::SerializeArtifact(*cg, params, options.cpu, output_names);
    object_ms = MsSince(t0);
    t0 = Clock::now();
    WriteFileAtomically(out, bytes);
    write_ms = MsSince(t0);
    size_t library = 0, kernels = 0, inside = 0;
    for (const codegen::CompiledCall& c : cg->calls()) {
      const bool lib = c.kind == codegen::CompiledCall::Kind::kLibrary;
      (lib ? library : kernels)++;
      inside += lib && !c.kernel.empty();
    }
    std::fprintf(stderr,
                 "kiln-compile: wrote %s: %zu bytes, %zu calls (%zu kernels, %zu library, %zu "
                 "with their epilogue inside) for %s, arena %lld bytes\n",
                 out.c_str(), bytes.size(), cg->calls().size(), kernels, library, inside,
                 cg->target().cpu.c_str(), static_cast<long long>(cg->arena_size()));
  }
  if (!bundle_dir.empty()) {
    t0 = Clock::now();
    codegen::EmitBundle(graph, options, params, output_names, bundle_dir,
                        Stem(out.empty() ? "model" : out));
    std::fprintf(stderr, "kiln-compile: bundle in %s (%.1f ms)\n", bundle_dir.c_str(), MsSince(t0));
  }
  if (time_passes) {
    std::cerr << cg->pass_timing();
    std::fprintf(stderr,
                 "===-- kiln-compile phases --===\n  load %.1f ms\n  passes %.1f ms\n"
                 "  lowering %.1f ms\n  LLVM object + serialisation %.1f ms\n  write %.1f ms\n",
                 load_ms, cg->pass_ms(), cg->lower_ms(), object_ms, write_ms);
  }
  return 0;
}

}  // namespace
}  // namespace kiln::tools

int main(int argc, char** argv) {
  return kiln::tools::RunTool("kiln-compile", kiln::tools::kUsage,
                              [&] { return kiln::tools::Main(argc, argv); });
}
