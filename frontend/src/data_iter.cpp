// data_iter.cpp - mini-batches over in-memory arrays.
#include "kiln/frontend/data_iter.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace kiln {

namespace {
// Shape of a batch of `rows` samples of `t`.
std::vector<int64_t> BatchShape(const Tensor& t, int64_t rows) {
  std::vector<int64_t> s = t.shape();
  s[0] = rows;
  return s;
}
}  // namespace

DataIter::DataIter(Tensor data, Tensor label, int64_t batch_size, bool shuffle, uint64_t seed,
                   LastBatch last)
    : data_(std::move(data)),
      label_(std::move(label)),
      n_(data_.ndim() ? data_.dim(0) : 0),
      batch_size_(batch_size),
      shuffle_(shuffle),
      last_(last),
      rng_(seed) {
  if (data_.ndim() == 0 || label_.ndim() == 0 || label_.dim(0) != n_)
    throw UserError(StrCat("DataIter: data ", data_.TypeString(), " and label ",
                           label_.TypeString(), " must have the same first dimension"));
  if (batch_size_ < 1 || batch_size_ > n_)
    throw UserError(StrCat("DataIter: batch size ", batch_size_, " must be in 1..", n_));
  batch_data_ = Tensor::Empty(BatchShape(data_, batch_size_), data_.dtype());
  batch_label_ = Tensor::Empty(BatchShape(label_, batch_size_), label_.dtype());
  order_.resize(size_t(n_));
  Reset();
}

void DataIter::Reset() {
  std::iota(order_.begin(), order_.end(), 0);
  if (shuffle_) std::shuffle(order_.begin(), order_.end(), rng_);
  cursor_ = 0;
  pad_ = 0;
}

bool DataIter::Next() {
  if (cursor_ >= n_) return false;
  int64_t remaining = n_ - cursor_;
  if (remaining < batch_size_ && last_ == LastBatch::kDiscard) return false;
  pad_ = std::max<int64_t>(0, batch_size_ - remaining);
  size_t drow = data_.nbytes() / size_t(n_), lrow = label_.nbytes() / size_t(n_);
  auto* dsrc = static_cast<const char*>(data_.raw_data());
  auto* lsrc = static_cast<const char*>(label_.raw_data());
  auto* ddst = static_cast<char*>(batch_data_.raw_data());
  auto* ldst = static_cast<char*>(batch_label_.raw_data());
  for (int64_t b = 0; b < batch_size_; ++b) {
    int64_t sample = order_[size_t((cursor_ + b) % n_)];
    std::memcpy(ddst + size_t(b) * drow, dsrc + size_t(sample) * drow, drow);
    std::memcpy(ldst + size_t(b) * lrow, lsrc + size_t(sample) * lrow, lrow);
  }
  cursor_ += batch_size_;
  return true;
}

}  // namespace kiln
