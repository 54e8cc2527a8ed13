// params.cpp - MXNet's NDArray-list files (.params): reading every NDArray version, writing V2.
//
// Layout (MXNet src/ndarray/ndarray.cc, NDArray::Save/Load and the list Save/Load; dmlc::Stream
// writes integers little-endian, a vector or string as a uint64 count then its elements):
//   uint64 0x112, uint64 reserved, uint64 n, n NDArrays, uint64 m (0 or n), m strings.
// docs/formats.md has the NDArray layouts of every version.
#include "kiln/frontend/params.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "kiln/frontend/executor.h"
#include "kiln/runtime/npy.h"

namespace kiln {

namespace {

constexpr uint64_t kListMagic = 0x112;
constexpr uint32_t kV1Magic = 0xF993FAC8;
constexpr uint32_t kV2Magic = 0xF993FAC9;
constexpr uint32_t kV3Magic = 0xF993FACA;
constexpr int64_t kMaxNDim = 64;  // more is taken as a corrupt file, not a tensor

// MXNet's names of the type flags kiln has no dtype for.
const char* MXNetTypeName(int flag) {
  switch (flag) {
    case 8:
      return "int16";
    case 9:
      return "uint16";
    case 10:
      return "uint32";
    case 11:
      return "uint64";
    default:
      return nullptr;
  }
}

// Reads little-endian fields, with bounds checks that name the file, the array and the field.
class Reader {
 public:
  Reader(const unsigned char* data, size_t size, const std::string& what)
      : p_(data), size_(size), what_(what) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }
  void set_context(std::string context) { context_ = std::move(context); }

  [[noreturn]] void Fail(const std::string& msg) const {
    throw UserError(StrCat(what_, ": ", context_.empty() ? "" : context_ + ": ", msg));
  }

  const unsigned char* Take(uint64_t n, const char* field) {
    if (n > left())
      Fail(StrCat("truncated file: ", field, " needs ", n, " bytes at offset ", pos_, ", ", left(),
                  " left"));
    const unsigned char* at = p_ + pos_;
    pos_ += size_t(n);
    return at;
  }

  uint64_t U64(const char* field) { return Little(Take(8, field), 8); }
  uint32_t U32(const char* field) { return uint32_t(Little(Take(4, field), 4)); }
  int32_t I32(const char* field) { return int32_t(U32(field)); }
  int64_t I64(const char* field) { return int64_t(U64(field)); }

 private:
  static uint64_t Little(const unsigned char* b, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(b[i]) << (8 * i);
    return v;
  }

  const unsigned char* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& what_;
  std::string context_;
};

// One array of the list: a tensor, or none (an NDArray saved without shape or data).
struct Loaded {
  Tensor tensor;
  bool none = false;
  uint32_t magic = 0;
};

Loaded ReadNDArray(Reader& in) {
  Loaded out;
  uint32_t magic = in.U32("the NDArray magic");
  out.magic = magic;
  std::vector<int64_t> shape;
  if (magic == kV2Magic || magic == kV3Magic) {
    int32_t stype = in.I32("the storage type");
    if (stype != 0) {
      const char* name = stype == 1 ? "row_sparse" : stype == 2 ? "csr" : "unknown";
      in.Fail(StrCat("storage type ", stype, " (", name,
                     ") is not supported; kiln reads dense (default storage) arrays only"));
    }
    int32_t ndim = in.I32("ndim");
    // No array: V2's ndim 0 (older MXNet) or -1 (newer), V3's -1 (0 is a scalar there).
    if (ndim == -1 || (magic == kV2Magic && ndim == 0)) {
      out.none = true;
      return out;
    }
    if (ndim < 0 || ndim > kMaxNDim) in.Fail(StrCat("bad ndim ", ndim));
    bool unknown = false;
    for (int32_t i = 0; i < ndim; ++i) {
      int64_t d = in.I64("a dimension");
      if (magic == kV3Magic && d == -1) unknown = true;  // NumPy semantics: -1 is unknown
      shape.push_back(d);
    }
    if (unknown) {  // MXNet loads a shape with unknown dims as a none array
      out.none = true;
      return out;
    }
  } else if (magic == kV1Magic) {
    uint32_t ndim = in.U32("ndim");
    if (ndim == 0) {
      out.none = true;
      return out;
    }
    if (ndim > kMaxNDim) in.Fail(StrCat("bad ndim ", ndim));
    for (uint32_t i = 0; i < ndim; ++i) shape.push_back(in.I64("a dimension"));
  } else {
    // The legacy format before V1: the first word is ndim, then uint32 dims.
    if (magic == 0) {
      out.none = true;
      return out;
    }
    if (magic > uint32_t(kMaxNDim))
      in.Fail(StrCat("unknown NDArray magic 0x", std::hex, magic,
                     " (not V1/V2/V3, nor a legacy shape)"));
    for (uint32_t i = 0; i < magic; ++i) shape.push_back(int64_t(in.U32("a dimension")));
  }
  uint64_t nonzero_product = 1;
  bool has_zero = false;
  for (int64_t d : shape) {
    if (d < 0) in.Fail(StrCat("negative dimension in shape ", ShapeString(shape)));
    if (d == 0) {
      has_zero = true;
      continue;
    }
    if (nonzero_product > uint64_t(INT64_MAX) / uint64_t(d))
      in.Fail(StrCat("shape ", ShapeString(shape), " is too large"));
    nonzero_product *= uint64_t(d);
  }
  in.I32("the context's device type");  // the device it was saved from; kiln loads to the CPU
  in.I32("the context's device id");
  int32_t flag = in.I32("the type flag");
  std::optional<DType> dtype = DTypeFromMXNetTypeFlag(flag);
  if (!dtype) {
    const char* name = MXNetTypeName(flag);
    if (name) in.Fail(StrCat("MXNet dtype ", name, " (type flag ", flag, ") has no kiln dtype"));
    in.Fail(StrCat("unknown MXNet type flag ", flag));
  }
  uint64_t count = has_zero ? 0 : nonzero_product;
  size_t esize = DTypeSize(*dtype);
  if (count > in.left() / esize)
    in.Fail(StrCat("truncated file: data of ", DTypeName(*dtype), ShapeString(shape), " needs ",
                   count, " elements of ", esize, " bytes at offset ", in.pos(), ", ", in.left(),
                   " bytes left"));
  const unsigned char* data = in.Take(count * esize, "the data");
  out.tensor = Tensor::Empty(shape, *dtype);
  auto* dst = static_cast<unsigned char*>(out.tensor.raw_data());
  if (count > 0) std::memcpy(dst, data, size_t(count) * esize);
  if (*dtype == DType::kBool)  // a C++ bool must hold 0 or 1
    for (size_t i = 0; i < size_t(count); ++i) dst[i] = dst[i] != 0;
  return out;
}

const char* VersionName(uint32_t magic) {
  return magic == kV3Magic ? "V3" : magic == kV2Magic ? "V2" : magic == kV1Magic ? "V1" : "legacy";
}

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += char((v >> (8 * i)) & 255);
}
void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += char((v >> (8 * i)) & 255);
}

void PutNDArray(std::string& out, const std::string& key, const Tensor& t, uint32_t magic) {
  if (!t.defined()) throw UserError(StrCat("cannot save parameter '", key, "': undefined tensor"));
  if (t.device().type != DeviceType::kCPU)
    throw UserError(StrCat("cannot save parameter '", key, "': it is on ", t.device().ToString(),
                           "; copy it to the CPU first"));
  PutU32(out, magic);
  PutU32(out, 0);  // default (dense) storage
  PutU32(out, uint32_t(t.ndim()));
  for (int64_t d : t.shape()) PutU64(out, uint64_t(d));
  PutU32(out, 1);  // context: cpu(0)
  PutU32(out, 0);
  PutU32(out, uint32_t(MXNetTypeFlag(t.dtype())));
  out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
}

}  // namespace

ParamFile ParseParams(const void* data, size_t size, const std::string& what) {
  Reader in(static_cast<const unsigned char*>(data), size, what);
  if (size < 8 || in.U64("the list magic") != kListMagic)
    in.Fail("not an MXNet NDArray list (.params) file (bad magic; expected 0x112)");
  in.U64("the reserved word");
  uint64_t n = in.U64("the number of arrays");
  std::vector<Loaded> arrays;
  for (uint64_t i = 0; i < n; ++i) {
    in.set_context(StrCat("array ", i, " of ", n));
    if (in.left() < 4)
      in.Fail(StrCat("truncated file: ", in.left(), " bytes left at offset ", in.pos()));
    arrays.push_back(ReadNDArray(in));
  }
  in.set_context("");
  uint64_t m = in.U64("the number of names");
  if (m != 0 && m != n) in.Fail(StrCat(n, " arrays but ", m, " names"));
  std::vector<std::string> names;
  for (uint64_t i = 0; i < m; ++i) {
    in.set_context(StrCat("name ", i, " of ", m));
    uint64_t len = in.U64("the name's length");
    const unsigned char* s = in.Take(len, "the name");
    names.emplace_back(reinterpret_cast<const char*>(s), size_t(len));
  }
  in.set_context("");
  if (in.left() != 0) in.Fail(StrCat(in.left(), " bytes after the names at offset ", in.pos()));
  if (m == 0)
    for (uint64_t i = 0; i < n; ++i) names.push_back(std::to_string(i));

  ParamFile out;
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < arrays.size(); ++i) {
    const std::string& full = names[i];
    auto [it, fresh] = seen.emplace(full, i);
    if (!fresh)
      in.Fail(StrCat("the name '", full, "' is given to arrays ", it->second, " and ", i));
    if (arrays[i].none)
      in.Fail(StrCat("array ", i, " ('", full, "') is an empty ", VersionName(arrays[i].magic),
                     " NDArray (saved without shape or data)"));
    bool is_aux = full.rfind("aux:", 0) == 0;
    bool is_arg = full.rfind("arg:", 0) == 0;
    std::string key = is_aux || is_arg ? full.substr(4) : full;
    auto& map = is_aux ? out.aux : out.arg;
    if (!map.emplace(key, arrays[i].tensor).second)  // "w" and "arg:w" in one file
      in.Fail(StrCat("array ", i, " ('", full, "'): ", is_aux ? "aux" : "arg", " name '", key,
                     "' appears twice"));
  }
  return out;
}

ParamFile LoadParams(const std::string& path) {
  std::string bytes = ReadFileBytes(path);
  return ParseParams(bytes.data(), bytes.size(), path);
}

std::string ParamsBytes(const ParamFile& params) {
  bool scalar = false;
  for (const auto* map : {&params.arg, &params.aux})
    for (const auto& [key, t] : *map) scalar = scalar || (t.defined() && t.ndim() == 0);
  uint32_t magic = scalar ? kV3Magic : kV2Magic;
  std::string out;
  PutU64(out, kListMagic);
  PutU64(out, 0);
  PutU64(out, params.arg.size() + params.aux.size());
  for (const auto& [key, t] : params.arg) PutNDArray(out, "arg:" + key, t, magic);
  for (const auto& [key, t] : params.aux) PutNDArray(out, "aux:" + key, t, magic);
  PutU64(out, params.arg.size() + params.aux.size());
  for (const auto* map : {&params.arg, &params.aux}) {
    const char* prefix = map == &params.arg ? "arg:" : "aux:";
    for (const auto& [key, t] : *map) {
      PutU64(out, key.size() + 4);
      out += prefix;
      out += key;
    }
  }
  return out;
}

void SaveParams(const std::string& path, const ParamFile& params) {
  std::string bytes;
  try {
    bytes = ParamsBytes(params);
  } catch (const UserError& e) {
    throw UserError(StrCat(path, ": ", e.what()));
  }
  WriteFileAtomically(path, bytes);
}

ParamFile ExecutorParams(const Executor& exec, const std::vector<std::string>& input_names) {
  ParamFile out;
  const auto& names = exec.argument_names();
  for (const auto& in : input_names)
    if (std::find(names.begin(), names.end(), in) == names.end())
      throw UserError(StrCat("input \"", in, "\" is not an argument of the executor"));
  for (size_t i = 0; i < names.size(); ++i)
    if (std::find(input_names.begin(), input_names.end(), names[i]) == input_names.end())
      out.arg[names[i]] = exec.arg_arrays()[i];
  for (size_t i = 0; i < exec.aux_names().size(); ++i)
    out.aux[exec.aux_names()[i]] = exec.aux_arrays()[i];
  return out;
}

void SetExecutorParams(const Executor& exec, const ParamFile& params,
                       const std::vector<std::string>& input_names, bool allow_missing,
                       bool allow_extra) {
  ParamFile targets = ExecutorParams(exec, input_names);
  // Check everything before copying anything, so a failed call changes no array.
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  for (bool arg : {true, false}) {
    const char* kind = arg ? "arg" : "aux";
    const auto& from = arg ? params.arg : params.aux;
    const auto& to = arg ? targets.arg : targets.aux;
    for (const auto& [name, src] : from) {
      auto it = to.find(name);
      if (it == to.end()) {
        if (allow_extra) continue;
        bool input = std::find(input_names.begin(), input_names.end(), name) != input_names.end();
        throw UserError(StrCat("SetExecutorParams: ", kind, " '", name, "' is ",
                               input ? "an input of the executor, not a parameter"
                               : arg ? "not an argument of the executor"
                                     : "not an auxiliary state of the executor"));
      }
      const Tensor& dst = it->second;
      if (!src.defined())
        throw UserError(StrCat("SetExecutorParams: ", kind, " '", name, "' is undefined"));
      if (src.dtype() != dst.dtype() || src.shape() != dst.shape())
        throw UserError(StrCat("SetExecutorParams: ", kind, " '", name, "' is ", src.TypeString(),
                               " but the executor's array is ", dst.TypeString()));
      if (src.device().type != DeviceType::kCPU || dst.device().type != DeviceType::kCPU)
        throw UserError(
            StrCat("SetExecutorParams: ", kind, " '", name, "': only CPU arrays can be set"));
      copies.emplace_back(dst, src);
    }
    if (!allow_missing)
      for (const auto& [name, dst] : to)
        if (!from.count(name))
          throw UserError(StrCat("SetExecutorParams: the parameters lack ", kind, " '", name, "' (",
                                 dst.TypeString(), ")"));
  }
  for (const auto& [dst, src] : copies)
    if (dst.raw_data() != src.raw_data()) std::memcpy(dst.raw_data(), src.raw_data(), dst.nbytes());
}

}  // namespace kiln
