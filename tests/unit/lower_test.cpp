// lower_test.cpp - lowering graph nodes (single ops and fused groups) through their compute
// definitions to one kernel each, JIT-compiled by LLVM and compared with the reference
// interpreter on random inputs: shapes that are not multiples of the vector width, size-1 and
// broadcast dimensions, empty tensors and rank 0, at 1 and 2 threads, with the parallel loop
// forced on small shapes too.
//
// Tolerances (absolute + relative, ExpectTensorNear): 0 for groups of +, -, *, / alone without
// a multiply feeding an add (float32 arithmetic is the reference's double result rounded once);
// 2e-6 otherwise: vmath's exp, log, tanh, sigmoid, erf, log1p are within 2.5 ulp (docs/
// codegen.md), a few of them compose, and the backend may contract a*b+c into an FMA.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/composite.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/text.h"
#include "kiln/passes/fuse.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/thread_pool.h"
#include "lower_util.h"
#include "test_util.h"

namespace kiln {
namespace {

using codegen::Kernel;
using codegen::KernelFn;
using codegen::LowerNode;
using codegen::LowerOptions;

Graph TypedFused(const std::string& text, bool fuse = true) {
  Graph g = ParseGraph(text);
  InferShapes(g);
  InferTypes(g);
  return fuse ? Fuse(g, {}) : g;
}

std::map<std::string, Tensor> RandomInputs(const Graph& g, uint32_t seed) {
  std::map<std::string, Tensor> vars;
  for (uint32_t v : g.VariableNodes()) {
    std::vector<int64_t> dims = g.shape(Entry{v, 0}).dims();
    size_t n = 1;
    for (int64_t d : dims) n *= size_t(d);
    vars[g.node(v).name] = test::F32(dims, test::RandomValues(n, seed++, -2.0, 2.0));
  }
  return vars;
}

// Lowers every op node (kernel) of fused graph `f`, runs it on the interpreter's values of its
// inputs and compares its outputs with the interpreter's. Returns the number of kernels.
int LowerAndCompare(const Graph& f, double tol, const LowerOptions& opt) {
  return test::LowerRunAndCompare(f, InterpretAll(f, RandomInputs(f, 11)), opt, tol);
}

// Both schedules: the default (parallel only for large nests) and parallel always, in chunks
// of 8 for rank 1 (so that the last chunk is partial).
void Check(const std::string& text, double tol, int want_kernels, bool fuse = true) {
  Graph f = TypedFused(text, fuse);
  LowerOptions forced;
  forced.parallel_min_elements = 0;
  forced.parallel_chunk = 8;
  EXPECT_EQ(LowerAndCompare(f, tol, {}), want_kernels);
  EXPECT_EQ(LowerAndCompare(f, tol, forced), want_kernels);
}

using test::kMath;

TEST(Lower, BroadcastChainIsOneKernel) {
  Check(R"g(graph {
    %x = var : float32[3, 17]
    %b = var : float32[17]
    %a = broadcast_add(%x, %b)
    %e = exp(%a)
    %s = _mul_scalar(%e) {scalar=0.3}
    %t = Activation(%s) {act_type=tanh}
    return %t
  })g",
        kMath, 1);
}

TEST(Lower, DiamondSplitByFuseAtAGraphOutput) {
  // fuse does not continue a group past a graph output (%c): three kernels, two of them fused
  // groups with two inputs.
  Check(R"g(graph {
    %x = var : float32[5, 33]
    %a = exp(%x)
    %b = tanh(%x)
    %c = elemwise_add(%a, %b)
    %d = sigmoid(%c)
    %e = elemwise_mul(%a, %d)
    return %c, %e
  })g",
        kMath, 3);
}

TEST(Lower, CompositeWithTwoOutputsStoresBothInOneNest) {
  // Written by hand: %a is read by %c and %e, and inlined (recomputed) into both.
  Check(R"g(graph {
    %x = var : float32[5, 33]
    %f = fused(%x) {anchor=exp} : (float32[5, 33], float32[5, 33]) {
      %x = var : float32[5, 33]
      %a = exp(%x) : float32[5, 33]
      %b = tanh(%x) : float32[5, 33]
      %c = elemwise_add(%a, %b) : float32[5, 33]
      %d = sigmoid(%c) : float32[5, 33]
      %e = elemwise_mul(%a, %d) : float32[5, 33]
      return %c, %e
    }
    return %f#0, %f#1
  })g",
        kMath, 1, /*fuse=*/false);
}

TEST(Lower, SizeOneDimensionsBroadcastOnBothSides) {
  Check(R"g(graph {
    %x = var : float32[4, 1, 7]
    %y = var : float32[1, 5, 1]
    %z = var : float32[7]
    %m = broadcast_mul(%x, %y)
    %s = broadcast_sub(%m, %z)
    %d = broadcast_div(%s, %y)
    %r = Activation(%d) {act_type=softrelu}
    %q = Activation(%r) {act_type=softsign}
    return %q
  })g",
        kMath, 1);
}

TEST(Lower, ExactArithmeticMatchesBitForBit) {
  // No multiply feeds an add, so no FMA contraction: the same bits as the reference.
  Check(R"g(graph {
    %x = var : float32[1003]
    %y = var : float32[1003]
    %a = elemwise_add(%x, %y)
    %b = _rdiv_scalar(%a) {scalar=3}
    %c = _plus_scalar(%b) {scalar=0.1}
    %d = _rminus_scalar(%c) {scalar=2}
    %e = elemwise_div(%d, %y)
    %f = _minus_scalar(%e) {scalar=1.5}
    %g = negative(%f)
    %h = elemwise_sub(%g, %x)
    %i = _div_scalar(%h) {scalar=7}
    %j = relu(%i)
    %k = Activation(%j) {act_type=relu}
    return %k
  })g",
        0.0, 1);
}

TEST(Lower, UnaryMathOpsIncludingNanResults) {
  // log and sqrt of negative inputs are NaN on both sides.
  Check(R"g(graph {
    %x = var : float32[2, 3, 19]
    %a = square(%x)
    %b = log(%x)
    %c = sqrt(%x)
    %d = rsqrt(%a)
    %e = abs(%x)
    %f = erf(%x)
    %s1 = elemwise_add(%b, %c)
    %s2 = elemwise_add(%d, %e)
    %s3 = elemwise_mul(%s1, %s2)
    %s4 = elemwise_add(%s3, %f)
    %s5 = Activation(%s4) {act_type=sigmoid}
    return %s5
  })g",
        kMath, 1);
}

TEST(Lower, SingleOpsEmptyTensorsAndRankZero) {
  // Each output is its own kernel (nothing to fuse with).
  Check(R"g(graph {
    %x = var : float32[0, 5]
    %a = exp(%x)
    %y = var : float32[]
    %b = tanh(%y)
    %z = var : float32[1, 1]
    %c = Activation(%z) {act_type=softsign}
    return %a, %b, %c
  })g",
        kMath, 3);
}

TEST(Lower, LargeRankOneNestRunsInParallelChunks) {
  Graph f = TypedFused(R"g(graph {
    %x = var : float32[100003]
    %a = sigmoid(%x)
    %b = _mul_scalar(%a) {scalar=2}
    return %b
  })g");
  uint32_t id = f.outputs()[0].node;
  Kernel k = LowerNode(f, id);
  ASSERT_NE(k.ParallelLoop(), nullptr);
  EXPECT_EQ(codegen::TaskCount(k), (100003 + 4095) / 4096);
  EXPECT_EQ(LowerAndCompare(f, kMath, {}), 1);
}

TEST(Lower, SmallNestIsSerialWithAVectorizedInnerLoop) {
  Graph f = TypedFused(R"g(graph {
    %x = var : float32[3, 17]
    %a = exp(%x)
    %b = negative(%a)
    return %b
  })g");
  Kernel k = LowerNode(f, f.outputs()[0].node);
  EXPECT_EQ(k.ParallelLoop(), nullptr);
  std::string text = codegen::PrintKernel(k);
  EXPECT_NE(text.find("vectorize"), std::string::npos) << text;
  EXPECT_EQ(k.buffers.size(), 2u);  // x and the output: no intermediate buffer
}

TEST(Lower, EveryOpWithADefinitionAloneMatchesItsReference) {
  // Each registered op with a compute definition, on float32[2, 3, 19] operands, under every
  // attribute set below that it accepts.
  std::vector<AttrMap> attr_sets = {{}, {{"scalar", "0.7"}}};
  for (const char* act : {"relu", "sigmoid", "tanh", "softrelu", "softsign"})
    attr_sets.push_back({{"act_type", act}});
  int covered = 0;
  for (const OpDef* op : OpRegistry::Global().List()) {
    if (!op->compute()) continue;
    int runs = 0;
    for (const AttrMap& attrs : attr_sets) {
      Graph g;
      try {
        g = test::OneOpGraph(op->name(), attrs);
      } catch (const UserError&) {
        continue;  // attributes this op does not take, or a required one missing
      }
      SCOPED_TRACE(op->name());
      InferOptions opt;
      for (uint32_t v : g.VariableNodes()) opt.shapes[g.node(v).name] = Shape({2, 3, 19});
      try {
        InferShapes(g, opt);
        InferTypes(g, opt);
      } catch (const UserError&) {
        continue;  // inputs that cannot all be [2, 3, 19] (labels, reduced gradients)
      }
      // Reductions (sums of up to 114 float32 values, accumulated in float32 where the
      // reference uses double) get lower_reduce_test.cpp's SumTol(114) = 1e-4.
      bool reduces =
          op->pattern() == FusionPattern::kCommReduce || op->pattern() == FusionPattern::kOpaque;
      EXPECT_EQ(LowerAndCompare(g, reduces ? 1e-4 : kMath, {}), 1);
      ++runs;
    }
    // Ops whose inputs do not fit the shapes above are tested on their own (lower_reduce_test).
    if (runs == 0) continue;
    covered += 1;
  }
  // D35's ops: 11 unary, Activation, 4 elemwise_*, 4 broadcast_*, 6 scalar forms.
  EXPECT_GE(covered, 26);
}

TEST(Lower, UnsupportedListsEveryOpWithoutADefinitionAtOnce) {
  // Integer add and mul have no definition (binary_compute.cpp); maximum and abs do.
  Graph f = TypedFused(R"g(graph {
    %x = var : int32[4, 6]
    %y = var : int32[6]
    %a = broadcast_maximum(%x, %y)
    %b = elemwise_add(%a, %x)
    %c = abs(%b)
    %d = elemwise_mul(%c, %x)
    return %d
  })g");
  uint32_t id = f.outputs()[0].node;
  ASSERT_TRUE(IsComposite(f.node(id)));
  EXPECT_EQ(codegen::UnsupportedOps(f, id).size(), 2u);
  try {
    LowerNode(f, id);
    ADD_FAILURE() << "expected an UnsupportedError";
  } catch (const UnsupportedError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("elemwise_add (node \"b\")"), std::string::npos) << msg;
    EXPECT_NE(msg.find("elemwise_mul (node \"d\")"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("abs"), std::string::npos) << msg;
  }
}

TEST(Lower, IntegerDtypesAreNotCoveredYet) {
  Graph f = TypedFused(R"g(graph {
    %x = var : int32[4]
    %y = var : int32[4]
    %a = elemwise_div(%x, %y)
    return %a
  })g");
  EXPECT_EQ(codegen::UnsupportedOps(f, f.outputs()[0].node).size(), 1u);
}

}  // namespace
}  // namespace kiln
