// kiln/ir/json.h - a small JSON library for kiln's own files (MXNet symbol JSON, metadata).
//
//   json::Value v = json::Parse(R"({"a": [1, 2.5, "x"]})", "model.json");
//   int64_t one = v.Find("a")->at(0).as_int();
//   std::string text = json::Print(v, /*indent=*/2);
//
// Semantics.
// - Numbers written without a fraction or exponent that fit in int64 are kept exact as
//   integers (is_int); every other number is a double. Printing a double always shows a '.' or
//   an exponent ("1.0"), so int-ness survives a round trip. NaN and infinities have no JSON
//   form and print as null.
// - Strings are UTF-8. The parser decodes every escape (\uXXXX included, surrogate pairs joined
//   into one code point) and rejects invalid UTF-8, lone surrogates and raw control characters.
// - Objects keep their members in file order; a key may appear only once.
// - Parse errors are UserErrors "SOURCE:LINE:COL: message" (columns count characters). Nesting
//   deeper than ParseOptions::max_depth is an error, so hostile input cannot exhaust the stack.
// - Accessors of the wrong type (as_string() on a number) are InternalErrors: callers that read
//   user files check the type first (is_string()) and report a UserError naming the field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln::json {

class Value;
using Array = std::vector<Value>;
using Member = std::pair<std::string, Value>;
using Object = std::vector<Member>;

enum class Type : uint8_t { kNull, kBool, kInt, kDouble, kString, kArray, kObject };
// "null", "a boolean", "an integer", "a number", "a string", "an array", "an object".
const char* TypeName(Type t);

class Value {
 public:
  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : type_(Type::kBool), bool_(b) {}
  // Any integer type (not bool); uint64 values above INT64_MAX wrap.
  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) Value(I i)
      : type_(Type::kInt), int_(int64_t(i)) {}
  Value(double d) : type_(Type::kDouble), double_(d) {}
  Value(std::string s) : type_(Type::kString), string_(std::move(s)) {}
  Value(std::string_view s) : type_(Type::kString), string_(s) {}
  Value(const char* s) : type_(Type::kString), string_(s) {}
  Value(Array a) : type_(Type::kArray), array_(std::move(a)) {}
  Value(Object o) : type_(Type::kObject), object_(std::move(o)) {}
  static Value MakeArray() { return Value(Array{}); }
  static Value MakeObject() { return Value(Object{}); }

  Type type() const { return type_; }
  bool is_null() const { return type() == Type::kNull; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_int() const { return type() == Type::kInt; }
  bool is_double() const { return type() == Type::kDouble; }
  bool is_number() const { return is_int() || is_double(); }
  bool is_string() const { return type() == Type::kString; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_object() const { return type() == Type::kObject; }

  bool as_bool() const;
  int64_t as_int() const;
  double as_double() const;  // an integer converts
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& as_object() const;
  Object& as_object();

  // Arrays: element i (InternalError when out of range); objects and arrays: member count.
  const Value& at(size_t i) const;
  size_t size() const;
  void push_back(Value v) { as_array().push_back(std::move(v)); }

  // Objects: the member named `key`, or nullptr.
  const Value* Find(std::string_view key) const;
  // Objects: sets `key`, replacing its value in place or appending it. Returns the value.
  Value& Set(std::string key, Value v);

  bool operator==(const Value& o) const = default;

 private:
  void Expect(Type want) const;  // InternalError unless type() == want

  // Plain members rather than a std::variant: GCC 12 reports false "maybe uninitialized"
  // warnings wherever a variant holding strings and vectors is moved. Only the member named by
  // type_ is meaningful; the others stay default, so the defaulted == compares correctly.
  Type type_ = Type::kNull;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  Array array_;
  Object object_;
};

struct ParseOptions {
  int max_depth = 256;  // arrays and objects nested deeper than this are an error
};

// Parses one JSON value (surrounding whitespace allowed, a leading UTF-8 BOM skipped).
Value Parse(std::string_view text, std::string_view source = "<input>",
            const ParseOptions& options = {});

// Compact ("{"a":[1,2]}") when indent < 0; otherwise objects one member per line indented by
// `indent` spaces per level, and arrays that hold no object on one line ("[[0, 0, 0], [1, 0,
// 0]]", as MXNet writes its node inputs).
std::string Print(const Value& v, int indent = -1);

// `s` as a JSON string literal, quotes included.
std::string Quote(std::string_view s);

}  // namespace kiln::json
