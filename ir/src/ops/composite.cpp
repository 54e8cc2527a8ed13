// composite.cpp - the `fused` op: a node whose computation is its body graph (composite.h).
#include "kiln/ir/composite.h"

#include "kiln/ir/interpreter.h"
#include "ops/register.h"
#include "ops/tensor_util.h"

namespace kiln {

namespace {

std::vector<std::string> NumberedNames(const char* prefix, size_t n) {
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.push_back(StrCat(prefix, i));
  return names;
}

// Shape and type rules: the body's facts, refined by what is known of the composite's inputs
// through one forward sweep of the body's own rules, so a composite agrees with the graph it was
// cut from and a hand-written body without annotations still infers. Facts that stay unknown
// stay open.
template <class Fact>
void BodyFacts(InferCtx<Fact>& ctx, const std::vector<Fact>& known, const Fact& unknown,
               const std::function<void(InferCtx<Fact>&)>& (OpDef::*rule)() const) {
  const Graph& body = *ctx.template attrs<CompositeAttrs>().body;
  std::vector<Fact> facts = known.empty() ? std::vector<Fact>(body.num_entries(), unknown) : known;
  std::vector<uint32_t> vars = body.VariableNodes();
  for (size_t i = 0; i < vars.size(); ++i) {
    Fact& f = facts[body.entry_id(vars[i], 0)];
    if (f == unknown) f = ctx.in(int(i));
  }
  for (uint32_t i = 0; i < body.num_nodes(); ++i) {
    const Node& n = body.node(i);
    if (n.is_variable()) continue;
    std::vector<Fact> in, out;
    for (const Entry& e : n.inputs) in.push_back(facts[body.entry_id(e)]);
    for (int k = 0; k < n.num_outputs(); ++k) out.push_back(facts[body.entry_id(i, uint32_t(k))]);
    InferCtx<Fact> inner(*n.op, n.name, n.attrs, in, out);
    try {
      (n.op->*rule)()(inner);
    } catch (const UserError& e) {
      ctx.Fail(StrCat("in its body: ", e.what()));
    }
    for (int k = 0; k < n.num_outputs(); ++k) facts[body.entry_id(i, uint32_t(k))] = out[size_t(k)];
  }
  for (size_t i = 0; i < vars.size(); ++i) {
    const Fact& f = facts[body.entry_id(vars[i], 0)];
    if (!(f == unknown)) ctx.SetIn(int(i), f, "the fused body's parameter");
  }
  for (size_t k = 0; k < body.outputs().size(); ++k) {
    const Fact& f = facts[body.entry_id(body.outputs()[k])];
    if (!(f == unknown)) ctx.SetOut(int(k), f, "the fused body's result");
  }
}

void CompositeKernel(KernelCtx& ctx) {
  const Graph& body = *ctx.Attr<CompositeAttrs>().body;
  std::vector<uint32_t> vars = body.VariableNodes();
  std::map<std::string, Tensor> values;
  for (size_t i = 0; i < vars.size(); ++i) values[body.node(vars[i]).name] = ctx.in[i];
  InterpretOptions options;
  options.is_train = ctx.is_train;
  options.seed = ctx.seed;  // the body's random nodes keep their names, hence their draws
  std::vector<Tensor> results = Interpret(body, values, options);
  for (size_t k = 0; k < results.size(); ++k) ops::CopyAllBytes(results[k], ctx.out[k]);
}

}  // namespace

const OpDef& CompositeOp() {
  static const OpDef* op = &OpRegistry::Global().Get("fused");
  return *op;
}

bool IsComposite(const Node& n) {
  return n.op == &CompositeOp();
}

const Graph& CompositeBody(const Node& n) {
  KILN_INTERNAL_CHECK(IsComposite(n) && n.attrs.Get<CompositeAttrs>().body, "node \"", n.name,
                      "\" is not a composite with a body");
  return *n.attrs.Get<CompositeAttrs>().body;
}

Attrs WithCompositeBody(const Attrs& attrs, std::shared_ptr<const Graph> body) {
  CompositeAttrs a = attrs.has_value() ? attrs.Get<CompositeAttrs>() : CompositeAttrs{};
  a.body = std::move(body);
  return Attrs::Make(std::move(a));
}

Node MakeComposite(std::string name, std::string anchor, std::shared_ptr<const Graph> body,
                   std::vector<Entry> inputs) {
  KILN_INTERNAL_CHECK(body && body->VariableNodes().size() == inputs.size(), "composite \"", name,
                      "\": ", inputs.size(), " inputs for a body with ",
                      body ? body->VariableNodes().size() : 0, " parameters");
  Node n;
  n.op = &CompositeOp();
  n.name = std::move(name);
  n.attrs = Attrs::Make(CompositeAttrs{std::move(anchor), std::move(body)});
  n.inputs = std::move(inputs);
  return n;
}

namespace ops {

void RegisterCompositeOps(OpRegistry& r) {
  // A composite without a body (possible only mid-parse) has no inputs and no outputs.
  auto body_of = [](const Attrs& a) -> const Graph* { return a.Get<CompositeAttrs>().body.get(); };
  r.Register("fused")
      .Describe("a fused group of ops: its body graph, run as one kernel")
      .SetAttrs<CompositeAttrs>()
      .Inputs([body_of](const Attrs& a) {
        const Graph* b = body_of(a);
        return NumberedNames("arg", b ? b->VariableNodes().size() : 0);
      })
      .Outputs([body_of](const Attrs& a) {
        const Graph* b = body_of(a);
        return NumberedNames("out", b ? b->outputs().size() : 0);
      })
      .InferShape([](ShapeInferCtx& ctx) {
        BodyFacts(ctx, ctx.attrs<CompositeAttrs>().body->shapes, Shape(), &OpDef::infer_shape);
      })
      .InferType([](TypeInferCtx& ctx) {
        BodyFacts(ctx, ctx.attrs<CompositeAttrs>().body->dtypes, DType::kUnknown,
                  &OpDef::infer_type);
      })
      .Pattern(FusionPattern::kOpaque)
      .Reference(CompositeKernel);
}

}  // namespace ops
}  // namespace kiln
