// kernel_ir_test.cpp - the kernel IR's printer (golden text) and verifier (each rule fails).
#include <gtest/gtest.h>

#include "kiln/codegen/kernel_ir.h"
#include "kiln/runtime/error.h"

namespace kiln::codegen {
namespace {

// y[i, j] = tanh(x[i, j] * alpha + 1) over a 4x16 matrix: a parallel row loop around a
// vectorized column loop.
Kernel AddTanh() {
  Buffer x = MakeBuffer("x", DType::kFloat32, {4, 16});
  Buffer y = MakeBuffer("y", DType::kFloat32, {4, 16});
  Var alpha = MakeVar("alpha", DType::kFloat32);
  Var i = MakeVar("i"), j = MakeVar("j");
  Stmt store = Store(y, {Ref(i), Ref(j)},
                     Call(Intrinsic::kTanh, {Load(x, {Ref(i), Ref(j)}) * Ref(alpha) + 1.0}));
  Stmt inner = For(j, IntImm(0), IntImm(16), ForKind::kVectorize, store, 16);
  return Kernel{
      "add_tanh", {x, y}, {alpha}, For(i, IntImm(0), IntImm(4), ForKind::kParallel, inner)};
}

// Row sums with a rank-0 accumulator, a let and an if.
Kernel RowSum() {
  Buffer x = MakeBuffer("x", DType::kFloat32, {3, 5});
  Buffer y = MakeBuffer("y", DType::kFloat32, {3});
  Buffer acc = MakeBuffer("acc", DType::kFloat32, {});
  Var i = MakeVar("i"), k = MakeVar("k"), v = MakeVar("v", DType::kFloat32);
  Stmt body = Block({
      Store(acc, {}, FloatImm(0)),
      For(k, IntImm(0), IntImm(5), ForKind::kUnroll,
          Let(v, Load(x, {Ref(i), Ref(k)}),
              If(GT(Ref(v), FloatImm(0)), Store(acc, {}, Load(acc, {}) + Ref(v))))),
      Store(y, {Ref(i)},
            Select(EQ(Ref(i) % 2, IntImm(0)), Load(acc, {}), Max(Load(acc, {}), FloatImm(1)))),
  });
  return Kernel{
      "row_sum", {x, y}, {}, For(i, IntImm(0), IntImm(3), ForKind::kSerial, Allocate(acc, body))};
}

TEST(KernelIR, PrintsReadableText) {
  EXPECT_EQ(PrintKernel(AddTanh()),
            "kernel add_tanh(x: float32[4, 16], y: float32[4, 16], alpha: float32) {\n"
            "  for i in [0, 4) parallel {\n"
            "    for j in [0, 16) vectorize(16) {\n"
            "      y[i, j] = tanh((x[i, j] * alpha) + 1.0)\n"
            "    }\n"
            "  }\n"
            "}\n");
  EXPECT_EQ(PrintKernel(RowSum()),
            "kernel row_sum(x: float32[3, 5], y: float32[3]) {\n"
            "  for i in [0, 3) {\n"
            "    local acc: float32[]\n"
            "    acc[] = 0.0\n"
            "    for k in [0, 5) unroll {\n"
            "      let v: float32 = x[i, k]\n"
            "      if (v > 0.0) {\n"
            "        acc[] = acc[] + v\n"
            "      }\n"
            "    }\n"
            "    y[i] = select((i % 2) == 0, acc[], max(acc[], 1.0))\n"
            "  }\n"
            "}\n");
}

TEST(KernelIR, PrinterShowsTypesOfNonDefaultLiteralsAndRenamesClashes) {
  Buffer a = MakeBuffer("a", DType::kFloat64, {2});
  Buffer b = MakeBuffer("b", DType::kInt32, {2}, /*may_alias=*/true);
  Var i1 = MakeVar("i"), i2 = MakeVar("i");
  Stmt s = Block({
      For(i1, IntImm(0), IntImm(2), ForKind::kSerial,
          Store(a, {Ref(i1)}, FloatImm(0.5, DType::kFloat64))),
      For(i2, IntImm(1), IntImm(1), ForKind::kSerial,
          Store(b, {Ref(i2)}, IntImm(7, DType::kInt32))),
  });
  EXPECT_EQ(PrintKernel(Kernel{"k", {a, b}, {}, s}),
            "kernel k(a: float64[2], b: int32[2] may_alias) {\n"
            "  for i in [0, 2) {\n"
            "    a[i] = 0.5:float64\n"
            "  }\n"
            "  for i_1 in [1, 1 + 1) {\n"
            "    b[i_1] = 7:int32\n"
            "  }\n"
            "}\n");
  EXPECT_NO_THROW(VerifyKernel(Kernel{"k", {a, b}, {}, s}));
}

TEST(KernelIR, VerifierAcceptsWellFormedKernels) {
  EXPECT_NO_THROW(VerifyKernel(AddTanh()));
  EXPECT_NO_THROW(VerifyKernel(RowSum()));
  EXPECT_NE(AddTanh().ParallelLoop(), nullptr);
  EXPECT_EQ(RowSum().ParallelLoop(), nullptr);
}

// Runs the verifier and returns its message ("" when it accepts the kernel).
std::string VerifyMessage(const Kernel& k) {
  try {
    VerifyKernel(k);
  } catch (const InternalError& e) {
    return e.what();
  }
  return "";
}

void ExpectRejected(const Kernel& k, const std::string& fragment) {
  std::string msg = VerifyMessage(k);
  EXPECT_NE(msg.find(fragment), std::string::npos) << "message: " << msg << "\nkernel:\n"
                                                   << PrintKernel(k);
}

TEST(KernelIR, VerifierRejectsTypeErrors) {
  Buffer x = MakeBuffer("x", DType::kFloat32, {4});
  Buffer h = MakeBuffer("h", DType::kFloat16, {4});
  Var i = MakeVar("i");
  auto loop = [&](Stmt body) {
    return Kernel{"k", {x, h}, {}, For(i, IntImm(0), IntImm(4), ForKind::kSerial, body)};
  };
  // float + int64 without a cast.
  ExpectRejected(loop(Store(x, {Ref(i)}, Load(x, {Ref(i)}) + Ref(i))), "operand types differ");
  // Storing a float64 into a float32 buffer.
  ExpectRejected(loop(Store(x, {Ref(i)}, FloatImm(1, DType::kFloat64))), "buffer holds float32");
  // Arithmetic on float16 (a storage type).
  ExpectRejected(loop(Store(h, {Ref(i)}, Load(h, {Ref(i)}) * Load(h, {Ref(i)}))),
                 "arithmetic on float16");
  // ...which is fine through float32.
  EXPECT_EQ(VerifyMessage(loop(Store(h, {Ref(i)}, Cast(DType::kFloat16, Load(x, {Ref(i)}) * 2.0)))),
            "");
  // A non-bool condition, float modulo, a bad intrinsic arity and type.
  ExpectRejected(loop(Store(x, {Ref(i)}, Select(Ref(i), FloatImm(1), FloatImm(2)))),
                 "condition is not bool");
  ExpectRejected(loop(Store(x, {Ref(i)}, Load(x, {Ref(i)}) % Load(x, {Ref(i)}))), "integers only");
  ExpectRejected(loop(Store(x, {Ref(i)}, Call(Intrinsic::kPow, {Load(x, {Ref(i)})}))),
                 "expected 2 operands");
  ExpectRejected(loop(Store(x, {Ref(i)}, Cast(DType::kFloat32, Call(Intrinsic::kExp, {Ref(i)})))),
                 "exp on int64");
  // Indices must be int64.
  ExpectRejected(loop(Store(x, {Cast(DType::kInt32, Ref(i))}, FloatImm(0))), "is not int64");
}

TEST(KernelIR, VerifierRejectsBadAccessesAndScopes) {
  Buffer x = MakeBuffer("x", DType::kFloat32, {4, 4});
  Buffer stranger = MakeBuffer("stranger", DType::kFloat32, {4});
  Var i = MakeVar("i"), j = MakeVar("j");
  auto k = [&](Stmt body) { return Kernel{"k", {x}, {}, body}; };
  // Wrong rank.
  ExpectRejected(k(For(i, IntImm(0), IntImm(4), ForKind::kSerial, Store(x, {Ref(i)}, FloatImm(0)))),
                 "1 indices for buffer x of rank 2");
  // A buffer that is not a parameter.
  ExpectRejected(
      k(For(i, IntImm(0), IntImm(4), ForKind::kSerial, Store(stranger, {Ref(i)}, FloatImm(0)))),
      "neither a parameter nor a local");
  // j used outside its loop.
  Stmt s = Block(
      {For(j, IntImm(0), IntImm(4), ForKind::kSerial, Store(x, {Ref(j), Ref(j)}, FloatImm(0))),
       Store(x, {Ref(j), IntImm(0)}, FloatImm(1))});
  ExpectRejected(k(s), "variable j is used out of its scope");
  // The same Var bound by two loops.
  Stmt twice = Block(
      {For(i, IntImm(0), IntImm(4), ForKind::kSerial, Store(x, {Ref(i), Ref(i)}, FloatImm(0))),
       For(i, IntImm(0), IntImm(4), ForKind::kSerial, Store(x, {Ref(i), Ref(i)}, FloatImm(0)))});
  ExpectRejected(k(twice), "defined twice");
  // A local buffer used after its allocation ends.
  Buffer tmp = MakeBuffer("tmp", DType::kFloat32, {});
  Stmt escaped = Block({Allocate(tmp, Store(tmp, {}, FloatImm(0))),
                        Store(x, {IntImm(0), IntImm(0)}, Load(tmp, {}))});
  ExpectRejected(k(escaped), "buffer tmp is neither a parameter nor a local in scope");
}

TEST(KernelIR, VerifierRejectsBadLoopStructure) {
  Buffer x = MakeBuffer("x", DType::kFloat32, {4, 4});
  Var i = MakeVar("i"), j = MakeVar("j");
  Stmt store = Store(x, {Ref(i), Ref(j)}, FloatImm(0));
  // A parallel loop nested inside another loop (parallel or not).
  Stmt nested = For(i, IntImm(0), IntImm(4), ForKind::kParallel,
                    For(j, IntImm(0), IntImm(4), ForKind::kParallel, store));
  ExpectRejected(Kernel{"k", {x}, {}, nested}, "at most one parallel loop");
  ExpectRejected(Kernel{"k", {x}, {}, nested}, "nested inside another loop");
  // A parallel loop that is not the whole body.
  Var i2 = MakeVar("i2");
  Stmt two = Block({For(i2, IntImm(0), IntImm(4), ForKind::kParallel,
                        Store(x, {Ref(i2), IntImm(0)}, FloatImm(0)))});
  ExpectRejected(Kernel{"k", {x}, {}, two}, "not the kernel's whole body");
  // A loop or an if inside a vectorized loop.
  Stmt vec_loop = For(i, IntImm(0), IntImm(4), ForKind::kVectorize,
                      For(j, IntImm(0), IntImm(4), ForKind::kSerial, store));
  ExpectRejected(Kernel{"k", {x}, {}, vec_loop}, "inside a vectorized loop");
  Stmt vec_if = For(i, IntImm(0), IntImm(4), ForKind::kVectorize,
                    If(LT(Ref(i), IntImm(2)), Store(x, {Ref(i), Ref(i)}, FloatImm(0))));
  ExpectRejected(Kernel{"k", {x}, {}, vec_if}, "use select");
  // An unrolled loop needs a constant extent.
  Var n = MakeVar("n");
  Stmt unroll =
      For(i, IntImm(0), Ref(n), ForKind::kUnroll, Store(x, {Ref(i), Ref(i)}, FloatImm(0)));
  ExpectRejected(Kernel{"k", {x}, {n}, unroll}, "needs a constant extent");
  // Not a C identifier.
  ExpectRejected(Kernel{"1k", {x}, {}, Block({})}, "not a C identifier");
}

TEST(KernelIR, VerifierListsEveryProblemAtOnce) {
  Buffer x = MakeBuffer("x", DType::kFloat32, {4});
  Var i = MakeVar("i");
  Stmt s = For(i, IntImm(0), IntImm(4), ForKind::kSerial,
               Block({Store(x, {Ref(i), Ref(i)}, FloatImm(0)), Store(x, {Ref(i)}, IntImm(1))}));
  std::string msg = VerifyMessage(Kernel{"k", {x}, {}, s});
  EXPECT_NE(msg.find("2 indices for buffer x of rank 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("value has type int64"), std::string::npos) << msg;
}

}  // namespace
}  // namespace kiln::codegen
