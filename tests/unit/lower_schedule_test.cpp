// lower_schedule_test.cpp - how lower_reduce.cpp schedules reductions that tile the innermost
// output axis: register blocking of an outer output loop (a convolution's output channels, a
// matrix product's rows: kBlock values at once, the rest as a smaller block, inside the parallel
// loop too), the clamp-free interior copy of an update that reads through index clamps (padded
// convolutions), and partial last tiles. The kernel text is checked for each schedule; every
// kernel is JIT-compiled and compared with the reference interpreter at 1 and 2 threads under
// the default schedule and with the parallel loop forced, and the forced-parallel kernels give
// the same bits at 1, 2 and 3 threads.
//
// Tolerances (ExpectNearSum): float32 1e-5 and float64 1e-12 of the output's scale
// max(1, max |want|). The kernels sum in the output's type in the reduction's order, the
// reference in double; the sums here have at most 3 x 7 x 7 = 147 terms of magnitude <= 4.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/interpreter.h"
#include "kiln/runtime/thread_pool.h"
#include "lower_util.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::Var;

constexpr uint32_t kSeed = 31;

bool AnyOp(const Node&) {
  return true;
}

std::string Conv(const std::string& attrs, std::vector<int64_t> data, int64_t filters,
                 const std::string& t = "float32") {
  return test::OneOp("Convolution",
                     attrs + ", num_filter=" + std::to_string(filters) + ", no_bias=False",
                     {{"x", std::move(data)}, {"w", {}, false}, {"b", {}, false}}, t);
}

std::string Dot(int64_t m, int64_t k, int64_t n, const std::string& t = "float32") {
  return test::OneOp("dot", "", {{"a", {m, k}}, {"b", {k, n}}}, t);
}

std::string KernelText(const std::string& text, const codegen::LowerOptions& opt = {}) {
  Graph f = test::Typed(text);
  return codegen::PrintKernel(codegen::LowerNode(f, f.outputs()[0].node, opt));
}

// Default and forced-parallel schedules against the interpreter; then the forced-parallel
// kernel at 1, 2 and 3 threads, bit for bit.
void Check(const std::string& text) {
  SCOPED_TRACE(text);
  Graph f = test::Typed(text);
  std::vector<Tensor> values = InterpretAll(f, test::RandomInputs(f, kSeed));
  test::LowerBothSchedules(f, values, AnyOp, test::ExpectNearSum);
  test::ExpectSameBitsAtThreadCounts(f, values, f.outputs()[0].node);
}

TEST(LowerSchedule, ConvolutionBlocksOutputChannelsAndHasAnInterior) {
  // 19 filters: two blocks of 8 and one of 3. Width 37: two tiles of 16 and one of 5. The
  // update reads the input once per tap for the 8 channels (a let) and, away from the padding,
  // without clamps or padding tests.
  std::string text = KernelText(Conv("kernel=\"(3, 3)\", pad=\"(1, 1)\"", {1, 3, 6, 37}, 19));
  for (const char* want :
       {"for i1b in [0, 2)", "acc0_lanes: float32[8, 16]", ": float32[3, 16]", ": float32[8, 5]",
        ": float32[3, 5]", "vectorize(5)", "let t: float32 = ", "} else {",
        "out0[i0, (i1b * 8) + 7, i2, l_3] = b[(i1b * 8) + 7] + acc0_lanes[7, l_3 - (c * 16)]"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  // The interior copy reads x[..., (l + r2) - 1]: a contiguous load, no clamp on the column.
  EXPECT_NE(text.find("(l_1 + r2) - 1], 0.0)"), std::string::npos) << text;
  EXPECT_NE(text.find("true && true"), std::string::npos) << text;
}

TEST(LowerSchedule, MatrixProductBlocksRowsInsideTheParallelLoop) {
  // 19 rows in blocks of 8: the parallel loop runs 3 blocks, the last one of 3 rows.
  std::string text = KernelText(Dot(19, 45, 37), test::ForcedParallel());
  for (const char* want : {"for i0b in [0, 3) parallel", "if (i0b < 2)",
                           "acc0_lanes: float32[8, 16]", ": float32[3, 16]", ": float32[3, 5]"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  // Without the forced schedule the row loop is serial: whole blocks, then the rest.
  text = KernelText(Dot(19, 45, 37));
  EXPECT_NE(text.find("for i0b in [0, 2) {"), std::string::npos) << text;
}

TEST(LowerSchedule, BlockedProductsMatchTheInterpreter) {
  for (const char* t : {"float32", "float64"}) {
    SCOPED_TRACE(t);
    Check(Dot(19, 45, 37, t));
    Check(Dot(8, 16, 16, t));
    Check(Dot(1, 33, 17, t));
    Check(Conv("kernel=\"(3, 3)\", pad=\"(1, 1)\"", {2, 3, 6, 37}, 19, t));
    Check(Conv("kernel=\"(3, 3)\", pad=\"(1, 1)\", stride=\"(2, 2)\"", {1, 3, 9, 35}, 17, t));
    Check(Conv("kernel=\"(7, 7)\", pad=\"(3, 3)\", stride=\"(2, 2)\"", {1, 3, 11, 40}, 9, t));
    Check(Conv("kernel=\"(3, 3)\", pad=\"(2, 2)\", dilate=\"(2, 2)\"", {1, 2, 5, 21}, 11, t));
    Check(Conv("kernel=\"(1, 1)\"", {1, 5, 3, 33}, 24, t));
    Check(Conv("kernel=\"(5)\", pad=\"(2)\", layout=NCW", {2, 3, 18}, 10, t));
    // Wider than the image: no tap is ever inside, only the clamped copy runs.
    Check(Conv("kernel=\"(3, 3)\", pad=\"(2, 2)\"", {1, 2, 3, 4}, 9, t));
  }
}

TEST(LowerSchedule, NoBlockingWhereEveryVectorReadUsesTheOuterAxes) {
  // Max pooling reads x[n, c, ...] in every update: no output loop can share a read.
  std::string text = KernelText(
      test::OneOp("Pooling", "kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=max",
                  {{"x", {1, 9, 12, 40}}}));
  EXPECT_EQ(text.find("i1b"), std::string::npos) << text;
  EXPECT_NE(text.find("acc0_lanes: float32[16]"), std::string::npos) << text;
  Check(test::OneOp("Pooling",
                    "kernel=\"(3, 3)\", stride=\"(2, 2)\", pad=\"(1, 1)\", pool_type=max",
                    {{"x", {1, 9, 12, 40}}}));
}

}  // namespace
}  // namespace kiln
