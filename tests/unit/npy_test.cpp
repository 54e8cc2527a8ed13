// npy_test.cpp - .npy files: kiln's round trips, files NumPy writes, NumPy reading kiln's files,
// malformed input at every length, and atomic writes that fail cleanly.
#include "kiln/runtime/npy.h"
#include "scratch_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

// The dtypes .npy can hold (all of kiln's but bfloat16).
constexpr DType kNpyDTypes[] = {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt8,
                                DType::kUInt8,   DType::kInt32,   DType::kInt64,   DType::kBool};

using test::Pattern;
using test::PatternTensor;

void ExpectSameTensor(const Tensor& got, const Tensor& want) {
  ASSERT_TRUE(got.defined());
  EXPECT_EQ(got.dtype(), want.dtype());
  ASSERT_EQ(ShapeString(got.shape()), ShapeString(want.shape()));
  ASSERT_EQ(got.nbytes(), want.nbytes());
  EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0) << want.TypeString();
}

// The NumPy name of a kiln dtype.
std::string NumpyName(DType t) {
  return t == DType::kBool ? "bool" : std::string(DTypeName(t));
}

class NpyTest : public test::ScratchDirTest {
 protected:
  NpyTest() : ScratchDirTest("kiln_npy_test") {}
  static bool HaveNumpy(std::string* why) { return test::HaveNumpy(why); }

  std::vector<std::string> DirEntries() const {
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

TEST_F(NpyTest, RoundTripsEveryDTypeAndShape) {
  const std::vector<std::vector<int64_t>> shapes = {{2, 3}, {}, {0}, {3, 0, 2}, {5}, {2, 1, 3, 2}};
  for (DType t : kNpyDTypes) {
    for (const auto& shape : shapes) {
      SCOPED_TRACE(StrCat(DTypeName(t), ShapeString(shape)));
      Tensor want = PatternTensor(t, shape);
      std::string path = Path("rt.npy");
      WriteNpy(path, want);
      ExpectSameTensor(ReadNpy(path), want);
      std::string bytes = NpyBytes(want);
      ExpectSameTensor(ParseNpy(bytes.data(), bytes.size(), "mem"), want);
      // Version 1.0, the data 64-byte aligned, the header ending in '\n'.
      ASSERT_GE(bytes.size(), 10u);
      EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
      size_t header_len = uint8_t(bytes[8]) | size_t(uint8_t(bytes[9])) << 8;
      EXPECT_EQ((10 + header_len) % 64, 0u);
      EXPECT_EQ(bytes[10 + header_len - 1], '\n');
      EXPECT_EQ(bytes.size(), 10 + header_len + want.nbytes());
    }
  }
  EXPECT_EQ(DirEntries(), std::vector<std::string>{"rt.npy"});  // no temporary files left
}

TEST_F(NpyTest, ViewsAndSlicesWriteTheirOwnElements) {
  Tensor big = PatternTensor(DType::kFloat32, {4, 3});
  float* rows = big.data<float>() + 3;  // rows 1..2 through a view
  Tensor view = Tensor::View(rows, {2, 3}, DType::kFloat32);
  std::string bytes = NpyBytes(view);
  test::ExpectTensorNear(ParseNpy(bytes.data(), bytes.size(), "v"), {2, 3},
                         {-1, -0.75, -0.5, -0.25, 0, 0.25});
}

TEST_F(NpyTest, HugeHeaderUsesVersion2) {
  std::vector<int64_t> shape(25000, 1);  // "1, " per dim: a header over 65535 bytes
  Tensor t = PatternTensor(DType::kInt32, shape);
  std::string bytes = NpyBytes(t);
  EXPECT_EQ(bytes[6], 2);
  size_t header_len = 0;
  for (int i = 0; i < 4; ++i) header_len |= size_t(uint8_t(bytes[8 + i])) << (8 * i);
  EXPECT_GT(header_len, 65535u);
  EXPECT_EQ((12 + header_len) % 64, 0u);
  ExpectSameTensor(ParseNpy(bytes.data(), bytes.size(), "big"), t);
}

TEST_F(NpyTest, BFloat16AndUndefinedAreUserErrors) {
  Tensor bf = Tensor::Zeros({2}, DType::kBFloat16);
  std::string path = Path("bf.npy");
  test::ExpectUserError([&] { WriteNpy(path, bf); }, {path, "NumPy has no bfloat16"});
  EXPECT_FALSE(fs::exists(path));
  test::ExpectUserError([&] { NpyBytes(Tensor()); }, {"undefined"});
}

// A .npy file with a hand-written header (padding and version as given).
std::string HandMade(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict + "\n";
  std::string out = std::string("\x93NUMPY", 6) + char(major) + char(0);
  int len_bytes = major == 1 ? 2 : 4;
  for (int i = 0; i < len_bytes; ++i) out += char((header.size() >> (8 * i)) & 255);
  return out + header + data;
}

std::string Floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

TEST_F(NpyTest, HeaderDictsInAnyForm) {
  std::string six = Floats({0, 1, 2, 3, 4, 5});
  const std::vector<std::string> dicts = {
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
      "{'shape': (2, 3), 'descr': '<f4', 'fortran_order': False}",
      "{\"fortran_order\":False,\"shape\":(2,3),\"descr\":\"<f4\"}",
      "  { 'descr' : '=f4' ,\n 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }   ",
      "{'descr': 'f4', 'fortran_order': False, 'shape': (2L, 3L)}",
  };
  for (const std::string& d : dicts) {
    SCOPED_TRACE(d);
    std::string bytes = HandMade(d, six);
    test::ExpectTensorNear(ParseNpy(bytes.data(), bytes.size(), "h"), {2, 3}, {0, 1, 2, 3, 4, 5});
  }
  // Versions 2.0 and 3.0 (a uint32 length), shapes "(6,)" and "()", header padding by NULs.
  for (int major : {2, 3}) {
    std::string v = HandMade("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", six, major);
    test::ExpectTensorNear(ParseNpy(v.data(), v.size(), "v"), {6}, {0, 1, 2, 3, 4, 5});
  }
  std::string scalar = HandMade("{'descr': '<f8', 'fortran_order': False, 'shape': ()}  "s + '\0',
                                std::string("\0\0\0\0\0\0\x04\x40", 8));
  test::ExpectTensorNear(ParseNpy(scalar.data(), scalar.size(), "s"), {}, {2.5});
  // Fortran order: the file holds the transpose's row-major layout.
  std::string f = HandMade("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                           Floats({0, 3, 1, 4, 2, 5}));
  test::ExpectTensorNear(ParseNpy(f.data(), f.size(), "f"), {2, 3}, {0, 1, 2, 3, 4, 5});
  // One-byte types take any byte order mark.
  std::string u8 = HandMade("{'descr': '>u1', 'fortran_order': False, 'shape': (2,)}", "\x07\xff");
  test::ExpectTensorNear(ParseNpy(u8.data(), u8.size(), "u"), {2}, {7, 255});
  // Bool bytes other than 0/1 read as true.
  std::string b = HandMade("{'descr': '|b1', 'fortran_order': False, 'shape': (3,)}",
                           std::string("\x00\x01\x05", 3));
  Tensor bt = ParseNpy(b.data(), b.size(), "b");
  EXPECT_EQ(bt.ToDoubles(), (std::vector<double>{0, 1, 1}));
}

TEST_F(NpyTest, BadHeadersAreUserErrorsSayingWhy) {
  auto parse = [](const std::string& bytes) { ParseNpy(bytes.data(), bytes.size(), "x.npy"); };
  auto dict = [](const std::string& descr, const std::string& shape,
                 const std::string& fortran = "False") {
    return "{'descr': " + descr + ", 'fortran_order': " + fortran + ", 'shape': " + shape + "}";
  };
  const std::string four = Floats({1, 2, 3, 4});
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"", {"x.npy", "bad magic"}},
      {"\x93NUMPX\x01\x00\x00\x00", {"bad magic"}},
      {std::string("\x93NUMPY\x04\x00\x00\x00", 10), {"unsupported .npy format version 4.0"}},
      {std::string("\x93NUMPY\x01\x00\xff\x00", 10), {"truncated .npy header"}},
      {std::string("\x93NUMPY\x02\x00\x01\x00", 10), {"no header length"}},
      {HandMade(dict("'>f4'", "(4,)"), four), {"big-endian", "'>f4'"}},
      {HandMade(dict("'<i2'", "(8,)"), four), {"'<i2'", "int16", "no kiln dtype"}},
      {HandMade(dict("'<u8'", "(2,)"), four), {"uint64"}},
      {HandMade(dict("'|O'", "(2,)"), four), {"unsupported .npy dtype '|O'"}},
      {HandMade(dict("'<c8'", "(2,)"), four), {"complex"}},
      {HandMade(dict("[('a', '<f4')]", "(4,)"), four), {"structured"}},
      {HandMade(dict("'<f4'", "(4)"), four), {"'shape' is not a tuple"}},
      {HandMade(dict("'<f4'", "(-4,)"), four), {"not a count"}},
      {HandMade(dict("'<f4'", "(4,)", "1"), four), {"'fortran_order' is not True or False"}},
      {HandMade(dict("'<f4'", "(5,)"), four), {"truncated .npy data", "(5)", "16 bytes"}},
      {HandMade(dict("'<f4'", "(3,)"), four), {"4 bytes after the data"}},
      {HandMade(dict("'<f4'", "(99999999999, 99999999999, 9999999999)"), four), {"too large"}},
      {HandMade(dict("'<f4'", "(0, 99999999999, 99999999999, 9999999999)"), four), {"too large"}},
      {HandMade(dict("'<f4'", "(4,)") + "x", four), {"unexpected text after the dict"}},
      {HandMade("{'descr': '<f4', 'shape': (4,)}", four), {"lacks the key 'fortran_order'"}},
      {HandMade("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", four),
       {"unknown key 'x'"}},
      {HandMade("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", four),
       {"given twice"}},
      {HandMade("['descr']", four), {"not a dict"}},
      {HandMade("{'descr': '<f4", four), {"unterminated string"}},
      {HandMade("{'de\nscr': '<f4'}", four), {"newline in a string"}},
      {HandMade("{'descr': '<f4\\", four), {"unterminated string"}},
      {std::string("\x93NUMPY\x01\x00\x03\x00{'a", 13), {"unterminated string"}},
      {HandMade("{'descr' '<f4'}", four), {"expected ':'"}},
      {HandMade("{'descr': <f4}", four), {"expected a Python literal"}},
      {HandMade("{'descr': Nope}", four), {"unknown name 'Nope'"}},
      {HandMade("{'shape': (" + std::string(100, '(') + ")}", four), {"nested too deeply"}},
      {HandMade("{'shape': (99999999999999999999,)}", four), {"integer too large"}},
  };
  for (const auto& [bytes, parts] : cases) {
    SCOPED_TRACE(bytes.substr(0, 80));
    test::ExpectUserError([&] { parse(bytes); }, parts);
  }
}

TEST_F(NpyTest, EveryTruncationAndCorruptionIsAUserError) {
  std::string good = NpyBytes(PatternTensor(DType::kFloat32, {3, 4}));
  for (size_t len = 0; len < good.size(); ++len) {
    SCOPED_TRACE(len);
    EXPECT_THROW(ParseNpy(good.data(), len, "cut.npy"), UserError);
  }
  // Every byte of the preamble and header replaced by a few values: a tensor or a UserError.
  size_t header_end = 10 + (uint8_t(good[8]) | size_t(uint8_t(good[9])) << 8);
  for (size_t i = 0; i < header_end; ++i) {
    for (char c : {'\0', '\xff', '(', '\'', '9', ',', '}', ' ', 'T'}) {
      std::string bad = good;
      bad[i] = c;
      try {
        ParseNpy(bad.data(), bad.size(), "bad.npy");
      } catch (const UserError& e) {
        EXPECT_NE(std::string(e.what()).find("bad.npy"), std::string::npos);
      }
    }
  }
  // Random garbage after a valid preamble.
  std::mt19937 gen(7);
  const std::string alphabet = "{}()[],:'\" 0123456789-TrueFalsNonedscrfotp_<|=>ibu\n\\L";
  for (int trial = 0; trial < 3000; ++trial) {
    std::string header;
    size_t n = gen() % 80;
    for (size_t k = 0; k < n; ++k) header += alphabet[gen() % alphabet.size()];
    std::string bytes = HandMade(header, std::string(gen() % 40, '\x01'), 1 + int(gen() % 3));
    try {
      ParseNpy(bytes.data(), bytes.size(), "fuzz");
    } catch (const UserError&) {
    }
  }
}

TEST_F(NpyTest, MissingFilesAndDirectories) {
  std::string missing = Path("missing.npy");
  test::ExpectUserError([&] { ReadNpy(missing); }, {missing, "cannot open"});
  test::ExpectUserError([&] { ReadNpy(dir_.string()); }, {dir_.string(), "is a directory"});
}

TEST_F(NpyTest, FailedWritesLeaveNoFile) {
  Tensor t = PatternTensor(DType::kFloat32, {4});
  // A parent that is not a directory fails whoever runs the test (root included).
  std::string file = WriteBytes("plain", "x");
  std::string under_file = file + "/x.npy";
  test::ExpectUserError([&] { WriteNpy(under_file, t); }, {under_file, "cannot write"});
  std::string no_dir = Path("no/such/dir/x.npy");
  test::ExpectUserError([&] { WriteNpy(no_dir, t); }, {no_dir, "cannot write"});
  EXPECT_EQ(DirEntries(), std::vector<std::string>{"plain"});
  // A read-only directory (permissions do not bind root, so only checked for others).
  if (::geteuid() != 0) {
    fs::create_directory(dir_ / "ro");
    fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    std::string ro = Path("ro/x.npy");
    test::ExpectUserError([&] { WriteNpy(ro, t); }, {ro, "cannot write", "Permission denied"});
    EXPECT_TRUE(fs::is_empty(dir_ / "ro"));
  }
  // Replacing a file: a failed write keeps the old content whole, a good one replaces it.
  std::string path = Path("keep.npy");
  WriteNpy(path, t);
  test::ExpectUserError([&] { WriteNpy(path, Tensor::Zeros({3}, DType::kBFloat16)); },
                        {"bfloat16"});
  ExpectSameTensor(ReadNpy(path), t);
  Tensor u = PatternTensor(DType::kInt64, {2, 2});
  WriteNpy(path, u);
  ExpectSameTensor(ReadNpy(path), u);
  std::vector<std::string> want = {"keep.npy", "plain"};
  if (::geteuid() != 0) want.push_back("ro");
  std::sort(want.begin(), want.end());
  EXPECT_EQ(DirEntries(), want);
}

TEST_F(NpyTest, ReadsFilesWrittenByNumPy) {
  std::string why;
  if (!HaveNumpy(&why)) GTEST_SKIP() << "NumPy interop not tested: " << why;
  // Python's pattern matches Pattern() above.
  RunPython(R"PY(
import numpy as np
def pattern(name, shape):
    k = np.arange(int(np.prod(shape)), dtype=np.int64)
    if name == 'bool': v = (k % 3 == 1)
    elif name == 'uint8': v = (k * 37 + 5) % 256
    elif name == 'int8': v = (k * 37 + 5) % 256 - 128
    elif name.startswith('float'): v = (k - 7.0) * 0.25
    else: v = k * 1001 - 50000
    return v.astype(name).reshape(shape)
for name in ['float32', 'float16', 'float64', 'int8', 'uint8', 'int32', 'int64', 'bool']:
    np.save(name + '.npy', pattern(name, (2, 3)))
np.save('scalar.npy', np.float64(2.5))
np.save('empty.npy', np.zeros((0, 3), np.float32))
np.save('fortran.npy', np.asfortranarray(pattern('float32', (2, 3, 4))))
with open('v2.npy', 'wb') as f:
    np.lib.format.write_array(f, pattern('int32', (5,)), version=(2, 0))
with open('v3.npy', 'wb') as f:
    np.lib.format.write_array(f, pattern('float64', (3, 2)), version=(3, 0))
np.save('big_endian.npy', pattern('float32', (3,)).astype('>f4'))
np.save('int16.npy', np.arange(3, dtype=np.int16))
np.save('uint32.npy', np.arange(3, dtype=np.uint32))
np.save('record.npy', np.zeros(2, dtype=[('a', '<f4'), ('b', '<i4')]))
np.save('objects.npy', np.array([1, 'a'], dtype=object), allow_pickle=True)
)PY");
  for (DType t : kNpyDTypes) {
    SCOPED_TRACE(DTypeName(t));
    ExpectSameTensor(ReadNpy(Path(NumpyName(t) + ".npy")), PatternTensor(t, {2, 3}));
  }
  test::ExpectTensorNear(ReadNpy(Path("scalar.npy")), {}, {2.5});
  ExpectSameTensor(ReadNpy(Path("empty.npy")), Tensor::Zeros({0, 3}, DType::kFloat32));
  ExpectSameTensor(ReadNpy(Path("fortran.npy")), PatternTensor(DType::kFloat32, {2, 3, 4}));
  ExpectSameTensor(ReadNpy(Path("v2.npy")), PatternTensor(DType::kInt32, {5}));
  ExpectSameTensor(ReadNpy(Path("v3.npy")), PatternTensor(DType::kFloat64, {3, 2}));
  test::ExpectUserError([&] { ReadNpy(Path("big_endian.npy")); }, {"big_endian.npy", "'>f4'"});
  test::ExpectUserError([&] { ReadNpy(Path("int16.npy")); }, {"int16.npy", "int16"});
  test::ExpectUserError([&] { ReadNpy(Path("uint32.npy")); }, {"uint32"});
  test::ExpectUserError([&] { ReadNpy(Path("record.npy")); }, {"structured"});
  test::ExpectUserError([&] { ReadNpy(Path("objects.npy")); }, {"'|O'"});
}

TEST_F(NpyTest, NumPyReadsKilnFiles) {
  std::string why;
  if (!HaveNumpy(&why)) GTEST_SKIP() << "NumPy interop not tested: " << why;
  for (DType t : kNpyDTypes) {
    WriteNpy(Path("k_" + NumpyName(t) + ".npy"), PatternTensor(t, {3, 2}));
    WriteNpy(Path("k0_" + NumpyName(t) + ".npy"), PatternTensor(t, {}));
    WriteNpy(Path("ke_" + NumpyName(t) + ".npy"), PatternTensor(t, {2, 0}));
  }
  std::string out = RunPython(R"PY(
import numpy as np
def pattern(name, shape):
    k = np.arange(int(np.prod(shape)), dtype=np.int64)
    if name == 'bool': v = (k % 3 == 1)
    elif name == 'uint8': v = (k * 37 + 5) % 256
    elif name == 'int8': v = (k * 37 + 5) % 256 - 128
    elif name.startswith('float'): v = (k - 7.0) * 0.25
    else: v = k * 1001 - 50000
    return v.astype(name).reshape(shape)
checked = 0
for name in ['float32', 'float16', 'float64', 'int8', 'uint8', 'int32', 'int64', 'bool']:
    for prefix, shape in [('k_', (3, 2)), ('k0_', ()), ('ke_', (2, 0))]:
        a = np.load(prefix + name + '.npy')
        want = pattern(name, shape)
        assert a.dtype == want.dtype, (prefix, name, a.dtype)
        assert a.shape == want.shape, (prefix, name, a.shape)
        assert np.array_equal(a, want), (prefix, name, a, want)
        checked += 1
print('checked', checked)
)PY");
  EXPECT_NE(out.find("checked 24"), std::string::npos) << out;
}

}  // namespace
}  // namespace kiln
