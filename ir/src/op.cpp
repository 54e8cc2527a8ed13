// op.cpp - the op registry and the shared inference rules.
#include "kiln/ir/op.h"

#include <algorithm>
#include <mutex>

#include "ops/register.h"

namespace kiln {

std::string_view FusionPatternName(FusionPattern p) {
  switch (p) {
    case FusionPattern::kElemwise:
      return "elemwise";
    case FusionPattern::kBroadcast:
      return "broadcast";
    case FusionPattern::kInjective:
      return "injective";
    case FusionPattern::kCommReduce:
      return "reduce";
    case FusionPattern::kOutElemwiseFusable:
      return "out-elemwise-fusable";
    case FusionPattern::kOpaque:
      return "opaque";
  }
  return "?";
}

namespace {
std::string FactString(const Shape& s) {
  return "shape " + s.ToString();
}
std::string FactString(DType t) {
  return "dtype " + std::string(DTypeName(t));
}
bool MergeFact(Shape& known, const Shape& fact) {
  return known.Merge(fact);
}
bool MergeFact(DType& known, DType fact) {
  if (fact == DType::kUnknown) return true;
  if (known == DType::kUnknown) {
    known = fact;
    return true;
  }
  return known == fact;
}
bool IsKnown(const Shape& s) {
  return s.rank_known();
}
bool IsKnown(DType t) {
  return t != DType::kUnknown;
}
}  // namespace

template <class Fact>
std::string InferCtx<Fact>::InName(int i) const {
  auto names = op_.InputNames(attrs_);
  return size_t(i) < names.size() ? names[size_t(i)] : StrCat("input ", i);
}

template <class Fact>
std::string InferCtx<Fact>::OutName(int i) const {
  auto names = op_.OutputNames(attrs_);
  return size_t(i) < names.size() ? names[size_t(i)] : StrCat("output ", i);
}

template <class Fact>
void InferCtx<Fact>::Fail(const std::string& message) const {
  throw UserError(StrCat(op_.name(), " \"", node_name_, "\": ", message));
}

template <class Fact>
void InferCtx<Fact>::Set(std::vector<Fact>& v, int i, const Fact& fact, const std::string& what,
                         std::string_view why) {
  KILN_INTERNAL_CHECK(size_t(i) < v.size(), op_.name(), " rule set ", what, " out of range");
  Fact merged = v[size_t(i)];
  if (!MergeFact(merged, fact)) {
    Fail(StrCat(what, " has ", FactString(v[size_t(i)]), " but ",
                IsKnown(fact) ? FactString(fact) : std::string("?"), " was expected",
                why.empty() ? "" : ": ", why));
  }
  v[size_t(i)] = merged;
}

template <class Fact>
void InferCtx<Fact>::SetIn(int i, const Fact& fact, std::string_view why) {
  Set(in_, i, fact, InName(i), why);
}

template <class Fact>
void InferCtx<Fact>::SetOut(int i, const Fact& fact, std::string_view why) {
  Set(out_, i, fact, OutName(i), why);
}

template class InferCtx<Shape>;
template class InferCtx<DType>;

void KernelCtx::Fail(const std::string& message) const {
  throw UserError(StrCat(op.name(), " \"", node_name, "\": ", message));
}

OpDef& OpDef::VariadicInputs(std::string count_attr, std::function<int(const Attrs&)> count) {
  var_inputs_attr_ = std::move(count_attr);
  input_names_ = [count](const Attrs& a) {
    std::vector<std::string> names;
    int n = count(a);
    for (int i = 0; i < n; ++i) names.push_back(StrCat("arg", i));
    return names;
  };
  return *this;
}

const OpRegistry& OpRegistry::Global() {
  static const OpRegistry* registry = [] {
    auto* r = new OpRegistry();
    ops::RegisterAllOps(*r);
    r->Finish();
    return r;
  }();
  return *registry;
}

const OpDef* OpRegistry::Find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : it->second;
}

const OpDef& OpRegistry::Get(std::string_view name) const {
  if (const OpDef* op = Find(name)) return *op;
  throw UserError(StrCat("unknown op \"", name, "\""));
}

std::vector<const OpDef*> OpRegistry::List() const {
  std::vector<const OpDef*> out;
  for (const auto& op : ops_) out.push_back(&op);
  std::sort(out.begin(), out.end(),
            [](const OpDef* a, const OpDef* b) { return a->name() < b->name(); });
  return out;
}

OpDef& OpRegistry::Register(std::string name) {
  KILN_INTERNAL_CHECK(!index_.count(name), "op ", name, " registered twice");
  OpDef& op = ops_.emplace_back(name);
  index_[name] = &op;
  return op;
}

void OpRegistry::Finish() {
  for (const auto& op : ops_) {
    for (const auto& alias : op.aliases()) {
      auto [it, inserted] = index_.emplace(alias, &op);
      KILN_INTERNAL_CHECK(inserted || it->second == &op, "alias ", alias, " of ", op.name(),
                          " is taken by ", it->second->name());
    }
    KILN_INTERNAL_CHECK(op.attrs.parse != nullptr, "op ", op.name(), " has no attribute codec");
    KILN_INTERNAL_CHECK(op.infer_shape() != nullptr, "op ", op.name(), " has no shape rule");
    KILN_INTERNAL_CHECK(op.infer_type() != nullptr, "op ", op.name(), " has no type rule");
    KILN_INTERNAL_CHECK(op.reference() != nullptr, "op ", op.name(), " has no reference kernel");
  }
}

void SameShapeInfer(ShapeInferCtx& ctx) {
  Shape s;
  for (int i = 0; i < ctx.num_in(); ++i) s.Merge(ctx.in(i));
  for (int i = 0; i < ctx.num_out(); ++i) s.Merge(ctx.out(i));
  for (int i = 0; i < ctx.num_in(); ++i) ctx.SetIn(i, s, "elementwise operands have one shape");
  for (int i = 0; i < ctx.num_out(); ++i) ctx.SetOut(i, s, "elementwise operands have one shape");
}

void SameTypeInfer(TypeInferCtx& ctx) {
  DType t = DType::kUnknown;
  for (int i = 0; i < ctx.num_in() && t == DType::kUnknown; ++i) t = ctx.in(i);
  for (int i = 0; i < ctx.num_out() && t == DType::kUnknown; ++i) t = ctx.out(i);
  if (t == DType::kUnknown) return;
  for (int i = 0; i < ctx.num_in(); ++i) ctx.SetIn(i, t, "operands have one dtype");
  for (int i = 0; i < ctx.num_out(); ++i) ctx.SetOut(i, t, "operands have one dtype");
}

std::vector<std::pair<int, int>> InplaceIdentity(const Attrs&) {
  return {{0, 0}};
}

}  // namespace kiln
