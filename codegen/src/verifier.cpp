// The kernel IR verifier: checks the rules written in kernel_ir.h and reports all violations.
#include <cctype>
#include <set>
#include <sstream>

#include "kiln/codegen/kernel_ir.h"
#include "kiln/runtime/error.h"

namespace kiln::codegen {
namespace {

bool IsComputeType(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kInt32 || t == DType::kInt64;
}

class Verifier {
 public:
  explicit Verifier(const Kernel& k) : k_(k) {}

  std::vector<std::string> Run() {
    CheckName();
    std::set<const BufferNode*> seen_buffers;
    for (const Buffer& b : k_.buffers) {
      if (!b) {
        Fail("a buffer parameter is null");
        continue;
      }
      if (!seen_buffers.insert(b.get()).second) Fail("buffer " + b->name + " is a parameter twice");
      CheckBufferType(*b);
      buffers_.insert(b.get());
    }
    for (const Var& v : k_.scalars) {
      if (!v) {
        Fail("a scalar parameter is null");
        continue;
      }
      if (!IsComputeType(v->dtype)) {
        Fail(Str("scalar parameter ", v->name, " has type ", DTypeName(v->dtype),
                 "; scalars are float32, float64, int32 or int64"));
      }
      Define(v);
    }
    if (!k_.body) {
      Fail("the kernel has no body");
    } else {
      VisitStmt(k_.body, 0);
    }
    return std::move(errors_);
  }

 private:
  template <class... Args>
  static std::string Str(const Args&... args) {
    return StrCat(args...);
  }
  void Fail(std::string msg) { errors_.push_back(std::move(msg)); }

  void CheckName() {
    bool ok = !k_.name.empty() && !std::isdigit(static_cast<unsigned char>(k_.name[0]));
    for (char c : k_.name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!ok) Fail("kernel name '" + k_.name + "' is not a C identifier");
  }

  void CheckBufferType(const BufferNode& b) {
    if (b.dtype == DType::kUnknown) Fail("buffer " + b.name + " has an unknown dtype");
    for (int64_t d : b.shape) {
      if (d < 0) Fail(Str("buffer ", b.name, " has a negative dimension ", d));
    }
  }

  void Define(const Var& v) {
    if (!defined_.insert(v.get()).second) {
      Fail("variable " + v->name + " is defined twice (every binding needs its own Var)");
    }
    scope_.insert(v.get());
  }

  // ---- Expressions ----

  void VisitExpr(const Expr& e) {
    if (!e) {
      Fail("an expression is null");
      return;
    }
    for (const Expr& o : e->operands) VisitExpr(o);
    for (const Expr& o : e->operands) {
      if (!o) return;  // reported above; the checks below would dereference it
    }
    const std::string what = PrintExpr(e);
    auto expect_operands = [&](size_t n) {
      if (e->operands.size() == n) return true;
      Fail(Str(what, ": expected ", n, " operands, got ", e->operands.size()));
      return false;
    };
    switch (e->kind) {
      case ExprKind::kIntImm:
        if (!IsInteger(e->dtype) && e->dtype != DType::kBool) {
          Fail(Str("integer literal ", what, " has type ", DTypeName(e->dtype)));
        }
        return;
      case ExprKind::kFloatImm:
        if (e->dtype != DType::kFloat32 && e->dtype != DType::kFloat64) {
          Fail(Str("float literal ", what, " has type ", DTypeName(e->dtype)));
        }
        return;
      case ExprKind::kVar:
        if (!e->var) {
          Fail("a variable reference is null");
        } else if (!scope_.count(e->var.get())) {
          Fail("variable " + e->var->name + " is used out of its scope");
        } else if (e->dtype != e->var->dtype) {
          Fail(Str("reference to ", e->var->name, " has type ", DTypeName(e->dtype), " but the ",
                   "variable is ", DTypeName(e->var->dtype)));
        }
        return;
      case ExprKind::kBinary: {
        if (!expect_operands(2)) return;
        DType a = e->operands[0]->dtype, b = e->operands[1]->dtype;
        if (a != b) {
          Fail(Str(what, ": operand types differ (", DTypeName(a), " and ", DTypeName(b), ")"));
          return;
        }
        BinaryOp op = e->binary_op;
        DType want = IsComparison(op) || IsLogical(op) ? DType::kBool : a;
        if (e->dtype != want) Fail(Str(what, ": result type should be ", DTypeName(want)));
        if (IsLogical(op)) {
          if (a != DType::kBool) Fail(Str(what, ": logic on ", DTypeName(a), ", not bool"));
        } else if ((op == BinaryOp::kEQ || op == BinaryOp::kNE) && a == DType::kBool) {
          // Equality of booleans is allowed.
        } else if (!IsComputeType(a)) {
          Fail(Str(what, ": arithmetic on ", DTypeName(a),
                   " (only float32, float64, int32, int64; Cast first)"));
        } else if (op == BinaryOp::kMod && IsFloatingPoint(a)) {
          Fail(Str(what, ": % is defined on integers only"));
        }
        return;
      }
      case ExprKind::kNot:
        if (!expect_operands(1)) return;
        if (e->operands[0]->dtype != DType::kBool || e->dtype != DType::kBool) {
          Fail(Str(what, ": ! needs a bool operand"));
        }
        return;
      case ExprKind::kSelect:
        if (!expect_operands(3)) return;
        if (e->operands[0]->dtype != DType::kBool) Fail(Str(what, ": condition is not bool"));
        if (e->operands[1]->dtype != e->operands[2]->dtype || e->dtype != e->operands[1]->dtype) {
          Fail(Str(what, ": both values and the result must have one type"));
        }
        return;
      case ExprKind::kCast:
        if (!expect_operands(1)) return;
        if (e->dtype == DType::kUnknown || e->operands[0]->dtype == DType::kUnknown) {
          Fail(Str(what, ": cast from or to an unknown type"));
        }
        return;
      case ExprKind::kCall: {
        if (!expect_operands(IntrinsicArity(e->intrinsic))) return;
        DType t = e->operands[0]->dtype;
        for (const Expr& o : e->operands) {
          if (o->dtype != t) Fail(Str(what, ": argument types differ"));
        }
        bool ok = e->intrinsic == Intrinsic::kRandomBits
                      ? t == DType::kInt64
                      : t == DType::kFloat32 || t == DType::kFloat64 ||
                            (IntrinsicAcceptsIntegers(e->intrinsic) && IsComputeType(t));
        if (!ok) Fail(Str(what, ": ", IntrinsicName(e->intrinsic), " on ", DTypeName(t)));
        if (e->dtype != t) Fail(Str(what, ": result type should be ", DTypeName(t)));
        return;
      }
      case ExprKind::kLoad:
        CheckAccess(what, e->buffer, e->operands);
        if (e->buffer && e->dtype != e->buffer->dtype) {
          Fail(Str(what, ": load type differs from the buffer's"));
        }
        return;
    }
    Fail("an expression has an unknown kind");
  }

  void CheckAccess(const std::string& what, const Buffer& b, const std::vector<Expr>& idx) {
    if (!b) {
      Fail(what + ": buffer is null");
      return;
    }
    if (!buffers_.count(b.get())) {
      Fail(Str(what, ": buffer ", b->name, " is neither a parameter nor a local in scope"));
    }
    if (idx.size() != b->shape.size()) {
      Fail(Str(what, ": ", idx.size(), " indices for buffer ", b->name, " of rank ",
               b->shape.size()));
    }
    for (const Expr& i : idx) {
      if (i && i->dtype != DType::kInt64)
        Fail(Str(what, ": index ", PrintExpr(i), " is not int64"));
    }
  }

  // ---- Statements ----

  // `loops`: the number of enclosing loops; `vector_loop`: inside a vectorized loop.
  void VisitStmt(const Stmt& s, int loops) {
    if (!s) {
      Fail("a statement is null");
      return;
    }
    auto child = [&](size_t i) -> Stmt { return i < s->body.size() ? s->body[i] : nullptr; };
    switch (s->kind) {
      case StmtKind::kFor: {
        if (!s->var) {
          Fail("a loop has no variable");
          return;
        }
        const std::string& v = s->var->name;
        if (s->var->dtype != DType::kInt64) Fail("loop variable " + v + " is not int64");
        VisitExpr(s->a);
        VisitExpr(s->b);
        if (s->a && s->a->dtype != DType::kInt64) Fail("loop " + v + ": begin is not int64");
        if (s->b && s->b->dtype != DType::kInt64) Fail("loop " + v + ": extent is not int64");
        if (in_vector_loop_) Fail("loop " + v + " is inside a vectorized loop");
        switch (s->for_kind) {
          case ForKind::kParallel:
            ++parallel_loops_;
            if (parallel_loops_ > 1) Fail("loop " + v + ": a kernel has at most one parallel loop");
            if (s.get() != k_.body.get()) {
              Fail("parallel loop " + v + " is not the kernel's whole body" +
                   (loops > 0 ? " (it is nested inside another loop)" : ""));
            }
            // The runtime needs the number of tasks without running anything.
            if (!s->b || s->b->kind != ExprKind::kIntImm) {
              Fail("parallel loop " + v + " needs a constant extent");
            }
            break;
          case ForKind::kVectorize:
            if (s->vector_width < 0) Fail("loop " + v + ": negative vector width");
            break;
          case ForKind::kUnroll:
            if (!s->b || s->b->kind != ExprKind::kIntImm) {
              Fail("unrolled loop " + v + " needs a constant extent");
            }
            break;
          case ForKind::kSerial:
            break;
        }
        Define(s->var);
        bool was_vector = in_vector_loop_;
        if (s->for_kind == ForKind::kVectorize) in_vector_loop_ = true;
        VisitStmt(child(0), loops + 1);
        in_vector_loop_ = was_vector;
        scope_.erase(s->var.get());
        return;
      }
      case StmtKind::kStore: {
        const std::string what = "store to " + (s->buffer ? s->buffer->name : "?");
        for (const Expr& i : s->indices) VisitExpr(i);
        VisitExpr(s->a);
        CheckAccess(what, s->buffer, s->indices);
        if (s->buffer && s->a && s->a->dtype != s->buffer->dtype) {
          Fail(Str(what, ": value has type ", DTypeName(s->a->dtype), ", buffer holds ",
                   DTypeName(s->buffer->dtype)));
        }
        return;
      }
      case StmtKind::kLet:
        if (!s->var) {
          Fail("a let has no variable");
          return;
        }
        VisitExpr(s->a);
        if (s->a && s->a->dtype != s->var->dtype) {
          Fail(Str("let ", s->var->name, ": value has type ", DTypeName(s->a->dtype)));
        }
        Define(s->var);
        VisitStmt(child(0), loops);
        scope_.erase(s->var.get());
        return;
      case StmtKind::kIf:
        VisitExpr(s->a);
        if (s->a && s->a->dtype != DType::kBool) Fail("if: condition is not bool");
        if (in_vector_loop_) Fail("if inside a vectorized loop (use select)");
        if (s->body.empty() || s->body.size() > 2) Fail("if: needs a then and at most an else");
        for (const Stmt& c : s->body) VisitStmt(c, loops);
        return;
      case StmtKind::kBlock:
        for (const Stmt& c : s->body) VisitStmt(c, loops);
        return;
      case StmtKind::kAllocate:
        if (!s->buffer) {
          Fail("an allocation has no buffer");
          return;
        }
        if (in_vector_loop_) Fail("local buffer " + s->buffer->name + " inside a vectorized loop");
        if (!allocated_.insert(s->buffer.get()).second || buffers_.count(s->buffer.get())) {
          Fail("buffer " + s->buffer->name + " is allocated twice or is also a parameter");
        }
        CheckBufferType(*s->buffer);
        buffers_.insert(s->buffer.get());
        VisitStmt(child(0), loops);
        buffers_.erase(s->buffer.get());
        return;
    }
    Fail("a statement has an unknown kind");
  }

  const Kernel& k_;
  std::vector<std::string> errors_;
  std::set<const VarNode*> defined_, scope_;
  std::set<const BufferNode*> buffers_, allocated_;
  int parallel_loops_ = 0;
  bool in_vector_loop_ = false;
};

}  // namespace

void VerifyKernel(const Kernel& k) {
  std::vector<std::string> errors = Verifier(k).Run();
  if (errors.empty()) return;
  std::ostringstream os;
  os << "kernel " << k.name << " is malformed:";
  for (const std::string& e : errors) os << "\n  " << e;
  throw InternalError(os.str());
}

}  // namespace kiln::codegen
