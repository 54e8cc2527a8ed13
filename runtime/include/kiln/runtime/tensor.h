// kiln/runtime/tensor.h - devices, storage and dense tensors.
//
// A Tensor is a handle: copying it shares the storage. Its elements are dense and row-major
// (C order), starting `byte_offset` bytes into a Storage. Storage is 64-byte aligned so that
// vector kernels may use aligned loads. The layout matches DLPack's DLTensor with null strides.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/runtime/dtype.h"
#include "kiln/runtime/error.h"

namespace kiln {

enum class DeviceType : uint8_t { kCPU = 1, kCUDA = 2 };  // DLPack's device codes

struct Device {
  DeviceType type = DeviceType::kCPU;
  int id = 0;
  static Device CPU(int id = 0) { return {DeviceType::kCPU, id}; }
  bool operator==(const Device&) const = default;
  std::string ToString() const;  // "cpu(0)"
};

// A block of device memory owned by whoever holds the shared_ptr.
class Storage {
 public:
  static std::shared_ptr<Storage> Allocate(size_t bytes, Device device = Device::CPU());
  // Memory owned by someone else (a plan's arena, a caller's buffer): never freed by the
  // Storage; the owner keeps it alive as long as any tensor viewing it.
  static std::shared_ptr<Storage> View(void* data, size_t bytes, Device device = Device::CPU());
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  Storage(void* data, size_t bytes, Device device, bool owned)
      : data_(data), bytes_(bytes), device_(device), owned_(owned) {}
  void* data_;
  size_t bytes_;
  Device device_;
  bool owned_;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: no storage
  // Uninitialised elements of the given shape and type.
  static Tensor Empty(std::vector<int64_t> shape, DType dtype, Device device = Device::CPU());
  static Tensor Zeros(std::vector<int64_t> shape, DType dtype, Device device = Device::CPU());
  // A CPU tensor holding `values` (converted from double to dtype); values.size() must match.
  static Tensor FromValues(std::vector<int64_t> shape, DType dtype,
                           const std::vector<double>& values);
  template <class T>
  static Tensor FromVector(std::vector<int64_t> shape, const std::vector<T>& values);
  // A tensor over memory it does not own (Storage::View): `data` must hold the elements.
  static Tensor View(void* data, std::vector<int64_t> shape, DType dtype,
                     Device device = Device::CPU());

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int ndim() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i); }
  int64_t size() const;  // number of elements; 1 for a scalar (0-d), 0 if any dim is 0
  size_t nbytes() const { return size_t(size()) * DTypeSize(dtype_); }
  Device device() const { return storage_ ? storage_->device() : Device::CPU(); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return byte_offset_; }

  void* raw_data() const { return static_cast<char*>(storage_->data()) + byte_offset_; }
  // Typed element pointer; InternalError if T is not this tensor's type.
  template <class T>
  T* data() const {
    KILN_INTERNAL_CHECK(DTypeOf<T>::value == dtype_, "tensor of ", DTypeName(dtype_), " read as ",
                        DTypeName(DTypeOf<T>::value));
    return static_cast<T*>(raw_data());
  }

  // Same storage, new shape with the same number of elements.
  Tensor Reshaped(std::vector<int64_t> shape) const;
  // A deep copy into new storage.
  Tensor Clone() const;
  // Element i (flat, row-major) converted to double; for tests and printing.
  double At(int64_t i) const;
  // Every element converted to double.
  std::vector<double> ToDoubles() const;
  // New tensor of another dtype (value conversion as static_cast through double).
  Tensor CastTo(DType dtype) const;
  // "float32(2, 3)".
  std::string TypeString() const;

 private:
  std::shared_ptr<Storage> storage_;
  size_t byte_offset_ = 0;
  std::vector<int64_t> shape_;
  DType dtype_ = DType::kFloat32;
};

// Number of elements of a shape (product of dims; 1 for an empty shape).
int64_t NumElements(const std::vector<int64_t>& shape);
// "(2, 3)".
std::string ShapeString(const std::vector<int64_t>& shape);

template <class T>
Tensor Tensor::FromVector(std::vector<int64_t> shape, const std::vector<T>& values) {
  Tensor t = Empty(std::move(shape), DTypeOf<T>::value);
  KILN_INTERNAL_CHECK(int64_t(values.size()) == t.size(), "FromVector: ", values.size(),
                      " values for shape ", ShapeString(t.shape()));
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

}  // namespace kiln
