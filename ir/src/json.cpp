// json.cpp - the JSON value type, parser and printer.
#include "kiln/ir/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

#include "format_util.h"
#include "kiln/runtime/error.h"

namespace kiln::json {

const char* TypeName(Type t) {
  switch (t) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "a boolean";
    case Type::kInt:
      return "an integer";
    case Type::kDouble:
      return "a number";
    case Type::kString:
      return "a string";
    case Type::kArray:
      return "an array";
    case Type::kObject:
      return "an object";
  }
  return "?";
}

void Value::Expect(Type want) const {
  KILN_INTERNAL_CHECK(type_ == want, "JSON value is ", TypeName(type_), ", read as ",
                      TypeName(want));
}

bool Value::as_bool() const {
  Expect(Type::kBool);
  return bool_;
}
int64_t Value::as_int() const {
  Expect(Type::kInt);
  return int_;
}
double Value::as_double() const {
  if (type_ == Type::kInt) return double(int_);
  Expect(Type::kDouble);
  return double_;
}
const std::string& Value::as_string() const {
  Expect(Type::kString);
  return string_;
}
const Array& Value::as_array() const {
  Expect(Type::kArray);
  return array_;
}
Array& Value::as_array() {
  Expect(Type::kArray);
  return array_;
}
const Object& Value::as_object() const {
  Expect(Type::kObject);
  return object_;
}
Object& Value::as_object() {
  Expect(Type::kObject);
  return object_;
}

const Value& Value::at(size_t i) const {
  const Array& a = as_array();
  KILN_INTERNAL_CHECK(i < a.size(), "JSON array index ", i, " out of range (size ", a.size(), ")");
  return a[i];
}

size_t Value::size() const {
  if (is_object()) return as_object().size();
  return as_array().size();
}

const Value* Value::Find(std::string_view key) const {
  for (const Member& m : as_object())
    if (m.first == key) return &m.second;
  return nullptr;
}

Value& Value::Set(std::string key, Value v) {
  Object& o = as_object();
  for (Member& m : o)
    if (m.first == key) return m.second = std::move(v);
  o.emplace_back(std::move(key), std::move(v));
  return o.back().second;
}

// --- Parser. ---
namespace {

class Parser {
 public:
  Parser(std::string_view text, std::string_view source, const ParseOptions& options)
      : text_(text), source_(source), options_(options) {}

  Value ParseDocument() {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    SkipSpace();
    Value v = ParseValue(0);
    SkipSpace();
    if (pos_ < text_.size()) Fail(pos_, "unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void Fail(size_t at, const std::string& message) const {
    throw UserError(format::PositionPrefix(source_, text_, at) + message);
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }

  void SkipSpace() {
    while (!AtEnd()) {
      char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  // A printable description of the character at `pos_` for messages.
  std::string Describe() const {
    if (AtEnd()) return "the end of the input";
    unsigned char c = static_cast<unsigned char>(text_[pos_]);
    if (c >= 0x20 && c < 0x7f) return StrCat("'", char(c), "'");
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02X", c);
    return StrCat("byte ", buf);
  }

  Value ParseValue(int depth) {
    switch (Peek()) {
      case '{':
        return ParseObject(depth + 1);
      case '[':
        return ParseArray(depth + 1);
      case '"':
        return Value(ParseString());
      case 't':
        return ParseWord("true", Value(true));
      case 'f':
        return ParseWord("false", Value(false));
      case 'n':
        return ParseWord("null", Value());
      default:
        if (Peek() == '-' || (Peek() >= '0' && Peek() <= '9')) return ParseNumber();
        Fail(pos_, StrCat("expected a JSON value, got ", Describe()));
    }
  }

  Value ParseWord(std::string_view word, Value v) {
    if (text_.substr(pos_, word.size()) != word)
      Fail(pos_, StrCat("expected a JSON value, got ", Describe()));
    pos_ += word.size();
    return v;
  }

  void CheckDepth(int depth) {
    if (depth > options_.max_depth)
      Fail(pos_, StrCat("arrays and objects nested deeper than ", options_.max_depth, " levels"));
  }

  Value ParseArray(int depth) {
    CheckDepth(depth);
    ++pos_;  // '['
    Array a;
    SkipSpace();
    if (Peek() == ']') {
      ++pos_;
      return Value(std::move(a));
    }
    while (true) {
      SkipSpace();
      a.push_back(ParseValue(depth));
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') {
        ++pos_;
        return Value(std::move(a));
      }
      Fail(pos_, StrCat("expected ',' or ']' after an array element, got ", Describe()));
    }
  }

  Value ParseObject(int depth) {
    CheckDepth(depth);
    ++pos_;  // '{'
    Object o;
    std::unordered_set<std::string> keys;
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
      return Value(std::move(o));
    }
    while (true) {
      SkipSpace();
      if (Peek() != '"') Fail(pos_, StrCat("expected a string key, got ", Describe()));
      size_t key_pos = pos_;
      std::string key = ParseString();
      if (!keys.insert(key).second) Fail(key_pos, StrCat("duplicate key ", Quote(key)));
      SkipSpace();
      if (Peek() != ':') Fail(pos_, StrCat("expected ':' after a key, got ", Describe()));
      ++pos_;
      SkipSpace();
      Value v = ParseValue(depth);
      o.emplace_back(std::move(key), std::move(v));
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        return Value(std::move(o));
      }
      Fail(pos_, StrCat("expected ',' or '}' after an object member, got ", Describe()));
    }
  }

  Value ParseNumber() {
    size_t start = pos_;
    auto digit = [&] { return Peek() >= '0' && Peek() <= '9'; };
    if (Peek() == '-') ++pos_;
    if (!digit()) Fail(pos_, "expected a digit in a number");
    if (Peek() == '0') {
      ++pos_;
      if (digit()) Fail(start, "a number may not start with 0 followed by digits");
    } else {
      while (digit()) ++pos_;
    }
    bool integral = true;
    if (Peek() == '.') {
      integral = false;
      ++pos_;
      if (!digit()) Fail(pos_, "expected a digit after '.' in a number");
      while (digit()) ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      integral = false;
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!digit()) Fail(pos_, "expected a digit in the exponent of a number");
      while (digit()) ++pos_;
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (integral) {
      int64_t i;
      auto [p, ec] = std::from_chars(first, last, i);
      if (ec == std::errc() && p == last) return Value(i);
      // Too large for int64: fall through to a double, as JavaScript would read it.
    }
    double d;
    auto [p, ec] = std::from_chars(first, last, d);
    if (ec == std::errc::result_out_of_range) {
      // Underflow reads as (nearly) zero, which is harmless; overflow has no finite value.
      double v = std::strtod(std::string(first, last).c_str(), nullptr);
      if (std::isinf(v)) Fail(start, "number out of range");
      return Value(v);
    }
    if (ec != std::errc() || p != last) Fail(start, "invalid number");
    return Value(d);
  }

  static void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  // Reads the 4 hex digits of a \u escape at pos_ (just after "\u").
  uint32_t ParseHex4(size_t escape_pos) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = Peek();
      uint32_t d;
      if (c >= '0' && c <= '9')
        d = uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = uint32_t(c - 'A' + 10);
      else
        Fail(escape_pos, "a \\u escape needs 4 hex digits");
      v = v * 16 + d;
      ++pos_;
    }
    return v;
  }

  // Copies one raw UTF-8 character starting at pos_, which must be well formed.
  void CopyUtf8(std::string& out) {
    size_t len = format::Utf8CharLength(text_, pos_);
    if (len == 0)
      Fail(pos_, StrCat("invalid UTF-8 in a string (", Describe(),
                        ": a stray, truncated, overlong, surrogate or out-of-range sequence)"));
    out.append(text_.substr(pos_, len));
    pos_ += len;
  }

  std::string ParseString() {
    size_t open = pos_;
    ++pos_;  // '"'
    std::string out;
    while (true) {
      if (AtEnd()) Fail(open, "unterminated string");
      char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20)
        Fail(pos_, "raw control character in a string (write it as an escape)");
      if (c != '\\') {
        CopyUtf8(out);
        continue;
      }
      size_t esc = pos_;
      ++pos_;
      if (AtEnd()) Fail(open, "unterminated string");
      char e = text_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
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
        case 'u': {
          uint32_t cp = ParseHex4(esc);
          if (cp >= 0xDC00 && cp <= 0xDFFF)
            Fail(esc, "a low surrogate \\u escape without a high surrogate before it");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            // A high surrogate must be followed by "\u" and a low surrogate.
            if (text_.substr(pos_, 2) != "\\u")
              Fail(esc, "a high surrogate \\u escape without a low surrogate after it");
            size_t esc2 = pos_;
            pos_ += 2;
            uint32_t lo = ParseHex4(esc2);
            if (lo < 0xDC00 || lo > 0xDFFF)
              Fail(esc2, "a high surrogate \\u escape without a low surrogate after it");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          pos_ = esc;
          Fail(esc, StrCat("invalid escape \\", (static_cast<unsigned char>(e) >= 0x20 &&
                                                 static_cast<unsigned char>(e) < 0x7f)
                                                    ? std::string(1, e)
                                                    : std::string("?")));
      }
    }
  }

  std::string_view text_;
  std::string_view source_;
  const ParseOptions& options_;
  size_t pos_ = 0;
};

// --- Printer. ---
void PrintNumber(double d, std::string& out) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view s(buf, size_t(p - buf));
  out += s;
  // Keep doubles distinguishable from integers when read back.
  if (s.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

bool HoldsObject(const Value& v) {
  if (v.is_object()) return true;
  if (!v.is_array()) return false;
  for (const Value& e : v.as_array())
    if (HoldsObject(e)) return true;
  return false;
}

void PrintValue(const Value& v, int indent, int level, std::string& out) {
  auto newline = [&](int lvl) {
    out += '\n';
    out.append(size_t(indent) * size_t(lvl), ' ');
  };
  switch (v.type()) {
    case Type::kNull:
      out += "null";
      return;
    case Type::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Type::kInt:
      out += std::to_string(v.as_int());
      return;
    case Type::kDouble:
      PrintNumber(v.as_double(), out);
      return;
    case Type::kString:
      out += Quote(v.as_string());
      return;
    case Type::kArray: {
      const Array& a = v.as_array();
      bool multiline = indent >= 0 && HoldsObject(v);
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += indent >= 0 && !multiline ? ", " : ",";
        if (multiline) newline(level + 1);
        PrintValue(a[i], indent, level + 1, out);
      }
      if (multiline && !a.empty()) newline(level);
      out += ']';
      return;
    }
    case Type::kObject: {
      const Object& o = v.as_object();
      out += '{';
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out += ',';
        if (indent >= 0) newline(level + 1);
        out += Quote(o[i].first);
        out += indent >= 0 ? ": " : ":";
        PrintValue(o[i].second, indent, level + 1, out);
      }
      if (indent >= 0 && !o.empty()) newline(level);
      out += '}';
      return;
    }
  }
}

}  // namespace

Value Parse(std::string_view text, std::string_view source, const ParseOptions& options) {
  return Parser(text, source, options).ParseDocument();
}

std::string Print(const Value& v, int indent) {
  std::string out;
  PrintValue(v, indent, 0, out);
  return out;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      // Invalid UTF-8 has no JSON form: it becomes U+FFFD, so the output always parses.
      size_t len = format::Utf8CharLength(s, i);
      if (len == 0) {
        out += "\xEF\xBF\xBD";
      } else {
        out.append(s.substr(i, len));
        i += len - 1;
      }
      continue;
    }
    if (const char* esc = format::ShortEscape(c)) {
      out += esc;
    } else if (c == '\b') {
      out += "\\b";
    } else if (c == '\f') {
      out += "\\f";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace kiln::json
