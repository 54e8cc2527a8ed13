// symbol.cpp - Symbol: composition, naming, listings, inference and serialisation.
#include "kiln/frontend/symbol.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "kiln/ir/mxnet_json.h"
#include "kiln/ir/op.h"
#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"

namespace kiln {

namespace symbol_detail {

// A node of a symbol's DAG. Immutable once built; shared by every symbol that reads it.
struct SymNode {
  const OpDef* op = nullptr;  // nullptr: a variable
  std::string name;
  Attrs attrs;
  AttrMap extra;
  std::vector<SymOutput> inputs;

  int num_outputs() const { return op ? op->NumOutputs(attrs) : 1; }
};

struct Access {
  static const std::vector<SymOutput>& outputs(const Symbol& s) { return s.outputs_; }
  static std::vector<SymOutput>& outputs(Symbol& s) { return s.outputs_; }
};

}  // namespace symbol_detail

using symbol_detail::Access;
using symbol_detail::SymNode;
using symbol_detail::SymOutput;

namespace {

// --- Automatic names: one counter per hint, per thread, in a stack of NameScopes. ---
std::vector<std::map<std::string, int>>& NameCounters() {
  thread_local std::vector<std::map<std::string, int>> stack(1);
  return stack;
}

std::string AutoName(std::string_view hint) {
  std::string base;
  for (char c : hint) base += char(std::tolower(static_cast<unsigned char>(c)));
  int& counter = NameCounters().back()[base];
  return StrCat(base, counter++);
}

bool IsExtraKey(const std::string& key) {
  return key.size() > 4 && key.starts_with("__") && key.ends_with("__");
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

std::string NodeLabel(const OpDef& op, const std::string& name) {
  return StrCat(op.name(), " \"", name, "\"");
}

// The name MXNet gives output `index` of `node`.
std::string OutputName(const SymNode& node, uint32_t index) {
  if (!node.op) return node.name;
  if (node.num_outputs() == 1) return node.name + "_output";
  std::vector<std::string> names = node.op->OutputNames(node.attrs);
  return StrCat(node.name, "_", index < names.size() ? names[index] : StrCat("output", index));
}

// Depth-first post-order over the nodes reachable from `outputs`, inputs in order: MXNet's
// DFSVisit, which fixes the order of ListArguments.
std::vector<const SymNode*> PostOrder(const std::vector<SymOutput>& outputs) {
  std::vector<const SymNode*> order;
  std::unordered_map<const SymNode*, bool> seen;  // value: finished
  std::vector<std::pair<const SymNode*, size_t>> stack;
  for (const SymOutput& head : outputs) {
    if (seen.count(head.node.get())) continue;
    stack.push_back({head.node.get(), 0});
    seen[head.node.get()] = false;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->inputs.size()) {
        const SymNode* in = node->inputs[next++].node.get();
        // Symbols are immutable, so a node seen but unfinished here cannot happen (no cycles).
        if (!seen.count(in)) {
          seen[in] = false;
          stack.push_back({in, 0});
        }
        continue;
      }
      seen[node] = true;
      order.push_back(node);
      stack.pop_back();
    }
  }
  return order;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RuntimeError(StrCat("cannot open \"", path, "\" for reading"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw RuntimeError(StrCat("cannot read \"", path, "\""));
  return text.str();
}

template <class Fact>
bool FactKnown(const Fact& f) {
  if constexpr (std::is_same_v<Fact, Shape>)
    return f.IsFullyKnown();
  else
    return f != DType::kUnknown;
}

std::string FactText(const Shape& s) {
  return s.ToString();
}
std::string FactText(DType t) {
  return std::string(DTypeName(t));
}

// Facts by name for arguments, outputs and auxiliary states of `g`, built by ToGraph.
template <class Fact>
InferResult<Fact> Collect(const Graph& g, const std::vector<Fact>& facts,
                          const std::vector<std::string>& output_names) {
  InferResult<Fact> r;
  r.complete = true;
  for (const Fact& f : facts) r.complete &= FactKnown(f);
  for (uint32_t i : g.ArgumentNodes())
    r.arguments.items().emplace_back(g.node(i).name, facts[g.entry_id(i, 0)]);
  for (uint32_t i : g.AuxiliaryNodes())
    r.aux_states.items().emplace_back(g.node(i).name, facts[g.entry_id(i, 0)]);
  for (size_t k = 0; k < g.outputs().size(); ++k)
    r.outputs.items().emplace_back(output_names[k], facts[g.entry_id(g.outputs()[k])]);
  return r;
}

// The UserError of a full inference that left something unknown.
template <class Fact>
void RequireComplete(const InferResult<Fact>& r, const char* what, const char* function) {
  if (r.complete) return;
  std::string text;
  auto add = [&](const char* kind, const NamedFacts<Fact>& facts) {
    std::string items;
    for (const auto& [name, f] : facts)
      if (!FactKnown(f)) items += StrCat(items.empty() ? "" : ", ", name, " ", FactText(f));
    if (!items.empty()) text += StrCat(text.empty() ? "" : "; ", kind, " ", items);
  };
  add("arguments", r.arguments);
  add("auxiliary states", r.aux_states);
  add("outputs", r.outputs);
  if (text.empty()) text = "some internal entries";
  throw UserError(StrCat(function, ": cannot infer the ", what, " of ", text,
                         " (give more of them, or use ", function, "Partial)"));
}

}  // namespace

// --- NamedFacts ---

template <class Fact>
const Fact& NamedFacts<Fact>::at(std::string_view name) const {
  for (const Item& item : items_)
    if (item.first == name) return item.second;
  std::vector<std::string> names;
  for (const Item& item : items_) names.push_back(item.first);
  throw UserError(StrCat("no entry named \"", name, "\" (names: ", JoinNames(names), ")"));
}

template <class Fact>
bool NamedFacts<Fact>::contains(std::string_view name) const {
  for (const Item& item : items_)
    if (item.first == name) return true;
  return false;
}

template class NamedFacts<Shape>;
template class NamedFacts<DType>;

// --- Construction ---

SymbolInput::SymbolInput(const Symbol& s) : symbol(s) {}
SymbolInput::SymbolInput(std::string input_name, const Symbol& s)
    : name(std::move(input_name)), symbol(s) {}

Symbol Symbol::Variable(const std::string& name, AttrMap extra) {
  if (name.empty()) throw UserError("a variable needs a name");
  auto node = std::make_shared<SymNode>();
  node->name = name;
  node->extra = std::move(extra);
  Symbol s;
  s.outputs_.push_back({std::move(node), 0});
  return s;
}

Symbol Symbol::Create(std::string_view op, const std::vector<SymbolInput>& inputs,
                      const AttrMap& attrs, const std::string& name) {
  return CreateWithHint(op, op, inputs, attrs, name);
}

Symbol Symbol::CreateWithHint(std::string_view op, std::string_view hint,
                              const std::vector<SymbolInput>& inputs, const AttrMap& attrs,
                              const std::string& name) {
  const OpDef& def = OpRegistry::Global().Get(op);
  auto node = std::make_shared<SymNode>();
  node->op = &def;
  node->name = name.empty() ? AutoName(hint) : name;
  const std::string label = NodeLabel(def, node->name);

  AttrMap op_attrs;
  for (const auto& [key, value] : attrs) (IsExtraKey(key) ? node->extra : op_attrs)[key] = value;
  // A variadic op counts its inputs: Concat(a, b) has num_args=2 (MXNet's key_var_num_args).
  if (const std::string& count = def.var_inputs_attr(); !count.empty()) {
    std::string given = std::to_string(inputs.size());
    auto it = op_attrs.find(count);
    if (it == op_attrs.end()) {
      op_attrs[count] = given;
    } else {
      int64_t n = -1;
      if (!attr_text::Parse(it->second, &n) || n != int64_t(inputs.size()))
        throw UserError(StrCat(label, ": ", count, " = ", it->second, " but ", inputs.size(),
                               " inputs were given"));
    }
  }
  try {
    node->attrs = def.attrs.parse(op_attrs);
  } catch (const UserError& e) {
    throw UserError(StrCat(label, ": ", e.what()));
  }

  const std::vector<std::string> names = def.InputNames(node->attrs);
  std::vector<std::optional<SymOutput>> slots(names.size());
  size_t next_position = 0;
  for (const SymbolInput& in : inputs) {
    size_t slot = 0;
    if (in.name.empty()) {
      if (next_position >= names.size())
        throw UserError(StrCat(label, ": takes ", names.size(), " input",
                               names.size() == 1 ? "" : "s", " (", JoinNames(names), ") but ",
                               inputs.size(), " were given"));
      slot = next_position++;
    } else {
      auto it = std::find(names.begin(), names.end(), in.name);
      if (it == names.end())
        throw UserError(StrCat(label, ": has no input named \"", in.name,
                               "\" (inputs: ", JoinNames(names), ")"));
      slot = size_t(it - names.begin());
    }
    if (slots[slot]) throw UserError(StrCat(label, ": input ", names[slot], " is given twice"));
    const auto& outs = Access::outputs(in.symbol);
    if (outs.size() != 1)
      throw UserError(StrCat(label, ": input ", names[slot], " is a symbol with ", outs.size(),
                             " outputs; pick one with [i]"));
    slots[slot] = outs[0];
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    // MXNet's rule: a missing input is a new variable named after the node and the input.
    if (!slots[i]) slots[i] = Access::outputs(Variable(node->name + "_" + names[i]))[0];
    node->inputs.push_back(*slots[i]);
  }

  Symbol s;
  int visible = def.NumVisibleOutputs(node->attrs);
  std::shared_ptr<const SymNode> shared = std::move(node);
  for (int k = 0; k < visible; ++k) s.outputs_.push_back({shared, uint32_t(k)});
  return s;
}

Symbol Symbol::Group(const std::vector<Symbol>& symbols) {
  Symbol s;
  for (const Symbol& part : symbols)
    s.outputs_.insert(s.outputs_.end(), part.outputs_.begin(), part.outputs_.end());
  return s;
}

Symbol Symbol::operator[](size_t i) const {
  if (i >= outputs_.size())
    throw UserError(StrCat("output ", i, " of a symbol with ", outputs_.size(), " output",
                           outputs_.size() == 1 ? "" : "s", " (", JoinNames(ListOutputs()), ")"));
  Symbol s;
  s.outputs_.push_back(outputs_[i]);
  return s;
}

const std::string& Symbol::name() const {
  if (outputs_.size() != 1)
    throw UserError(StrCat("a symbol with ", outputs_.size(),
                           " outputs has no single name (outputs: ", JoinNames(ListOutputs()),
                           ")"));
  return outputs_[0].node->name;
}

Symbol Symbol::GetInternals() const {
  Symbol s;
  std::unordered_map<const SymNode*, std::shared_ptr<const SymNode>> owner;
  for (const SymOutput& o : outputs_) owner[o.node.get()] = o.node;
  for (const SymNode* node : PostOrder(outputs_))
    for (const SymOutput& in : node->inputs) owner[in.node.get()] = in.node;
  for (const SymNode* node : PostOrder(outputs_))
    for (int k = 0; k < node->num_outputs(); ++k)
      s.outputs_.push_back({owner.at(node), uint32_t(k)});
  return s;
}

Symbol Symbol::GetInternal(std::string_view output_name) const {
  Symbol all = GetInternals();
  std::vector<std::string> names = all.ListOutputs();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == output_name) return all[i];
  throw UserError(
      StrCat("no internal output named \"", output_name, "\" (outputs: ", JoinNames(names), ")"));
}

// --- Listings ---

std::vector<std::string> Symbol::ListArguments() const {
  Graph g = ToGraph();
  std::vector<std::string> out;
  for (uint32_t i : g.ArgumentNodes()) out.push_back(g.node(i).name);
  return out;
}

std::vector<std::string> Symbol::ListOutputs() const {
  std::vector<std::string> out;
  for (const SymOutput& o : outputs_) out.push_back(OutputName(*o.node, o.index));
  return out;
}

std::vector<std::string> Symbol::ListAuxiliaryStates() const {
  Graph g = ToGraph();
  std::vector<std::string> out;
  for (uint32_t i : g.AuxiliaryNodes()) out.push_back(g.node(i).name);
  return out;
}

std::vector<std::string> Symbol::ListInputs() const {
  std::vector<std::string> out;
  for (const SymNode* node : PostOrder(outputs_))
    if (!node->op) out.push_back(node->name);
  return out;
}

// --- Inference ---

ShapeResult Symbol::InferShapePartial(const std::map<std::string, Shape>& known) const {
  Graph g = ToGraph();
  InferOptions options;
  options.shapes = known;
  options.require_complete = false;
  InferShapes(g, options);
  return Collect(g, g.shapes, ListOutputs());
}

ShapeResult Symbol::InferShape(const std::map<std::string, Shape>& known) const {
  ShapeResult r = InferShapePartial(known);
  RequireComplete(r, "shapes", "InferShape");
  return r;
}

TypeResult Symbol::InferTypePartial(const std::map<std::string, DType>& known) const {
  Graph g = ToGraph();
  InferOptions options;
  options.dtypes = known;
  options.require_complete = false;
  InferTypes(g, options);
  return Collect(g, g.dtypes, ListOutputs());
}

TypeResult Symbol::InferType(const std::map<std::string, DType>& known) const {
  TypeResult r = InferTypePartial(known);
  RequireComplete(r, "dtypes", "InferType");
  return r;
}

// --- Graphs and files ---

Graph Symbol::ToGraph() const {
  Graph g;
  std::unordered_map<const SymNode*, uint32_t> id;
  std::unordered_map<std::string, const SymNode*> variables;
  for (const SymNode* node : PostOrder(outputs_)) {
    if (!node->op) {
      auto [it, fresh] = variables.emplace(node->name, node);
      if (!fresh)
        throw UserError(StrCat("two different variables are named \"", node->name,
                               "\"; variable names must be unique"));
      id[node] = g.AddVariable(node->name, node->extra);
      continue;
    }
    Node n;
    n.op = node->op;
    n.name = node->name;
    n.attrs = node->attrs;
    n.extra = node->extra;
    for (const SymOutput& in : node->inputs)
      n.inputs.push_back(Entry{id.at(in.node.get()), in.index});
    id[node] = g.AddNode(std::move(n));
  }
  for (const SymOutput& o : outputs_) g.AddOutput(Entry{id.at(o.node.get()), o.index});
  return g;
}

Symbol Symbol::FromGraph(const Graph& g) {
  std::vector<std::shared_ptr<const SymNode>> nodes;
  nodes.reserve(g.num_nodes());
  for (const Node& n : g.nodes()) {
    auto node = std::make_shared<SymNode>();
    node->op = n.op;
    node->name = n.name;
    node->attrs = n.attrs;
    node->extra = n.extra;
    for (const Entry& e : n.inputs) node->inputs.push_back({nodes.at(e.node), e.index});
    nodes.push_back(std::move(node));
  }
  Symbol s;
  for (const Entry& e : g.outputs()) s.outputs_.push_back({nodes.at(e.node), e.index});
  return s;
}

std::string Symbol::ToJSON() const {
  return SaveMXNetJson(ToGraph());
}

Symbol Symbol::FromJSON(std::string_view json) {
  return FromGraph(LoadMXNetJson(json, "<json>"));
}

std::string Symbol::ToText() const {
  return PrintGraph(ToGraph());
}

void Symbol::Save(const std::string& path) const {
  std::string json = ToJSON();
  std::ofstream out(path, std::ios::binary);
  if (!out) throw RuntimeError(StrCat("cannot open \"", path, "\" for writing"));
  out << json;
  out.close();
  if (!out) throw RuntimeError(StrCat("cannot write \"", path, "\""));
}

Symbol Symbol::Load(const std::string& path) {
  return FromGraph(LoadMXNetJson(ReadFile(path), path));
}

// --- Name scopes ---

NameScope::NameScope() {
  NameCounters().emplace_back();
}

NameScope::~NameScope() {
  NameCounters().pop_back();
}

// --- Operators, spelled as MXNet's Symbol operators spell them (op, auto-name hint). ---

namespace {
Symbol Binary(const char* op, const char* hint, const Symbol& lhs, const Symbol& rhs) {
  return Symbol::CreateWithHint(op, hint, {lhs, rhs}, {}, "");
}
Symbol Scalar(const char* op, const char* hint, const Symbol& data, double scalar) {
  return Symbol::CreateWithHint(op, hint, {data}, {{"scalar", attr_text::Print(scalar)}}, "");
}
}  // namespace

Symbol operator+(const Symbol& lhs, const Symbol& rhs) {
  return Binary("elemwise_add", "_plus", lhs, rhs);
}
Symbol operator-(const Symbol& lhs, const Symbol& rhs) {
  return Binary("elemwise_sub", "_minus", lhs, rhs);
}
Symbol operator*(const Symbol& lhs, const Symbol& rhs) {
  return Binary("elemwise_mul", "_mul", lhs, rhs);
}
Symbol operator/(const Symbol& lhs, const Symbol& rhs) {
  return Binary("elemwise_div", "_div", lhs, rhs);
}
Symbol operator+(const Symbol& lhs, double rhs) {
  return Scalar("_plus_scalar", "_plusscalar", lhs, rhs);
}
Symbol operator-(const Symbol& lhs, double rhs) {
  return Scalar("_minus_scalar", "_minusscalar", lhs, rhs);
}
Symbol operator*(const Symbol& lhs, double rhs) {
  return Scalar("_mul_scalar", "_mulscalar", lhs, rhs);
}
Symbol operator/(const Symbol& lhs, double rhs) {
  return Scalar("_div_scalar", "_divscalar", lhs, rhs);
}
Symbol operator+(double lhs, const Symbol& rhs) {
  return Scalar("_plus_scalar", "_plusscalar", rhs, lhs);
}
Symbol operator-(double lhs, const Symbol& rhs) {
  return Scalar("_rminus_scalar", "_rminusscalar", rhs, lhs);
}
Symbol operator*(double lhs, const Symbol& rhs) {
  return Scalar("_mul_scalar", "_mulscalar", rhs, lhs);
}
Symbol operator/(double lhs, const Symbol& rhs) {
  return Scalar("_rdiv_scalar", "_rdivscalar", rhs, lhs);
}
Symbol operator-(const Symbol& x) {
  return Scalar("_mul_scalar", "_mulscalar", x, -1.0);
}

}  // namespace kiln
