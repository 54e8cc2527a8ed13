// tensor.cpp - CPU storage and tensor helpers.
#include "kiln/runtime/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace kiln {

std::string Device::ToString() const {
  return StrCat(type == DeviceType::kCPU ? "cpu" : "cuda", "(", id, ")");
}

std::shared_ptr<Storage> Storage::Allocate(size_t bytes, Device device) {
  if (device.type != DeviceType::kCPU)
    throw RuntimeError(StrCat("cannot allocate on ", device.ToString(),
                              ": only CPU storage exists in this build"));
  // aligned_alloc wants a size that is a multiple of the alignment; never allocate 0 bytes so
  // that an empty tensor still has a distinct, valid pointer.
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw RuntimeError(StrCat("out of memory allocating ", bytes, " bytes"));
  return std::shared_ptr<Storage>(new Storage(p, bytes, device, true));
}

std::shared_ptr<Storage> Storage::View(void* data, size_t bytes, Device device) {
  return std::shared_ptr<Storage>(new Storage(data, bytes, device, false));
}

Storage::~Storage() {
  if (owned_) std::free(data_);
}

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

int64_t Tensor::size() const {
  return NumElements(shape_);
}

Tensor Tensor::Empty(std::vector<int64_t> shape, DType dtype, Device device) {
  KILN_INTERNAL_CHECK(dtype != DType::kUnknown, "tensor of unknown dtype");
  for (int64_t d : shape) KILN_INTERNAL_CHECK(d >= 0, "negative dim in ", ShapeString(shape));
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.storage_ = Storage::Allocate(t.nbytes(), device);
  return t;
}

Tensor Tensor::View(void* data, std::vector<int64_t> shape, DType dtype, Device device) {
  KILN_INTERNAL_CHECK(dtype != DType::kUnknown, "tensor of unknown dtype");
  for (int64_t d : shape) KILN_INTERNAL_CHECK(d >= 0, "negative dim in ", ShapeString(shape));
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.storage_ = Storage::View(data, t.nbytes(), device);
  return t;
}

Tensor Tensor::Zeros(std::vector<int64_t> shape, DType dtype, Device device) {
  Tensor t = Empty(std::move(shape), dtype, device);
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::FromValues(std::vector<int64_t> shape, DType dtype,
                          const std::vector<double>& values) {
  Tensor t = Empty(std::move(shape), dtype);
  KILN_INTERNAL_CHECK(int64_t(values.size()) == t.size(), "FromValues: ", values.size(),
                      " values for shape ", ShapeString(t.shape()));
  KILN_DTYPE_SWITCH(dtype, T, {
    T* p = t.data<T>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(values[i]);
  });
  return t;
}

Tensor Tensor::Reshaped(std::vector<int64_t> shape) const {
  KILN_INTERNAL_CHECK(NumElements(shape) == size(), "cannot reshape ", ShapeString(shape_), " to ",
                      ShapeString(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t = Empty(shape_, dtype_, device());
  std::memcpy(t.raw_data(), raw_data(), nbytes());
  return t;
}

double Tensor::At(int64_t i) const {
  KILN_INTERNAL_CHECK(i >= 0 && i < size(), "element ", i, " of ", TypeString());
  double v = 0;
  KILN_DTYPE_SWITCH(dtype_, T, { v = static_cast<double>(data<T>()[i]); });
  return v;
}

std::vector<double> Tensor::ToDoubles() const {
  std::vector<double> out(static_cast<size_t>(size()));
  KILN_DTYPE_SWITCH(dtype_, T, {
    const T* p = data<T>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(p[i]);
  });
  return out;
}

Tensor Tensor::CastTo(DType dtype) const {
  return FromValues(shape_, dtype, ToDoubles());
}

std::string Tensor::TypeString() const {
  return StrCat(DTypeName(dtype_), ShapeString(shape_));
}

}  // namespace kiln
