// dtype.cpp - names, sizes and conversions of element types.
#include "kiln/runtime/dtype.h"

#include <cmath>

#include "kiln/runtime/error.h"

namespace kiln {

namespace {
struct DTypeInfo {
  DType type;
  std::string_view name;
  size_t size;
  int mxnet_flag;
  DLPackType dlpack;
};
constexpr DTypeInfo kInfo[] = {
    {DType::kFloat32, "float32", 4, 0, {2, 32}},    {DType::kFloat16, "float16", 2, 2, {2, 16}},
    {DType::kBFloat16, "bfloat16", 2, 12, {4, 16}}, {DType::kFloat64, "float64", 8, 1, {2, 64}},
    {DType::kInt8, "int8", 1, 5, {0, 8}},           {DType::kUInt8, "uint8", 1, 3, {1, 8}},
    {DType::kInt32, "int32", 4, 4, {0, 32}},        {DType::kInt64, "int64", 8, 6, {0, 64}},
    {DType::kBool, "bool", 1, 7, {6, 8}},
};

const DTypeInfo* Find(DType t) {
  for (const auto& info : kInfo)
    if (info.type == t) return &info;
  return nullptr;
}
}  // namespace

std::string_view DTypeName(DType t) {
  const DTypeInfo* info = Find(t);
  return info ? info->name : std::string_view("?");
}

std::optional<DType> ParseDType(std::string_view name) {
  for (const auto& info : kInfo)
    if (info.name == name) return info.type;
  return std::nullopt;
}

size_t DTypeSize(DType t) {
  const DTypeInfo* info = Find(t);
  return info ? info->size : 0;
}

bool IsFloatingPoint(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}

bool IsInteger(DType t) {
  return t == DType::kInt8 || t == DType::kUInt8 || t == DType::kInt32 || t == DType::kInt64;
}

int MXNetTypeFlag(DType t) {
  const DTypeInfo* info = Find(t);
  KILN_INTERNAL_CHECK(info != nullptr, "no MXNet type flag for an unknown dtype");
  return info->mxnet_flag;
}

std::optional<DType> DTypeFromMXNetTypeFlag(int flag) {
  for (const auto& info : kInfo)
    if (info.mxnet_flag == flag) return info.type;
  return std::nullopt;
}

DLPackType ToDLPackType(DType t) {
  const DTypeInfo* info = Find(t);
  KILN_INTERNAL_CHECK(info != nullptr, "no DLPack type for an unknown dtype");
  return info->dlpack;
}

// binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Rounds to nearest even.
uint16_t float16::FromFloat(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan: keep nan quiet and non-zero
    return uint16_t(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0));
  }
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: overflow
  if (abs < 0x38800000u) {                                  // below 2^-14: subnormal or zero
    // Scale by 2^24 so that the half subnormal unit becomes 1, then round to nearest even.
    float scaled = std::fabs(f) * 16777216.0f;
    return uint16_t(sign | uint16_t(std::nearbyint(scaled)));
  }
  uint32_t mant_odd = (abs >> 13) & 1u;
  abs += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round to nearest even
  return uint16_t(sign | uint16_t(abs >> 13));
}

float float16::ToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t out;
  if (exp == 0x1f) {
    out = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    float v = std::ldexp(float(mant), -24);
    std::memcpy(&out, &v, 4);
    out |= sign;
  } else {
    out = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &out, 4);
  return f;
}

uint16_t bfloat16::FromFloat(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);  // quiet nan
  uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  return uint16_t((x + rounding) >> 16);
}

namespace detail {
void ThrowBadDType(DType t) {
  throw InternalError(StrCat("unexpected dtype ", DTypeName(t), " in a type switch"));
}
}  // namespace detail

}  // namespace kiln
