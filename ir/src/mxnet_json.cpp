// mxnet_json.cpp - saves and loads graphs in MXNet's symbol JSON layout (spec in mxnet_json.h).
//
// Loading follows what MXNet's own loader (nnvm's LoadJSON plus MXNet's legacy upgrade passes)
// accepts, and checks everything a hostile or corrupt file could get wrong before building a
// node, since Graph::AddNode treats bad references as kiln bugs.
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "format_util.h"
#include "kiln/ir/composite.h"
#include "kiln/ir/json.h"
#include "kiln/ir/mxnet_json.h"

namespace kiln {
namespace {

// MXNet 1.9.1, the version written by SaveMXNetJson.
constexpr int64_t kMXNetVersion = 10901;
// Files without "mxnet_version" predate 0.9 (MXNet's loader assumes 0.8.0).
constexpr int64_t kVersion0800 = 800;
constexpr int64_t kVersion0900 = 900;

// Keys MXNet hides as "__key__" (its kHiddenKeys); files before 1.0 wrote them bare.
constexpr const char* kHiddenKeys[] = {"ctx_group", "lr_mult", "wd_mult", "force_mirroring",
                                       "mirror_stage"};

// Arrays are built element by element: GCC 12 reports false "maybe uninitialized" warnings
// for initializer lists of variant-holding values.
json::Value EntryJson(const Entry& e) {
  json::Array a;
  a.push_back(json::Value(e.node));
  a.push_back(json::Value(e.index));
  a.push_back(json::Value(0));
  return json::Value(std::move(a));
}

// ["type_name", value]: how nnvm tags a graph attribute's type.
json::Value Tagged(const char* type_name, json::Value value) {
  json::Array a;
  a.push_back(json::Value(type_name));
  a.push_back(std::move(value));
  return json::Value(std::move(a));
}

// --- Loading. ---

class Loader {
 public:
  Loader(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  Graph Load() {
    json::Value root = json::Parse(text_, source_);
    if (!root.is_object())
      Fail(StrCat("expected a JSON object at the top level, got ", TypeName(root.type())));
    ReadVersion(root);
    const json::Value& nodes = Field(root, "nodes", json::Type::kArray, "");
    index_.assign(nodes.size(), 0);
    for (size_t i = 0; i < nodes.size(); ++i) LoadNode(nodes.at(i), i);
    const json::Value& heads = Field(root, "heads", json::Type::kArray, "");
    for (size_t k = 0; k < heads.size(); ++k)
      g_.AddOutput(ReadEntry(heads.at(k), nodes.size(), StrCat("heads[", k, "]"), true));
    if (const json::Value* attrs = root.Find("attrs"); attrs && attrs->is_object()) {
      LoadShapes(*attrs);
      LoadDTypes(*attrs);
    }
    return std::move(g_);
  }

 private:
  [[noreturn]] void Fail(const std::string& message) const {
    throw UserError(StrCat(source_, ": ", message));
  }

  // The member `key` of `obj`, which must exist with type `type`. `where` prefixes messages.
  const json::Value& Field(const json::Value& obj, std::string_view key, json::Type type,
                           const std::string& where) const {
    const json::Value* v = obj.Find(key);
    std::string prefix = where.empty() ? "" : where + ": ";
    if (!v) Fail(StrCat(prefix, "missing \"", key, "\""));
    if (v->type() != type && !(type == json::Type::kDouble && v->is_number()))
      Fail(StrCat(prefix, "\"", key, "\" must be ", json::TypeName(type), ", not ",
                  json::TypeName(v->type())));
    return *v;
  }

  void ReadVersion(const json::Value& root) {
    version_ = kVersion0800;
    const json::Value* attrs = root.Find("attrs");
    if (!attrs) return;
    if (!attrs->is_object())
      Fail(StrCat("\"attrs\" must be an object, not ", json::TypeName(attrs->type())));
    const json::Value* v = attrs->Find("mxnet_version");
    if (!v) return;
    // ["int", 10901]
    if (!v->is_array() || v->size() != 2 || !v->at(1).is_int())
      Fail("\"mxnet_version\" must be [\"int\", VERSION]");
    version_ = v->at(1).as_int();
  }

  // [node, index] or [node, index, version], checked against the `num_json_nodes` nodes
  // that may be referred to (those before the reader), and mapped to kiln's node indices.
  Entry ReadEntry(const json::Value& ref, size_t num_json_nodes, const std::string& where,
                  bool is_head = false) {
    if (!ref.is_array() || (ref.size() != 2 && ref.size() != 3))
      Fail(
          StrCat(where, ": expected [node, output] or [node, output, version], got ",
                 ref.is_array() ? StrCat("an array of ", ref.size()) : json::TypeName(ref.type())));
    for (size_t k = 0; k < ref.size(); ++k)
      if (!ref.at(k).is_int())
        Fail(StrCat(where, ": expected integers in [node, output, version], got ",
                    json::TypeName(ref.at(k).type())));
    int64_t node = ref.at(0).as_int(), index = ref.at(1).as_int();
    if (node < 0 || uint64_t(node) >= num_json_nodes) {
      if (is_head)
        Fail(StrCat(where, ": refers to node ", node, ", which does not exist (the file has ",
                    num_json_nodes, " nodes)"));
      Fail(StrCat(where, ": refers to node ", node, ", which does not precede this node"));
    }
    const Node& src = g_.node(index_[size_t(node)]);
    if (index < 0 || index >= src.num_outputs())
      Fail(StrCat(where, ": refers to output ", index, " of node ", node, " \"", src.name,
                  "\", which has ", src.num_outputs(),
                  src.num_outputs() == 1 ? " output" : " outputs"));
    return Entry{index_[size_t(node)], uint32_t(index)};
  }

  // The union of a node's "param" (MXNet 0.8), "attr" (0.8 - 0.11) and "attrs" dictionaries.
  AttrMap ReadAttrs(const json::Value& node, const std::string& where) {
    AttrMap out;
    for (const char* key : {"param", "attr", "attrs"}) {
      const json::Value* dict = node.Find(key);
      if (!dict) continue;
      if (!dict->is_object())
        Fail(
            StrCat(where, ": \"", key, "\" must be an object, not ", json::TypeName(dict->type())));
      for (const auto& [k, v] : dict->as_object()) {
        if (!v.is_string())
          Fail(StrCat(where, ": attribute \"", k, "\" must be a string, not ",
                      json::TypeName(v.type())));
        out[k] = v.as_string();
      }
    }
    return out;
  }

  // MXNet's upgrade of hidden keys: "lr_mult" becomes "__lr_mult__"; on an op node,
  // "weight_lr_mult" moves to the input variable named by the prefix as "__lr_mult__".
  void FixHiddenKeys(AttrMap& attrs, Node& node) {
    AttrMap fixed;
    for (auto& [key, value] : attrs) {
      bool handled = false;
      for (std::string_view hidden : kHiddenKeys) {
        if (key == hidden) {
          fixed[StrCat("__", hidden, "__")] = value;
          handled = true;
          break;
        }
        if (node.op && key.size() > hidden.size() + 1 &&
            key.compare(key.size() - hidden.size(), hidden.size(), hidden) == 0 &&
            key[key.size() - hidden.size() - 1] == '_') {
          pending_input_attrs_.emplace_back(key.substr(0, key.size() - hidden.size() - 1),
                                            StrCat("__", hidden, "__"), value);
          handled = true;
          break;
        }
      }
      if (!handled) fixed[key] = value;
    }
    attrs = std::move(fixed);
  }

  void LoadNode(const json::Value& jn, size_t i) {
    std::string where = StrCat("node ", i);
    if (!jn.is_object())
      Fail(StrCat(where, ": expected an object, got ", json::TypeName(jn.type())));
    Node node;
    node.name = Field(jn, "name", json::Type::kString, where).as_string();
    where = StrCat("node ", i, " \"", node.name, "\"");
    std::string op_name = Field(jn, "op", json::Type::kString, where).as_string();
    const json::Value& inputs = Field(jn, "inputs", json::Type::kArray, where);
    AttrMap attrs = ReadAttrs(jn, where);
    if (op_name != "null") {
      node.op = OpRegistry::Global().Find(op_name);
      if (!node.op) Fail(StrCat(where, ": unknown op \"", op_name, "\""));
      where = StrCat(where, " (", node.op->name(), ")");
    }
    pending_input_attrs_.clear();
    FixHiddenKeys(attrs, node);
    if (node.is_variable()) {
      if (inputs.size() != 0)
        Fail(StrCat(where, ": a variable (op \"null\") has ", inputs.size(), " inputs"));
      node.extra = std::move(attrs);
      index_[i] = g_.AddNode(std::move(node));
      return;
    }
    try {
      format::ParseNodeAttrs(*node.op, attrs, &node.attrs, &node.extra);
    } catch (const UserError& e) {
      Fail(StrCat(where, ": ", e.what()));
    }
    if (IsComposite(node)) {
      const json::Value* sub = jn.Find("subgraphs");
      if (!sub || !sub->is_array() || sub->size() != 1)
        Fail(StrCat(where, ": a fused node needs \"subgraphs\" with exactly one graph"));
      node.attrs = WithCompositeBody(
          node.attrs, std::make_shared<Graph>(
                          LoadMXNetJson(json::Print(sub->at(0)), StrCat(source_, ": ", where))));
    }
    for (size_t k = 0; k < inputs.size(); ++k)
      node.inputs.push_back(ReadEntry(inputs.at(k), i, StrCat(where, ": inputs[", k, "]")));
    std::vector<std::string> names = node.op->InputNames(node.attrs);
    if (version_ < kVersion0900 && node.inputs.size() < names.size()) {
      // MXNet 0.8 did not list auxiliary states as inputs; its loader creates them.
      for (size_t k = node.inputs.size(); k < names.size(); ++k)
        node.inputs.push_back(Entry{g_.AddVariable(StrCat(node.name, "_", names[k])), 0});
    }
    if (node.inputs.size() != names.size()) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      Fail(StrCat(where, ": has ", node.inputs.size(), " inputs but the op takes ", names.size(),
                  " (", list.empty() ? "none" : list, ")"));
    }
    for (const auto& [arg, key, value] : pending_input_attrs_) {
      bool placed = false;
      for (size_t k = 0; k < names.size(); ++k) {
        if (names[k] != arg) continue;
        Node& input = g_.mutable_node(node.inputs[k].node);
        if (!input.is_variable()) continue;
        if (!input.extra.count(key)) input.extra[key] = value;
        placed = true;
      }
      // No such input variable: keep the setting on the node rather than lose it.
      if (!placed) node.extra[StrCat("__", arg, "_", key.substr(2))] = value;
    }
    index_[i] = g_.AddNode(std::move(node));
  }

  // "shape": ["list_shape", [[dims], null, ...]], one per entry (null: unknown rank).
  void LoadShapes(const json::Value& attrs) {
    const json::Value* v = attrs.Find("shape");
    if (!v) return;
    const json::Value& list = TypedList(*v, "shape", "list_shape");
    std::vector<Shape> shapes;
    for (size_t e = 0; e < list.size(); ++e) {
      const json::Value& s = list.at(e);
      if (s.is_null()) {
        shapes.emplace_back();
        continue;
      }
      if (!s.is_array()) Fail(StrCat("attrs \"shape\"[", e, "] must be an array of dims or null"));
      std::vector<int64_t> dims;
      for (size_t d = 0; d < s.size(); ++d) {
        if (!s.at(d).is_int() || s.at(d).as_int() < -1)
          Fail(StrCat("attrs \"shape\"[", e, "] has a bad dim (dims are >= 0, or -1: unknown)"));
        dims.push_back(s.at(d).as_int());
      }
      shapes.emplace_back(std::move(dims));
    }
    g_.shapes = std::move(shapes);
  }

  // "dtype": ["list_int", [flag, ...]], MXNet type flags, one per entry (-1: unknown).
  void LoadDTypes(const json::Value& attrs) {
    const json::Value* v = attrs.Find("dtype");
    if (!v) return;
    const json::Value& list = TypedList(*v, "dtype", "list_int");
    std::vector<DType> dtypes;
    for (size_t e = 0; e < list.size(); ++e) {
      const json::Value& t = list.at(e);
      std::optional<DType> dtype;
      if (t.is_int() && t.as_int() == -1)
        dtype = DType::kUnknown;
      else if (t.is_int() && t.as_int() >= INT32_MIN && t.as_int() <= INT32_MAX)
        dtype = DTypeFromMXNetTypeFlag(int(t.as_int()));
      if (!dtype) Fail(StrCat("attrs \"dtype\"[", e, "] is not an MXNet type flag"));
      dtypes.push_back(*dtype);
    }
    g_.dtypes = std::move(dtypes);
  }

  // [type_name, [one per entry]].
  const json::Value& TypedList(const json::Value& v, const char* key, const char* type_name) {
    if (!v.is_array() || v.size() != 2 || !v.at(0).is_string() ||
        v.at(0).as_string() != type_name || !v.at(1).is_array())
      Fail(StrCat("attrs \"", key, "\" must be [\"", type_name, "\", [...]]"));
    if (v.at(1).size() != g_.num_entries())
      Fail(StrCat("attrs \"", key, "\" has ", v.at(1).size(), " entries but the graph has ",
                  g_.num_entries()));
    return v.at(1);
  }

  std::string_view text_;
  std::string_view source_;
  int64_t version_ = kVersion0800;
  Graph g_;
  std::vector<uint32_t> index_;  // JSON node index -> kiln node index
  // (input name, key, value) to set on the current node's input variables.
  std::vector<std::tuple<std::string, std::string, std::string>> pending_input_attrs_;
};

}  // namespace

std::string SaveMXNetJson(const Graph& g) {
  json::Array nodes;
  for (const Node& n : g.nodes()) {
    json::Value jn = json::Value::MakeObject();
    jn.Set("op", n.op ? n.op->name() : std::string("null"));
    jn.Set("name", n.name);
    AttrList attrs = format::NodeAttrList(n);
    if (!attrs.empty()) {
      json::Value dict = json::Value::MakeObject();
      for (auto& [k, v] : attrs) dict.Set(k, v);
      jn.Set("attrs", std::move(dict));
    }
    json::Array inputs;
    for (const Entry& e : n.inputs) inputs.push_back(EntryJson(e));
    jn.Set("inputs", std::move(inputs));
    // A composite's body, where MXNet keeps a subgraph op's graph.
    if (IsComposite(n)) {
      json::Array subgraphs;
      subgraphs.push_back(json::Parse(SaveMXNetJson(CompositeBody(n))));
      jn.Set("subgraphs", std::move(subgraphs));
    }
    nodes.push_back(std::move(jn));
  }
  json::Array arg_nodes, row_ptr, heads;
  row_ptr.push_back(json::Value(0));
  for (uint32_t v : g.VariableNodes()) arg_nodes.push_back(json::Value(v));
  uint32_t entries = 0;
  for (const Node& n : g.nodes()) {
    entries += uint32_t(n.num_outputs());
    row_ptr.push_back(json::Value(entries));
  }
  for (const Entry& e : g.outputs()) heads.push_back(EntryJson(e));

  json::Value attrs = json::Value::MakeObject();
  attrs.Set("mxnet_version", Tagged("int", json::Value(kMXNetVersion)));
  // Inferred facts, as nnvm saves graph attributes: typed lists indexed by entry.
  if (g.has_shapes()) {
    json::Array shapes;
    for (const Shape& s : g.shapes) {
      if (!s.rank_known()) {
        shapes.emplace_back();
        continue;
      }
      json::Array dims;
      for (int64_t d : s.dims()) dims.push_back(json::Value(d));
      shapes.push_back(std::move(dims));
    }
    attrs.Set("shape", Tagged("list_shape", json::Value(std::move(shapes))));
  }
  if (g.has_dtypes()) {
    json::Array dtypes;
    for (DType t : g.dtypes)
      dtypes.push_back(json::Value(t == DType::kUnknown ? -1 : MXNetTypeFlag(t)));
    attrs.Set("dtype", Tagged("list_int", json::Value(std::move(dtypes))));
  }

  json::Value root = json::Value::MakeObject();
  root.Set("nodes", std::move(nodes));
  root.Set("arg_nodes", std::move(arg_nodes));
  root.Set("node_row_ptr", std::move(row_ptr));
  root.Set("heads", std::move(heads));
  root.Set("attrs", std::move(attrs));
  return json::Print(root, 2) + "\n";
}

Graph LoadMXNetJson(std::string_view text, std::string_view source_name) {
  return Loader(text, source_name).Load();
}

}  // namespace kiln
