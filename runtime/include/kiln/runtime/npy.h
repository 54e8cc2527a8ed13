// kiln/runtime/npy.h - NumPy .npy files, and writing any file atomically.
//
// A .npy file is the magic "\x93NUMPY", a format version (major, minor byte), the length of a
// header (uint16 little-endian in version 1.0, uint32 in 2.0 and 3.0), the header (a Python dict
// literal such as "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with
// spaces and ended by '\n'), then the raw elements. docs/formats.md lists the supported subset:
//   read   versions 1.0, 2.0 and 3.0; descr '<', '|' or '=' (this host is little-endian) with
//          f2 f4 f8 i1 i4 i8 u1 b1 (kiln's DTypes; NumPy has no bfloat16, kiln no int16, uint16,
//          uint32 or uint64); fortran_order True (transposed to row-major on read); 0-d and
//          empty arrays. Big-endian data, structured and object dtypes are UserErrors.
//   write  version 1.0, or 2.0 when the header does not fit in 65535 bytes; C order; the header
//          padded so that the data starts at a multiple of 64 bytes, as NumPy does.
// Every malformed input (missing file, bad magic, a header that is not a dict of the three keys,
// an unsupported dtype, truncated data, bytes after the data) is a UserError naming the file
// and what is wrong; no input crashes or allocates more than the file's size.
#pragma once

#include <cstddef>
#include <string>

#include "kiln/runtime/tensor.h"

namespace kiln {

// Reads a .npy file into a CPU tensor of its own dtype and shape.
Tensor ReadNpy(const std::string& path);
// Parses the bytes of a .npy file; `what` names it in messages (a path, "weights.npy in x.npz").
Tensor ParseNpy(const void* data, size_t size, const std::string& what);

// The bytes of a .npy file holding `t` (a defined CPU tensor of any DType but bfloat16, which
// NumPy lacks: that is a UserError).
std::string NpyBytes(const Tensor& t);
// Writes NpyBytes(t) to `path` atomically (WriteFileAtomically).
void WriteNpy(const std::string& path, const Tensor& t);

// Writes `bytes` to a new temporary file in the directory of `path`, flushes it to disk and
// renames it over `path`, so that `path` holds either its old content or all of the new one,
// never a part. On any failure the temporary file is removed and a UserError names `path` and
// the reason (from errno). The file gets mode 0666 less the umask, as a plain open would.
void WriteFileAtomically(const std::string& path, const std::string& bytes);

// Reads a whole file; UserError naming `path` if it cannot be opened or read.
std::string ReadFileBytes(const std::string& path);

}  // namespace kiln
