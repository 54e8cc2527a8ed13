// kiln-dump: load a graph, infer every shape and dtype, and print the typed IR as kiln text,
// MXNet JSON or Graphviz dot.
//
// Inference must be complete: a variable whose shape cannot be found is an error naming it, so
// the printed graph has a shape and a dtype on every entry.
//
// --memory prints the static memory plan (kiln/passes/memory_plan.h) instead of the graph.
// -O0..-O3 run that level's pipeline first (memory is then planned on the optimised graph);
// --after PASS|all prints the IR after that pass (or after every pass) of the pipeline.
// --kernels prints the kernel IR that each op node (kernel) of the optimised graph lowers to
// (kiln/codegen/lower.h), or the ops that keep it from lowering; --llvm and --asm print the
// LLVM IR (after LLVM's -O3) and the assembly of those kernels for the host or --cpu NAME;
// --kernel NAME restricts all three to the kernel of one node.
#include <iostream>

#include "kiln/codegen/compile.h"
#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"

#include "kiln/ir/mxnet_json.h"
#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"
#include "kiln/passes/memory_plan.h"
#include "kiln/passes/pass_manager.h"
#include "tool_util.h"

namespace kiln::tools {
namespace {

constexpr const char* kUsage =
    "usage: kiln-dump FILE [--format text|json|dot] [--shape NAME=D1xD2x...]...\n"
    "                      [--dtype NAME=DTYPE]... [--memory] [-O0|-O1|-O2|-O3]\n"
    "                      [--after PASS|all] [--kernels] [--llvm] [--asm]\n"
    "                      [--kernel NODE] [--cpu NAME]\n"
    "  FILE      kiln text IR, MXNet symbol JSON (.json) or ONNX (.onnx) ('-': stdin)\n"
    "  --format  text (default): kiln text IR with every entry's type\n"
    "            json: MXNet symbol JSON\n"
    "            dot: Graphviz (render with `dot -Tsvg`)\n"
    "  --shape   the shape of a variable, e.g. data=100x784 (repeatable)\n"
    "  --dtype   the dtype of a variable, e.g. data=float16 (repeatable)\n"
    "  --memory  print the memory plan instead: every intermediate buffer's size, offset\n"
    "            and lifetime, the arena size, its lower bound and the naive total\n"
    "  -O0..-O3  run that optimisation level's pipeline (kiln-opt --help lists the passes)\n"
    "            before printing or planning; without it the graph is only inferred\n"
    "  --after   print the text IR after PASS of the pipeline, or after every pass (all),\n"
    "            each headed by `// *** IR after PASS ***`; -O3 unless a level is given\n"
    "  --kernels print the kernel IR of every kernel (op node) of the graph, or why one\n"
    "            cannot be lowered yet; -O3 unless a level is given\n"
    "  --llvm    print the LLVM IR of those kernels after LLVM's -O3 (one module)\n"
    "  --asm     print their assembly for the target CPU\n"
    "  --kernel  only the kernel of this node (its name in the optimised graph)\n"
    "  --cpu     the target CPU of --llvm and --asm, an LLVM name such as znver4,\n"
    "            skylake-avx512 or x86-64-v3 (default: this machine's)\n";

enum class KernelForm { kIR, kLLVM, kAsm };

// Every op node's kernel IR (or only `only`'s), or the ops without a compute definition; or the
// LLVM IR or assembly of those kernels, compiled as one module.
std::string PrintKernels(const Graph& g, KernelForm form, const std::string& only,
                         const codegen::CpuOptions& cpu) {
  std::string out;
  std::vector<codegen::Kernel> kernels;
  bool found = only.empty();
  // The plan CompileGraph makes of the (already optimised) graph, for the kernels that run with
  // the library's calls; made when the first such node is met.
  std::shared_ptr<const codegen::CompiledGraph> compiled;
  codegen::CompileOptions plan_options;
  plan_options.jit = false;
  plan_options.opt_level = 0;
  plan_options.cpu = cpu;
  for (uint32_t id = 0; id < g.num_nodes(); ++id) {
    if (g.node(id).is_variable() || (!only.empty() && g.node(id).name != only)) continue;
    found = true;
    // As CompileGraph decides: the runtime library first, then one kernel, which the library
    // call runs on its output's rows when it can (D43, D44).
    if (std::string anchor = codegen::LibraryAnchor(g, id); !anchor.empty()) {
      out += StrCat("// ", g.node(id).name, ": ", anchor,
                    " on the runtime library (GEMM, convolution), the rest of the node as one "
                    "kernel\n");
      if (!compiled) compiled = codegen::CompileGraph(g, plan_options);
      for (const codegen::CompiledCall& c : compiled->calls()) {
        if (c.kernel.empty() || compiled->graph().node(c.node).name != g.node(id).name) continue;
        const bool inside = c.kind == codegen::CompiledCall::Kind::kLibrary;
        for (const codegen::Kernel& k : compiled->kernels())
          if (k.name == c.kernel) {
            out += StrCat("//   ", k.name,
                          inside ? ": run by the library call on each block of its output's rows"
                                 : ": run after the library call",
                          "\n");
            kernels.push_back(k);
            if (form == KernelForm::kIR) out += codegen::PrintKernel(k);
          }
      }
      out += "\n";
      continue;
    }
    std::vector<std::string> missing = codegen::UnsupportedOps(g, id);
    if (missing.empty()) {
      kernels.push_back(codegen::LowerNode(g, id));
      if (form == KernelForm::kIR) out += codegen::PrintKernel(kernels.back()) + "\n";
      continue;
    }
    out += StrCat("// ", g.node(id).name, ": not lowered, no compute definition for");
    for (const std::string& m : missing) out += " " + m;
    out += "\n\n";
  }
  if (!found)
    throw UserError(StrCat("--kernel ", only, ": the optimised graph has no node of that name"));
  if (form == KernelForm::kLLVM && !kernels.empty()) out += codegen::KernelsToLLVMIR(kernels, cpu);
  if (form == KernelForm::kAsm && !kernels.empty()) out += codegen::KernelsToAssembly(kernels, cpu);
  return out;
}

// A dot string literal's contents: quotes and backslashes escaped; `\n` in the result (two
// characters) is dot's line break, so callers join lines after escaping.
std::string DotEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// "float32[100, 784]", as the text IR writes an entry's type.
std::string TypeText(const Graph& g, Entry e) {
  const Shape& s = g.shape(e);
  std::string out = StrCat(DTypeName(g.dtype(e)), "[");
  for (int i = 0; i < s.ndim(); ++i) out += StrCat(i ? ", " : "", s[i]);
  return out + "]";
}

// Nodes labelled with op, name and the attributes the op prints (the required ones and those
// that differ from the default); variables drawn as ellipses, auxiliary states dashed; edges
// labelled with the entry's dtype and shape.
std::string PrintDot(const Graph& g) {
  std::vector<bool> aux(g.num_nodes(), false);
  for (uint32_t i : g.AuxiliaryNodes()) aux[i] = true;
  std::string out =
      "digraph kiln {\n"
      "  rankdir=TB;\n"
      "  node [fontname=\"Helvetica\", fontsize=10];\n"
      "  edge [fontname=\"Helvetica\", fontsize=9];\n";
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const Node& n = g.node(i);
    if (n.is_variable()) {
      out += StrCat("  n", i, " [shape=ellipse, style=\"", aux[i] ? "filled,dashed" : "filled",
                    "\", fillcolor=\"", aux[i] ? "#eeeeee" : "#dce8f7", "\", label=\"",
                    DotEscape(n.name), "\\n", DotEscape(TypeText(g, Entry{i, 0})), "\"];\n");
      continue;
    }
    std::string label = StrCat(DotEscape(n.op->name()), "\\n", DotEscape(n.name));
    for (const auto& [key, value] : n.op->attrs.print(n.attrs)) {
      // Long values (big tuples) would make the box unreadable; the text IR has them in full.
      std::string v = value.size() > 40 ? value.substr(0, 37) + "..." : value;
      label += "\\n" + DotEscape(key + "=" + v);
    }
    out +=
        StrCat("  n", i, " [shape=box, style=\"rounded,filled\", fillcolor=\"#f7ecd4\", label=\"",
               label, "\"];\n");
    for (const Entry& in : n.inputs) {
      const Node& src = g.node(in.node);
      std::string label = TypeText(g, in);
      if (src.num_outputs() > 1) label = StrCat("#", in.index, " ", label);
      out += StrCat("  n", in.node, " -> n", i, " [label=\"", DotEscape(label), "\"];\n");
    }
  }
  for (size_t k = 0; k < g.outputs().size(); ++k) {
    Entry e = g.outputs()[k];
    out += StrCat("  out", k, " [shape=plaintext, label=\"output ", k, "\"];\n");
    std::string label = TypeText(g, e);
    if (g.node(e.node).num_outputs() > 1) label = StrCat("#", e.index, " ", label);
    out += StrCat("  n", e.node, " -> out", k, " [label=\"", DotEscape(label), "\"];\n");
  }
  return out + "}\n";
}

int Main(int argc, char** argv) {
  ArgReader args(argc, argv);
  std::string file, format = "text", value;
  InferOptions infer;
  bool memory = false, kernels = false;
  KernelForm form = KernelForm::kIR;
  std::string only;
  codegen::CpuOptions cpu;
  int opt_level = -1;
  std::string after;
  while (!args.done()) {
    if (args.Flag("-h") || args.Flag("--help")) {
      std::cout << kUsage;
      return 0;
    } else if (args.Flag("--memory")) {
      memory = true;
    } else if (args.Flag("--kernels")) {
      kernels = true;
    } else if (args.Flag("--llvm")) {
      kernels = true;
      form = KernelForm::kLLVM;
    } else if (args.Flag("--asm")) {
      kernels = true;
      form = KernelForm::kAsm;
    } else if (args.Option("--kernel", &value)) {
      only = value;
    } else if (args.Option("--cpu", &value)) {
      cpu.cpu = value;
    } else if (args.peek().size() == 3 && args.peek().starts_with("-O")) {
      std::string level(args.peek());
      if (level[2] < '0' || level[2] > '9') throw UsageError(StrCat("unknown option ", level));
      args.Flag(level);
      opt_level = level[2] - '0';
    } else if (args.Option("--after", &value)) {
      after = value;
    } else if (args.Option("--format", &value)) {
      if (value != "text" && value != "json" && value != "dot")
        throw UsageError(StrCat("--format ", value, ": expected text, json or dot"));
      format = value;
    } else {
      ReadCommonArg(args, infer, file);
    }
  }
  if (file.empty()) throw UsageError("no input file");

  Graph g = LoadGraph(file, infer);
  infer.require_complete = true;
  if ((!after.empty() || kernels) && opt_level < 0) opt_level = 3;
  if (opt_level >= 0) {
    PassContext ctx;
    ctx.infer = infer;
    PassManager pm(OptPipeline(opt_level));
    if (after == "all") {
      pm.options().print_after_all = true;
    } else if (!after.empty()) {
      PassRegistry::Global().Get(after);  // an unknown name lists the passes
      pm.options().print_after.insert(after);
    }
    pm.options().dump = &std::cout;
    g = pm.Run(std::move(g), ctx);
    if (!after.empty()) return 0;
  } else {
    InferShapes(g, infer);
    InferTypes(g, infer);
  }
  if (kernels)
    std::cout << PrintKernels(g, form, only, cpu);
  else if (memory)
    std::cout << FormatMemoryPlan(g, PlanMemory(g));
  else if (format == "text")
    std::cout << PrintGraph(g);
  else if (format == "json")
    std::cout << SaveMXNetJson(g);
  else
    std::cout << PrintDot(g);
  std::cout.flush();
  return 0;
}

}  // namespace
}  // namespace kiln::tools

int main(int argc, char** argv) {
  return kiln::tools::RunTool("kiln-dump", kiln::tools::kUsage,
                              [&] { return kiln::tools::Main(argc, argv); });
}
