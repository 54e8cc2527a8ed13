// idx_test.cpp - the IDX reader on hand-made files (plain and gzip) and on Fashion-MNIST.
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kiln/frontend/idx.h"
#include "test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_idx_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string WritePlain(const std::string& name, const std::vector<unsigned char>& bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return path;
  }
  std::string WriteGzip(const std::string& name, const std::vector<unsigned char>& bytes) {
    std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), unsigned(bytes.size()));
    gzclose(f);
    return path;
  }
  fs::path dir_;
};

// Header for a uint8 IDX file of the given shape.
std::vector<unsigned char> Header(unsigned char type, std::vector<uint32_t> dims) {
  std::vector<unsigned char> h = {0, 0, type, static_cast<unsigned char>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<unsigned char>(d >> s));
  return h;
}

TEST_F(IdxTest, ReadsUint8AndBigEndianInt32) {
  auto bytes = Header(0x08, {2, 3});
  for (unsigned char v = 0; v < 6; ++v) bytes.push_back(v * 10);
  Tensor t = ReadIdx(WritePlain("a.idx", bytes));
  EXPECT_EQ(t.dtype(), DType::kUInt8);
  test::ExpectTensorNear(t, {2, 3}, {0, 10, 20, 30, 40, 50}, 0);

  auto ints = Header(0x0C, {2});
  for (unsigned char b : {0x00, 0x00, 0x01, 0x02, 0xff, 0xff, 0xff, 0xfe}) ints.push_back(b);
  Tensor i = ReadIdx(WriteGzip("b.idx.gz", ints));
  EXPECT_EQ(i.dtype(), DType::kInt32);
  test::ExpectTensorNear(i, {2}, {258, -2}, 0);
}

TEST_F(IdxTest, MalformedFilesAreUserErrorsNamingTheFile) {
  std::string missing = (dir_ / "missing.gz").string();
  test::ExpectUserError([&] { ReadIdx(missing); }, {missing, "cannot open"});
  std::string bad_magic = WritePlain("m.idx", {1, 2, 8, 1, 0, 0, 0, 0});
  test::ExpectUserError([&] { ReadIdx(bad_magic); }, {bad_magic, "bad magic"});
  auto short_data = Header(0x08, {4});
  short_data.push_back(1);
  std::string truncated = WriteGzip("t.idx.gz", short_data);
  test::ExpectUserError([&] { ReadIdx(truncated); }, {truncated, "(4)", "holds 1 bytes"});
  std::string bad_type = WritePlain("ty.idx", Header(0x0B, {1}));
  test::ExpectUserError([&] { ReadIdx(bad_type); }, {"unsupported IDX element type 0xb"});
  // A gzip stream cut in half: zlib sees the end of input before the end of the stream.
  auto big = Header(0x08, {4096});
  for (int k = 0; k < 4096; ++k) big.push_back(static_cast<unsigned char>(k * 7919 % 251));
  std::string whole = WriteGzip("whole.gz", big);
  std::ifstream in(whole, std::ios::binary);
  std::vector<unsigned char> gz((std::istreambuf_iterator<char>(in)), {});
  gz.resize(gz.size() / 2);
  std::string cut = WritePlain("cut.gz", gz);
  test::ExpectUserError([&] { ReadIdx(cut); }, {cut});
}

TEST(FashionMnist, TestSetHasTenThousandLabelledImages) {
  // dataset-fashion-mnist is a dependency that dev.sh installs, so its absence is a failure.
  ImageDataset ds = ReadMnistStyle(kFashionMnistDir, "t10k");
  EXPECT_EQ(ds.images.dim(0), 10000);
  EXPECT_EQ(ds.images.dim(1), 784);
  EXPECT_EQ(ds.rows, 28);
  std::vector<int> counts(10, 0);
  for (double l : ds.labels.ToDoubles()) {
    ASSERT_GE(l, 0);
    ASSERT_LE(l, 9);
    ++counts[size_t(l)];
  }
  for (int c : counts) EXPECT_EQ(c, 1000);  // the test set is balanced
  double lo = 1, hi = 0;
  for (double v : ds.images.ToDoubles()) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_EQ(lo, 0.0);
  EXPECT_EQ(hi, 1.0);
  ImageDataset few = ReadMnistStyle(kFashionMnistDir, "t10k", 5);
  EXPECT_EQ(few.images.dim(0), 5);
  EXPECT_EQ(few.labels.At(0), ds.labels.At(0));
}

}  // namespace
}  // namespace kiln
