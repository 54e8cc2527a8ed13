// The kernel IR printer: readable text for kiln-dump --kernels and for golden tests.
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "kiln/codegen/kernel_ir.h"

namespace kiln::codegen {
namespace {

class Printer {
 public:
  std::string Name(const void* key, const std::string& base) {
    auto it = names_.find(key);
    if (it != names_.end()) return it->second;
    // Two objects may share a name (lowering creates many loops called "i"): later ones get a
    // suffix so that the text stays unambiguous.
    std::string name = base.empty() ? "v" : base;
    for (int k = 1; used_.count(name); ++k) name = base + "_" + std::to_string(k);
    used_.insert(name);
    names_[key] = name;
    return name;
  }

  std::string VarName(const Var& v) { return v ? Name(v.get(), v->name) : "<null var>"; }
  std::string BufName(const Buffer& b) { return b ? Name(b.get(), b->name) : "<null buffer>"; }

  static std::string TypeString(const Buffer& b) {
    std::ostringstream os;
    os << DTypeName(b->dtype) << "[";
    for (size_t i = 0; i < b->shape.size(); ++i) os << (i ? ", " : "") << b->shape[i];
    os << "]";
    return os.str();
  }

  void PrintExpr(std::ostream& os, const Expr& e, bool nested) {
    if (!e) {
      os << "<null>";
      return;
    }
    switch (e->kind) {
      case ExprKind::kIntImm:
        if (e->dtype == DType::kBool) {
          os << (e->int_value ? "true" : "false");
        } else {
          os << e->int_value;
          if (e->dtype != DType::kInt64) os << ":" << DTypeName(e->dtype);
        }
        return;
      case ExprKind::kFloatImm: {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.9g", e->float_value);
        std::string s = buf;
        // Keep float literals recognisable as floats: "1" would read as an integer.
        if (s.find_first_of(".eni") == std::string::npos) s += ".0";
        os << s;
        if (e->dtype != DType::kFloat32) os << ":" << DTypeName(e->dtype);
        return;
      }
      case ExprKind::kVar:
        os << VarName(e->var);
        return;
      case ExprKind::kBinary: {
        BinaryOp op = e->binary_op;
        if (op == BinaryOp::kMin || op == BinaryOp::kMax) {
          os << BinaryOpName(op) << "(";
          PrintOperand(os, e, 0, false);
          os << ", ";
          PrintOperand(os, e, 1, false);
          os << ")";
          return;
        }
        if (nested) os << "(";
        PrintOperand(os, e, 0, true);
        os << " " << BinaryOpName(op) << " ";
        PrintOperand(os, e, 1, true);
        if (nested) os << ")";
        return;
      }
      case ExprKind::kNot:
        os << "!";
        PrintOperand(os, e, 0, true);
        return;
      case ExprKind::kSelect:
        PrintCall(os, "select", e->operands);
        return;
      case ExprKind::kCast:
        PrintCall(os, std::string(DTypeName(e->dtype)), e->operands);
        return;
      case ExprKind::kCall:
        PrintCall(os, IntrinsicName(e->intrinsic), e->operands);
        return;
      case ExprKind::kLoad:
        os << BufName(e->buffer);
        PrintIndices(os, e->operands);
        return;
    }
  }

  void PrintOperand(std::ostream& os, const Expr& e, size_t i, bool nested) {
    if (i < e->operands.size()) {
      PrintExpr(os, e->operands[i], nested);
    } else {
      os << "<missing>";
    }
  }

  void PrintCall(std::ostream& os, const std::string& f, const std::vector<Expr>& args) {
    os << f << "(";
    for (size_t i = 0; i < args.size(); ++i) {
      if (i) os << ", ";
      PrintExpr(os, args[i], false);
    }
    os << ")";
  }

  void PrintIndices(std::ostream& os, const std::vector<Expr>& idx) {
    os << "[";
    for (size_t i = 0; i < idx.size(); ++i) {
      if (i) os << ", ";
      PrintExpr(os, idx[i], false);
    }
    os << "]";
  }

  void PrintStmt(std::ostream& os, const Stmt& s, int indent) {
    std::string pad(indent * 2, ' ');
    if (!s) {
      os << pad << "<null stmt>\n";
      return;
    }
    auto child = [&](size_t i) { return i < s->body.size() ? s->body[i] : nullptr; };
    switch (s->kind) {
      case StmtKind::kFor: {
        os << pad << "for " << VarName(s->var) << " in [";
        PrintExpr(os, s->a, false);
        os << ", ";
        bool zero_begin = s->a && s->a->kind == ExprKind::kIntImm && s->a->int_value == 0;
        if (!zero_begin) {
          PrintExpr(os, s->a, true);
          os << " + ";
        }
        PrintExpr(os, s->b, !zero_begin);
        os << ")";
        if (s->for_kind == ForKind::kVectorize) {
          os << " vectorize(";
          if (s->vector_width > 0) {
            os << s->vector_width;
          } else {
            os << "native";
          }
          os << ")";
        } else if (s->for_kind != ForKind::kSerial) {
          os << " " << ForKindName(s->for_kind);
        }
        os << " {\n";
        PrintStmt(os, child(0), indent + 1);
        os << pad << "}\n";
        return;
      }
      case StmtKind::kStore:
        os << pad << BufName(s->buffer);
        PrintIndices(os, s->indices);
        os << " = ";
        PrintExpr(os, s->a, false);
        os << "\n";
        return;
      case StmtKind::kLet:
        // A let's body is printed at the same depth, as a sequence: lets nest deeply.
        os << pad << "let " << VarName(s->var) << ": " << (s->var ? DTypeName(s->var->dtype) : "?")
           << " = ";
        PrintExpr(os, s->a, false);
        os << "\n";
        PrintStmt(os, child(0), indent);
        return;
      case StmtKind::kAllocate:
        os << pad << "local " << BufName(s->buffer) << ": "
           << (s->buffer ? TypeString(s->buffer) : "?") << "\n";
        PrintStmt(os, child(0), indent);
        return;
      case StmtKind::kIf:
        os << pad << "if (";
        PrintExpr(os, s->a, false);
        os << ") {\n";
        PrintStmt(os, child(0), indent + 1);
        if (s->body.size() > 1) {
          os << pad << "} else {\n";
          PrintStmt(os, child(1), indent + 1);
        }
        os << pad << "}\n";
        return;
      case StmtKind::kBlock:
        for (const Stmt& c : s->body) PrintStmt(os, c, indent);
        return;
    }
  }

 private:
  std::map<const void*, std::string> names_;
  std::set<std::string> used_;
};

}  // namespace

std::string PrintExpr(const Expr& e) {
  Printer p;
  std::ostringstream os;
  p.PrintExpr(os, e, false);
  return os.str();
}

std::string PrintKernel(const Kernel& k) {
  Printer p;
  std::ostringstream os;
  os << "kernel " << k.name << "(";
  bool first = true;
  for (const Buffer& b : k.buffers) {
    os << (first ? "" : ", ") << p.BufName(b) << ": " << (b ? Printer::TypeString(b) : "?");
    if (b && b->may_alias) os << " may_alias";
    first = false;
  }
  for (const Var& v : k.scalars) {
    os << (first ? "" : ", ") << p.VarName(v) << ": " << (v ? DTypeName(v->dtype) : "?");
    first = false;
  }
  os << ") {\n";
  p.PrintStmt(os, k.body, 1);
  os << "}\n";
  return os.str();
}

}  // namespace kiln::codegen
