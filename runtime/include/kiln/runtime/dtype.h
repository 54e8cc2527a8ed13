// kiln/runtime/dtype.h - element types of tensors.
//
// A DType names the element type of a tensor. The nine types are those of MXNet and DLPack that
// neural networks use. float16 and bfloat16 are storage types: arithmetic on them converts to
// float, computes, and rounds back to nearest even. kUnknown exists only during type inference
// and never describes a tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <type_traits>

namespace kiln {

enum class DType : uint8_t {
  kFloat32,
  kFloat16,
  kBFloat16,
  kFloat64,
  kInt8,
  kUInt8,
  kInt32,
  kInt64,
  kBool,
  kUnknown = 255,
};

inline constexpr int kNumDTypes = 9;
inline constexpr DType kAllDTypes[kNumDTypes] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                                 DType::kFloat64, DType::kInt8,    DType::kUInt8,
                                                 DType::kInt32,   DType::kInt64,   DType::kBool};

// "float32", "float16", "bfloat16", "float64", "int8", "uint8", "int32", "int64", "bool", "?".
std::string_view DTypeName(DType t);
// Parses a name printed by DTypeName (also the NumPy spellings "bool_" and "float"/"half"
// aliases are not accepted: one spelling per type). Returns nullopt for anything else.
std::optional<DType> ParseDType(std::string_view name);
// Bytes per element; 0 for kUnknown.
size_t DTypeSize(DType t);
bool IsFloatingPoint(DType t);  // float32, float16, bfloat16, float64
bool IsInteger(DType t);        // int8, uint8, int32, int64 (not bool)

// MXNet's type flags (mshadow::TypeFlag), used by the `__dtype__` attribute of MXNet JSON.
int MXNetTypeFlag(DType t);
std::optional<DType> DTypeFromMXNetTypeFlag(int flag);

// DLPack's (code, bits) for a type: code 0 int, 1 uint, 2 float, 4 bfloat, 6 bool.
struct DLPackType {
  uint8_t code;
  uint8_t bits;
};
DLPackType ToDLPackType(DType t);

// IEEE 754 binary16, stored as its bits.
struct float16 {
  uint16_t bits = 0;
  float16() = default;
  float16(float f) : bits(FromFloat(f)) {}  // NOLINT: implicit, so generic kernels compile
  operator float() const { return ToFloat(bits); }
  static uint16_t FromFloat(float f);
  static float ToFloat(uint16_t h);
};

// bfloat16: the upper half of a float32.
struct bfloat16 {
  uint16_t bits = 0;
  bfloat16() = default;
  bfloat16(float f) : bits(FromFloat(f)) {}  // NOLINT: implicit, so generic kernels compile
  operator float() const {
    uint32_t u = uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  static uint16_t FromFloat(float f);
};

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kFloat32;
};
template <>
struct DTypeOf<float16> {
  static constexpr DType value = DType::kFloat16;
};
template <>
struct DTypeOf<bfloat16> {
  static constexpr DType value = DType::kBFloat16;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::kFloat64;
};
template <>
struct DTypeOf<int8_t> {
  static constexpr DType value = DType::kInt8;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::kUInt8;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::kInt32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::kInt64;
};
template <>
struct DTypeOf<bool> {
  static constexpr DType value = DType::kBool;
};

// The type in which reference kernels accumulate: double for floating point, int64 otherwise.
template <class T>
using AccType = std::conditional_t<std::is_integral_v<T>, int64_t, double>;

}  // namespace kiln

// Runs BODY with `T` bound to the C++ type of DTYPE (a runtime value). Unknown -> InternalError.
#define KILN_DTYPE_SWITCH(DTYPE, T, ...)    \
  switch (DTYPE) {                          \
    case ::kiln::DType::kFloat32: {         \
      using T = float;                      \
      __VA_ARGS__;                          \
    } break;                                \
    case ::kiln::DType::kFloat16: {         \
      using T = ::kiln::float16;            \
      __VA_ARGS__;                          \
    } break;                                \
    case ::kiln::DType::kBFloat16: {        \
      using T = ::kiln::bfloat16;           \
      __VA_ARGS__;                          \
    } break;                                \
    case ::kiln::DType::kFloat64: {         \
      using T = double;                     \
      __VA_ARGS__;                          \
    } break;                                \
    case ::kiln::DType::kInt8: {            \
      using T = int8_t;                     \
      __VA_ARGS__;                          \
    } break;                                \
    case ::kiln::DType::kUInt8: {           \
      using T = uint8_t;                    \
      __VA_ARGS__;                          \
    } break;                                \
    case ::kiln::DType::kInt32: {           \
      using T = int32_t;                    \
      __VA_ARGS__;                          \
    } break;                                \
    case ::kiln::DType::kInt64: {           \
      using T = int64_t;                    \
      __VA_ARGS__;                          \
    } break;                                \
    case ::kiln::DType::kBool: {            \
      using T = bool;                       \
      __VA_ARGS__;                          \
    } break;                                \
    default:                                \
      ::kiln::detail::ThrowBadDType(DTYPE); \
  }

// Like KILN_DTYPE_SWITCH over the four floating-point types only. Type inference rejects other
// types before a kernel runs, so reaching the default is an InternalError.
#define KILN_FLOAT_DTYPE_SWITCH(DTYPE, T, ...) \
  switch (DTYPE) {                             \
    case ::kiln::DType::kFloat32: {            \
      using T = float;                         \
      __VA_ARGS__;                             \
    } break;                                   \
    case ::kiln::DType::kFloat16: {            \
      using T = ::kiln::float16;               \
      __VA_ARGS__;                             \
    } break;                                   \
    case ::kiln::DType::kBFloat16: {           \
      using T = ::kiln::bfloat16;              \
      __VA_ARGS__;                             \
    } break;                                   \
    case ::kiln::DType::kFloat64: {            \
      using T = double;                        \
      __VA_ARGS__;                             \
    } break;                                   \
    default:                                   \
      ::kiln::detail::ThrowBadDType(DTYPE);    \
  }

namespace kiln::detail {
[[noreturn]] void ThrowBadDType(DType t);
}  // namespace kiln::detail
