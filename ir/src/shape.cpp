// shape.cpp - partial shapes.
#include "kiln/ir/shape.h"

namespace kiln {

bool Shape::IsFullyKnown() const {
  if (!known_rank_) return false;
  for (int64_t d : dims_)
    if (d == kUnknownDim) return false;
  return true;
}

int64_t Shape::NumElements() const {
  if (!IsFullyKnown()) return -1;
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

bool Shape::Merge(const Shape& other) {
  if (!other.known_rank_) return true;
  if (!known_rank_) {
    *this = other;
    return true;
  }
  if (other.dims_.size() != dims_.size()) return false;
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (other.dims_[i] == kUnknownDim) continue;
    if (dims_[i] != kUnknownDim && dims_[i] != other.dims_[i]) return false;
  }
  for (size_t i = 0; i < dims_.size(); ++i)
    if (dims_[i] == kUnknownDim) dims_[i] = other.dims_[i];
  return true;
}

std::string Shape::ToString() const {
  if (!known_rank_) return "?";
  std::string s = "(";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += dims_[i] == kUnknownDim ? std::string("?") : std::to_string(dims_[i]);
  }
  return s + ")";
}

}  // namespace kiln
