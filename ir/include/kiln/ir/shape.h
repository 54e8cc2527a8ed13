// kiln/ir/shape.h - tensor shapes as shape inference sees them.
//
// A Shape is either of unknown rank, or a list of dimensions each of which is a non-negative
// extent or unknown (kUnknownDim). Shape inference starts from partial shapes and refines them
// with Merge, which never loses information and reports a conflict instead of overwriting.
// A 0-d shape (rank 0, no dims) is a scalar with one element; a dim of 0 makes an empty tensor.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace kiln {

class Shape {
 public:
  static constexpr int64_t kUnknownDim = -1;

  Shape() = default;  // unknown rank
  Shape(std::initializer_list<int64_t> dims) : known_rank_(true), dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : known_rank_(true), dims_(std::move(dims)) {}
  static Shape UnknownRank() { return Shape(); }
  static Shape UnknownDims(int ndim) { return Shape(std::vector<int64_t>(ndim, kUnknownDim)); }
  static Shape Scalar() { return Shape(std::vector<int64_t>{}); }

  bool rank_known() const { return known_rank_; }
  // Rank; only meaningful when rank_known().
  int ndim() const { return int(dims_.size()); }
  int64_t operator[](int i) const { return dims_[size_t(i)]; }
  int64_t& operator[](int i) { return dims_[size_t(i)]; }
  const std::vector<int64_t>& dims() const { return dims_; }
  bool dim_known(int i) const { return dims_[size_t(i)] != kUnknownDim; }

  // Rank and every dimension known.
  bool IsFullyKnown() const;
  // Number of elements; -1 if not fully known.
  int64_t NumElements() const;

  // Combines the information of `other` into this shape. Returns false on a conflict (different
  // ranks or different known dims), leaving this shape unchanged.
  bool Merge(const Shape& other);

  // "(100, 784)", "(?, 784)" for an unknown dim, "()" for a scalar, "?" for unknown rank.
  std::string ToString() const;

  bool operator==(const Shape& o) const = default;

 private:
  bool known_rank_ = false;
  std::vector<int64_t> dims_;
};

}  // namespace kiln
