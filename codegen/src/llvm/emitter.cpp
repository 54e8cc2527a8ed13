// Kernel IR to LLVM IR (see emitter.h and the calling convention in kiln/codegen/llvm_jit.h).
//
// Each kernel becomes two functions: the exported entry `name(args, task_begin, task_end)`
// loads the buffer pointers and scalars from `args` and calls the internal, always-inlined
// `name.body(buf0, ..., scalar0, ..., task_begin, task_end)`, whose buffer parameters are
// `noalias` (unless the buffer says may_alias). After inlining, LLVM turns those into scoped
// alias metadata, so loads and stores of different buffers can be reordered freely.
//
// Vectorized loops are emitted by evaluating the loop body once with every value that
// depends on the loop variable widened to a vector of W lanes ("varying"), and once more as a
// scalar remainder loop. A load or store is classified by how its flat element index depends
// on the loop variable: not at all (one scalar access; a store keeps the last lane), with
// stride 1 (one contiguous vector access), or otherwise (a gather or scatter).
#include "llvm/emitter.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>

#include "kiln/ir/random.h"
#include "kiln/runtime/error.h"
#include "llvm/vmath.h"

namespace kiln::codegen::llvm_backend {
namespace {

// The type of a value of `t` in registers (memory = false) or in a buffer (bool is a byte).
llvm::Type* ScalarType(llvm::LLVMContext& c, DType t, bool memory) {
  switch (t) {
    case DType::kFloat32:
      return llvm::Type::getFloatTy(c);
    case DType::kFloat64:
      return llvm::Type::getDoubleTy(c);
    case DType::kFloat16:
      return llvm::Type::getHalfTy(c);
    case DType::kBFloat16:
      return llvm::Type::getBFloatTy(c);
    case DType::kInt8:
    case DType::kUInt8:
      return llvm::Type::getInt8Ty(c);
    case DType::kInt32:
      return llvm::Type::getInt32Ty(c);
    case DType::kInt64:
      return llvm::Type::getInt64Ty(c);
    case DType::kBool:
      return memory ? llvm::Type::getInt8Ty(c) : llvm::Type::getInt1Ty(c);
    default:
      break;
  }
  throw InternalError(StrCat("kernel IR: no LLVM type for ", DTypeName(t)));
}

int Lanes(llvm::Value* v) {
  auto* vt = llvm::dyn_cast<llvm::FixedVectorType>(v->getType());
  return vt ? static_cast<int>(vt->getNumElements()) : 1;
}

// The largest element size among the buffers a statement loads or stores.
size_t WidestAccess(const Stmt& s) {
  size_t widest = 0;
  auto visit_expr = [&](auto&& self, const Expr& e) -> void {
    if (!e) return;
    if (e->kind == ExprKind::kLoad) widest = std::max(widest, DTypeSize(e->buffer->dtype));
    for (const Expr& o : e->operands) self(self, o);
  };
  auto visit = [&](auto&& self, const Stmt& st) -> void {
    if (!st) return;
    if (st->kind == StmtKind::kStore) widest = std::max(widest, DTypeSize(st->buffer->dtype));
    visit_expr(visit_expr, st->a);
    for (const Expr& i : st->indices) visit_expr(visit_expr, i);
    for (const Stmt& c : st->body) self(self, c);
  };
  visit(visit, s);
  return widest;
}

class FunctionEmitter {
 public:
  FunctionEmitter(llvm::Module& mod, const CpuTarget& target, const Kernel& k)
      : ctx_(mod.getContext()), mod_(mod), target_(target), k_(k), b_(ctx_) {
    // a*b+c may become one fused multiply-add (kernel_ir.h); no other fast-math licence.
    llvm::FastMathFlags fmf;
    fmf.setAllowContract(true);
    b_.setFastMathFlags(fmf);
  }

  void Emit() {
    llvm::Type* ptr = b_.getPtrTy();
    llvm::Type* i64 = b_.getInt64Ty();
    // The inner function: buffers and scalars as parameters.
    std::vector<llvm::Type*> params;
    for (size_t i = 0; i < k_.buffers.size(); ++i) params.push_back(ptr);
    for (const Var& v : k_.scalars) params.push_back(ScalarType(ctx_, v->dtype, false));
    params.push_back(i64);
    params.push_back(i64);
    auto* body_ty = llvm::FunctionType::get(b_.getVoidTy(), params, false);
    fn_ = llvm::Function::Create(body_ty, llvm::Function::InternalLinkage, k_.name + ".body", mod_);
    SetTargetAttributes(fn_);
    fn_->addFnAttr(llvm::Attribute::AlwaysInline);
    for (size_t i = 0; i < k_.buffers.size(); ++i) {
      if (!k_.buffers[i]->may_alias) fn_->addParamAttr(i, llvm::Attribute::NoAlias);
      fn_->addParamAttr(i, llvm::Attribute::NoCapture);
      bufs_[k_.buffers[i].get()] = fn_->getArg(i);
    }
    for (size_t i = 0; i < k_.scalars.size(); ++i) {
      vars_[k_.scalars[i].get()] = fn_->getArg(k_.buffers.size() + i);
    }
    task_begin_ = fn_->getArg(params.size() - 2);
    task_end_ = fn_->getArg(params.size() - 1);
    entry_ = llvm::BasicBlock::Create(ctx_, "entry", fn_);
    b_.SetInsertPoint(entry_);
    EmitStmt(k_.body);
    b_.CreateRetVoid();

    // The exported entry point with the uniform signature.
    auto* entry_ty = llvm::FunctionType::get(b_.getVoidTy(), {ptr, i64, i64}, false);
    llvm::Function* entry =
        llvm::Function::Create(entry_ty, llvm::Function::ExternalLinkage, k_.name, mod_);
    SetTargetAttributes(entry);
    entry->getArg(0)->setName("args");
    entry->getArg(1)->setName("task_begin");
    entry->getArg(2)->setName("task_end");
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", entry));
    std::vector<llvm::Value*> call_args;
    size_t slot = 0;
    for (size_t i = 0; i < k_.buffers.size(); ++i, ++slot) {
      llvm::Value* p = b_.CreateConstInBoundsGEP1_64(ptr, entry->getArg(0), slot);
      call_args.push_back(b_.CreateLoad(ptr, p, k_.buffers[i]->name));
    }
    for (size_t i = 0; i < k_.scalars.size(); ++i, ++slot) {
      llvm::Value* p = b_.CreateConstInBoundsGEP1_64(ptr, entry->getArg(0), slot);
      llvm::Value* vp = b_.CreateLoad(ptr, p);
      call_args.push_back(
          b_.CreateLoad(ScalarType(ctx_, k_.scalars[i]->dtype, false), vp, k_.scalars[i]->name));
    }
    call_args.push_back(entry->getArg(1));
    call_args.push_back(entry->getArg(2));
    b_.CreateCall(fn_, call_args);
    b_.CreateRetVoid();
  }

 private:
  void SetTargetAttributes(llvm::Function* f) {
    f->addFnAttr("target-cpu", target_.cpu);
    if (!target_.features.empty()) f->addFnAttr("target-features", target_.features);
    // Explicit <16 x float> code must stay in zmm registers even on CPUs whose tuning prefers
    // 256-bit vectors for auto-vectorised code.
    std::string bits = std::to_string(target_.vector_bits);
    f->addFnAttr("min-legal-vector-width", bits);
    f->addFnAttr("prefer-vector-width", bits);
    f->addFnAttr(llvm::Attribute::NoUnwind);
  }

  // ---- Statements ----

  void EmitStmt(const Stmt& s) {
    switch (s->kind) {
      case StmtKind::kFor:
        EmitFor(*s);
        return;
      case StmtKind::kStore:
        EmitStore(*s);
        return;
      case StmtKind::kLet: {
        llvm::Value* v = EmitExpr(s->a);
        v->setName(s->var->name);
        const VarNode* var = s->var.get();
        vars_[var] = v;
        if (Lanes(v) > 1) {
          varying_.insert(var);
          let_values_[var] = s->a;
        }
        EmitStmt(s->body[0]);
        vars_.erase(var);
        varying_.erase(var);
        let_values_.erase(var);
        return;
      }
      case StmtKind::kIf: {
        llvm::Value* cond = EmitExpr(s->a);
        auto* then_bb = llvm::BasicBlock::Create(ctx_, "then", fn_);
        auto* else_bb = s->body.size() > 1 ? llvm::BasicBlock::Create(ctx_, "else", fn_) : nullptr;
        auto* done_bb = llvm::BasicBlock::Create(ctx_, "endif", fn_);
        b_.CreateCondBr(cond, then_bb, else_bb ? else_bb : done_bb);
        b_.SetInsertPoint(then_bb);
        EmitStmt(s->body[0]);
        b_.CreateBr(done_bb);
        if (else_bb) {
          b_.SetInsertPoint(else_bb);
          EmitStmt(s->body[1]);
          b_.CreateBr(done_bb);
        }
        b_.SetInsertPoint(done_bb);
        return;
      }
      case StmtKind::kBlock:
        for (const Stmt& c : s->body) EmitStmt(c);
        return;
      case StmtKind::kAllocate: {
        // Allocas live in the entry block so that a local inside a loop does not grow the
        // stack on every iteration.
        const BufferNode* buf = s->buffer.get();
        llvm::IRBuilder<> eb(entry_, entry_->getFirstInsertionPt());
        llvm::Type* elem = ScalarType(ctx_, buf->dtype, true);
        bufs_[buf] =
            eb.CreateAlloca(elem, eb.getInt64(std::max<int64_t>(1, buf->NumElements())), buf->name);
        EmitStmt(s->body[0]);
        bufs_.erase(buf);
        return;
      }
    }
  }

  // Emits `for (iv = lo; iv < hi; iv += step) body(iv)`.
  template <class F>
  void EmitLoop(llvm::Value* lo, llvm::Value* hi, int64_t step, const std::string& name, F body) {
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* header = llvm::BasicBlock::Create(ctx_, name + ".header", fn_);
    auto* loop = llvm::BasicBlock::Create(ctx_, name + ".body", fn_);
    auto* exit = llvm::BasicBlock::Create(ctx_, name + ".exit", fn_);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode* iv = b_.CreatePHI(b_.getInt64Ty(), 2, name);
    iv->addIncoming(lo, pre);
    b_.CreateCondBr(b_.CreateICmpSLT(iv, hi), loop, exit);
    b_.SetInsertPoint(loop);
    body(iv);
    llvm::Value* next = b_.CreateAdd(iv, b_.getInt64(step), name + ".next", true, true);
    iv->addIncoming(next, b_.GetInsertBlock());
    b_.CreateBr(header);
    b_.SetInsertPoint(exit);
  }

  void EmitFor(const StmtNode& s) {
    const VarNode* var = s.var.get();
    const std::string& name = var->name;
    llvm::Value* begin = EmitExpr(s.a);
    llvm::Value* extent = EmitExpr(s.b);
    auto run_body = [&](llvm::Value* iv) {
      vars_[var] = b_.CreateAdd(begin, iv, name, true, true);
      EmitStmt(s.body[0]);
    };
    switch (s.for_kind) {
      case ForKind::kParallel: {
        // This call's tasks, clipped to the loop (llvm_jit.h).
        llvm::Value* lo =
            b_.CreateBinaryIntrinsic(llvm::Intrinsic::smax, task_begin_, b_.getInt64(0));
        llvm::Value* hi = b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, task_end_, extent);
        EmitLoop(lo, hi, 1, name, run_body);
        break;
      }
      case ForKind::kUnroll: {
        int64_t n = s.b->int_value;
        if (n > 64) {  // beyond this, replicated code costs more than the loop
          EmitLoop(b_.getInt64(0), extent, 1, name, run_body);
          break;
        }
        for (int64_t k = 0; k < n; ++k) run_body(b_.getInt64(k));
        break;
      }
      case ForKind::kVectorize: {
        int width = s.vector_width;
        if (width == 0) {
          size_t widest = std::max<size_t>(1, WidestAccess(s.body[0]));
          width = std::max<int>(1, target_.vector_bits / 8 / static_cast<int>(widest));
        }
        if (width == 1) {
          EmitLoop(b_.getInt64(0), extent, 1, name, run_body);
          break;
        }
        // Whole vectors first, then the remainder one lane at a time.
        llvm::Value* w = b_.getInt64(width);
        llvm::Value* whole =
            b_.CreateSelect(b_.CreateICmpSGT(extent, b_.getInt64(0)),
                            b_.CreateSub(extent, b_.CreateSRem(extent, w)), b_.getInt64(0));
        EmitLoop(b_.getInt64(0), whole, width, name + ".vec", [&](llvm::Value* iv) {
          vec_var_ = var;
          lanes_ = width;
          vec_base_ = b_.CreateAdd(begin, iv, name + ".base", true, true);
          llvm::Value* lane_ids =
              b_.CreateStepVector(llvm::VectorType::get(b_.getInt64Ty(), width, false));
          vars_[var] = b_.CreateAdd(b_.CreateVectorSplat(width, vec_base_), lane_ids, name);
          EmitStmt(s.body[0]);
          vec_var_ = nullptr;
          lanes_ = 1;
          vec_base_ = nullptr;
        });
        EmitLoop(whole, extent, 1, name + ".rem", run_body);
        break;
      }
      case ForKind::kSerial:
        EmitLoop(b_.getInt64(0), extent, 1, name, run_body);
        break;
    }
    vars_.erase(var);
  }

  // ---- Memory ----

  // The row-major element offset of an access, as kernel IR (so that it can be analysed).
  static Expr FlatIndex(const BufferNode& buf, const std::vector<Expr>& idx) {
    Expr flat = IntImm(0);
    int64_t stride = 1;
    for (size_t d = buf.shape.size(); d-- > 0;) {
      Expr term = stride == 1 ? idx[d] : idx[d] * IntImm(stride);
      flat = d + 1 == buf.shape.size() ? term : term + flat;
      stride *= buf.shape[d];
    }
    return flat;
  }

  // How `e` changes when the vectorized loop variable grows by one: a constant, or nullopt
  // when it is not affine in the variable.
  std::optional<int64_t> Stride(const Expr& e) {
    if (!vec_var_) return 0;
    switch (e->kind) {
      case ExprKind::kIntImm:
      case ExprKind::kFloatImm:
        return 0;
      case ExprKind::kVar:
        if (e->var.get() == vec_var_) return 1;
        if (varying_.count(e->var.get())) return Stride(let_values_.at(e->var.get()));
        return 0;
      case ExprKind::kBinary: {
        auto a = Stride(e->operands[0]), c = Stride(e->operands[1]);
        if (!a || !c) return std::nullopt;
        switch (e->binary_op) {
          case BinaryOp::kAdd:
            return *a + *c;
          case BinaryOp::kSub:
            return *a - *c;
          case BinaryOp::kMul:
            if (*a == 0 && *c == 0) return 0;
            if (*a == 0 && e->operands[0]->kind == ExprKind::kIntImm) {
              return e->operands[0]->int_value * *c;
            }
            if (*c == 0 && e->operands[1]->kind == ExprKind::kIntImm) {
              return *a * e->operands[1]->int_value;
            }
            return std::nullopt;
          default:
            return *a == 0 && *c == 0 ? std::optional<int64_t>(0) : std::nullopt;
        }
      }
      default:
        for (const Expr& o : e->operands) {
          auto so = Stride(o);
          if (!so || *so != 0) return std::nullopt;
        }
        return 0;
    }
  }

  // The scalar value of `e` in lane 0 of the current vector iteration.
  llvm::Value* EmitLane0(const Expr& e) {
    bool was = lane0_;
    lane0_ = true;
    llvm::Value* v = EmitExpr(e);
    lane0_ = was;
    return v;
  }

  llvm::Value* Widen(llvm::Value* v, int lanes) {
    if (lanes <= 1 || Lanes(v) == lanes) return v;
    return b_.CreateVectorSplat(lanes, v);
  }

  llvm::Value* EmitLoad(const ExprNode& e) {
    const BufferNode& buf = *e.buffer;
    llvm::Type* elem = ScalarType(ctx_, buf.dtype, true);
    llvm::Value* base = bufs_.at(&buf);
    llvm::Align align(DTypeSize(buf.dtype));
    Expr flat = FlatIndex(buf, e.operands);
    std::optional<int64_t> stride = Stride(flat);
    llvm::Value* v;
    if (lanes_ == 1 || lane0_ || stride == 0) {
      llvm::Value* idx = EmitLane0(flat);
      v = b_.CreateAlignedLoad(elem, b_.CreateInBoundsGEP(elem, base, idx), align, buf.name);
    } else if (stride == 1) {
      llvm::Value* idx = EmitLane0(flat);
      auto* vt = llvm::FixedVectorType::get(elem, lanes_);
      v = b_.CreateAlignedLoad(vt, b_.CreateInBoundsGEP(elem, base, idx), align, buf.name);
    } else {
      llvm::Value* idx = Widen(EmitExpr(flat), lanes_);
      llvm::Value* ptrs = b_.CreateInBoundsGEP(elem, base, idx);
      v = b_.CreateMaskedGather(llvm::FixedVectorType::get(elem, lanes_), ptrs, align);
    }
    if (buf.dtype == DType::kBool) {
      v = b_.CreateICmpNE(v, llvm::Constant::getNullValue(v->getType()));
    }
    return v;
  }

  void EmitStore(const StmtNode& s) {
    const BufferNode& buf = *s.buffer;
    llvm::Type* elem = ScalarType(ctx_, buf.dtype, true);
    llvm::Value* base = bufs_.at(&buf);
    llvm::Align align(DTypeSize(buf.dtype));
    llvm::Value* value = EmitExpr(s.a);
    Expr flat = FlatIndex(buf, s.indices);
    std::optional<int64_t> stride = Stride(flat);
    if (lanes_ > 1 && stride != 0) value = Widen(value, lanes_);
    if (lanes_ > 1 && stride == 0 && Lanes(value) > 1) {
      value = b_.CreateExtractElement(value, lanes_ - 1);  // the serial loop's last write
    }
    if (buf.dtype == DType::kBool) {
      value = b_.CreateZExt(
          value, Lanes(value) > 1 ? llvm::FixedVectorType::get(elem, Lanes(value)) : elem);
    }
    if (lanes_ == 1 || stride == 0 || stride == 1) {
      llvm::Value* idx = EmitLane0(flat);
      b_.CreateAlignedStore(value, b_.CreateInBoundsGEP(elem, base, idx), align);
    } else {
      llvm::Value* idx = Widen(EmitExpr(flat), lanes_);
      b_.CreateMaskedScatter(value, b_.CreateInBoundsGEP(elem, base, idx), align);
    }
  }

  // ---- Expressions ----

  llvm::Value* EmitExpr(const Expr& e) {
    switch (e->kind) {
      case ExprKind::kIntImm:
        return llvm::ConstantInt::get(ScalarType(ctx_, e->dtype, false), e->int_value, true);
      case ExprKind::kFloatImm:
        return llvm::ConstantFP::get(ScalarType(ctx_, e->dtype, false), e->float_value);
      case ExprKind::kVar: {
        const VarNode* v = e->var.get();
        if (lane0_ && v == vec_var_) return vec_base_;
        if (lane0_ && varying_.count(v)) return EmitExpr(let_values_.at(v));
        auto it = vars_.find(v);
        KILN_INTERNAL_CHECK(it != vars_.end(), "variable ", v->name, " has no value");
        return it->second;
      }
      case ExprKind::kBinary:
        return EmitBinary(*e);
      case ExprKind::kNot:
        return b_.CreateNot(EmitExpr(e->operands[0]));
      case ExprKind::kSelect: {
        std::vector<llvm::Value*> v = EmitUnified(e->operands);
        return b_.CreateSelect(v[0], v[1], v[2]);
      }
      case ExprKind::kCast:
        return EmitCast(EmitExpr(e->operands[0]), e->operands[0]->dtype, e->dtype);
      case ExprKind::kCall:
        return EmitCall(*e);
      case ExprKind::kLoad:
        return EmitLoad(*e);
    }
    throw InternalError("kernel IR: unknown expression kind");
  }

  // Emits the operands, widening scalars when any of them is a vector.
  std::vector<llvm::Value*> EmitUnified(const std::vector<Expr>& operands) {
    std::vector<llvm::Value*> v;
    int lanes = 1;
    for (const Expr& o : operands) {
      v.push_back(EmitExpr(o));
      lanes = std::max(lanes, Lanes(v.back()));
    }
    for (llvm::Value*& x : v) x = Widen(x, lanes);
    return v;
  }

  llvm::Value* EmitBinary(const ExprNode& e) {
    std::vector<llvm::Value*> v = EmitUnified(e.operands);
    llvm::Value *a = v[0], *c = v[1];
    DType t = e.operands[0]->dtype;
    bool fp = IsFloatingPoint(t);
    using P = llvm::CmpInst::Predicate;
    switch (e.binary_op) {
      case BinaryOp::kAdd:
        return fp ? b_.CreateFAdd(a, c) : b_.CreateAdd(a, c);
      case BinaryOp::kSub:
        return fp ? b_.CreateFSub(a, c) : b_.CreateSub(a, c);
      case BinaryOp::kMul:
        return fp ? b_.CreateFMul(a, c) : b_.CreateMul(a, c);
      case BinaryOp::kDiv:
        return fp ? b_.CreateFDiv(a, c) : b_.CreateSDiv(a, c);
      case BinaryOp::kMod:
        return b_.CreateSRem(a, c);
      case BinaryOp::kMin:
        return fp ? b_.CreateMinNum(a, c) : b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, a, c);
      case BinaryOp::kMax:
        return fp ? b_.CreateMaxNum(a, c) : b_.CreateBinaryIntrinsic(llvm::Intrinsic::smax, a, c);
      case BinaryOp::kEQ:
        return fp ? b_.CreateFCmp(P::FCMP_OEQ, a, c) : b_.CreateICmpEQ(a, c);
      case BinaryOp::kNE:
        return fp ? b_.CreateFCmp(P::FCMP_UNE, a, c) : b_.CreateICmpNE(a, c);
      case BinaryOp::kLT:
        return fp ? b_.CreateFCmp(P::FCMP_OLT, a, c) : b_.CreateICmpSLT(a, c);
      case BinaryOp::kLE:
        return fp ? b_.CreateFCmp(P::FCMP_OLE, a, c) : b_.CreateICmpSLE(a, c);
      case BinaryOp::kGT:
        return fp ? b_.CreateFCmp(P::FCMP_OGT, a, c) : b_.CreateICmpSGT(a, c);
      case BinaryOp::kGE:
        return fp ? b_.CreateFCmp(P::FCMP_OGE, a, c) : b_.CreateICmpSGE(a, c);
      case BinaryOp::kAnd:
        return b_.CreateAnd(a, c);
      case BinaryOp::kOr:
        return b_.CreateOr(a, c);
    }
    throw InternalError("kernel IR: unknown binary op");
  }

  llvm::Value* EmitCast(llvm::Value* v, DType from, DType to) {
    if (from == to) return v;
    if (to == DType::kBFloat16) return FloatToBFloat16(EmitCast(v, from, DType::kFloat32));
    llvm::Type* dst = ScalarType(ctx_, to, false);
    if (Lanes(v) > 1) dst = llvm::FixedVectorType::get(dst, Lanes(v));
    bool from_fp = IsFloatingPoint(from), to_fp = IsFloatingPoint(to);
    if (to == DType::kBool) {
      llvm::Value* zero = llvm::Constant::getNullValue(v->getType());
      return from_fp ? b_.CreateFCmpUNE(v, zero) : b_.CreateICmpNE(v, zero);
    }
    bool from_unsigned = from == DType::kUInt8 || from == DType::kBool;
    if (from_fp && to_fp) return b_.CreateFPCast(v, dst);
    if (!from_fp && to_fp) return from_unsigned ? b_.CreateUIToFP(v, dst) : b_.CreateSIToFP(v, dst);
    if (from_fp) {
      // Saturating: out-of-range values clamp, NaN becomes 0 (no undefined behaviour).
      auto id = to == DType::kUInt8 ? llvm::Intrinsic::fptoui_sat : llvm::Intrinsic::fptosi_sat;
      return b_.CreateIntrinsic(id, {dst, v->getType()}, {v});
    }
    return from_unsigned ? b_.CreateZExtOrTrunc(v, dst) : b_.CreateSExtOrTrunc(v, dst);
  }

  // float32 to bfloat16 as the runtime rounds (bfloat16::FromFloat): to nearest even on the
  // bits, NaN quieted, subnormals kept. (LLVM's fptrunc becomes AVX512-BF16's vcvtneps2bf16,
  // which flushes subnormal inputs to zero.) Other types reach it through float32, as the
  // reference kernels' static_cast<bfloat16> does.
  llvm::Value* FloatToBFloat16(llvm::Value* f) {
    llvm::Type* i32 = b_.getInt32Ty();
    llvm::Type* i16 = b_.getInt16Ty();
    llvm::Type* bf = b_.getBFloatTy();
    if (Lanes(f) > 1) {
      i32 = llvm::FixedVectorType::get(i32, Lanes(f));
      i16 = llvm::FixedVectorType::get(i16, Lanes(f));
      bf = llvm::FixedVectorType::get(bf, Lanes(f));
    }
    auto c = [&](uint32_t k) { return llvm::ConstantInt::get(i32, k); };
    llvm::Value* x = b_.CreateBitCast(f, i32);
    llvm::Value* high = b_.CreateLShr(x, c(16));
    llvm::Value* nan = b_.CreateICmpUGT(b_.CreateAnd(x, c(0x7fffffffu)), c(0x7f800000u));
    llvm::Value* rounded =
        b_.CreateLShr(b_.CreateAdd(x, b_.CreateAdd(c(0x7fffu), b_.CreateAnd(high, c(1)))), c(16));
    llvm::Value* bits = b_.CreateSelect(nan, b_.CreateOr(high, c(0x40u)), rounded);
    return b_.CreateBitCast(b_.CreateTrunc(bits, i16), bf);
  }

  llvm::Value* EmitCall(const ExprNode& e) {
    std::vector<llvm::Value*> v = EmitUnified(e.operands);
    bool fp = IsFloatingPoint(e.dtype);
    switch (e.intrinsic) {
      case Intrinsic::kSqrt:
        return b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, v[0]);
      case Intrinsic::kRsqrt:
        return b_.CreateFDiv(llvm::ConstantFP::get(v[0]->getType(), 1.0),
                             b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, v[0]));
      case Intrinsic::kAbs:
        if (fp) return b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, v[0]);
        return b_.CreateBinaryIntrinsic(llvm::Intrinsic::abs, v[0], b_.getFalse());
      case Intrinsic::kFloor:
        return b_.CreateUnaryIntrinsic(llvm::Intrinsic::floor, v[0]);
      case Intrinsic::kCeil:
        return b_.CreateUnaryIntrinsic(llvm::Intrinsic::ceil, v[0]);
      case Intrinsic::kRound:
        return b_.CreateUnaryIntrinsic(llvm::Intrinsic::round, v[0]);
      case Intrinsic::kFma:
        return b_.CreateIntrinsic(llvm::Intrinsic::fma, {v[0]->getType()}, {v[0], v[1], v[2]});
      case Intrinsic::kRandomBits:
        return EmitRandomBits(v[0], v[1], v[2]);
      default:
        return EmitMath(b_, e.intrinsic, v);
    }
  }

  // Philox4x32-10 (kiln/ir/random.h) on int64 scalars or vectors: key = seed, counter =
  // (counter, stream) as 32-bit words; the first output word, zero-extended. Each 32 x 32 -> 64
  // product is a widening multiply (vpmuludq), so whole vectors of draws run at once.
  llvm::Value* EmitRandomBits(llvm::Value* seed, llvm::Value* stream, llvm::Value* counter) {
    llvm::Type* i64 = seed->getType();
    llvm::Type* i32 = i64->getWithNewBitWidth(32);
    auto lo = [&](llvm::Value* x) { return b_.CreateTrunc(x, i32); };
    auto hi = [&](llvm::Value* x) { return b_.CreateTrunc(b_.CreateLShr(x, 32), i32); };
    auto c32 = [&](uint32_t c) { return llvm::ConstantInt::get(i32, c); };
    llvm::Value* c[4] = {lo(counter), hi(counter), lo(stream), hi(stream)};
    llvm::Value* k[2] = {lo(seed), hi(seed)};
    for (int round = 0; round < 10; ++round) {
      llvm::Value* p0 =
          b_.CreateMul(b_.CreateZExt(c[0], i64), llvm::ConstantInt::get(i64, kPhiloxM0));
      llvm::Value* p1 =
          b_.CreateMul(b_.CreateZExt(c[2], i64), llvm::ConstantInt::get(i64, kPhiloxM1));
      llvm::Value* next[4] = {b_.CreateXor(b_.CreateXor(hi(p1), c[1]), k[0]), lo(p1),
                              b_.CreateXor(b_.CreateXor(hi(p0), c[3]), k[1]), lo(p0)};
      std::copy(next, next + 4, c);
      k[0] = b_.CreateAdd(k[0], c32(kPhiloxW0));
      k[1] = b_.CreateAdd(k[1], c32(kPhiloxW1));
    }
    return b_.CreateZExt(c[0], i64);
  }

  llvm::LLVMContext& ctx_;
  llvm::Module& mod_;
  const CpuTarget& target_;
  const Kernel& k_;
  llvm::IRBuilder<> b_;
  llvm::Function* fn_ = nullptr;
  llvm::BasicBlock* entry_ = nullptr;
  llvm::Value* task_begin_ = nullptr;
  llvm::Value* task_end_ = nullptr;
  std::map<const VarNode*, llvm::Value*> vars_;
  std::map<const BufferNode*, llvm::Value*> bufs_;
  // The vectorized loop being emitted, if any.
  const VarNode* vec_var_ = nullptr;
  int lanes_ = 1;
  llvm::Value* vec_base_ = nullptr;            // the loop variable's value in lane 0
  bool lane0_ = false;                         // emitting lane 0's scalar value of an expression
  std::set<const VarNode*> varying_;           // lets whose value is a vector
  std::map<const VarNode*, Expr> let_values_;  // ... and their definitions
};

}  // namespace

std::unique_ptr<llvm::Module> EmitKernels(llvm::LLVMContext& ctx,
                                          const std::vector<Kernel>& kernels,
                                          const CpuTarget& target) {
  auto mod = std::make_unique<llvm::Module>("kiln_kernels", ctx);
  for (const Kernel& k : kernels) FunctionEmitter(*mod, target, k).Emit();
  return mod;
}

}  // namespace kiln::codegen::llvm_backend
