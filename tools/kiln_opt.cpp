// kiln-opt: load a graph, run passes over it, print the result as kiln text IR.
//
// The golden-test driver (LLVM's `opt`): `kiln-opt in.kir -p infer-shape | FileCheck in.kir`.
// Dumps after passes and the timing table go to stderr, the final IR to stdout.
#include <iostream>

#include "kiln/ir/text.h"
#include "kiln/passes/pass_manager.h"
#include "tool_util.h"

namespace kiln::tools {
namespace {

constexpr const char* kUsage =
    "usage: kiln-opt FILE [-O0|-O1|-O2|-O3] [-p PASS[,PASS...]]... [--shape NAME=D1xD2x...]...\n"
    "                     [--dtype NAME=DTYPE]... [--verify-each] [--print-after-all]\n"
    "                     [--print-after PASS]... [--time-passes] [--list-passes]\n"
    "  FILE               kiln text IR, MXNet symbol JSON (.json) or ONNX (.onnx) ('-': stdin)\n"
    "  -O0 .. -O3         the optimisation level's pipeline first (see --help's pass list)\n"
    "  -p                 the passes to run, in order (none: parse and print)\n"
    "  --shape, --dtype   known variable facts for the inference passes (repeatable)\n"
    "  --verify-each      verify the graph before the first pass and after every pass\n"
    "                     (also on when KILN_VERIFY_EACH=1)\n"
    "  --print-after-all  print the IR to stderr after every pass\n"
    "  --print-after      print the IR to stderr after the named pass (repeatable)\n"
    "  --time-passes      print a table of pass times to stderr\n"
    "  --list-passes      list the passes and exit\n";

int Main(int argc, char** argv) {
  ArgReader args(argc, argv);
  std::string file, value;
  std::vector<std::string> pipeline;
  PassContext ctx;
  PassManagerOptions options;
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
    } else {
      ReadCommonArg(args, ctx.infer, file);
    }
  }
  if (file.empty()) throw UsageError("no input file");

  // Resolve pass names before reading the input, so a typo is reported first.
  PassManager pm(pipeline);
  pm.options() = options;
  pm.options().dump = &std::cerr;
  Graph g = pm.Run(LoadGraph(file, ctx.infer), ctx);
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
