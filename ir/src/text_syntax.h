// text_syntax.h - the lexical rules of kiln's text IR, shared by its printer and parser.
//
// Internal to ir/. The printer decides with these functions when a name or value can be written
// bare; the parser reads exactly what they allow, so the two cannot drift apart.
#pragma once

#include <string>
#include <string_view>

#include "format_util.h"

namespace kiln::text_syntax {

inline bool IsIdentStart(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
inline bool IsIdentChar(char c) {
  return IsIdentStart(c) || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '/';
}
// Characters of a bare attribute key or value.
inline bool IsBareChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '+' || c == '-';
}

// Length of the identifier at the start of `s` (0 if none). "//" starts a comment, so an
// identifier stops before it: `%a/b` is one name, `%a// note` is `%a` and a comment.
inline size_t IdentifierLength(std::string_view s) {
  if (s.empty() || !IsIdentStart(s[0])) return 0;
  size_t n = 1;
  while (n < s.size() && IsIdentChar(s[n]) && !(s[n] == '/' && n + 1 < s.size() && s[n + 1] == '/'))
    ++n;
  return n;
}
inline bool IsIdentifier(std::string_view s) {
  return !s.empty() && IdentifierLength(s) == s.size();
}
inline size_t BareLength(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && IsBareChar(s[n])) ++n;
  return n;
}
inline bool IsBare(std::string_view s) {
  return !s.empty() && BareLength(s) == s.size();
}

// `s` in double quotes with \" \\ \n \r \t escapes (other characters as they are).
inline std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (const char* esc = format::ShortEscape(c))
      out += esc;
    else
      out += c;
  }
  return out + "\"";
}

}  // namespace kiln::text_syntax
