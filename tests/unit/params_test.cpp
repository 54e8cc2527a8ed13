// params_test.cpp - MXNet NDArray-list (.params) files: round trips, files from an independent
// Python writer (struct + NumPy, following MXNet's byte layout), kiln's files read back by an
// independent Python reader, malformed files, and loading into executors.
#include "kiln/frontend/params.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kiln/frontend/executor.h"
#include "kiln/frontend/initializer.h"
#include "kiln/frontend/models.h"
#include "scratch_dir.h"
#include "test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

using test::Pattern;
using test::PatternTensor;

void ExpectSameTensor(const Tensor& got, const Tensor& want, const std::string& name = "") {
  ASSERT_TRUE(got.defined()) << name;
  EXPECT_EQ(got.dtype(), want.dtype()) << name;
  ASSERT_EQ(ShapeString(got.shape()), ShapeString(want.shape())) << name;
  EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0) << name;
}

const char* kPythonPattern = R"PY(
import struct, numpy as np
FLAGS = {'float32': 0, 'float64': 1, 'float16': 2, 'uint8': 3, 'int32': 4, 'int8': 5,
         'int64': 6, 'bool': 7}
def pattern(name, shape):
    k = np.arange(int(np.prod(shape)), dtype=np.int64)
    if name == 'bool': v = (k % 3 == 1)
    elif name == 'uint8': v = (k * 37 + 5) % 256
    elif name == 'int8': v = (k * 37 + 5) % 256 - 128
    elif name.startswith('float'): v = (k - 7.0) * 0.25
    else: v = k * 1001 - 50000
    return v.astype(name).reshape(shape)
)PY";

// Little-endian byte strings for hand-made files.
struct Bytes {
  std::string s;
  Bytes& U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) s += char((v >> (8 * i)) & 255);
    return *this;
  }
  Bytes& U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) s += char((v >> (8 * i)) & 255);
    return *this;
  }
  Bytes& Raw(const std::string& r) {
    s += r;
    return *this;
  }
  Bytes& Name(const std::string& n) { return U64(n.size()).Raw(n); }
  // A V2 dense float32 array of `shape` whose data is `data` (or zeros of the right size).
  Bytes& V2(const std::vector<int64_t>& shape, int flag = 0, int64_t data_bytes = -1) {
    U32(0xF993FAC9).U32(0).U32(uint32_t(shape.size()));
    for (int64_t d : shape) U64(uint64_t(d));
    U32(1).U32(0).U32(uint32_t(flag));
    return Raw(std::string(size_t(data_bytes >= 0 ? data_bytes : NumElements(shape) * 4), '\0'));
  }
  Bytes& Header(uint64_t n) { return U64(0x112).U64(0).U64(n); }
};

class ParamsTest : public test::ScratchDirTest {
 protected:
  ParamsTest() : ScratchDirTest("kiln_params_test") {}
  static bool HaveNumpy(std::string* why) { return test::HaveNumpy(why); }
};

ParamFile EveryDType() {
  ParamFile p;
  for (DType t : kAllDTypes) {
    std::string name(DTypeName(t));
    p.arg[name] = PatternTensor(t, {3, 2});
    p.aux[name + "_e"] = PatternTensor(t, {2, 0});
  }
  p.arg["fc1_weight"] = PatternTensor(DType::kFloat32, {4, 3, 2, 1, 2});
  return p;
}

void ExpectSameParams(const ParamFile& got, const ParamFile& want) {
  ASSERT_EQ(got.arg.size(), want.arg.size());
  ASSERT_EQ(got.aux.size(), want.aux.size());
  for (const auto& [name, t] : want.arg) {
    ASSERT_TRUE(got.arg.count(name)) << "arg " << name;
    ExpectSameTensor(got.arg.at(name), t, "arg " + name);
  }
  for (const auto& [name, t] : want.aux) {
    ASSERT_TRUE(got.aux.count(name)) << "aux " << name;
    ExpectSameTensor(got.aux.at(name), t, "aux " + name);
  }
}

TEST_F(ParamsTest, RoundTripsEveryDTypeEmptyAndScalar) {
  ParamFile p = EveryDType();
  std::string path = Path("every.params");
  SaveParams(path, p);
  ExpectSameParams(LoadParams(path), p);
  std::string bytes = ParamsBytes(p);
  EXPECT_EQ(bytes.substr(24, 4), std::string("\xc9\xfa\x93\xf9", 4));  // V2 without scalars
  // A 0-d tensor switches the file to V3.
  p.aux["step"] = PatternTensor(DType::kInt64, {});
  bytes = ParamsBytes(p);
  EXPECT_EQ(bytes.substr(24, 4), std::string("\xca\xfa\x93\xf9", 4));
  ExpectSameParams(ParseParams(bytes.data(), bytes.size(), "mem"), p);
  // An empty file of parameters.
  SaveParams(path, ParamFile());
  ParamFile none = LoadParams(path);
  EXPECT_TRUE(none.arg.empty() && none.aux.empty());
  EXPECT_EQ(std::vector<fs::path>(fs::directory_iterator(dir_), {}).size(), 1u);
}

TEST_F(ParamsTest, NamesAndPrefixes) {
  // Gluon names (no prefix) go to arg; a list without names gets "0", "1", ...
  std::string gluon =
      Bytes().Header(2).V2({2}).V2({1}).U64(2).Name("dense0.weight").Name("aux:m").s;
  ParamFile g = ParseParams(gluon.data(), gluon.size(), "g");
  EXPECT_TRUE(g.arg.count("dense0.weight"));
  EXPECT_TRUE(g.aux.count("m"));
  std::string list = Bytes().Header(2).V2({2}).V2({3}).U64(0).s;
  ParamFile l = ParseParams(list.data(), list.size(), "l");
  ASSERT_EQ(l.arg.size(), 2u);
  EXPECT_EQ(l.arg.at("1").dim(0), 3);
  // Keys keep colons after the prefix, and keys that look prefixed survive a round trip.
  ParamFile p;
  p.arg["aux:odd"] = PatternTensor(DType::kFloat32, {1});
  p.arg["a:b"] = PatternTensor(DType::kFloat32, {1});
  std::string bytes = ParamsBytes(p);
  ExpectSameParams(ParseParams(bytes.data(), bytes.size(), "p"), p);
}

TEST_F(ParamsTest, SaveErrorsAndFailedWritesLeaveNoFile) {
  ParamFile p;
  p.arg["w"] = Tensor();
  std::string path = Path("bad.params");
  test::ExpectUserError([&] { SaveParams(path, p); }, {path, "'arg:w'", "undefined"});
  EXPECT_FALSE(fs::exists(path));
  p.arg["w"] = PatternTensor(DType::kFloat32, {2});
  std::string file = WriteBytes("plain", "x");
  test::ExpectUserError([&] { SaveParams(file + "/x.params", p); }, {"x.params", "cannot write"});
  test::ExpectUserError([&] { SaveParams(Path("no/dir/x.params"), p); }, {"cannot write"});
  EXPECT_EQ(std::vector<fs::path>(fs::directory_iterator(dir_), {}).size(), 1u);
  test::ExpectUserError([&] { LoadParams(Path("missing.params")); },
                        {"missing.params", "cannot open"});
}

TEST_F(ParamsTest, MalformedFilesAreUserErrorsNamingTheArray) {
  auto parse = [](const std::string& b) { ParseParams(b.data(), b.size(), "f.params"); };
  const std::string one_name = Bytes().U64(1).Name("arg:w").s;
  auto sparse = Bytes().Header(1).U32(0xF993FAC9).U32(1).s;
  auto flag = [&](int f) { return Bytes().Header(1).V2({2}, f, 8).Raw(one_name).s; };
  std::string none_v2 = Bytes().Header(1).U32(0xF993FAC9).U32(0).U32(0).Raw(one_name).s;
  std::string none_v3 = Bytes().Header(1).U32(0xF993FACA).U32(0).U32(uint32_t(-1)).Raw(one_name).s;
  std::string huge = Bytes().Header(1).V2({1u << 31, 1u << 31, 1u << 31}, 0, 0).Raw(one_name).s;
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"", {"f.params", "not an MXNet NDArray list", "bad magic"}},
      {Bytes().U64(0x113).U64(0).U64(0).U64(0).s, {"bad magic"}},
      {Bytes().Header(1).s, {"array 0 of 1", "truncated"}},
      {Bytes().Header(uint64_t(1) << 60).s, {"array 0 of", "truncated"}},
      {sparse, {"array 0 of 1", "storage type 1 (row_sparse)", "dense"}},
      {Bytes().Header(1).U32(0xF993FAC9).U32(2).s, {"csr"}},
      {flag(8), {"array 0 of 1", "int16 (type flag 8)"}},
      {flag(11), {"uint64"}},
      {flag(99), {"unknown MXNet type flag 99"}},
      {Bytes().Header(1).V2({4}, 0, 8).s,
       {"array 0 of 1", "truncated", "needs 4 elements of 4 bytes"}},
      {Bytes().Header(1).U32(0xF993FAC9).U32(0).U32(500).s, {"bad ndim 500"}},
      {Bytes().Header(1).U32(0xF993FAC9).U32(0).U32(uint32_t(-7)).s, {"bad ndim -7"}},
      {Bytes().Header(1).U32(0xF993FAC9).U32(0).U32(1).U64(uint64_t(-3)).s, {"negative"}},
      {huge, {"too large"}},
      {Bytes().Header(1).U32(0x12345678).s, {"unknown NDArray magic 0x12345678"}},
      {Bytes().Header(1).V2({2}).U64(2).Name("a").Name("b").s, {"1 arrays but 2 names"}},
      {Bytes().Header(2).V2({2}).V2({2}).U64(2).Name("arg:a").Name("arg:a").s,
       {"the name 'arg:a' is given to arrays 0 and 1"}},
      {Bytes().Header(2).V2({2}).V2({2}).U64(2).Name("arg:a").Name("a").s,
       {"array 1 ('a')", "appears twice"}},
      {none_v2, {"array 0 ('arg:w') is an empty V2 NDArray"}},
      {none_v3, {"array 0 ('arg:w') is an empty V3 NDArray"}},
      {Bytes().Header(1).V2({2}).U64(1).U64(1000).Raw("w").s, {"name 0 of 1", "truncated"}},
      {Bytes().Header(1).V2({2}).Raw(one_name).Raw("xyz").s, {"3 bytes after the names"}},
  };
  for (const auto& [bytes, parts] : cases) {
    SCOPED_TRACE(parts[0]);
    test::ExpectUserError([&] { parse(bytes); }, parts);
  }
}

TEST_F(ParamsTest, EveryTruncationAndCorruptionIsAUserError) {
  ParamFile p;
  p.arg["fc_weight"] = PatternTensor(DType::kFloat32, {2, 3});
  p.arg["fc_bias"] = PatternTensor(DType::kFloat16, {3});
  p.aux["bn_moving_mean"] = PatternTensor(DType::kFloat64, {2});
  std::string good = ParamsBytes(p);
  for (size_t len = 0; len < good.size(); ++len) {
    SCOPED_TRACE(len);
    EXPECT_THROW(ParseParams(good.data(), len, "cut.params"), UserError);
  }
  for (size_t i = 0; i < good.size(); ++i) {
    for (char c : {'\0', '\x01', '\x07', '\x80', '\xff'}) {
      std::string bad = good;
      bad[i] = c;
      try {
        ParseParams(bad.data(), bad.size(), "bad.params");
      } catch (const UserError& e) {
        EXPECT_NE(std::string(e.what()).find("bad.params"), std::string::npos);
      }
    }
  }
}

TEST_F(ParamsTest, ReadsLegacyAndV1Arrays) {
  // Legacy: ndim as the first word, uint32 dims. V1: the magic, uint32 ndim, int64 dims.
  std::string floats;
  for (float f : {1.5f, -2.0f, 3.25f}) floats.append(reinterpret_cast<const char*>(&f), 4);
  std::string bytes = Bytes()
                          .Header(2)
                          .U32(2)
                          .U32(1)
                          .U32(3)
                          .U32(2)  // gpu(1): the saved context does not matter
                          .U32(1)
                          .U32(0)
                          .Raw(floats)
                          .U32(0xF993FAC8)
                          .U32(1)
                          .U64(3)
                          .U32(1)
                          .U32(0)
                          .U32(0)
                          .Raw(floats)
                          .U64(2)
                          .Name("arg:legacy")
                          .Name("aux:v1")
                          .s;
  ParamFile p = ParseParams(bytes.data(), bytes.size(), "old");
  test::ExpectTensorNear(p.arg.at("legacy"), {1, 3}, {1.5, -2, 3.25});
  test::ExpectTensorNear(p.aux.at("v1"), {3}, {1.5, -2, 3.25});
}

TEST_F(ParamsTest, ReadsFilesOfAnIndependentWriter) {
  std::string why;
  if (!HaveNumpy(&why)) GTEST_SKIP() << "independent .params writer not run: " << why;
  RunPython(std::string(kPythonPattern) + R"PY(
def shape_of(a):
    return struct.pack('<i', a.ndim) + struct.pack('<%dq' % a.ndim, *a.shape)
def tail(a, ctx=(1, 0)):
    return struct.pack('<iii', ctx[0], ctx[1], FLAGS[a.dtype.name]) + a.tobytes()
def v2(a, ctx=(1, 0), magic=0xF993FAC9):  # NDArray::Save: magic, stype, shape, ctx, flag, data
    return struct.pack('<Ii', magic, 0) + shape_of(a) + tail(a, ctx)
def v1(a):  # LegacyLoad with NDARRAY_V1_MAGIC: magic, TShape (uint32 ndim, int64 dims), ...
    return struct.pack('<II', 0xF993FAC8, a.ndim) + struct.pack('<%dq' % a.ndim, *a.shape) + tail(a)
def v0(a):  # LegacyLoad of the oldest files: ndim, uint32 dims, ...
    return struct.pack('<I', a.ndim) + struct.pack('<%dI' % a.ndim, *a.shape) + tail(a)
entries = []
for name in FLAGS:
    entries.append(('arg:' + name, v2(pattern(name, (2, 3)))))
entries.append(('aux:bn_moving_mean', v2(pattern('float32', (4,)), ctx=(2, 1))))
entries.append(('aux:empty', v2(np.zeros((0, 3), np.float32))))
entries.append(('dense0.weight', v1(pattern('float64', (3, 2)))))
entries.append(('arg:old', v0(pattern('int32', (2, 2)))))
out = struct.pack('<QQQ', 0x112, 0, len(entries)) + b''.join(e for _, e in entries)
out += struct.pack('<Q', len(entries))
out += b''.join(struct.pack('<Q', len(n)) + n.encode() for n, _ in entries)
open('independent.params', 'wb').write(out)
# NumPy shape semantics (V3): a scalar beside an ordinary array.
s = np.array(2.5, np.float32)
v3 = [('arg:scalar', v2(s, magic=0xF993FACA)), ('arg:x', v2(pattern('int8', (5,)), magic=0xF993FACA))]
out = struct.pack('<QQQ', 0x112, 0, 2) + b''.join(e for _, e in v3) + struct.pack('<Q', 2)
out += b''.join(struct.pack('<Q', len(n)) + n.encode() for n, _ in v3)
open('v3.params', 'wb').write(out)
)PY");
  ParamFile p = LoadParams(Path("independent.params"));
  for (DType t : kAllDTypes) {
    if (t == DType::kBFloat16) continue;  // NumPy has none
    std::string name(DTypeName(t));
    ASSERT_TRUE(p.arg.count(name)) << name;
    ExpectSameTensor(p.arg.at(name), PatternTensor(t, {2, 3}), name);
  }
  ExpectSameTensor(p.aux.at("bn_moving_mean"), PatternTensor(DType::kFloat32, {4}));
  ExpectSameTensor(p.aux.at("empty"), Tensor::Zeros({0, 3}, DType::kFloat32));
  ExpectSameTensor(p.arg.at("dense0.weight"), PatternTensor(DType::kFloat64, {3, 2}));
  ExpectSameTensor(p.arg.at("old"), PatternTensor(DType::kInt32, {2, 2}));
  EXPECT_EQ(p.arg.size(), 10u);
  EXPECT_EQ(p.aux.size(), 2u);
  ParamFile v3 = LoadParams(Path("v3.params"));
  test::ExpectTensorNear(v3.arg.at("scalar"), {}, {2.5});
  ExpectSameTensor(v3.arg.at("x"), PatternTensor(DType::kInt8, {5}));
}

TEST_F(ParamsTest, AnIndependentReaderReadsKilnFiles) {
  std::string why;
  if (!HaveNumpy(&why)) GTEST_SKIP() << "independent .params reader not run: " << why;
  ParamFile p = EveryDType();
  p.arg.erase("bfloat16");  // NumPy cannot compare it
  p.aux.erase("bfloat16_e");
  SaveParams(Path("kiln.params"), p);
  ParamFile s;
  s.aux["step"] = PatternTensor(DType::kInt64, {});
  s.arg["w"] = PatternTensor(DType::kFloat16, {2, 2});
  SaveParams(Path("scalar.params"), s);
  std::string out = RunPython(std::string(kPythonPattern) + R"PY(
NAMES = {v: k for k, v in FLAGS.items()}
def read(path):  # follows MXNet's NDArray::Load for V2/V3 dense arrays
    b = open(path, 'rb').read()
    magic, reserved, n = struct.unpack_from('<QQQ', b, 0)
    assert magic == 0x112 and reserved == 0
    pos, arrays = 24, []
    for _ in range(n):
        m, stype, ndim = struct.unpack_from('<IiI', b, pos); pos += 12
        assert m in (0xF993FAC9, 0xF993FACA) and stype == 0
        shape = struct.unpack_from('<%dq' % ndim, b, pos); pos += 8 * ndim
        dev_type, dev_id, flag = struct.unpack_from('<iii', b, pos); pos += 12
        assert (dev_type, dev_id) == (1, 0)
        dt = np.dtype(NAMES[flag])
        count = int(np.prod(shape))
        arrays.append((np.frombuffer(b, dt, count, pos).reshape(shape), m)); pos += count * dt.itemsize
    (m,) = struct.unpack_from('<Q', b, pos); pos += 8
    assert m == n
    names = []
    for _ in range(m):
        (length,) = struct.unpack_from('<Q', b, pos); pos += 8
        names.append(b[pos:pos + length].decode()); pos += length
    assert pos == len(b)
    return dict(zip(names, arrays))
checked = 0
d = read('kiln.params')
for key, (a, magic) in d.items():
    assert magic == 0xF993FAC9
    kind, name = key.split(':', 1)
    if name == 'fc1_weight':
        want = pattern('float32', (4, 3, 2, 1, 2))
    elif kind == 'arg':
        want = pattern(name, (3, 2))
    else:
        want = pattern(name[:-2], (2, 0))
    assert a.dtype == want.dtype and a.shape == want.shape and np.array_equal(a, want), key
    checked += 1
d = read('scalar.params')
assert d['aux:step'][1] == 0xF993FACA and d['aux:step'][0].shape == ()
assert np.array_equal(d['aux:step'][0], pattern('int64', ()))
assert np.array_equal(d['arg:w'][0], pattern('float16', (2, 2)))
print('checked', checked + 2)
)PY");
  EXPECT_NE(out.find("checked 19"), std::string::npos) << out;
}

TEST_F(ParamsTest, LoadsIntoExecutors) {
  SetExecutorBackend(ExecutorBackend::kInterpreter);
  Symbol net = models::ResNetBlockNet(4, 3);
  const std::vector<std::string> inputs = {"data", "softmax_label"};
  auto bind = [&] {
    return net.SimpleBind(Device::CPU(), {{"data", {2, 3, 6, 6}}}, GradReq::kNull);
  };
  Executor a = bind(), b = bind();
  InitParams(a, Initializer::Xavier().Seed(3), inputs);
  for (const Tensor& aux : a.aux_arrays()) Initializer::Uniform(0.5).Fill(aux);
  for (const Tensor& aux : a.aux_arrays()) {  // variances must stay positive
    float* v = aux.data<float>();
    for (int64_t i = 0; i < aux.size(); ++i) v[i] = std::fabs(v[i]) + 0.5f;
  }
  std::string path = Path("net.params");
  SaveParams(path, ExecutorParams(a, inputs));
  ParamFile p = LoadParams(path);
  EXPECT_EQ(p.arg.size() + inputs.size(), a.argument_names().size());
  EXPECT_EQ(p.aux.size(), a.aux_names().size());
  SetExecutorParams(b, p, inputs);
  Tensor data = PatternTensor(DType::kFloat32, {2, 3, 6, 6});
  a.Forward(false, {{"data", data}});
  b.Forward(false, {{"data", data}});
  ExpectSameTensor(b.outputs()[0], a.outputs()[0]);

  // Mismatches change nothing and name the array.
  ParamFile missing = p;
  missing.aux.erase(missing.aux.begin());
  test::ExpectUserError([&] { SetExecutorParams(b, missing, inputs); }, {"lack aux"});
  SetExecutorParams(b, missing, inputs, /*allow_missing=*/true);
  ParamFile extra = p;
  extra.arg["nope"] = PatternTensor(DType::kFloat32, {1});
  extra.arg["data"] = data;
  test::ExpectUserError([&] { SetExecutorParams(b, extra, inputs); },
                        {"arg 'data'", "is an input of the executor"});
  SetExecutorParams(b, extra, inputs, false, /*allow_extra=*/true);
  ParamFile wrong = p;
  std::string first = wrong.arg.begin()->first;
  wrong.arg[first] = PatternTensor(DType::kFloat64, {1, 2});
  test::ExpectUserError([&] { SetExecutorParams(b, wrong, inputs); },
                        {"arg '" + first + "'", "float64(1, 2)"});
  test::ExpectUserError([&] { ExecutorParams(a, {"pixels"}); }, {"\"pixels\""});
  SetExecutorBackend(ExecutorBackend::kDefault);
}

}  // namespace
}  // namespace kiln
