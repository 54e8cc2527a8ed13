// text_parser.cpp - parses kiln's text IR (the format is specified in text.h).
//
// A hand-written scanner and recursive-descent parser over the source text. Every error, of
// syntax or of meaning, is a UserError "SOURCE:LINE:COL: message" pointing at the offending
// token; the graph is built node by node as statements are read, so a statement can only refer
// to values defined above it (topological order is the format's rule, not a later check).
#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "format_util.h"
#include "kiln/ir/composite.h"
#include "kiln/ir/text.h"
#include "text_syntax.h"

namespace kiln {
namespace {

// The facts one annotation gives for one output.
struct OutputType {
  Shape shape;
  DType dtype = DType::kUnknown;
};

// An attribute as written, with where its key is (for error positions).
struct AttrItem {
  std::string key;
  std::string value;
  size_t key_pos;
};

class TextParser {
 public:
  TextParser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  Graph Parse() {
    SkipSpace();
    ExpectKeyword("graph");
    Graph g = ParseBody();
    SkipSpace();
    if (pos_ < text_.size()) Fail(pos_, StrCat("unexpected ", Describe(), " after the graph"));
    return g;
  }

 private:
  // `{ statements return ... }`: a graph's or a composite node's body.
  Graph ParseBody() {
    Expect('{');
    while (true) {
      SkipSpace();
      if (Peek() == '%') {
        ParseStatement();
        continue;
      }
      size_t at = pos_;
      std::string_view word = PeekIdentifier();
      if (word == "return") {
        pos_ += word.size();
        ParseReturn();
        break;
      }
      Fail(at, StrCat("expected a node definition (%name = ...) or 'return', got ", Describe()));
    }
    Expect('}');
    FillFacts();
    return std::move(g_);
  }

  // After a composite's attributes and type: does a body `{ %x = ... return ... }` follow (as
  // opposed to an attribute list `{key=value}`)?
  bool BodyFollows() {
    SkipSpace();
    if (Peek() != '{') return false;
    size_t save = pos_;
    ++pos_;
    SkipSpace();
    bool body = Peek() == '%';
    if (!body && PeekIdentifier() == "return") {
      pos_ += 6;
      SkipSpace();
      body = Peek() != '=';
    }
    pos_ = save;
    return body;
  }

  [[noreturn]] void Fail(size_t at, const std::string& message) const {
    throw UserError(format::PositionPrefix(source_, text_, at) + message);
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }

  // What is at pos_, for "expected X, got Y" messages.
  std::string Describe() const {
    if (AtEnd()) return "the end of the input";
    size_t n = text_syntax::IdentifierLength(text_.substr(pos_));
    if (n) return StrCat("'", text_.substr(pos_, n), "'");
    unsigned char c = static_cast<unsigned char>(text_[pos_]);
    if (c >= 0x20 && c < 0x7f) return StrCat("'", char(c), "'");
    if (c == '\n') return "the end of the line";
    return "a non-ASCII character";
  }

  // Skips spaces, line breaks and `//` comments.
  void SkipSpace() {
    while (!AtEnd()) {
      char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
        while (!AtEnd() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  void Expect(char c) {
    SkipSpace();
    if (Peek() != c) Fail(pos_, StrCat("expected '", c, "', got ", Describe()));
    ++pos_;
  }

  // Consumes `c` if it is next (after spaces).
  bool Accept(char c) {
    SkipSpace();
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }

  std::string_view PeekIdentifier() const {
    return text_.substr(pos_, text_syntax::IdentifierLength(text_.substr(pos_)));
  }

  std::string_view ParseIdentifier(std::string_view what) {
    SkipSpace();
    std::string_view id = PeekIdentifier();
    if (id.empty()) Fail(pos_, StrCat("expected ", what, ", got ", Describe()));
    pos_ += id.size();
    return id;
  }

  void ExpectKeyword(std::string_view word) {
    size_t at = pos_;
    if (ParseIdentifier(StrCat("'", word, "'")) != word)
      Fail(at, StrCat("expected '", word, "', got '", text_.substr(at, pos_ - at), "'"));
  }

  // A double-quoted string at pos_, escapes decoded.
  std::string ParseQuoted() {
    size_t open = pos_;
    ++pos_;
    std::string out;
    while (true) {
      if (AtEnd() || text_[pos_] == '\n') Fail(open, "unterminated string");
      if (static_cast<unsigned char>(text_[pos_]) >= 0x80) {
        // Names and values must be valid UTF-8: they may be saved as JSON later.
        size_t len = format::Utf8CharLength(text_, pos_);
        if (len == 0) Fail(pos_, "invalid UTF-8 in a string");
        out.append(text_.substr(pos_, len));
        pos_ += len;
        continue;
      }
      char c = text_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      char e = Peek();
      switch (e) {
        case '"':
        case '\\':
          out += e;
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        default:
          Fail(pos_ - 1, "invalid escape in a string (use \\\", \\\\, \\n, \\r or \\t)");
      }
      ++pos_;
    }
  }

  // `%name` or `%"name"`; returns the name. pos_ is at '%'.
  std::string ParseName() {
    ++pos_;
    if (Peek() == '"') return ParseQuoted();
    std::string_view id = PeekIdentifier();
    if (id.empty()) Fail(pos_, StrCat("expected a name after '%', got ", Describe()));
    pos_ += id.size();
    return std::string(id);
  }

  // A bare word ([A-Za-z0-9_.+-]+) or a quoted string: an attribute key or value.
  std::string ParseAttrText(std::string_view what) {
    SkipSpace();
    if (Peek() == '"') return ParseQuoted();
    size_t n = text_syntax::BareLength(text_.substr(pos_));
    if (n == 0) Fail(pos_, StrCat("expected ", what, ", got ", Describe()));
    pos_ += n;
    return std::string(text_.substr(pos_ - n, n));
  }

  // An unsigned decimal integer at pos_ (no sign), at most `max`.
  uint64_t ParseUnsigned(std::string_view what, uint64_t max) {
    size_t start = pos_;
    while (Peek() >= '0' && Peek() <= '9') ++pos_;
    if (pos_ == start) Fail(start, StrCat("expected ", what, ", got ", Describe()));
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, v);
    if (ec != std::errc() || v > max) Fail(start, StrCat(what, " is too large"));
    return v;
  }

  // A value reference `%name` or `%name#k`, resolved against the nodes defined so far.
  Entry ParseRef() {
    SkipSpace();
    size_t at = pos_;
    if (Peek() != '%') Fail(at, StrCat("expected a value (%name), got ", Describe()));
    std::string name = ParseName();
    auto it = names_.find(name);
    if (it == names_.end())
      Fail(at, StrCat("undefined value ", text_.substr(at, pos_ - at),
                      " (values must be defined before they are used)"));
    Entry e{it->second, 0};
    if (Peek() == '#') {
      ++pos_;
      e.index = uint32_t(ParseUnsigned("an output index", UINT32_MAX));
    }
    const Node& n = g_.node(e.node);
    if (int64_t(e.index) >= n.num_outputs())
      Fail(at, StrCat(text_.substr(at, pos_ - at), ": ", n.op_name(), " \"", n.name, "\" has ",
                      n.num_outputs(), n.num_outputs() == 1 ? " output" : " outputs"));
    return e;
  }

  // `{key=value, ...}`; pos_ is at '{'.
  std::vector<AttrItem> ParseAttrs() {
    ++pos_;
    std::vector<AttrItem> items;
    if (Accept('}')) return items;
    while (true) {
      SkipSpace();
      AttrItem item;
      item.key_pos = pos_;
      item.key = ParseAttrText("an attribute name");
      for (const AttrItem& other : items)
        if (other.key == item.key)
          Fail(item.key_pos, StrCat("attribute ", item.key, " given twice"));
      Expect('=');
      item.value = ParseAttrText("an attribute value");
      items.push_back(std::move(item));
      if (Accept(',')) continue;
      Expect('}');
      return items;
    }
  }

  // `dtype[dims]`.
  OutputType ParseType() {
    SkipSpace();
    OutputType t;
    if (Peek() == '?') {
      ++pos_;
    } else {
      size_t at = pos_;
      std::string_view name = ParseIdentifier("a dtype (float32, ..., or ?)");
      std::optional<DType> dtype = ParseDType(name);
      if (!dtype) Fail(at, StrCat("unknown dtype \"", name, "\""));
      t.dtype = *dtype;
    }
    Expect('[');
    if (Accept('*')) {
      Expect(']');
      return t;
    }
    std::vector<int64_t> dims;
    if (!Accept(']')) {
      while (true) {
        SkipSpace();
        if (Peek() == '?') {
          ++pos_;
          dims.push_back(Shape::kUnknownDim);
        } else {
          dims.push_back(int64_t(ParseUnsigned("a dimension (a number or ?)", INT64_MAX)));
        }
        if (Accept(',')) continue;
        Expect(']');
        break;
      }
    }
    t.shape = Shape(std::move(dims));
    return t;
  }

  // `type` or `(type, ...)` after a node's ':'.
  std::vector<OutputType> ParseTypes() {
    std::vector<OutputType> types;
    if (Accept('(')) {
      do {
        types.push_back(ParseType());
      } while (Accept(','));
      Expect(')');
    } else {
      types.push_back(ParseType());
    }
    return types;
  }

  // Records the annotation `types` (written at `at`) of node `id`.
  void ApplyAnnotation(uint32_t id, std::vector<OutputType> types, size_t at) {
    const Node& n = g_.node(id);
    if (int(types.size()) != n.num_outputs())
      Fail(at, StrCat("the type annotation has ", types.size(),
                      types.size() == 1 ? " type" : " types", " but ", n.op_name(), " \"", n.name,
                      "\" has ", n.num_outputs(), n.num_outputs() == 1 ? " output" : " outputs"));
    for (size_t k = 0; k < types.size(); ++k) {
      if (types[k].shape.rank_known()) any_shape_ = true;
      if (types[k].dtype != DType::kUnknown) any_dtype_ = true;
      annotations_.emplace_back(g_.entry_id(id, uint32_t(k)), std::move(types[k]));
    }
  }

  // Parses the op's attributes; errors get the node's position and `Op "name": ` prefix, and
  // point at the key the message names when there is one.
  Attrs ParseOpAttrs(const OpDef& op, const std::string& name, size_t op_pos,
                     const std::vector<AttrItem>& items, AttrMap* extra) {
    AttrMap all;
    for (const AttrItem& item : items) all[item.key] = item.value;
    Attrs attrs;
    try {
      format::ParseNodeAttrs(op, all, &attrs, extra);
    } catch (const UserError& e) {
      std::string msg = e.what();
      size_t at = op_pos;
      for (const AttrItem& item : items) {
        if (msg.find(StrCat("attribute \"", item.key, "\"")) != std::string::npos ||
            msg.find(StrCat("attribute ", item.key, ":")) != std::string::npos ||
            msg.find(StrCat("attribute ", item.key, " ")) != std::string::npos) {
          at = item.key_pos;
          break;
        }
      }
      Fail(at, StrCat(op.name(), " \"", name, "\": ", msg));
    }
    return attrs;
  }

  // `%name = var ...` or `%name = Op(inputs) ...`; pos_ is at '%'.
  void ParseStatement() {
    size_t name_pos = pos_;
    std::string name = ParseName();
    if (auto it = names_.find(name); it != names_.end()) {
      format::LineCol first = format::Locate(text_, def_pos_[it->second]);
      Fail(name_pos, StrCat("duplicate name ", text_.substr(name_pos, pos_ - name_pos),
                            " (first defined at ", first.line, ":", first.col, ")"));
    }
    Expect('=');
    SkipSpace();
    size_t op_pos = pos_;
    std::string_view op_name = ParseIdentifier("an op name or 'var'");
    Node node;
    node.name = name;
    std::vector<AttrItem> items;
    std::vector<OutputType> types;  // the annotation, if any, checked once the node exists
    size_t type_pos = std::string_view::npos;
    if (op_name == "var") {
      SkipSpace();
      if (Peek() == '{') items = ParseAttrs();
      for (const AttrItem& item : items) node.extra[item.key] = item.value;
    } else {
      node.op = OpRegistry::Global().Find(op_name);
      if (!node.op) Fail(op_pos, StrCat("unknown op \"", op_name, "\""));
      Expect('(');
      if (!Accept(')')) {
        do {
          node.inputs.push_back(ParseRef());
        } while (Accept(','));
        Expect(')');
      }
      bool composite = node.op == &CompositeOp();
      SkipSpace();
      if (!(composite && BodyFollows()) && Peek() == '{') items = ParseAttrs();
      node.attrs = ParseOpAttrs(*node.op, name, op_pos, items, &node.extra);
      if (Accept(':')) {
        SkipSpace();
        type_pos = pos_;
        types = ParseTypes();
      }
      if (composite) {
        if (!BodyFollows())
          Fail(pos_, StrCat("expected the body of fused \"", name, "\" ({ ... return ... }), got ",
                            Describe()));
        // Bodies nest; a bound keeps hostile input from exhausting the stack.
        if (depth_ + 1 > kMaxBodyDepth)
          Fail(pos_, StrCat("fused bodies nested deeper than ", kMaxBodyDepth));
        TextParser sub(text_, source_);
        sub.pos_ = pos_;
        sub.depth_ = depth_ + 1;
        auto body = std::make_shared<Graph>(sub.ParseBody());
        pos_ = sub.pos_;
        node.attrs = WithCompositeBody(node.attrs, std::move(body));
      }
      std::vector<std::string> want = node.op->InputNames(node.attrs);
      if (want.size() != node.inputs.size()) {
        std::string list;
        for (const auto& w : want) list += (list.empty() ? "" : ", ") + w;
        Fail(op_pos, StrCat(node.op->name(), " \"", name, "\": takes ", want.size(),
                            want.size() == 1 ? " input" : " inputs", " (",
                            list.empty() ? "none" : list, ") but ", node.inputs.size(),
                            node.inputs.size() == 1 ? " was" : " were", " given"));
      }
    }
    if (node.is_variable() && Accept(':')) {
      SkipSpace();
      type_pos = pos_;
      types = ParseTypes();
    }
    uint32_t id = g_.AddNode(std::move(node));
    names_.emplace(std::move(name), id);
    def_pos_.push_back(name_pos);
    if (type_pos != std::string_view::npos) ApplyAnnotation(id, std::move(types), type_pos);
  }

  // After `return`: zero or more references separated by commas.
  void ParseReturn() {
    SkipSpace();
    if (Peek() == '}') return;
    do {
      g_.AddOutput(ParseRef());
    } while (Accept(','));
  }

  // Facts tables exist only where some annotation gave something known.
  void FillFacts() {
    if (any_shape_) g_.shapes.assign(g_.num_entries(), Shape());
    if (any_dtype_) g_.dtypes.assign(g_.num_entries(), DType::kUnknown);
    for (auto& [entry, type] : annotations_) {
      if (any_shape_) g_.shapes[entry] = type.shape;
      if (any_dtype_) g_.dtypes[entry] = type.dtype;
    }
  }

  std::string_view text_;
  std::string_view source_;
  size_t pos_ = 0;
  Graph g_;
  std::unordered_map<std::string, uint32_t> names_;
  std::vector<size_t> def_pos_;  // per node: where its name is defined
  std::vector<std::pair<uint32_t, OutputType>> annotations_;
  bool any_shape_ = false;
  bool any_dtype_ = false;
  int depth_ = 0;  // how many fused bodies enclose this one
  static constexpr int kMaxBodyDepth = 64;
};

}  // namespace

Graph ParseGraph(std::string_view text, std::string_view source_name) {
  return TextParser(text, source_name).Parse();
}

}  // namespace kiln
