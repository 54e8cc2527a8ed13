// idx.cpp - IDX reader with gzip support through zlib.
#include "kiln/frontend/idx.h"

#include <zlib.h>

#include <cstring>
#include <fstream>
#include <vector>

namespace kiln {

namespace {

std::vector<unsigned char> ReadAll(const std::string& path) {
  bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  std::vector<unsigned char> data;
  if (!gz) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw UserError(StrCat(path, ": cannot open file"));
    data.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return data;
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw UserError(StrCat(path, ": cannot open file"));
  unsigned char buf[1 << 16];
  while (true) {
    int n = gzread(f, buf, sizeof(buf));
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      throw UserError(StrCat(path, ": corrupt gzip data (", msg, ")"));
    }
    if (n == 0) break;
    data.insert(data.end(), buf, buf + n);
  }
  // gzread stops quietly at a truncated stream; gzclose_r reports it only as Z_BUF_ERROR.
  int code = 0;
  gzerror(f, &code);
  int close = gzclose(f);
  if (code != Z_OK && code != Z_STREAM_END) throw UserError(StrCat(path, ": corrupt gzip data"));
  if (close == Z_BUF_ERROR) throw UserError(StrCat(path, ": truncated gzip data"));
  return data;
}

uint32_t BigEndian32(const unsigned char* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

}  // namespace

Tensor ReadIdx(const std::string& path) {
  std::vector<unsigned char> bytes = ReadAll(path);
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0)
    throw UserError(StrCat(path, ": not an IDX file (bad magic number)"));
  DType dtype;
  switch (bytes[2]) {
    case 0x08:
      dtype = DType::kUInt8;
      break;
    case 0x09:
      dtype = DType::kInt8;
      break;
    case 0x0C:
      dtype = DType::kInt32;
      break;
    case 0x0D:
      dtype = DType::kFloat32;
      break;
    case 0x0E:
      dtype = DType::kFloat64;
      break;
    default:
      throw UserError(StrCat(path, ": unsupported IDX element type 0x", std::hex, int(bytes[2])));
  }
  size_t ndim = bytes[3];
  size_t header = 4 + 4 * ndim;
  if (ndim == 0 || bytes.size() < header) throw UserError(StrCat(path, ": truncated IDX header"));
  std::vector<int64_t> shape;
  for (size_t i = 0; i < ndim; ++i) shape.push_back(BigEndian32(&bytes[4 + 4 * i]));
  Tensor t = Tensor::Empty(shape, dtype);
  if (bytes.size() - header != t.nbytes())
    throw UserError(StrCat(path, ": header says ", ShapeString(shape), " (", t.nbytes(),
                           " bytes) but the file holds ", bytes.size() - header, " bytes"));
  unsigned char* out = static_cast<unsigned char*>(t.raw_data());
  size_t elem = DTypeSize(dtype);
  // IDX is big-endian: swap multi-byte elements into host order.
  for (size_t i = 0; i < t.nbytes(); i += elem)
    for (size_t b = 0; b < elem; ++b) out[i + b] = bytes[header + i + elem - 1 - b];
  return t;
}

ImageDataset ReadMnistStyle(const std::string& dir, const std::string& prefix, int64_t limit) {
  std::string image_path = StrCat(dir, "/", prefix, "-images-idx3-ubyte.gz");
  std::string label_path = StrCat(dir, "/", prefix, "-labels-idx1-ubyte.gz");
  Tensor images = ReadIdx(image_path);
  Tensor labels = ReadIdx(label_path);
  if (images.ndim() != 3 || images.dtype() != DType::kUInt8)
    throw UserError(
        StrCat(image_path, ": expected uint8 images (N, rows, cols), got ", images.TypeString()));
  if (labels.ndim() != 1 || labels.dtype() != DType::kUInt8)
    throw UserError(StrCat(label_path, ": expected uint8 labels (N), got ", labels.TypeString()));
  if (labels.dim(0) != images.dim(0))
    throw UserError(StrCat(label_path, ": ", labels.dim(0), " labels for ", images.dim(0),
                           " images in ", image_path));
  int64_t n = images.dim(0);
  if (limit >= 0 && limit < n) n = limit;
  ImageDataset ds;
  ds.rows = images.dim(1);
  ds.cols = images.dim(2);
  int64_t pixels = ds.rows * ds.cols;
  ds.images = Tensor::Empty({n, pixels}, DType::kFloat32);
  ds.labels = Tensor::Empty({n}, DType::kFloat32);
  const uint8_t* src = images.data<uint8_t>();
  float* dst = ds.images.data<float>();
  for (int64_t i = 0; i < n * pixels; ++i) dst[i] = float(src[i]) / 255.0f;
  const uint8_t* lsrc = labels.data<uint8_t>();
  float* ldst = ds.labels.data<float>();
  for (int64_t i = 0; i < n; ++i) ldst[i] = float(lsrc[i]);
  return ds;
}

}  // namespace kiln
