// data_iter_test.cpp - mini-batch iteration: every sample once per epoch, padding, shuffling.
#include <set>

#include "kiln/frontend/data_iter.h"
#include "test_util.h"

namespace kiln {
namespace {

// Ten samples whose data rows are (i, 10 i) and whose labels are i.
DataIter MakeIter(int64_t batch, bool shuffle, DataIter::LastBatch last, uint64_t seed = 0) {
  std::vector<double> data, label;
  for (int i = 0; i < 10; ++i) data.insert(data.end(), {double(i), 10.0 * i}), label.push_back(i);
  return DataIter(test::F32({10, 2}, data), test::F32({10}, label), batch, shuffle, seed, last);
}

TEST(DataIter, VisitsEverySampleOncePerEpochAndPadsTheLastBatch) {
  DataIter it = MakeIter(4, true, DataIter::LastBatch::kPad, 5);
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::multiset<int> seen;
    std::vector<int64_t> pads;
    for (it.Reset(); it.Next();) {
      std::vector<double> d = it.data().ToDoubles(), l = it.label().ToDoubles();
      for (int64_t b = 0; b < 4 - it.pad(); ++b) {
        EXPECT_EQ(d[size_t(2 * b + 1)], 10 * d[size_t(2 * b)]);  // rows stay whole
        EXPECT_EQ(l[size_t(b)], d[size_t(2 * b)]);               // labels follow their rows
        seen.insert(int(l[size_t(b)]));
      }
      pads.push_back(it.pad());
    }
    EXPECT_EQ(pads, (std::vector<int64_t>{0, 0, 2}));
    EXPECT_EQ(seen.size(), 10u);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(seen.count(i), 1u);
  }
}

TEST(DataIter, ShuffleIsSeededAndDiscardDropsThePartialBatch) {
  auto first_labels = [](DataIter it) {
    it.Reset();
    it.Next();
    return it.label().ToDoubles();
  };
  EXPECT_EQ(first_labels(MakeIter(5, true, DataIter::LastBatch::kPad, 1)),
            first_labels(MakeIter(5, true, DataIter::LastBatch::kPad, 1)));
  EXPECT_NE(first_labels(MakeIter(5, true, DataIter::LastBatch::kPad, 1)),
            first_labels(MakeIter(5, true, DataIter::LastBatch::kPad, 2)));
  EXPECT_EQ(first_labels(MakeIter(5, false, DataIter::LastBatch::kPad)),
            (std::vector<double>{0, 1, 2, 3, 4}));
  DataIter it = MakeIter(4, false, DataIter::LastBatch::kDiscard);
  int batches = 0;
  for (it.Reset(); it.Next();) ++batches;
  EXPECT_EQ(batches, 2);
}

TEST(DataIter, MismatchedInputsAreUserErrors) {
  test::ExpectUserError(
      [] {
        DataIter(test::F32({3, 2}, {1, 2, 3, 4, 5, 6}), test::F32({2}, {0, 1}), 1, false);
      },
      {"must have the same first dimension"});
  test::ExpectUserError(
      [] {
        DataIter(test::F32({2, 1}, {1, 2}), test::F32({2}, {0, 1}), 3, false);
      },
      {"batch size 3 must be in 1..2"});
}

}  // namespace
}  // namespace kiln
