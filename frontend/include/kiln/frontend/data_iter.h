// kiln/frontend/data_iter.h - mini-batches over in-memory arrays (MXNet's NDArrayIter).
//
//   DataIter it(train.images.Reshaped({n, 1, 28, 28}), train.labels, 100, /*shuffle=*/true);
//   for (it.Reset(); it.Next();) {
//     exec.arg_dict()["data"] = ...;          // copy it.data() / it.label() into the executor
//   }
//
// Each epoch (Reset) draws a new permutation from the seeded generator when shuffling, so a run
// is reproducible. The last, partial batch is kept (with `pad` counting the missing samples,
// which are filled from the start of the permutation, as MXNet's last_batch_handle="pad") or
// discarded.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "kiln/runtime/tensor.h"

namespace kiln {

class DataIter {
 public:
  enum class LastBatch { kPad, kDiscard };
  // `data` (N, ...) and `label` (N) or (N, ...) of any dtype; UserError if N differs.
  DataIter(Tensor data, Tensor label, int64_t batch_size, bool shuffle, uint64_t seed = 0,
           LastBatch last = LastBatch::kPad);

  // Starts a new epoch.
  void Reset();
  // Fills the next batch (overwriting the previous one in place); false at the end of the epoch.
  bool Next();
  const Tensor& data() const { return batch_data_; }
  const Tensor& label() const { return batch_label_; }
  // Samples of the current batch that repeat earlier ones to fill it (only the last batch).
  int64_t pad() const { return pad_; }
  int64_t batch_size() const { return batch_size_; }
  int64_t num_samples() const { return n_; }

 private:
  Tensor data_, label_, batch_data_, batch_label_;
  int64_t n_, batch_size_, cursor_ = 0, pad_ = 0;
  bool shuffle_;
  LastBatch last_;
  std::mt19937_64 rng_;
  std::vector<int64_t> order_;
};

}  // namespace kiln
