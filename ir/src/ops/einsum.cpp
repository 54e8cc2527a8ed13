// einsum.cpp - einsum: sums of products over labelled axes (NumPy's and MXNet's np.einsum).
//
// `subscripts` is NumPy's notation: one comma-separated term of letters per operand, then
// optionally "->" and the output's letters; without "->" the output is every letter used
// exactly once, in alphabetical order. "..." stands for the same leading (broadcast) axes in
// every term that has it and goes first in an implicit output. A letter repeated within a term
// takes that operand's diagonal; letters missing from the output are summed. Spaces are
// ignored. Matrix products ("ij,jk->ik", "bij,bjk->bik"), transposes, traces, diagonals, inner
// and outer products are all instances.
//
// The reference kernel walks every combination of label values (output labels outer, summed
// labels inner) and accumulates in double or int64: obviously right, and fast enough for the
// oracle on the matrix-product forms ONNX models use. Operands share one dtype.
//
// Gradient: the gradient of operand k is another einsum, of dy and the other operands, whose
// output is operand k's term: "out,B->A" for "A,B->out". It is emitted when operand k's term
// has no repeated letter, no "..." and only letters that appear in the output or another
// operand (otherwise the gradient would need a diagonal scatter or a broadcast; a UserError).
//
// Compute definition (kiln/ir/compute.h), every form the reference takes: the output labels
// are the output's axes, the summed labels one TReduce domain, and each operand is read with
// its axes' label indices (a repeated letter reads the diagonal; a "..." axis of extent 1
// broadcast against a longer one reads 0). Every dtype but bool: floating types multiply and
// sum in float32 (float16, bfloat16) or their own type (the reference in double: rounding
// differs), integers in int32 or int64, wrapping as the reference's int64 arithmetic does
// modulo 2^bits.
#include <algorithm>
#include <map>

#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln::ops {
namespace {

struct EinsumAttrs {
  std::string subscripts;
  int64_t num_args = 1;
  bool optimize = false;  // MXNet's; accepted and ignored
  static void Describe(AttrSchema<EinsumAttrs>& s) {
    s.Field("subscripts", &EinsumAttrs::subscripts).Required();
    s.Field("num_args", &EinsumAttrs::num_args).Required().Min(1).Max(64);
    s.Field("optimize", &EinsumAttrs::optimize);
  }
};

// A parsed equation: per operand and for the output, a label per axis. Labels are letters;
// the broadcast axes of "..." get labels 256, 257, ... (right-aligned across operands).
struct Equation {
  std::vector<std::vector<int>> in;
  std::vector<int> out;
  std::map<int, int64_t> extent;  // per label
};

// Parses `subscripts` against operand shapes; fails with `fail(message)`.
template <class FailFn>
Equation ParseEquation(const std::string& text, const std::vector<std::vector<int64_t>>& shapes,
                       FailFn fail) {
  std::string s;
  for (char c : text)
    if (c != ' ') s += c;
  std::string lhs = s, rhs;
  bool explicit_out = false;
  if (size_t arrow = s.find("->"); arrow != std::string::npos) {
    lhs = s.substr(0, arrow);
    rhs = s.substr(arrow + 2);
    explicit_out = true;
  }
  std::vector<std::string> terms;
  size_t start = 0;
  while (true) {
    size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != shapes.size())
    fail(StrCat("subscripts \"", text, "\" have ", terms.size(), " terms for ", shapes.size(),
                " operands"));
  Equation eq;
  int ellipsis_rank = 0;
  // Labels of one term; `rank` is the operand's rank (or -1 for the output).
  auto labels = [&](const std::string& term, int rank, bool is_out) {
    std::vector<int> out;
    size_t dots = term.find("...");
    int letters = 0;
    for (char c : term)
      if (c != '.') {
        if (!std::isalpha(static_cast<unsigned char>(c)))
          fail(StrCat("subscripts \"", text, "\": '", c, "' is not a letter"));
        ++letters;
      }
    int ell = 0;
    if (dots != std::string::npos) {
      ell = is_out ? ellipsis_rank : rank - letters;
      if (ell < 0)
        fail(StrCat("subscripts \"", text, "\": term \"", term, "\" has more labels than axes"));
      if (!is_out) ellipsis_rank = std::max(ellipsis_rank, ell);
    } else if (!is_out && letters != rank) {
      fail(StrCat("subscripts \"", text, "\": term \"", term, "\" has ", letters,
                  " labels for an operand of rank ", rank));
    }
    for (size_t i = 0; i < term.size(); ++i) {
      if (term.compare(i, 3, "...") == 0) {
        for (int k = 0; k < ell; ++k) out.push_back(256 + (is_out ? ellipsis_rank : ell) - ell + k);
        i += 2;
      } else {
        out.push_back(term[i]);
      }
    }
    return out;
  };
  for (size_t k = 0; k < terms.size(); ++k)
    eq.in.push_back(labels(terms[k], int(shapes[k].size()), false));
  // Ellipsis labels right-align: renumber each operand's so its last is 256 + ellipsis_rank - 1.
  for (size_t k = 0; k < terms.size(); ++k) {
    int ell = 0;
    for (int l : eq.in[k]) ell += l >= 256;
    for (int& l : eq.in[k])
      if (l >= 256) l += ellipsis_rank - ell;
  }
  if (explicit_out) {
    eq.out = labels(rhs, -1, true);
  } else {
    std::map<int, int> count;
    for (const auto& t : eq.in)
      for (int l : t) ++count[l];
    for (int k = 0; k < ellipsis_rank; ++k) eq.out.push_back(256 + k);
    for (const auto& [l, c] : count)
      if (l < 256 && c == 1) eq.out.push_back(l);
  }
  for (size_t k = 0; k < eq.in.size(); ++k)
    for (size_t a = 0; a < eq.in[k].size(); ++a) {
      int l = eq.in[k][a];
      int64_t d = shapes[k][a];
      auto [it, fresh] = eq.extent.emplace(l, d);
      if (fresh || it->second == d) continue;
      // Broadcast axes of "..." may be 1 in some operands.
      if (l >= 256 && (d == 1 || it->second == 1)) {
        it->second = std::max(it->second, d);
        continue;
      }
      fail(StrCat("subscripts \"", text, "\": label '", l < 256 ? std::string(1, char(l)) : "...",
                  "' has extents ", it->second, " and ", d));
    }
  for (size_t i = 0; i < eq.out.size(); ++i) {
    if (!eq.extent.count(eq.out[i]))
      fail(StrCat("subscripts \"", text, "\": output label '", char(eq.out[i]),
                  "' appears in no operand"));
    for (size_t j = 0; j < i; ++j)
      if (eq.out[i] == eq.out[j])
        fail(StrCat("subscripts \"", text, "\": output label '", char(eq.out[i]), "' repeats"));
  }
  return eq;
}

void EinsumShape(ShapeInferCtx& ctx) {
  std::vector<std::vector<int64_t>> shapes;
  for (int i = 0; i < ctx.num_in(); ++i) {
    if (!ctx.in(i).IsFullyKnown()) return;
    shapes.push_back(ctx.in(i).dims());
  }
  Equation eq = ParseEquation(ctx.attrs<EinsumAttrs>().subscripts, shapes,
                              [&](const std::string& m) { ctx.Fail(m); });
  std::vector<int64_t> dims;
  for (int l : eq.out) dims.push_back(eq.extent.at(l));
  ctx.SetOut(0, Shape(dims), "the output labels' extents");
}

template <class T>
void EinsumKernel(KernelCtx& ctx) {
  std::vector<std::vector<int64_t>> shapes;
  for (const Tensor& t : ctx.in) shapes.push_back(t.shape());
  Equation eq = ParseEquation(ctx.Attr<EinsumAttrs>().subscripts, shapes,
                              [&](const std::string& m) { ctx.Fail(m); });
  // Every label gets a position in one index vector: output labels first, then summed ones.
  std::vector<int> order = eq.out;
  for (const auto& [l, d] : eq.extent)
    if (std::find(order.begin(), order.end(), l) == order.end()) order.push_back(l);
  std::map<int, size_t> pos;
  for (size_t i = 0; i < order.size(); ++i) pos[order[i]] = i;
  std::vector<int64_t> ext;
  for (int l : order) ext.push_back(eq.extent.at(l));
  // Per operand, the stride each label position contributes (0 for broadcast extents of 1).
  std::vector<std::vector<int64_t>> strides(ctx.in.size(), std::vector<int64_t>(order.size(), 0));
  for (size_t k = 0; k < ctx.in.size(); ++k) {
    std::vector<int64_t> st = Strides(shapes[k]);
    for (size_t a = 0; a < eq.in[k].size(); ++a)
      if (shapes[k][a] != 1 || ext[pos[eq.in[k][a]]] == 1) strides[k][pos[eq.in[k][a]]] += st[a];
  }
  const size_t n_out = eq.out.size();
  const int64_t inner = NumElements({ext.begin() + long(n_out), ext.end()});
  T* y = ctx.out[0].data<T>();
  std::vector<int64_t> idx(order.size(), 0);
  const int64_t outer = ctx.out[0].size();
  for (int64_t o = 0; o < outer; ++o) {
    AccType<T> acc = 0;
    std::fill(idx.begin() + long(n_out), idx.end(), 0);
    for (int64_t s = 0; s < inner; ++s) {
      AccType<T> prod = 1;
      for (size_t k = 0; k < ctx.in.size(); ++k) {
        int64_t off = 0;
        for (size_t p = 0; p < order.size(); ++p) off += idx[p] * strides[k][p];
        prod = prod * ToAcc(ctx.in[k].data<T>()[off]);
      }
      acc = acc + prod;
      for (size_t p = order.size(); p-- > n_out;) {
        if (++idx[p] < ext[p]) break;
        idx[p] = 0;
      }
    }
    y[o] = ConvertValue<T>(acc);
    for (size_t p = n_out; p-- > 0;) {
      if (++idx[p] < ext[p]) break;
      idx[p] = 0;
    }
  }
}

// Splits "A,B->out" (spaces removed) into its operand terms and its output term, the implicit
// output being every letter used once, in alphabetical order.
void SplitTerms(const std::string& text, std::vector<std::string>* in, std::string* out) {
  std::string s;
  for (char c : text)
    if (c != ' ') s += c;
  size_t arrow = s.find("->");
  std::string lhs = s.substr(0, arrow);
  size_t start = 0;
  while (true) {
    size_t comma = lhs.find(',', start);
    in->push_back(lhs.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (arrow != std::string::npos) {
    *out = s.substr(arrow + 2);
    return;
  }
  std::map<char, int> count;
  for (const auto& t : *in)
    for (char c : t) ++count[c];
  out->clear();
  for (const auto& [c, n] : count)
    if (n == 1) *out += c;
}

GradList EinsumGradient(GradCtx& g) {
  const auto& a = g.attrs<EinsumAttrs>();
  std::vector<std::string> terms;
  std::string out;
  SplitTerms(a.subscripts, &terms, &out);
  GradList grads(terms.size());
  for (size_t k = 0; k < terms.size(); ++k) {
    if (!g.wants(int(k))) continue;
    const std::string& t = terms[k];
    std::string others = out;
    for (size_t j = 0; j < terms.size(); ++j)
      if (j != k) others += terms[j];
    for (size_t i = 0; i < t.size(); ++i) {
      bool repeated = t.find(t[i]) != i;
      if (t[i] == '.' || repeated || others.find(t[i]) == std::string::npos)
        g.Fail(StrCat("einsum \"", a.subscripts, "\" has no gradient for operand ", k,
                      ": its term \"", t, "\" has \"...\", a repeated letter or a letter found ",
                      "nowhere else"));
    }
    std::string eq = out;
    std::vector<Entry> ins = {g.ograd(0)};
    for (size_t j = 0; j < terms.size(); ++j)
      if (j != k) {
        eq += "," + terms[j];
        ins.push_back(g.input(int(j)));
      }
    grads[k] = g.Emit1("einsum", ins,
                       {{"subscripts", eq + "->" + t}, {"num_args", std::to_string(ins.size())}});
  }
  return grads;
}

// The summed labels, ordered so that the label that is the innermost axis of the most operands
// is the innermost reduction axis (its reads are then contiguous: lower_reduce.h vectorises a
// sum whose innermost axis reads memory contiguously). Ties keep the labels' order.
std::vector<int> SummedLabels(const Equation& eq) {
  std::vector<std::pair<int, int>> keyed;  // (depth, label): depth 0 for a last axis
  for (const auto& [l, d] : eq.extent) {
    if (std::find(eq.out.begin(), eq.out.end(), l) != eq.out.end()) continue;
    int depth = 1 << 20;
    for (const auto& term : eq.in)
      for (size_t a = 0; a < term.size(); ++a)
        if (term[a] == l) depth = std::min(depth, int(term.size() - 1 - a));
    keyed.push_back({depth, l});
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& x, const auto& y) { return x.first > y.first; });
  std::vector<int> labels;
  for (const auto& [depth, l] : keyed) labels.push_back(l);
  return labels;
}

std::vector<TExpr> EinsumCompute(const ComputeCtx& c) {
  DType t = c.out_dtype(0);
  if (t == DType::kBool) return {};
  std::vector<std::vector<int64_t>> shapes;
  for (int j = 0; j < c.num_in(); ++j) {
    if (c.in_dtype(j) != t) return {};
    shapes.push_back(c.in_shape(j).dims());
  }
  Equation eq = ParseEquation(c.attrs<EinsumAttrs>().subscripts, shapes, [](const std::string& m) {
    throw InternalError(StrCat("einsum: ", m, " after shape inference"));
  });
  DType pt = IsFloatingPoint(t) ? (IsComputeFloat(t) ? t : DType::kFloat32)
                                : (t == DType::kInt64 ? t : DType::kInt32);
  std::vector<int> summed = SummedLabels(eq);
  std::vector<int64_t> extents;
  for (int l : summed) extents.push_back(eq.extent.at(l));
  auto product = [&](const std::vector<TExpr>& r) {
    std::map<int, TExpr> at;  // each label's index
    for (size_t i = 0; i < eq.out.size(); ++i) at[eq.out[i]] = TAxis(int(i));
    for (size_t i = 0; i < summed.size(); ++i) at[summed[i]] = r[i];
    TExpr p;
    for (int j = 0; j < c.num_in(); ++j) {
      std::vector<TExpr> idx;
      for (size_t a = 0; a < eq.in[size_t(j)].size(); ++a) {
        int l = eq.in[size_t(j)][a];
        bool broadcast = shapes[size_t(j)][a] == 1 && eq.extent.at(l) != 1;
        idx.push_back(broadcast || eq.extent.at(l) == 1 ? TIndex(0) : at.at(l));
      }
      TExpr v = Widen(c.Read(j, idx));
      if (v->dtype != pt) v = TCast(pt, v);
      p = p ? p * v : v;
    }
    return p;
  };
  TExpr y = summed.empty() ? product({}) : TReduce(TReduceOp::kSum, extents, product);
  return {ConvertExpr(y, t)};
}

}  // namespace

void RegisterEinsumOps(OpRegistry& r) {
  r.Register("einsum")
      .Alias("_npi_einsum")
      .Describe("sums of products over labelled axes, in NumPy's einsum notation")
      .SetAttrs<EinsumAttrs>()
      .VariadicInputs("num_args", [](const Attrs& a) { return int(a.Get<EinsumAttrs>().num_args); })
      .InferShape(EinsumShape)
      .InferType(SameTypeInfer)
      .Pattern(FusionPattern::kOpaque)
      .Gradient(EinsumGradient)
      .Reference([](KernelCtx& ctx) {
        KILN_DTYPE_SWITCH(ctx.out[0].dtype(), T, {
          if constexpr (std::is_same_v<T, bool>)
            ctx.Fail("einsum does not take bool operands");
          else
            EinsumKernel<T>(ctx);
        });
      })
      .Compute(EinsumCompute);
}

}  // namespace kiln::ops
