// format_util.h - helpers shared by kiln's file formats (text IR, JSON, MXNet JSON).
//
// Internal to ir/. Both graph formats split a node's string attributes the same way (hidden
// "__x__" keys are Node::extra, the rest belong to the op) and report positions the same way
// (1-based line and column, the column counted in characters, not bytes).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "kiln/ir/graph.h"

namespace kiln::format {

struct LineCol {
  int line = 1;
  int col = 1;
};
// The line and column of byte `offset` in `text`. Columns count UTF-8 characters, so that a
// caret under a name containing non-ASCII characters lands where an editor shows it.
LineCol Locate(std::string_view text, size_t offset);

// The two-character escape both formats write for `c` (\" \\ \n \r \t), or nullptr.
inline const char* ShortEscape(char c) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      return nullptr;
  }
}

// "SOURCE:LINE:COL: message".
std::string PositionPrefix(std::string_view source, std::string_view text, size_t offset);

// The length (1-4) of the well-formed UTF-8 character starting at text[pos], or 0 when the
// bytes there are not one (stray continuation byte, truncated or overlong sequence, encoded
// surrogate, code point above U+10FFFF).
size_t Utf8CharLength(std::string_view text, size_t pos);

// Keys that begin and end with "__" and have something between (MXNet's rule for attributes
// no op parameter parser sees: "__shape__", "__init__", "__ctx_group__").
bool IsExtraKey(std::string_view key);

// Splits `all` into the op's attributes (parsed by its AttrCodec into `*attrs`) and the extra
// keys (into `*extra`). The codec's UserError propagates unprefixed: the caller adds where.
void ParseNodeAttrs(const OpDef& op, const AttrMap& all, Attrs* attrs, AttrMap* extra);

// The op's attributes as strings (AttrCodec::print) followed by the node's extra keys.
AttrList NodeAttrList(const Node& node);

}  // namespace kiln::format
