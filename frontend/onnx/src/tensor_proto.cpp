// tensor_proto.cpp - ONNX TensorProto values as kiln tensors.
//
// A TensorProto holds its elements in `raw_data` (little-endian bytes), in the typed repeated
// field its type uses (float_data, int32_data for every type of 32 bits or fewer, int64_data,
// double_data, uint64_data), or in an external file named by `external_data` (location,
// offset, length) relative to the model's directory.
#include <cstring>
#include <fstream>
#include <sstream>

#include "importer.h"

namespace kiln::onnx_import {

std::optional<DType> DTypeFromOnnx(int32_t t) {
  using TP = ::onnx::TensorProto;
  switch (t) {
    case TP::FLOAT:
      return DType::kFloat32;
    case TP::UINT8:
      return DType::kUInt8;
    case TP::INT8:
      return DType::kInt8;
    case TP::INT32:
      return DType::kInt32;
    case TP::INT64:
      return DType::kInt64;
    case TP::BOOL:
      return DType::kBool;
    case TP::FLOAT16:
      return DType::kFloat16;
    case TP::DOUBLE:
      return DType::kFloat64;
    case TP::BFLOAT16:
      return DType::kBFloat16;
    default:
      return std::nullopt;
  }
}

const char* OnnxTypeName(int32_t t) {
  if (::onnx::TensorProto_DataType_IsValid(t)) return ::onnx::TensorProto_DataType_Name(t).c_str();
  return "an unknown element type";
}

namespace {

std::string ReadExternal(const ::onnx::TensorProto& t, const std::string& base_dir, size_t want) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") location = kv.value();
    try {
      if (kv.key() == "offset") offset = std::stoll(kv.value());
      if (kv.key() == "length") length = std::stoll(kv.value());
    } catch (const std::exception&) {
      throw UserError(StrCat("tensor \"", t.name(), "\": external data ", kv.key(), " \"",
                             kv.value(), "\" is not a number"));
    }
  }
  if (location.empty())
    throw UserError(StrCat("tensor \"", t.name(), "\": external data without a location"));
  if (location.find("..") != std::string::npos || location.front() == '/')
    throw UserError(StrCat("tensor \"", t.name(), "\": external data location \"", location,
                           "\" must be a relative path inside the model's directory"));
  std::string path = base_dir.empty() ? location : base_dir + "/" + location;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw RuntimeError(
        StrCat("tensor \"", t.name(), "\": cannot open external data file \"", path, "\""));
  if (length < 0) length = int64_t(want);
  if (size_t(length) != want || offset < 0)
    throw UserError(StrCat("tensor \"", t.name(), "\": external data has ", length,
                           " bytes at offset ", offset, " but the tensor needs ", want));
  in.seekg(0, std::ios::end);
  if (uint64_t(in.tellg()) < uint64_t(offset) + want)
    throw UserError(StrCat("tensor \"", t.name(), "\": external data file \"", path,
                           "\" ends before offset ", offset, " + ", want, " bytes"));
  std::string bytes(want, '\0');
  in.seekg(offset);
  in.read(bytes.data(), std::streamsize(want));
  if (!in)
    throw UserError(StrCat("tensor \"", t.name(), "\": external data file \"", path,
                           "\" ends before offset ", offset, " + ", want, " bytes"));
  return bytes;
}

}  // namespace

Tensor TensorFromProto(const ::onnx::TensorProto& t, const std::string& base_dir) {
  std::optional<DType> dt = DTypeFromOnnx(t.data_type());
  if (!dt)
    throw UnsupportedError(StrCat("tensor \"", t.name(), "\" has element type ",
                                  OnnxTypeName(t.data_type()), ", which kiln does not support"));
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  // Count elements with an overflow check before allocating: a hostile file must not make the
  // importer allocate more than the data it carries (external data is checked when read).
  int64_t count = 1;
  for (int64_t d : dims) {
    if (d < 0) throw UserError(StrCat("tensor \"", t.name(), "\" has a negative dim"));
    if (d > 0 && count > (int64_t(1) << 40) / d)
      throw UserError(
          StrCat("tensor \"", t.name(), "\" of shape ", ShapeString(dims), " is too large"));
    count *= d;
  }
  if (t.data_location() != ::onnx::TensorProto::EXTERNAL) {
    size_t have = t.has_raw_data()         ? t.raw_data().size() / DTypeSize(*dt)
                  : *dt == DType::kFloat32 ? size_t(t.float_data_size())
                  : *dt == DType::kFloat64 ? size_t(t.double_data_size())
                  : *dt == DType::kInt64   ? size_t(t.int64_data_size())
                                           : size_t(t.int32_data_size());
    if (have != size_t(count) || (t.has_raw_data() && t.raw_data().size() % DTypeSize(*dt)))
      throw UserError(StrCat("tensor \"", t.name(), "\" of shape ", ShapeString(dims), " holds ",
                             have, " values but needs ", count));
  }
  Tensor out = Tensor::Zeros(dims, *dt);
  const size_t n = size_t(out.size());
  const size_t bytes = out.nbytes();
  auto size_error = [&](size_t have) {
    return UserError(StrCat("tensor \"", t.name(), "\" of shape ", ShapeString(dims), " holds ",
                            have, " values but needs ", n));
  };
  if (t.data_location() == ::onnx::TensorProto::EXTERNAL) {
    std::string raw = ReadExternal(t, base_dir, bytes);
    std::memcpy(out.raw_data(), raw.data(), bytes);
    return out;
  }
  if (t.has_raw_data()) {
    if (t.raw_data().size() != bytes) throw size_error(t.raw_data().size() / DTypeSize(*dt));
    std::memcpy(out.raw_data(), t.raw_data().data(), bytes);
    return out;
  }
  switch (*dt) {
    case DType::kFloat32:
      if (size_t(t.float_data_size()) != n) throw size_error(size_t(t.float_data_size()));
      std::memcpy(out.raw_data(), t.float_data().data(), bytes);
      break;
    case DType::kFloat64:
      if (size_t(t.double_data_size()) != n) throw size_error(size_t(t.double_data_size()));
      std::memcpy(out.raw_data(), t.double_data().data(), bytes);
      break;
    case DType::kInt64:
      if (size_t(t.int64_data_size()) != n) throw size_error(size_t(t.int64_data_size()));
      std::memcpy(out.raw_data(), t.int64_data().data(), bytes);
      break;
    default: {
      // Every type of 32 bits or fewer travels in int32_data, float16/bfloat16 as their bits.
      if (size_t(t.int32_data_size()) != n) throw size_error(size_t(t.int32_data_size()));
      const size_t es = DTypeSize(*dt);
      auto* dst = static_cast<char*>(out.raw_data());
      for (size_t i = 0; i < n; ++i) {
        int32_t v = t.int32_data(int(i));
        if (*dt == DType::kBool) v = v != 0;
        std::memcpy(dst + i * es, &v, es);  // little-endian: the low bytes come first
      }
    }
  }
  return out;
}

Tensor ReadTensorFile(const std::string& path, std::string* name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RuntimeError(StrCat("cannot open \"", path, "\""));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  ::onnx::TensorProto t;
  if (!t.ParseFromString(bytes.str()))
    throw UserError(StrCat("\"", path, "\" is not a serialized ONNX TensorProto"));
  if (name) *name = t.name();
  std::string dir =
      path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/'));
  return TensorFromProto(t, dir);
}

}  // namespace kiln::onnx_import

namespace kiln {

Tensor ReadOnnxTensorFile(const std::string& path, std::string* name) {
  return onnx_import::ReadTensorFile(path, name);
}

}  // namespace kiln
