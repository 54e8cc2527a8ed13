// attrs.cpp - string forms of attribute values (MXNet's spellings).
#include "kiln/ir/attrs.h"

#include <charconv>
#include <cmath>

namespace kiln::attr_text {

namespace {
std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "(a, b, c)" / "[a,b]" / "(a,)" / "a" into its trimmed elements.
bool SplitTuple(std::string_view text, std::vector<std::string_view>* parts) {
  text = Trim(text);
  if (!text.empty() && (text.front() == '(' || text.front() == '[')) {
    char close = text.front() == '(' ? ')' : ']';
    if (text.back() != close) return false;
    text = Trim(text.substr(1, text.size() - 2));
    if (text.empty()) return true;
    if (text.back() == ',') text = Trim(text.substr(0, text.size() - 1));
  }
  if (text.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view part = Trim(text.substr(start, comma - start));
    if (part.empty()) return false;
    parts->push_back(part);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return true;
}
}  // namespace

bool Parse(std::string_view text, bool* out) {
  text = Trim(text);
  if (text == "True" || text == "true" || text == "1") {
    *out = true;
    return true;
  }
  if (text == "False" || text == "false" || text == "0") {
    *out = false;
    return true;
  }
  return false;
}

bool Parse(std::string_view text, int64_t* out) {
  text = Trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  if (ec == std::errc() && p == text.data() + text.size() && !text.empty()) return true;
  // MXNet writes some integer attributes as floats ("2.0"); accept exact integral floats.
  double d;
  auto [q, ec2] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (ec2 != std::errc() || q != text.data() + text.size() || text.empty()) return false;
  if (d != std::floor(d) || std::fabs(d) > 9.0e15) return false;
  *out = int64_t(d);
  return true;
}

bool Parse(std::string_view text, int* out) {
  int64_t v;
  if (!Parse(text, &v) || v < INT32_MIN || v > INT32_MAX) return false;
  *out = int(v);
  return true;
}

bool Parse(std::string_view text, double* out) {
  text = Trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text == "inf" || text == "Inf") {
    *out = INFINITY;
    return true;
  }
  if (text == "-inf" || text == "-Inf") {
    *out = -INFINITY;
    return true;
  }
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && p == text.data() + text.size() && !text.empty();
}

bool Parse(std::string_view text, float* out) {
  double d;
  if (!Parse(text, &d)) return false;
  *out = float(d);
  return true;
}

bool Parse(std::string_view text, std::string* out) {
  *out = std::string(text);
  return true;
}

bool Parse(std::string_view text, std::vector<int64_t>* out) {
  std::vector<std::string_view> parts;
  if (!SplitTuple(text, &parts)) return false;
  out->clear();
  for (auto part : parts) {
    int64_t v;
    // MXNet prints unknown tuple dims as "None" in some attributes (e.g. slice's begin/end);
    // tuples of plain integers do not accept it.
    if (!Parse(part, &v)) return false;
    out->push_back(v);
  }
  return true;
}

bool Parse(std::string_view text, std::vector<double>* out) {
  std::vector<std::string_view> parts;
  if (!SplitTuple(text, &parts)) return false;
  out->clear();
  for (auto part : parts) {
    double v;
    if (!Parse(part, &v)) return false;
    out->push_back(v);
  }
  return true;
}

bool Parse(std::string_view text, std::vector<std::optional<int64_t>>* out) {
  std::vector<std::string_view> parts;
  if (!SplitTuple(text, &parts)) return false;
  out->clear();
  for (auto part : parts) {
    if (part == "None" || part == "none") {
      out->push_back(std::nullopt);
      continue;
    }
    int64_t v;
    if (!Parse(part, &v)) return false;
    out->push_back(v);
  }
  return true;
}

std::string Print(bool v) {
  return v ? "True" : "False";
}
std::string Print(int v) {
  return std::to_string(v);
}
std::string Print(int64_t v) {
  return std::to_string(v);
}

std::string Print(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, p);
}

std::string Print(float v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, p);
}

std::string Print(const std::string& v) {
  return v;
}

std::string Print(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

std::string Print(const std::vector<double>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Print(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

std::string Print(const std::vector<std::optional<int64_t>>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Print(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

const char* TypeName(const bool*) {
  return "a boolean";
}
const char* TypeName(const int*) {
  return "an integer";
}
const char* TypeName(const int64_t*) {
  return "an integer";
}
const char* TypeName(const double*) {
  return "a number";
}
const char* TypeName(const float*) {
  return "a number";
}
const char* TypeName(const std::string*) {
  return "a string";
}
const char* TypeName(const std::vector<int64_t>*) {
  return "a tuple of integers";
}
const char* TypeName(const std::vector<double>*) {
  return "a tuple of numbers";
}
const char* TypeName(const std::vector<std::optional<int64_t>>*) {
  return "a tuple of integers or None";
}

}  // namespace kiln::attr_text
