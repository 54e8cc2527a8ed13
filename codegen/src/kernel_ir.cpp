// Kernel IR node constructors and builders (kiln/codegen/kernel_ir.h).
#include "kiln/codegen/kernel_ir.h"

#include <utility>

#include "kiln/runtime/error.h"

namespace kiln::codegen {

Var MakeVar(std::string name, DType dtype) {
  return std::make_shared<VarNode>(VarNode{std::move(name), dtype});
}

int64_t BufferNode::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Buffer MakeBuffer(std::string name, DType dtype, std::vector<int64_t> shape, bool may_alias) {
  return std::make_shared<BufferNode>(
      BufferNode{std::move(name), dtype, std::move(shape), may_alias});
}

const char* BinaryOpName(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kMin:
      return "min";
    case BinaryOp::kMax:
      return "max";
    case BinaryOp::kEQ:
      return "==";
    case BinaryOp::kNE:
      return "!=";
    case BinaryOp::kLT:
      return "<";
    case BinaryOp::kLE:
      return "<=";
    case BinaryOp::kGT:
      return ">";
    case BinaryOp::kGE:
      return ">=";
    case BinaryOp::kAnd:
      return "&&";
    case BinaryOp::kOr:
      return "||";
  }
  return "?";
}

bool IsComparison(BinaryOp op) {
  return op >= BinaryOp::kEQ && op <= BinaryOp::kGE;
}
bool IsLogical(BinaryOp op) {
  return op == BinaryOp::kAnd || op == BinaryOp::kOr;
}

const char* IntrinsicName(Intrinsic f) {
  switch (f) {
    case Intrinsic::kExp:
      return "exp";
    case Intrinsic::kLog:
      return "log";
    case Intrinsic::kTanh:
      return "tanh";
    case Intrinsic::kSigmoid:
      return "sigmoid";
    case Intrinsic::kErf:
      return "erf";
    case Intrinsic::kSqrt:
      return "sqrt";
    case Intrinsic::kRsqrt:
      return "rsqrt";
    case Intrinsic::kPow:
      return "pow";
    case Intrinsic::kAbs:
      return "abs";
    case Intrinsic::kFloor:
      return "floor";
    case Intrinsic::kCeil:
      return "ceil";
    case Intrinsic::kRound:
      return "round";
    case Intrinsic::kExpm1:
      return "expm1";
    case Intrinsic::kLog1p:
      return "log1p";
    case Intrinsic::kSin:
      return "sin";
    case Intrinsic::kCos:
      return "cos";
    case Intrinsic::kTan:
      return "tan";
    case Intrinsic::kAsin:
      return "asin";
    case Intrinsic::kAcos:
      return "acos";
    case Intrinsic::kAtan:
      return "atan";
    case Intrinsic::kFma:
      return "fma";
    case Intrinsic::kRandomBits:
      return "random_bits";
  }
  return "?";
}

int IntrinsicArity(Intrinsic f) {
  if (f == Intrinsic::kPow) return 2;
  if (f == Intrinsic::kFma || f == Intrinsic::kRandomBits) return 3;
  return 1;
}

bool IntrinsicAcceptsIntegers(Intrinsic f) {
  return f == Intrinsic::kAbs;
}

const char* ForKindName(ForKind k) {
  switch (k) {
    case ForKind::kSerial:
      return "serial";
    case ForKind::kParallel:
      return "parallel";
    case ForKind::kVectorize:
      return "vectorize";
    case ForKind::kUnroll:
      return "unroll";
  }
  return "?";
}

namespace {
std::shared_ptr<ExprNode> NewExpr(ExprKind kind, DType dtype) {
  auto e = std::make_shared<ExprNode>();
  e->kind = kind;
  e->dtype = dtype;
  return e;
}
DType TypeOf(const Expr& e) {
  return e ? e->dtype : DType::kUnknown;
}
}  // namespace

Expr IntImm(int64_t value, DType dtype) {
  auto e = NewExpr(ExprKind::kIntImm, dtype);
  e->int_value = value;
  return e;
}

Expr FloatImm(double value, DType dtype) {
  auto e = NewExpr(ExprKind::kFloatImm, dtype);
  e->float_value = value;
  return e;
}

Expr BoolImm(bool value) {
  return IntImm(value ? 1 : 0, DType::kBool);
}

Expr Ref(const Var& v) {
  auto e = NewExpr(ExprKind::kVar, v ? v->dtype : DType::kUnknown);
  e->var = v;
  return e;
}

Expr Binary(BinaryOp op, Expr a, Expr b) {
  DType t = IsComparison(op) || IsLogical(op) ? DType::kBool : TypeOf(a);
  auto e = NewExpr(ExprKind::kBinary, t);
  e->binary_op = op;
  e->operands = {std::move(a), std::move(b)};
  return e;
}

Expr Not(Expr a) {
  auto e = NewExpr(ExprKind::kNot, DType::kBool);
  e->operands = {std::move(a)};
  return e;
}

Expr Select(Expr cond, Expr t, Expr f) {
  auto e = NewExpr(ExprKind::kSelect, TypeOf(t));
  e->operands = {std::move(cond), std::move(t), std::move(f)};
  return e;
}

Expr Cast(DType dtype, Expr a) {
  auto e = NewExpr(ExprKind::kCast, dtype);
  e->operands = {std::move(a)};
  return e;
}

Expr Call(Intrinsic f, std::vector<Expr> args) {
  auto e = NewExpr(ExprKind::kCall, args.empty() ? DType::kUnknown : TypeOf(args[0]));
  e->intrinsic = f;
  e->operands = std::move(args);
  return e;
}

Expr Load(const Buffer& b, std::vector<Expr> indices) {
  auto e = NewExpr(ExprKind::kLoad, b ? b->dtype : DType::kUnknown);
  e->buffer = b;
  e->operands = std::move(indices);
  return e;
}

Expr Imm(double value, DType dtype) {
  if (IsFloatingPoint(dtype)) return FloatImm(value, dtype);
  return IntImm(static_cast<int64_t>(value), dtype);
}

Expr operator+(Expr a, Expr b) {
  return Binary(BinaryOp::kAdd, std::move(a), std::move(b));
}
Expr operator-(Expr a, Expr b) {
  return Binary(BinaryOp::kSub, std::move(a), std::move(b));
}
Expr operator*(Expr a, Expr b) {
  return Binary(BinaryOp::kMul, std::move(a), std::move(b));
}
Expr operator/(Expr a, Expr b) {
  return Binary(BinaryOp::kDiv, std::move(a), std::move(b));
}
Expr operator%(Expr a, Expr b) {
  return Binary(BinaryOp::kMod, std::move(a), std::move(b));
}
Expr operator+(Expr a, double b) {
  DType t = TypeOf(a);
  return std::move(a) + Imm(b, t);
}
Expr operator-(Expr a, double b) {
  DType t = TypeOf(a);
  return std::move(a) - Imm(b, t);
}
Expr operator*(Expr a, double b) {
  DType t = TypeOf(a);
  return std::move(a) * Imm(b, t);
}
Expr operator/(Expr a, double b) {
  DType t = TypeOf(a);
  return std::move(a) / Imm(b, t);
}
Expr operator%(Expr a, int64_t b) {
  DType t = TypeOf(a);
  return std::move(a) % IntImm(b, t);
}
Expr operator+(double a, Expr b) {
  DType t = TypeOf(b);
  return Imm(a, t) + std::move(b);
}
Expr operator-(double a, Expr b) {
  DType t = TypeOf(b);
  return Imm(a, t) - std::move(b);
}
Expr operator*(double a, Expr b) {
  DType t = TypeOf(b);
  return Imm(a, t) * std::move(b);
}
Expr Min(Expr a, Expr b) {
  return Binary(BinaryOp::kMin, std::move(a), std::move(b));
}
Expr Max(Expr a, Expr b) {
  return Binary(BinaryOp::kMax, std::move(a), std::move(b));
}
Expr LT(Expr a, Expr b) {
  return Binary(BinaryOp::kLT, std::move(a), std::move(b));
}
Expr LE(Expr a, Expr b) {
  return Binary(BinaryOp::kLE, std::move(a), std::move(b));
}
Expr GT(Expr a, Expr b) {
  return Binary(BinaryOp::kGT, std::move(a), std::move(b));
}
Expr GE(Expr a, Expr b) {
  return Binary(BinaryOp::kGE, std::move(a), std::move(b));
}
Expr EQ(Expr a, Expr b) {
  return Binary(BinaryOp::kEQ, std::move(a), std::move(b));
}
Expr NE(Expr a, Expr b) {
  return Binary(BinaryOp::kNE, std::move(a), std::move(b));
}
Expr And(Expr a, Expr b) {
  return Binary(BinaryOp::kAnd, std::move(a), std::move(b));
}
Expr Or(Expr a, Expr b) {
  return Binary(BinaryOp::kOr, std::move(a), std::move(b));
}

namespace {
std::shared_ptr<StmtNode> NewStmt(StmtKind kind) {
  auto s = std::make_shared<StmtNode>();
  s->kind = kind;
  return s;
}
}  // namespace

Stmt For(Var var, Expr begin, Expr extent, ForKind kind, Stmt body, int vector_width) {
  auto s = NewStmt(StmtKind::kFor);
  s->var = std::move(var);
  s->a = std::move(begin);
  s->b = std::move(extent);
  s->for_kind = kind;
  s->vector_width = vector_width;
  s->body = {std::move(body)};
  return s;
}

Stmt Store(const Buffer& b, std::vector<Expr> indices, Expr value) {
  auto s = NewStmt(StmtKind::kStore);
  s->buffer = b;
  s->indices = std::move(indices);
  s->a = std::move(value);
  return s;
}

Stmt Let(Var var, Expr value, Stmt body) {
  auto s = NewStmt(StmtKind::kLet);
  s->var = std::move(var);
  s->a = std::move(value);
  s->body = {std::move(body)};
  return s;
}

Stmt If(Expr cond, Stmt then_case, Stmt else_case) {
  auto s = NewStmt(StmtKind::kIf);
  s->a = std::move(cond);
  s->body = {std::move(then_case)};
  if (else_case) s->body.push_back(std::move(else_case));
  return s;
}

Stmt Block(std::vector<Stmt> stmts) {
  auto s = NewStmt(StmtKind::kBlock);
  s->body = std::move(stmts);
  return s;
}

Stmt Allocate(Buffer local, Stmt body) {
  auto s = NewStmt(StmtKind::kAllocate);
  s->buffer = std::move(local);
  s->body = {std::move(body)};
  return s;
}

const StmtNode* Kernel::ParallelLoop() const {
  if (body && body->kind == StmtKind::kFor && body->for_kind == ForKind::kParallel) {
    return body.get();
  }
  return nullptr;
}

}  // namespace kiln::codegen
