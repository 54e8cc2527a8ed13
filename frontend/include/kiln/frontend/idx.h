// kiln/frontend/idx.h - reading IDX files (the MNIST and Fashion-MNIST format), gzip or plain.
//
// An IDX file is a big-endian header (two zero bytes, a type code, the rank, then one uint32
// per dimension) followed by the elements in row-major order. Fashion-MNIST ships its images as
// uint8 (N, 28, 28) and labels as uint8 (N) in gzip files. Files ending in ".gz" are inflated
// with zlib; anything malformed (bad magic, truncated data, a size that disagrees with the
// header, a corrupt gzip stream) is a UserError naming the file and what is wrong.
#pragma once

#include <string>

#include "kiln/runtime/tensor.h"

namespace kiln {

// Reads an IDX file into a tensor of its own element type and shape.
// Supported types: uint8 (0x08), int8 (0x09), int32 (0x0C), float32 (0x0D), float64 (0x0E).
Tensor ReadIdx(const std::string& path);

// A labelled image set: images float32 (N, rows*cols) scaled to [0, 1], labels float32 (N).
struct ImageDataset {
  Tensor images;
  Tensor labels;
  int64_t rows = 0, cols = 0;
};

// Reads `<dir>/<prefix>-images-idx3-ubyte.gz` and `<dir>/<prefix>-labels-idx1-ubyte.gz`
// (prefix "train" or "t10k"), checks that they agree, and keeps the first `limit` samples
// (all if limit < 0).
ImageDataset ReadMnistStyle(const std::string& dir, const std::string& prefix, int64_t limit = -1);

// Where Debian's dataset-fashion-mnist package installs the data.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

}  // namespace kiln
