// npy.cpp - reading and writing NumPy .npy files; atomic file writes.
//
// The format is NumPy's (numpy/lib/format.py, "NEP 1"): magic, version, header length, a Python
// dict literal, the data. The header is parsed by a small parser of Python literals (strings,
// integers, True/False/None, tuples and lists) that bounds its nesting depth and never reads
// past the header, so any bytes at all give either a tensor or a UserError.
#include "kiln/runtime/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

namespace kiln {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kAlign = 64;  // NumPy pads headers so that data starts at a multiple of 64

// ---- a parser of the Python literals that .npy headers hold ----------------------------------

struct PyValue {
  enum Kind { kStr, kInt, kBool, kNone, kTuple, kList, kDict } kind = kNone;
  std::string str;
  int64_t num = 0;
  bool flag = false;
  std::vector<PyValue> items;                           // tuple or list elements
  std::vector<std::pair<std::string, PyValue>> fields;  // dict entries in order
};

class LiteralParser {
 public:
  LiteralParser(std::string_view text, const std::string& what) : s_(text), what_(what) {}

  PyValue ParseWhole() {
    PyValue v = ParseValue(0);
    SkipSpace();
    if (pos_ != s_.size()) Fail("unexpected text after the dict");
    return v;
  }

 private:
  [[noreturn]] void Fail(const std::string& msg) const {
    // Quote the header (cut to a sane length, non-printable bytes escaped) for context.
    std::string shown;
    for (size_t i = 0; i < s_.size() && i < 200; ++i) {
      unsigned char c = static_cast<unsigned char>(s_[i]);
      if (c >= 32 && c < 127) {
        shown += char(c);
      } else {
        static const char* hex = "0123456789abcdef";
        shown += "\\x";
        shown += hex[c >> 4];
        shown += hex[c & 15];
      }
    }
    if (s_.size() > 200) shown += "...";
    throw UserError(
        StrCat(what_, ": bad .npy header: ", msg, " at offset ", pos_, " of \"", shown, "\""));
  }

  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' ||
                                s_[pos_] == '\r' || s_[pos_] == '\f' || s_[pos_] == '\v'))
      ++pos_;
  }

  char Peek() {
    SkipSpace();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }

  void Expect(char c) {
    if (Peek() != c) Fail(StrCat("expected '", c, "'"));
    ++pos_;
  }

  PyValue ParseValue(int depth) {
    if (depth > 32) Fail("literal nested too deeply");
    char c = Peek();
    if (c == '\'' || c == '"') {
      PyValue v;
      v.kind = PyValue::kStr;
      v.str = ParseString();
      return v;
    }
    if (c == '{') return ParseDict(depth);
    if (c == '(' || c == '[') return ParseSequence(depth);
    if (c == '-' || c == '+' || (c >= '0' && c <= '9')) return ParseInt();
    if (c >= 'A' && c <= 'Z') {
      size_t start = pos_;
      while (pos_ < s_.size() && std::isalnum(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      std::string_view word = s_.substr(start, pos_ - start);
      PyValue v;
      if (word == "True" || word == "False") {
        v.kind = PyValue::kBool;
        v.flag = word == "True";
        return v;
      }
      if (word == "None") return v;
      pos_ = start;
      Fail(StrCat("unknown name '", word, "'"));
    }
    if (c == '\0') Fail("unexpected end of header");
    Fail("expected a Python literal");
  }

  std::string ParseString() {
    char quote = s_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) Fail("unterminated string");
      char c = s_[pos_++];
      if (c == quote) return out;
      if (c == '\n') Fail("newline in a string");
      if (c == '\\') {
        if (pos_ >= s_.size()) Fail("unterminated string");
        c = s_[pos_++];
      }
      out += c;
    }
  }

  PyValue ParseInt() {
    bool negative = false;
    if (s_[pos_] == '-' || s_[pos_] == '+') negative = s_[pos_++] == '-';
    if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') Fail("expected digits");
    uint64_t value = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      uint64_t digit = uint64_t(s_[pos_] - '0');
      if (value > (uint64_t(INT64_MAX) - digit) / 10) Fail("integer too large");
      value = value * 10 + digit;
      ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'L' || s_[pos_] == 'l')) ++pos_;  // Python 2 longs
    PyValue v;
    v.kind = PyValue::kInt;
    v.num = negative ? -int64_t(value) : int64_t(value);
    return v;
  }

  PyValue ParseSequence(int depth) {
    char open = s_[pos_++];
    char close = open == '(' ? ')' : ']';
    PyValue v;
    v.kind = open == '(' ? PyValue::kTuple : PyValue::kList;
    bool comma = false;  // "(3)" is the integer 3 in Python, "(3,)" a tuple
    while (Peek() != close) {
      v.items.push_back(ParseValue(depth + 1));
      if (Peek() == ',') {
        ++pos_;
        comma = true;
      } else if (Peek() != close) {
        Fail(StrCat("expected ',' or '", close, "'"));
      }
    }
    ++pos_;
    if (open == '(' && v.items.size() == 1 && !comma) return v.items[0];
    return v;
  }

  PyValue ParseDict(int depth) {
    ++pos_;
    PyValue v;
    v.kind = PyValue::kDict;
    while (Peek() != '}') {
      char c = Peek();
      if (c != '\'' && c != '"') Fail("expected a string key");
      std::string key = ParseString();
      for (const auto& field : v.fields)
        if (field.first == key) Fail(StrCat("key '", key, "' given twice"));
      Expect(':');
      v.fields.emplace_back(std::move(key), ParseValue(depth + 1));
      if (Peek() == ',') {
        ++pos_;
      } else if (Peek() != '}') {
        Fail("expected ',' or '}'");
      }
    }
    ++pos_;
    return v;
  }

  std::string_view s_;
  const std::string& what_;
  size_t pos_ = 0;
};

// ---- dtypes -----------------------------------------------------------------------------------

bool HostIsLittleEndian() {
  uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// The descr NumPy writes for a kiln dtype; empty for bfloat16 (NumPy has none).
std::string DescrOf(DType t) {
  switch (t) {
    case DType::kFloat16:
      return "<f2";
    case DType::kFloat32:
      return "<f4";
    case DType::kFloat64:
      return "<f8";
    case DType::kInt8:
      return "|i1";
    case DType::kUInt8:
      return "|u1";
    case DType::kInt32:
      return "<i4";
    case DType::kInt64:
      return "<i8";
    case DType::kBool:
      return "|b1";
    default:
      return "";
  }
}

// Parses a descr such as "<f4" or "|b1" into a kiln dtype, or throws a UserError saying why not.
DType DTypeOfDescr(const std::string& descr, const std::string& what) {
  std::string_view d = descr;
  char order = '=';
  if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=')) {
    order = d[0];
    d.remove_prefix(1);
  }
  if (d.size() < 2 || d.size() > 4)
    throw UserError(StrCat(what, ": unsupported .npy dtype '", descr, "'"));
  char kind = d[0];
  int size = 0;
  for (char c : d.substr(1)) {
    if (c < '0' || c > '9') throw UserError(StrCat(what, ": unsupported .npy dtype '", descr, "'"));
    size = size * 10 + (c - '0');
  }
  std::optional<DType> t;
  const char* numpy_name = nullptr;
  if (kind == 'f') {
    if (size == 2) t = DType::kFloat16;
    if (size == 4) t = DType::kFloat32;
    if (size == 8) t = DType::kFloat64;
  } else if (kind == 'i') {
    if (size == 1) t = DType::kInt8;
    if (size == 2) numpy_name = "int16";
    if (size == 4) t = DType::kInt32;
    if (size == 8) t = DType::kInt64;
  } else if (kind == 'u') {
    if (size == 1) t = DType::kUInt8;
    if (size == 2) numpy_name = "uint16";
    if (size == 4) numpy_name = "uint32";
    if (size == 8) numpy_name = "uint64";
  } else if (kind == 'b') {
    if (size == 1) t = DType::kBool;
  } else if (kind == 'c') {
    numpy_name = "complex";
  }
  if (!t) {
    if (numpy_name)
      throw UserError(StrCat(what, ": .npy dtype '", descr, "' (", numpy_name,
                             ") has no kiln dtype; convert the array first (e.g. astype)"));
    throw UserError(StrCat(what, ": unsupported .npy dtype '", descr,
                           "' (kiln reads float16/32/64, int8/32/64, uint8 and bool)"));
  }
  bool big = order == '>' || (order == '=' && !HostIsLittleEndian());
  if (big && size > 1)
    throw UserError(StrCat(what, ": big-endian .npy data ('", descr,
                           "') is not supported; save it little-endian (astype('<", descr.substr(1),
                           "'))"));
  if (order == '<' && !HostIsLittleEndian() && size > 1)
    throw UserError(StrCat(what, ": little-endian .npy data on a big-endian host"));
  return *t;
}

// Copies a Fortran-order array (first index fastest) of `shape` into row-major `dst`.
void FortranToC(const unsigned char* src, unsigned char* dst, const std::vector<int64_t>& shape,
                size_t esize) {
  const int nd = int(shape.size());
  const int64_t n = NumElements(shape);
  // Row-major strides (in elements) of the destination, and the current index in Fortran order.
  std::vector<int64_t> state(2 * shape.size(), 0);
  int64_t* cstride = state.data();
  int64_t* idx = cstride + nd;
  if (nd > 0) cstride[nd - 1] = 1;
  for (int k = nd - 2; k >= 0; --k) cstride[k] = cstride[k + 1] * shape[k + 1];
  int64_t out = 0;  // destination element of idx
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(dst + size_t(out) * esize, src + size_t(i) * esize, esize);
    // Advance idx with axis 0 fastest, keeping `out` in step.
    for (int k = 0; k < nd; ++k) {
      if (++idx[k] < shape[k]) {
        out += cstride[k];
        break;
      }
      out -= cstride[k] * (shape[k] - 1);
      idx[k] = 0;
    }
  }
}

std::string ShapeLiteral(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::string ErrnoText(int err) {
  return std::strerror(err);
}

}  // namespace

Tensor ParseNpy(const void* data, size_t size, const std::string& what) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (size < kMagicLen + 2 || std::memcmp(bytes, kMagic, kMagicLen) != 0)
    throw UserError(StrCat(what, ": not a .npy file (bad magic; ", size, " bytes)"));
  int major = bytes[6], minor = bytes[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    throw UserError(StrCat(what, ": unsupported .npy format version ", major, ".", minor,
                           " (kiln reads 1.0, 2.0 and 3.0)"));
  size_t len_size = major == 1 ? 2 : 4;
  size_t preamble = kMagicLen + 2 + len_size;
  if (size < preamble)
    throw UserError(StrCat(what, ": truncated .npy file (", size, " bytes, no header length)"));
  uint64_t header_len = 0;
  for (size_t i = 0; i < len_size; ++i) header_len |= uint64_t(bytes[8 + i]) << (8 * i);
  if (header_len > size - preamble)
    throw UserError(StrCat(what, ": truncated .npy header (", header_len, " bytes announced, ",
                           size - preamble, " present)"));
  std::string_view header(reinterpret_cast<const char*>(bytes + preamble), size_t(header_len));
  // NumPy's writers end the header with '\n' after spaces; other writers pad with NULs.
  while (!header.empty() &&
         (header.back() == '\0' || header.back() == ' ' || header.back() == '\n'))
    header.remove_suffix(1);
  PyValue dict = LiteralParser(header, what).ParseWhole();
  if (dict.kind != PyValue::kDict) throw UserError(StrCat(what, ": .npy header is not a dict"));

  const PyValue *descr = nullptr, *fortran = nullptr, *shape_v = nullptr;
  for (const auto& [key, value] : dict.fields) {
    if (key == "descr") {
      descr = &value;
    } else if (key == "fortran_order") {
      fortran = &value;
    } else if (key == "shape") {
      shape_v = &value;
    } else {
      throw UserError(StrCat(what, ": .npy header has an unknown key '", key, "'"));
    }
  }
  if (!descr || !fortran || !shape_v)
    throw UserError(StrCat(what, ": .npy header lacks the key '",
                           !descr     ? "descr"
                           : !fortran ? "fortran_order"
                                      : "shape",
                           "'"));
  if (descr->kind == PyValue::kList)
    throw UserError(StrCat(what, ": structured .npy dtypes (a list descr) are not supported"));
  if (descr->kind != PyValue::kStr)
    throw UserError(StrCat(what, ": .npy header's 'descr' is not a string"));
  if (fortran->kind != PyValue::kBool)
    throw UserError(StrCat(what, ": .npy header's 'fortran_order' is not True or False"));
  if (shape_v->kind != PyValue::kTuple)
    throw UserError(StrCat(what, ": .npy header's 'shape' is not a tuple"));
  DType dtype = DTypeOfDescr(descr->str, what);

  // Elements: 0 if any dimension is 0; the product of the others must fit int64 regardless,
  // so that every later product of dims (Tensor::size) is defined.
  std::vector<int64_t> shape;
  uint64_t nonzero_product = 1;
  bool has_zero = false;
  for (const PyValue& d : shape_v->items) {
    if (d.kind != PyValue::kInt || d.num < 0)
      throw UserError(StrCat(what, ": .npy shape has a dimension that is not a count >= 0"));
    shape.push_back(d.num);
    if (d.num == 0) {
      has_zero = true;
      continue;
    }
    if (nonzero_product > uint64_t(INT64_MAX) / uint64_t(d.num))
      throw UserError(StrCat(what, ": .npy shape ", ShapeString(shape), "... is too large"));
    nonzero_product *= uint64_t(d.num);
  }
  uint64_t count = has_zero ? 0 : nonzero_product;
  size_t esize = DTypeSize(dtype);
  size_t available = size - preamble - size_t(header_len);
  if (count > available / esize)
    throw UserError(StrCat(what, ": truncated .npy data: shape ", ShapeString(shape), " of ",
                           DTypeName(dtype), " needs ", count, " elements of ", esize,
                           " bytes, the file holds ", available, " bytes of data"));
  size_t nbytes = size_t(count) * esize;
  if (available != nbytes)
    throw UserError(StrCat(what, ": .npy file has ", available - nbytes,
                           " bytes after the data of shape ", ShapeString(shape), " of ",
                           DTypeName(dtype)));

  Tensor t = Tensor::Empty(shape, dtype);
  const unsigned char* src = bytes + preamble + header_len;
  auto* dst = static_cast<unsigned char*>(t.raw_data());
  if (fortran->flag && shape.size() > 1 && nbytes > 0) {
    FortranToC(src, dst, shape, esize);
  } else if (nbytes > 0) {
    std::memcpy(dst, src, nbytes);
  }
  if (dtype == DType::kBool)  // a C++ bool must hold 0 or 1
    for (size_t i = 0; i < nbytes; ++i) dst[i] = dst[i] != 0;
  return t;
}

std::string ReadFileBytes(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UserError(StrCat(path, ": cannot open file: ", ErrnoText(errno)));
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw UserError(StrCat(path, ": cannot read: is a directory"));
  }
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw UserError(StrCat(path, ": cannot read: ", ErrnoText(err)));
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  ::close(fd);
  return out;
}

Tensor ReadNpy(const std::string& path) {
  std::string bytes = ReadFileBytes(path);
  return ParseNpy(bytes.data(), bytes.size(), path);
}

std::string NpyBytes(const Tensor& t) {
  if (!t.defined()) throw UserError("cannot write an undefined tensor as .npy");
  if (t.device().type != DeviceType::kCPU)
    throw UserError(StrCat("cannot write a tensor on ", t.device().ToString(),
                           " as .npy: copy it to the CPU first"));
  std::string descr = DescrOf(t.dtype());
  if (descr.empty())
    throw UserError(StrCat("cannot write ", t.TypeString(), " as .npy: NumPy has no ",
                           DTypeName(t.dtype()), "; cast it to float32 first"));
  std::string dict = StrCat("{'descr': '", descr,
                            "', 'fortran_order': False, 'shape': ", ShapeLiteral(t.shape()), ", }");
  // Version 1.0 when the padded header fits a uint16 length, else 2.0.
  int major = 1;
  size_t preamble = kMagicLen + 4;
  size_t header_len = (preamble + dict.size() + 1 + kAlign - 1) / kAlign * kAlign - preamble;
  if (header_len > 65535) {
    major = 2;
    preamble = kMagicLen + 6;
    header_len = (preamble + dict.size() + 1 + kAlign - 1) / kAlign * kAlign - preamble;
  }
  std::string out(kMagic, kMagicLen);
  out += char(major);
  out += char(0);
  for (size_t i = 0; i < preamble - kMagicLen - 2; ++i) out += char((header_len >> (8 * i)) & 255);
  out += dict;
  out.append(header_len - dict.size() - 1, ' ');
  out += '\n';
  out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  return out;
}

void WriteNpy(const std::string& path, const Tensor& t) {
  std::string bytes;
  try {
    bytes = NpyBytes(t);
  } catch (const UserError& e) {
    throw UserError(StrCat(path, ": ", e.what()));
  }
  WriteFileAtomically(path, bytes);
}

void WriteFileAtomically(const std::string& path, const std::string& bytes) {
  static std::atomic<uint64_t> counter{0};
  if (path.empty()) throw UserError("cannot write a file with an empty path");
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  auto fail = [&](const std::string& what, int err) {
    throw UserError(StrCat(path, ": cannot write: ", what, ": ", ErrnoText(err)));
  };
  // A fresh name beside `path` (same directory, hence same file system, so rename is atomic).
  std::string tmp;
  int fd = -1;
  uint64_t stamp = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = StrCat(path, ".tmp-", ::getpid(), "-", counter.fetch_add(1), "-", stamp % 1000000);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) fail(StrCat("cannot create a temporary file in ", dir), errno);
  }
  if (fd < 0) fail(StrCat("cannot create a temporary file in ", dir), EEXIST);
  auto abandon = [&](const std::string& what, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    fail(what, err);
  };
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) abandon(StrCat("writing ", tmp), n < 0 ? errno : EIO);
    done += size_t(n);
  }
  if (::fsync(fd) != 0) abandon(StrCat("flushing ", tmp), errno);
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0) abandon(StrCat("closing ", tmp), errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    abandon(StrCat("renaming ", tmp, " to ", path), errno);
  // Make the rename itself durable; a failure here leaves a complete file, so it is ignored.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace kiln
