// format_util.cpp - helpers shared by kiln's file formats.
#include "format_util.h"

#include <cstdint>

namespace kiln::format {

LineCol Locate(std::string_view text, size_t offset) {
  LineCol lc;
  if (offset > text.size()) offset = text.size();
  for (size_t i = 0; i < offset; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++lc.line;
      lc.col = 1;
    } else if ((c & 0xC0) != 0x80) {
      // Continuation bytes of a UTF-8 sequence do not start a new column.
      ++lc.col;
    }
  }
  return lc;
}

std::string PositionPrefix(std::string_view source, std::string_view text, size_t offset) {
  LineCol lc = Locate(text, offset);
  return StrCat(source, ":", lc.line, ":", lc.col, ": ");
}

size_t Utf8CharLength(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 0;
  unsigned char c = static_cast<unsigned char>(text[pos]);
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (pos + len > text.size()) return 0;
  for (size_t i = 1; i < len; ++i) {
    unsigned char cc = static_cast<unsigned char>(text[pos + i]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool IsExtraKey(std::string_view key) {
  return key.size() > 4 && key.substr(0, 2) == "__" && key.substr(key.size() - 2) == "__";
}

void ParseNodeAttrs(const OpDef& op, const AttrMap& all, Attrs* attrs, AttrMap* extra) {
  AttrMap own;
  for (const auto& [key, value] : all) {
    if (IsExtraKey(key))
      (*extra)[key] = value;
    else
      own[key] = value;
  }
  *attrs = op.attrs.parse(own);
}

AttrList NodeAttrList(const Node& node) {
  AttrList out;
  if (node.op) out = node.op->attrs.print(node.attrs);
  for (const auto& [key, value] : node.extra) out.emplace_back(key, value);
  return out;
}

}  // namespace kiln::format
