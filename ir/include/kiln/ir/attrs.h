// kiln/ir/attrs.h - typed operator attributes, parsed from and printed to strings.
//
// Every op declares its attributes once, as a plain struct whose member initialisers are the
// defaults, plus a static Describe() that names each field and says how to validate it:
//
//   struct FullyConnectedAttrs {
//     int64_t num_hidden = 0;
//     bool no_bias = false;
//     bool flatten = true;
//     static void Describe(AttrSchema<FullyConnectedAttrs>& s) {
//       s.Field("num_hidden", &FullyConnectedAttrs::num_hidden).Required().Min(1);
//       s.Field("no_bias", &FullyConnectedAttrs::no_bias);
//       s.Field("flatten", &FullyConnectedAttrs::flatten);
//     }
//   };
//
// The string forms are MXNet's, so that MXNet JSON loads: bools "True"/"False" (also "true",
// "1", ...), integers, floats, tuples "(3, 3)", optionals "None", enums by name. Printing gives
// the required fields and those that differ from the default, in declaration order; parsing
// what was printed gives back an equal struct.
//
// A node holds its attributes as an `Attrs`: an immutable, type-erased, shared value, read back
// with `attrs.Get<FullyConnectedAttrs>()`.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "kiln/runtime/error.h"

namespace kiln {

// Attributes as strings, by name, as they appear in JSON and in the text IR.
using AttrMap = std::map<std::string, std::string>;
// Printed attributes in declaration order.
using AttrList = std::vector<std::pair<std::string, std::string>>;

// An immutable attribute struct of any type. Empty for variables and attribute-less ops.
class Attrs {
 public:
  Attrs() = default;
  template <class A>
  static Attrs Make(A value) {
    Attrs a;
    a.value_ = std::make_shared<const A>(std::move(value));
    a.type_ = &typeid(A);
    return a;
  }
  bool has_value() const { return value_ != nullptr; }
  template <class A>
  const A& Get() const {
    KILN_INTERNAL_CHECK(type_ != nullptr && *type_ == typeid(A), "attributes of type ",
                        type_ ? type_->name() : "none", " read as ", typeid(A).name());
    return *static_cast<const A*>(value_.get());
  }

 private:
  std::shared_ptr<const void> value_;
  const std::type_info* type_ = nullptr;
};

// An attribute struct with no fields.
struct NoAttrs {
  template <class S>
  static void Describe(S&) {}
};

// --- String forms of field values. Parse returns false when `text` is not a valid value. ---
namespace attr_text {
bool Parse(std::string_view text, bool* out);
bool Parse(std::string_view text, int* out);
bool Parse(std::string_view text, int64_t* out);
bool Parse(std::string_view text, double* out);
bool Parse(std::string_view text, float* out);
bool Parse(std::string_view text, std::string* out);
bool Parse(std::string_view text, std::vector<int64_t>* out);  // "(1, 2)", "[1,2]", "(1,)", "3"
bool Parse(std::string_view text, std::vector<double>* out);
// A tuple whose elements may be None: "(0, None, -1)" (slice's begin, end and step).
bool Parse(std::string_view text, std::vector<std::optional<int64_t>>* out);
template <class V>
bool Parse(std::string_view text, std::optional<V>* out) {
  if (text == "None" || text == "none" || text.empty()) {
    out->reset();
    return true;
  }
  V v{};
  if (!Parse(text, &v)) return false;
  *out = std::move(v);
  return true;
}
std::string Print(bool v);  // "True" / "False"
std::string Print(int v);
std::string Print(int64_t v);
std::string Print(double v);  // shortest text that parses back to the same double
std::string Print(float v);
std::string Print(const std::string& v);
std::string Print(const std::vector<int64_t>& v);  // "(1, 2)"; "(1,)" for one element
std::string Print(const std::vector<double>& v);
std::string Print(const std::vector<std::optional<int64_t>>& v);  // "(0, None)"; "(None,)"
template <class V>
std::string Print(const std::optional<V>& v) {
  return v ? Print(*v) : std::string("None");
}
const char* TypeName(const bool*);
const char* TypeName(const int*);
const char* TypeName(const int64_t*);
const char* TypeName(const double*);
const char* TypeName(const float*);
const char* TypeName(const std::string*);
const char* TypeName(const std::vector<int64_t>*);
const char* TypeName(const std::vector<double>*);
const char* TypeName(const std::vector<std::optional<int64_t>>*);
template <class V>
const char* TypeName(const std::optional<V>*) {
  return TypeName(static_cast<const V*>(nullptr));
}
// Numeric view of a value for Min/Max checks: every element of a tuple, the value of a number,
// nothing for others (and nothing for an empty optional).
inline void Numbers(const bool&, std::vector<double>*) {}
inline void Numbers(const std::string&, std::vector<double>*) {}
inline void Numbers(int v, std::vector<double>* out) {
  out->push_back(v);
}
inline void Numbers(int64_t v, std::vector<double>* out) {
  out->push_back(double(v));
}
inline void Numbers(double v, std::vector<double>* out) {
  out->push_back(v);
}
inline void Numbers(float v, std::vector<double>* out) {
  out->push_back(v);
}
inline void Numbers(const std::vector<int64_t>& v, std::vector<double>* out) {
  for (int64_t x : v) out->push_back(double(x));
}
inline void Numbers(const std::vector<double>& v, std::vector<double>* out) {
  out->insert(out->end(), v.begin(), v.end());
}
inline void Numbers(const std::vector<std::optional<int64_t>>& v, std::vector<double>* out) {
  for (const auto& x : v)
    if (x) out->push_back(double(*x));
}
template <class V>
void Numbers(const std::optional<V>& v, std::vector<double>* out) {
  if (v) Numbers(*v, out);
}
}  // namespace attr_text

// The description of one attribute struct A: its fields and cross-field checks.
template <class A>
class AttrSchema {
 public:
  // Everything the schema knows about one field, type-erased over the field's type.
  struct FieldInfo {
    std::string name;
    std::string type_name;
    bool required = false;
    // Parses text into the field of `a`; returns an error message (without the field name) or "".
    std::function<std::string(std::string_view text, A& a)> parse;
    std::function<std::string(const A& a)> print;
    // Returns an error message (without the field name) or "".
    std::vector<std::function<std::string(const A& a)>> checks;
  };

  // Builder for one field; V is the member's type.
  template <class V>
  class FieldBuilder {
   public:
    FieldBuilder(FieldInfo* info, V A::*member) : info_(info), member_(member) {}
    // The field must be given; the struct's initialiser is then only a placeholder.
    FieldBuilder& Required() {
      info_->required = true;
      return *this;
    }
    // Every number in the value (each tuple element) is >= lo.
    FieldBuilder& Min(double lo) {
      auto m = member_;
      info_->checks.push_back([m, lo](const A& a) -> std::string {
        std::vector<double> nums;
        attr_text::Numbers(a.*m, &nums);
        for (double x : nums)
          if (x < lo) return StrCat("= ", attr_text::Print(a.*m), " is below the minimum ", lo);
        return "";
      });
      return *this;
    }
    // Every number in the value (each tuple element) is <= hi.
    FieldBuilder& Max(double hi) {
      auto m = member_;
      info_->checks.push_back([m, hi](const A& a) -> std::string {
        std::vector<double> nums;
        attr_text::Numbers(a.*m, &nums);
        for (double x : nums)
          if (x > hi) return StrCat("= ", attr_text::Print(a.*m), " is above the maximum ", hi);
        return "";
      });
      return *this;
    }
    // The value is one of `allowed` (for string fields).
    FieldBuilder& OneOf(std::vector<std::string> allowed) {
      auto m = member_;
      info_->checks.push_back([m, allowed](const A& a) -> std::string {
        std::string text = attr_text::Print(a.*m);
        for (const auto& s : allowed)
          if (s == text) return "";
        std::string list;
        for (const auto& s : allowed) list += (list.empty() ? "" : ", ") + s;
        return StrCat("= \"", text, "\" is not one of: ", list);
      });
      return *this;
    }

   private:
    FieldInfo* info_;
    V A::*member_;
  };

  // Declares a field of a type attr_text can parse and print.
  template <class V>
  FieldBuilder<V> Field(const char* name, V A::*member) {
    FieldInfo& f = fields_.emplace_back();
    f.name = name;
    f.type_name = attr_text::TypeName(static_cast<const V*>(nullptr));
    f.parse = [member, tn = f.type_name](std::string_view text, A& a) -> std::string {
      if (attr_text::Parse(text, &(a.*member))) return "";
      return StrCat("expected ", tn, ", got \"", text, "\"");
    };
    f.print = [member](const A& a) { return attr_text::Print(a.*member); };
    return FieldBuilder<V>(&f, member);
  }

  // Declares a field of enum type E with its names (the first is printed; others are aliases).
  template <class E>
  FieldBuilder<E> Enum(const char* name, E A::*member,
                       std::vector<std::pair<std::string, E>> names) {
    FieldInfo& f = fields_.emplace_back();
    f.name = name;
    std::string list;
    for (const auto& [n, e] : names) list += (list.empty() ? "" : ", ") + n;
    f.type_name = "one of: " + list;
    f.parse = [member, names, list](std::string_view text, A& a) -> std::string {
      for (const auto& [n, e] : names)
        if (n == text) {
          a.*member = e;
          return "";
        }
      return StrCat("\"", text, "\" is not one of: ", list);
    };
    f.print = [member, names](const A& a) -> std::string {
      for (const auto& [n, e] : names)
        if (e == a.*member) return n;
      return "?";
    };
    return FieldBuilder<E>(&f, member);
  }

  // A check across fields; returns an error message or "".
  void Check(std::function<std::string(const A&)> check) { checks_.push_back(std::move(check)); }

  const std::vector<FieldInfo>& fields() const { return fields_; }
  const std::vector<std::function<std::string(const A&)>>& checks() const { return checks_; }

 private:
  // A deque-like stability is needed for FieldBuilder pointers; Describe() finishes each
  // builder before declaring the next field, so a vector is enough.
  std::vector<FieldInfo> fields_;
  std::vector<std::function<std::string(const A&)>> checks_;
};

// Type-erased parse/print of one op's attribute struct, as stored in the op registry.
struct AttrCodec {
  // Parses attributes given as strings. Throws UserError naming the attribute (but not the node:
  // the caller adds that) for an unknown name, a bad value, a failed check or a missing field.
  std::function<Attrs(const AttrMap&)> parse;
  // Required fields and fields that differ from the default, in declaration order.
  std::function<AttrList(const Attrs&)> print;
  // Field names in declaration order, for messages and documentation.
  std::vector<std::string> field_names;

  template <class A>
  static AttrCodec For();
};

template <class A>
AttrCodec AttrCodec::For() {
  auto schema = std::make_shared<AttrSchema<A>>();
  A::Describe(*schema);
  AttrCodec codec;
  for (const auto& f : schema->fields()) codec.field_names.push_back(f.name);
  codec.parse = [schema](const AttrMap& kv) -> Attrs {
    A a{};
    for (const auto& [key, text] : kv) {
      const typename AttrSchema<A>::FieldInfo* field = nullptr;
      for (const auto& f : schema->fields())
        if (f.name == key) field = &f;
      if (!field) {
        std::string names;
        for (const auto& f : schema->fields()) names += (names.empty() ? "" : ", ") + f.name;
        throw UserError(StrCat("unknown attribute \"", key,
                               "\" (attributes: ", names.empty() ? "none" : names, ")"));
      }
      std::string err = field->parse(text, a);
      if (!err.empty()) throw UserError(StrCat("attribute ", key, ": ", err));
    }
    for (const auto& f : schema->fields()) {
      if (f.required && !kv.count(f.name))
        throw UserError(StrCat("missing required attribute ", f.name));
      for (const auto& check : f.checks) {
        std::string err = check(a);
        if (!err.empty()) throw UserError(StrCat("attribute ", f.name, " ", err));
      }
    }
    for (const auto& check : schema->checks()) {
      std::string err = check(a);
      if (!err.empty()) throw UserError(StrCat("attributes: ", err));
    }
    return Attrs::Make(std::move(a));
  };
  codec.print = [schema](const Attrs& attrs) -> AttrList {
    const A& a = attrs.Get<A>();
    const A defaults{};
    AttrList out;
    for (const auto& f : schema->fields()) {
      std::string text = f.print(a);
      if (f.required || text != f.print(defaults)) out.emplace_back(f.name, std::move(text));
    }
    return out;
  };
  return codec;
}

}  // namespace kiln
