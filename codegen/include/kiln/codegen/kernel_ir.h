// kiln/codegen/kernel_ir.h - the target-neutral loop-level kernel IR.
//
// A Kernel is what one fused group of the graph becomes: a function over typed buffers whose
// body is a tree of statements (loops, stores, lets, ifs, local buffers) over expressions
// (index arithmetic, float arithmetic, comparisons, select, casts, math intrinsics, loads).
// Every backend prints the same IR: LLVM IR for CPUs (codegen/src/llvm), CUDA C later. Nothing
// here is specific to a CPU; the loop annotations (parallel, vectorize, unroll) say what may be
// done, and each backend decides how.
//
// Semantics, fixed here so that every backend agrees:
// - Types. Every expression has a DType. Index arithmetic is int64 (loop variables, indices,
//   extents). Arithmetic is defined on float32, float64, int32 and int64; comparisons and
//   logic produce bool. float16, bfloat16, int8, uint8 and bool buffers can be loaded and
//   stored, and converted with Cast, but not computed on directly. There is no implicit
//   conversion: both operands of a binary op have the same type (the verifier checks it; the
//   builders below convert C++ literals to the other operand's type).
// - Integer Div and Mod truncate towards zero, as in C; dividing by zero is undefined.
//   Integer overflow wraps. Float arithmetic is IEEE 754 with round-to-nearest; backends may
//   contract a*b+c into a fused multiply-add, and nothing else ("fp-contract=fast" only).
// - Min and Max on floats return the other operand when one is NaN (IEEE minNum/maxNum).
// - Cast from float to an integer type rounds towards zero and saturates at the type's
//   limits; NaN becomes 0. Cast to bool is x != 0 (so NaN is true). Integer casts wrap;
//   uint8 and bool widen without sign.
// - Buffers are dense row-major arrays of compile-time shape; a Load or Store names one
//   element with one index per dimension (rank 0: no index). Indices out of range are
//   undefined behaviour: lowering guards them with If or Select.
// - For(var, begin, extent) runs var = begin, begin+1, ..., begin+extent-1; extent <= 0
//   runs nothing. begin and extent are evaluated once, before the first iteration.
//   Annotations: kSerial; kParallel (iterations are independent and may run on different
//   threads, in any order); kVectorize (iterations are independent and may run in SIMD
//   lanes, `width` lanes at a time, 0 = the target's natural width); kUnroll (a constant
//   extent; the backend replicates the body).
// - A kernel has at most one parallel loop and, when it has one, that loop is the whole
//   body and has a constant extent. The calling convention splits its iterations into tasks
//   (kiln/codegen/llvm_jit.h).
// - The body of a vectorized loop holds only stores, lets and blocks (no loops, ifs or local
//   buffers: conditions become Select). Backends widen every expression that depends on the
//   loop variable; a store whose index does not depend on it keeps the last lane's value,
//   as the serial loop would.
// - Let binds an immutable scalar for its body; Allocate creates a local buffer for its body,
//   with undefined contents until stored to. Mutable scalars, such as the accumulator of a
//   reduction, are rank-0 local buffers.
//
// Nodes are immutable and shared (`Expr`, `Stmt` are shared_ptr to const). Variables and
// buffers are identified by object, not by name; names exist for printing, and the printer
// makes clashing names unique.
//
// Example: y = tanh(x * alpha + 1) over a 4 x 16 matrix, rows in parallel, columns in SIMD
// lanes, compiled and run by the LLVM backend (kiln/codegen/llvm_jit.h):
//
//   Buffer x = MakeBuffer("x", DType::kFloat32, {4, 16});
//   Buffer y = MakeBuffer("y", DType::kFloat32, {4, 16});
//   Var alpha = MakeVar("alpha", DType::kFloat32), i = MakeVar("i"), j = MakeVar("j");
//   Stmt store = Store(y, {Ref(i), Ref(j)},
//                      Call(Intrinsic::kTanh, {Load(x, {Ref(i), Ref(j)}) * Ref(alpha) + 1.0}));
//   Kernel k{"add_tanh", {x, y}, {alpha},
//            For(i, IntImm(0), IntImm(4), ForKind::kParallel,
//                For(j, IntImm(0), IntImm(16), ForKind::kVectorize, store))};
//   VerifyKernel(k);                       // throws InternalError listing every problem
//   std::string text = PrintKernel(k);     // "kernel add_tanh(x: float32[4, 16], ..."
//   LLVMJit jit;                           // owns the machine code
//   KernelFn fn = jit.Compile({k})[0];
//   void* args[] = {x_data, y_data, &alpha_value};
//   fn(args, 0, TaskCount(k));             // or split [0, 4) over a ThreadPool
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/runtime/dtype.h"

namespace kiln::codegen {

// ---- Variables and buffers ----

// A scalar variable: a loop variable, a Let binding or a scalar kernel parameter.
struct VarNode {
  std::string name;
  DType dtype = DType::kInt64;
};
using Var = std::shared_ptr<const VarNode>;
Var MakeVar(std::string name, DType dtype = DType::kInt64);

// A dense row-major array with a compile-time shape. Kernel parameters are buffers that the
// caller passes; local buffers are created by Allocate.
struct BufferNode {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;  // empty: rank 0, one element
  // Buffer parameters are assumed not to overlap one another (backends may tell the
  // optimiser so) unless this is set: the memory planner's in-place pairs need it.
  bool may_alias = false;
  int64_t NumElements() const;
};
using Buffer = std::shared_ptr<const BufferNode>;
Buffer MakeBuffer(std::string name, DType dtype, std::vector<int64_t> shape,
                  bool may_alias = false);

// ---- Expressions ----

enum class ExprKind : uint8_t {
  kIntImm,
  kFloatImm,
  kVar,
  kBinary,  // arithmetic, comparison and logic: see BinaryOp
  kNot,
  kSelect,
  kCast,
  kCall,  // a math intrinsic
  kLoad,
};

enum class BinaryOp : uint8_t {
  // Arithmetic: both operands and the result have one type.
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kMin,
  kMax,
  // Comparisons, with a bool result; with a NaN operand only kNE is true.
  kEQ,
  kNE,
  kLT,
  kLE,
  kGT,
  kGE,
  // Logic on bools.
  kAnd,
  kOr,
};
const char* BinaryOpName(BinaryOp op);  // "+", "<", "min", ...
bool IsComparison(BinaryOp op);
bool IsLogical(BinaryOp op);

// Math intrinsics on float32 and float64 (abs also on integers: IntrinsicAcceptsIntegers).
// round rounds halfway cases away from zero (C's round); rsqrt is 1 / sqrt(x); sigmoid is
// 1 / (1 + exp(-x)). Accuracy is a property of the backend (docs/codegen.md).
enum class Intrinsic : uint8_t {
  kExp,
  kLog,
  kTanh,
  kSigmoid,
  kErf,
  kSqrt,
  kRsqrt,
  kPow,
  kAbs,
  kFloor,
  kCeil,
  kRound,
  kExpm1,
  kLog1p,
  kSin,  // sin, cos, tan: radians
  kCos,
  kTan,
  kAsin,  // asin, acos: NaN outside [-1, 1]
  kAcos,
  kAtan,
  kFma,
  // random_bits(seed, stream, counter), all int64: Philox4x32-10's first word for that key and
  // counter (kiln/ir/random.h), an int64 in [0, 2^32). The only intrinsic on integers only.
  kRandomBits,
};
const char* IntrinsicName(Intrinsic f);  // "exp", "sigmoid", ...
int IntrinsicArity(Intrinsic f);         // 1, except pow 2, fma and random_bits 3
bool IntrinsicAcceptsIntegers(Intrinsic f);

struct ExprNode;
using Expr = std::shared_ptr<const ExprNode>;

struct ExprNode {
  ExprKind kind;
  DType dtype;
  int64_t int_value = 0;     // kIntImm
  double float_value = 0.0;  // kFloatImm
  Var var;                   // kVar
  BinaryOp binary_op = BinaryOp::kAdd;
  Intrinsic intrinsic = Intrinsic::kExp;
  Buffer buffer;               // kLoad
  std::vector<Expr> operands;  // binary: a, b; not: a; select: cond, t, f; cast: a; call
                               // args; load: indices
};

// Constructors. They check nothing: the verifier does (so that tests can build bad IR).
Expr IntImm(int64_t value, DType dtype = DType::kInt64);
Expr FloatImm(double value, DType dtype = DType::kFloat32);
Expr BoolImm(bool value);
Expr Ref(const Var& v);
Expr Binary(BinaryOp op, Expr a, Expr b);
Expr Not(Expr a);
Expr Select(Expr cond, Expr t, Expr f);
Expr Cast(DType dtype, Expr a);
Expr Call(Intrinsic f, std::vector<Expr> args);
Expr Load(const Buffer& b, std::vector<Expr> indices);

// Builders for readable construction: a C++ number beside an Expr takes the Expr's type.
Expr operator+(Expr a, Expr b);
Expr operator-(Expr a, Expr b);
Expr operator*(Expr a, Expr b);
Expr operator/(Expr a, Expr b);
Expr operator%(Expr a, Expr b);
Expr operator+(Expr a, double b);
Expr operator-(Expr a, double b);
Expr operator*(Expr a, double b);
Expr operator/(Expr a, double b);
Expr operator%(Expr a, int64_t b);
Expr operator+(double a, Expr b);
Expr operator-(double a, Expr b);
Expr operator*(double a, Expr b);
Expr Min(Expr a, Expr b);
Expr Max(Expr a, Expr b);
Expr LT(Expr a, Expr b);
Expr LE(Expr a, Expr b);
Expr GT(Expr a, Expr b);
Expr GE(Expr a, Expr b);
Expr EQ(Expr a, Expr b);
Expr NE(Expr a, Expr b);
Expr And(Expr a, Expr b);
Expr Or(Expr a, Expr b);
// A literal of the given type (int or float as the type requires).
Expr Imm(double value, DType dtype);

// ---- Statements ----

enum class StmtKind : uint8_t { kFor, kStore, kLet, kIf, kBlock, kAllocate };
enum class ForKind : uint8_t { kSerial, kParallel, kVectorize, kUnroll };
const char* ForKindName(ForKind k);  // "serial", "parallel", "vectorize", "unroll"

struct StmtNode;
using Stmt = std::shared_ptr<const StmtNode>;

struct StmtNode {
  StmtKind kind;
  Var var;  // for: loop variable; let: the bound variable
  Expr a;   // for: begin; let: value; if: condition; store: value
  Expr b;   // for: extent
  ForKind for_kind = ForKind::kSerial;
  int vector_width = 0;       // kVectorize: lanes, 0 = the target's natural width
  Buffer buffer;              // store: target; allocate: the local buffer
  std::vector<Expr> indices;  // store
  std::vector<Stmt> body;     // for/let/allocate: {body}; if: {then} or {then, else}; block
};

Stmt For(Var var, Expr begin, Expr extent, ForKind kind, Stmt body, int vector_width = 0);
Stmt Store(const Buffer& b, std::vector<Expr> indices, Expr value);
Stmt Let(Var var, Expr value, Stmt body);
Stmt If(Expr cond, Stmt then_case, Stmt else_case = nullptr);
Stmt Block(std::vector<Stmt> stmts);
Stmt Allocate(Buffer local, Stmt body);

// ---- Kernels ----

struct Kernel {
  std::string name;             // a C identifier, unique in its module
  std::vector<Buffer> buffers;  // parameters, in calling order
  std::vector<Var> scalars;     // scalar parameters, after the buffers
  Stmt body;

  // The parallel loop that tasks split, or null when the kernel runs as one task.
  const StmtNode* ParallelLoop() const;
};

// ---- Printing and checking ----

// Readable text, one statement per line:
//   kernel add_tanh(x: float32[4, 16], y: float32[4, 16]) {
//     parallel for i in [0, 4) {
//       vectorize(16) for j in [0, 16) {
//         y[i, j] = tanh(x[i, j])
std::string PrintKernel(const Kernel& k);
std::string PrintExpr(const Expr& e);

// Checks the kernel against the rules above; throws InternalError listing every problem
// (kernels are produced by kiln's lowering, so a bad one is a kiln bug).
void VerifyKernel(const Kernel& k);

}  // namespace kiln::codegen
