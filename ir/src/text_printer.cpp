// text_printer.cpp - prints a Graph as kiln's text IR (the format is specified in text.h).
#include <string>
#include <unordered_set>
#include <vector>

#include "format_util.h"
#include "kiln/ir/composite.h"
#include "kiln/ir/text.h"
#include "text_syntax.h"

namespace kiln {
namespace {

std::string NameText(std::string_view name) {
  return "%" + (text_syntax::IsIdentifier(name) ? std::string(name) : text_syntax::Quote(name));
}

std::string AttrText(std::string_view s) {
  return text_syntax::IsBare(s) ? std::string(s) : text_syntax::Quote(s);
}

// Node names as printed: the text IR needs unique names, but a Graph (like MXNet's) may repeat
// op node names. A repeated name gets the first free suffix "_1", "_2", ... (free: no node of
// the graph has that name), so printing is deterministic and the text parses back.
std::vector<std::string> UniqueNames(const Graph& g) {
  std::unordered_set<std::string> taken;
  for (const Node& n : g.nodes()) taken.insert(n.name);
  std::unordered_set<std::string> used;
  std::vector<std::string> names;
  names.reserve(g.num_nodes());
  for (const Node& n : g.nodes()) {
    std::string name = n.name;
    if (used.count(name)) {
      for (int k = 1;; ++k) {
        std::string candidate = StrCat(n.name, "_", k);
        if (!taken.count(candidate) && !used.count(candidate)) {
          name = std::move(candidate);
          break;
        }
      }
    }
    used.insert(name);
    names.push_back(std::move(name));
  }
  return names;
}

std::string TypeText(const Shape* shape, DType dtype) {
  std::string s(dtype == DType::kUnknown ? "?" : DTypeName(dtype));
  s += '[';
  if (shape == nullptr || !shape->rank_known()) {
    s += '*';
  } else {
    for (int i = 0; i < shape->ndim(); ++i) {
      if (i) s += ", ";
      s += shape->dim_known(i) ? std::to_string((*shape)[i]) : std::string("?");
    }
  }
  return s + ']';
}

// " : type" for node i, or "" when nothing is known about its outputs.
std::string Annotation(const Graph& g, uint32_t i) {
  int outs = g.node(i).num_outputs();
  bool known = false;
  std::vector<std::string> parts;
  for (int k = 0; k < outs; ++k) {
    uint32_t e = g.entry_id(i, uint32_t(k));
    const Shape* shape = g.has_shapes() ? &g.shapes[e] : nullptr;
    DType dtype = g.has_dtypes() ? g.dtypes[e] : DType::kUnknown;
    if ((shape && shape->rank_known()) || dtype != DType::kUnknown) known = true;
    parts.push_back(TypeText(shape, dtype));
  }
  if (!known) return "";
  if (parts.size() == 1) return " : " + parts[0];
  std::string s = " : (";
  for (size_t k = 0; k < parts.size(); ++k) s += (k ? ", " : "") + parts[k];
  return s + ")";
}

// The statements of `g` and its return line, each line indented by `indent`; composite nodes
// print their bodies in braces, one level deeper.
void PrintStatements(const Graph& g, const std::string& indent, std::string& out) {
  std::vector<std::string> names = UniqueNames(g);
  auto ref = [&](const Entry& e) {
    std::string s = NameText(names[e.node]);
    if (e.index != 0) s += StrCat("#", e.index);
    return s;
  };
  for (uint32_t i = 0; i < g.num_nodes(); ++i) {
    const Node& n = g.node(i);
    out += indent + NameText(names[i]) + " = ";
    if (n.is_variable()) {
      out += "var";
    } else {
      out += n.op->name();
      out += '(';
      for (size_t k = 0; k < n.inputs.size(); ++k) out += (k ? ", " : "") + ref(n.inputs[k]);
      out += ')';
    }
    AttrList attrs = format::NodeAttrList(n);
    if (!attrs.empty()) {
      out += " {";
      for (size_t k = 0; k < attrs.size(); ++k)
        out += (k ? ", " : "") + AttrText(attrs[k].first) + "=" + AttrText(attrs[k].second);
      out += '}';
    }
    out += Annotation(g, i);
    if (!n.is_variable() && IsComposite(n)) {
      out += " {\n";
      PrintStatements(CompositeBody(n), indent + "  ", out);
      out += indent + "}";
    }
    out += '\n';
  }
  out += indent + "return";
  for (size_t k = 0; k < g.outputs().size(); ++k) out += (k ? ", " : " ") + ref(g.outputs()[k]);
  out += '\n';
}

}  // namespace

std::string PrintGraph(const Graph& g) {
  std::string out = "graph {\n";
  PrintStatements(g, "  ", out);
  return out + "}\n";
}

}  // namespace kiln
