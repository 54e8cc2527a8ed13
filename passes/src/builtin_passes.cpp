// builtin_passes.cpp - the one list of kiln's built-in passes, by name.
//
// Each pass is an exported function in its own .h/.cpp pair; this file only gives it a name and
// a description (see pass_manager.h for how to add one).
#include "kiln/ir/verifier.h"
#include "kiln/passes/constant_fold.h"
#include "kiln/passes/cse.h"
#include "kiln/passes/dce.h"
#include "kiln/passes/fuse.h"
#include "kiln/passes/infer.h"
#include "kiln/passes/pass_manager.h"
#include "kiln/passes/place_devices.h"
#include "kiln/passes/simplify.h"
#include "kiln/passes/simplify_inference.h"

namespace kiln {

namespace {

Graph InferShapePass(Graph g, const PassContext& ctx) {
  InferShapes(g, ctx.infer);
  return g;
}

Graph InferTypePass(Graph g, const PassContext& ctx) {
  InferTypes(g, ctx.infer);
  return g;
}

// An explicit `verify` checks the graph the user gave (or a pipeline built), so problems are
// reported as the user's; verify-each failures after a pass are internal errors instead.
Graph VerifyPass(Graph g, const PassContext&) {
  std::vector<std::string> problems = VerifyGraph(g);
  if (!problems.empty()) {
    std::string text;
    for (const std::string& p : problems) text += "\n  " + p;
    throw UserError(StrCat("the graph is invalid (", problems.size(), " problem",
                           problems.size() == 1 ? "" : "s", "):", text));
  }
  return g;
}

}  // namespace

void RegisterBuiltinPasses(PassRegistry& r) {
  r.Register("infer-shape",
             "infers the shape of every entry from the known variable shapes (all must be found)",
             InferShapePass);
  r.Register("infer-type",
             "infers the dtype of every entry (variables default to float32, as in MXNet)",
             InferTypePass);
  r.Register("verify", "checks the graph's structure and that its facts satisfy every op's rules",
             VerifyPass);
  r.Register("dce", "removes op nodes no graph output needs (variables are kept)",
             EliminateDeadCode);
  r.Register("cse", "merges op nodes with the same op, attributes and inputs, then runs dce",
             EliminateCommonSubexpressions);
  r.Register("simplify",
             "removes identities (x*1, x+0, x-0, x/1), merges Reshape and "
             "transpose pairs, then runs dce",
             Simplify);
  r.Register("place-devices",
             "places every node on a device (__ctx_group__ via group2ctx, else propagated from "
             "neighbours) and inserts _CrossDeviceCopy where an edge crosses devices",
             PlaceDevices);
  r.Register("constant-fold",
             "inference graphs: evaluates op nodes whose inputs are all constants "
             "(PassContext::constants) into new constant variables, then runs dce",
             ConstantFold);
  r.Register("simplify-inference",
             "inference graphs: BatchNorm becomes a per-channel scale and shift, folded into the "
             "weights of a preceding Convolution or FullyConnected when they are constants; "
             "Dropout is removed",
             SimplifyInference);
  r.Register("fuse",
             "groups ops by fusion pattern and post-dominator into fused composite nodes, one "
             "kernel each (epilogues into FullyConnected, Convolution and dot)",
             Fuse);
}

}  // namespace kiln
