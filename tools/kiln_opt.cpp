// kiln-opt: load a graph, run passes over it, print the result as kiln text IR.
//
// The golden-test driver (LLVM's `opt`): `kiln-opt in.kir -p infer-shape | FileCheck in.kir`.
// Dumps after passes and the timing table go to stderr, the final IR to stdout.
#include <iostream>
#include <map>
#include <optional>

#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"
#include "kiln/passes/pass_manager.h"
#include "tool_util.h"

namespace kiln::tools {
namespace {

constexpr const char* kUsage =
    "usage: kiln-opt FILE [-O0|-O1|-O2|-O3] [-p PASS[,PASS...]]... [--shape NAME=D1xD2x...]...\n"
    "                     [--dtype NAME=DTYPE]... [--verify-each] [--print-after-all]\n"
    "                     [--print-after PASS]... [--time-passes] [--list-passes] [--train]\n"
    "                     [--forward-outputs N] [--const NAME=X]... [--group2ctx G=DEV]...\n"
    "                     [--default-device DEV]\n"
    "  FILE               kiln text IR, MXNet symbol JSON (.json) or ONNX (.onnx) ('-': stdin)\n"
    "  -O0 .. -O3         the optimisation level's pipeline first (see --help's pass list)\n"
    "  -p                 the passes to run, in order (none: parse and print)\n"
    "  --shape, --dtype   known variable facts for the inference passes (repeatable)\n"
    "  --verify-each      verify the graph before the first pass and after every pass\n"
    "                     (also on when KILN_VERIFY_EACH=1)\n"
    "  --print-after-all  print the IR to stderr after every pass\n"
    "  --print-after      print the IR to stderr after the named pass (repeatable)\n"
    "  --time-passes      print a table of pass times to stderr\n"
    "  --list-passes      list the passes and exit\n"
    "  --train            the graph is a training graph: inference-only rewrites do nothing\n"
    "  --forward-outputs N  outputs [0, N) are the forward graph's (fuse keeps phases apart)\n"
    "  --const NAME=X     variable NAME is a compile-time constant, every element X (for\n"
    "                     constant-fold and simplify-inference; repeatable)\n"
    "  --group2ctx G=DEV  place __ctx_group__ G on DEV, e.g. dev1=cpu(1) (repeatable)\n"
    "  --default-device DEV  the device of nodes no group places (default cpu(0))\n";

int64_t ParseCount(const char* option, const std::string& text) {
  int64_t n = -1;
  if (!attr_text::Parse(text, &n) || n < 0)
    throw UsageError(StrCat(option, " ", text, ": expected a count (0, 1, 2, ...)"));
  return n;
}

// "cpu(1)" or "cuda(0)" (MXNet's spelling; "gpu(0)" is accepted for cuda).
Device ParseDevice(const std::string& text) {
  size_t open = text.find('(');
  int64_t id = -1;
  if (open != std::string::npos && text.back() == ')' &&
      attr_text::Parse(text.substr(open + 1, text.size() - open - 2), &id) && id >= 0) {
    std::string type = text.substr(0, open);
    if (type == "cpu") return Device::CPU(int(id));
    if (type == "cuda" || type == "gpu") return Device{DeviceType::kCUDA, int(id)};
  }
  throw UsageError(StrCat("device \"", text, "\": expected cpu(N) or cuda(N)"));
}

// Each named variable becomes a constant filled with its value, shaped as inference finds it.
void MakeConstants(const Graph& g, const std::map<std::string, double>& fill, PassContext& ctx) {
  Graph typed = g;
  InferOptions opt = ctx.infer;
  opt.require_complete = false;
  InferShapes(typed, opt);
  InferTypes(typed, opt);
  for (const auto& [name, x] : fill) {
    std::optional<uint32_t> v = typed.FindNode(name);
    if (!v || !typed.node(*v).is_variable())
      throw UserError(StrCat("--const ", name, ": no variable of that name"));
    const Shape& shape = typed.shape(Entry{*v, 0});
    if (!shape.IsFullyKnown())
      throw UserError(StrCat("--const ", name, ": its shape ", shape.ToString(),
                             " is not known (give it with --shape)"));
    std::vector<double> values(size_t(shape.NumElements()), x);
    ctx.constants[name] = Tensor::FromValues(shape.dims(), typed.dtype(Entry{*v, 0}), values);
  }
}

int Main(int argc, char** argv) {
  ArgReader args(argc, argv);
  std::string file, value;
  std::vector<std::string> pipeline;
  PassContext ctx;
  PassManagerOptions options;
  std::map<std::string, double> constant_fill;
  while (!args.done()) {
    if (args.Flag("-h") || args.Flag("--help")) {
      std::cout << kUsage << "passes:\n" << PassRegistry::Global().Describe();
      return 0;
    } else if (args.Flag("--list-passes")) {
      std::cout << PassRegistry::Global().Describe();
      return 0;
    } else if (args.peek().size() == 3 && args.peek().starts_with("-O")) {
      std::string level = args.next();
      if (level[2] < '0' || level[2] > '3') throw UsageError(StrCat("unknown option ", level));
      std::vector<std::string> named = OptPipeline(level[2] - '0');
      pipeline.insert(pipeline.begin(), named.begin(), named.end());
    } else if (args.Option("-p", &value) || args.Option("--passes", &value)) {
      for (std::string& name : SplitPipeline(value)) pipeline.push_back(std::move(name));
    } else if (args.Flag("--verify-each")) {
      options.verify_each = true;
    } else if (args.Flag("--print-after-all")) {
      options.print_after_all = true;
    } else if (args.Option("--print-after", &value)) {
      options.print_after.insert(value);
    } else if (args.Flag("--time-passes")) {
      options.time_passes = true;
    } else if (args.Flag("--train")) {
      ctx.is_train = true;
    } else if (args.Option("--forward-outputs", &value)) {
      ctx.forward_outputs = size_t(ParseCount("--forward-outputs", value));
    } else if (args.Option("--const", &value)) {
      size_t eq = value.find('=');
      double x = 0;
      if (eq == std::string::npos || eq == 0 || !attr_text::Parse(value.substr(eq + 1), &x))
        throw UsageError(StrCat("--const ", value, ": expected NAME=NUMBER"));
      constant_fill[value.substr(0, eq)] = x;
    } else if (args.Option("--group2ctx", &value)) {
      size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0)
        throw UsageError(StrCat("--group2ctx ", value, ": expected GROUP=DEVICE"));
      ctx.group2ctx[value.substr(0, eq)] = ParseDevice(value.substr(eq + 1));
    } else if (args.Option("--default-device", &value)) {
      ctx.default_device = ParseDevice(value);
    } else {
      ReadCommonArg(args, ctx.infer, file);
    }
  }
  if (file.empty()) throw UsageError("no input file");

  // Resolve pass names before reading the input, so a typo is reported first.
  PassManager pm(pipeline);
  pm.options() = options;
  pm.options().dump = &std::cerr;
  Graph input = LoadGraph(file, ctx.infer);
  if (!constant_fill.empty()) MakeConstants(input, constant_fill, ctx);
  Graph g = pm.Run(std::move(input), ctx);
  std::cout << PrintGraph(g);
  std::cout.flush();
  if (options.time_passes) std::cerr << pm.TimingReport();
  return 0;
}

}  // namespace
}  // namespace kiln::tools

int main(int argc, char** argv) {
  return kiln::tools::RunTool("kiln-opt", kiln::tools::kUsage,
                              [&] { return kiln::tools::Main(argc, argv); });
}
