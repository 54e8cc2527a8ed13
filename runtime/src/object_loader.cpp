// Mapping ELF64 x86-64 relocatable objects of kernels (kiln/runtime/object_loader.h).
//
// Nothing here trusts the file: every field read from it is checked before use, with
// overflow-safe arithmetic (InRange, Add), and reads go through memcpy from checked offsets
// so that unaligned or truncated input cannot fault. No LLVM, no libelf, no dlopen.
#include "kiln/runtime/object_loader.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "kiln/runtime/error.h"

// The compiler runtime's float16 conversions (libgcc), which LLVM calls where the CPU lacks
// them. Only their addresses are taken; the real signatures use _Float16.
extern "C" void __extendhfsf2();
extern "C" void __truncsfhf2();
extern "C" void __truncdfhf2();

namespace kiln {
namespace {

// ---- ELF constants (from the System V ABI and its x86-64 supplement) ----
constexpr uint16_t kEtRel = 1, kEmX86_64 = 62;
constexpr uint32_t kShtProgbits = 1, kShtSymtab = 2, kShtStrtab = 3, kShtRela = 4, kShtNote = 7,
                   kShtNobits = 8, kShtRel = 9, kShtInitArray = 14, kShtFiniArray = 15,
                   kShtPreinitArray = 16, kShtX86_64Unwind = 0x70000001;
constexpr uint64_t kShfWrite = 0x1, kShfAlloc = 0x2, kShfExec = 0x4, kShfTls = 0x400,
                   kShfCompressed = 0x800;
constexpr uint16_t kShnUndef = 0, kShnLoReserve = 0xff00, kShnAbs = 0xfff1, kShnCommon = 0xfff2;
constexpr uint8_t kSttObject = 1, kSttFunc = 2, kSttTls = 6, kSttGnuIfunc = 10;
constexpr uint8_t kStbGlobal = 1, kStbWeak = 2;
constexpr uint32_t kR64 = 1, kRPc32 = 2, kRPlt32 = 4, kRGotPcRel = 9, kR32 = 10, kR32S = 11,
                   kRPc64 = 24, kRGotPcRelX = 41, kRRexGotPcRelX = 42, kRNone = 0;

constexpr uint64_t kMaxMapped = uint64_t(1) << 30;  // no kernel object needs more
constexpr uint64_t kMaxAlign = 4096;
constexpr uint64_t kMaxName = 4096;  // longer symbol or section names are rejected
constexpr uint64_t kStubSize = 16;   // jmp *0(%rip); .quad target; int3 int3
constexpr uint64_t kNotLoaded = ~uint64_t(0);

struct Shdr {
  uint32_t name, type;
  uint64_t flags, addr, offset, size;
  uint32_t link, info;
  uint64_t addralign, entsize;
};

struct Sym {
  std::string_view name;  // into the input
  uint32_t name_offset = 0;
  uint8_t bind = 0, type = 0;
  uint16_t shndx = 0;
  uint64_t value = 0;
  bool external = false;  // undefined: resolved from the table
  uint64_t address = 0;   // after layout (or the table's address for externals)
  uint64_t stub = kNotLoaded, got = kNotLoaded;  // offsets in the mapping, where needed
};

struct Rela {
  size_t section;  // the relocation section
  size_t index;    // its entry number
  uint64_t offset;
  uint32_t type;
  uint32_t sym;
  int64_t addend;
};

template <class T>
T Get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void Put(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

// [off, off + len) lies within [0, size).
bool InRange(uint64_t off, uint64_t len, uint64_t size) {
  return off <= size && len <= size - off;
}

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// A name from the file, safe to print: non-printable bytes escaped, long names cut.
std::string Printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > 80) out += "...";
  return out;
}

[[noreturn]] void Fail(const std::string& what) {
  throw RuntimeError("cannot load kernel object: " + what);
}

const char* RelocName(uint32_t type) {
  switch (type) {
    case kRNone:
      return "R_X86_64_NONE";
    case kR64:
      return "R_X86_64_64";
    case kRPc32:
      return "R_X86_64_PC32";
    case kRPlt32:
      return "R_X86_64_PLT32";
    case kRGotPcRel:
      return "R_X86_64_GOTPCREL";
    case kR32:
      return "R_X86_64_32";
    case kR32S:
      return "R_X86_64_32S";
    case kRPc64:
      return "R_X86_64_PC64";
    case kRGotPcRelX:
      return "R_X86_64_GOTPCRELX";
    case kRRexGotPcRelX:
      return "R_X86_64_REX_GOTPCRELX";
  }
  return nullptr;
}

// ---- The external symbol table ----

struct External {
  const char* name;
  void* address;
};

template <class F>
void* Addr(F* f) {
  return reinterpret_cast<void*>(f);
}

using D1 = double (*)(double);
using D2 = double (*)(double, double);
using D3 = double (*)(double, double, double);
#define KILN_MATH1(n)                  \
  {#n, Addr(static_cast<D1>(&::n))}, { \
#n "f", Addr(&::n##f)              \
  }
#define KILN_MATH2(n)                  \
  {#n, Addr(static_cast<D2>(&::n))}, { \
#n "f", Addr(&::n##f)              \
  }

const std::vector<External>& ExternalTable() {
  // What the emitter calls (exp, log, tanh, erf, expm1, log1p, sin, cos, tan, asin, acos, atan
  // and pow in float64, powf), what LLVM lowers intrinsics to on CPUs without the instruction
  // (floor, ceil, round, rint, trunc, nearbyint, fma, sqrt; the float16 conversions), and the
  // other common libm functions that LLVM may form from them.
  // clang-format off
  static const std::vector<External> table = {
      {"memcpy", Addr(&::memcpy)}, {"memmove", Addr(&::memmove)}, {"memset", Addr(&::memset)},
      {"__extendhfsf2", Addr(&::__extendhfsf2)}, {"__truncsfhf2", Addr(&::__truncsfhf2)},
      {"__truncdfhf2", Addr(&::__truncdfhf2)},
      KILN_MATH1(exp), KILN_MATH1(exp2), KILN_MATH1(expm1), KILN_MATH1(log), KILN_MATH1(log2),
      KILN_MATH1(log10), KILN_MATH1(log1p), KILN_MATH1(sqrt), KILN_MATH1(cbrt), KILN_MATH1(sin),
      KILN_MATH1(cos), KILN_MATH1(tan), KILN_MATH1(asin), KILN_MATH1(acos), KILN_MATH1(atan),
      KILN_MATH1(sinh), KILN_MATH1(cosh), KILN_MATH1(tanh), KILN_MATH1(asinh), KILN_MATH1(acosh),
      KILN_MATH1(atanh), KILN_MATH1(erf), KILN_MATH1(erfc), KILN_MATH1(floor), KILN_MATH1(ceil),
      KILN_MATH1(round), KILN_MATH1(trunc), KILN_MATH1(rint), KILN_MATH1(nearbyint),
      KILN_MATH1(fabs), KILN_MATH2(pow), KILN_MATH2(atan2), KILN_MATH2(fmod),
      KILN_MATH2(remainder), KILN_MATH2(fmin), KILN_MATH2(fmax), KILN_MATH2(hypot),
      KILN_MATH2(copysign), {"fma", Addr(static_cast<D3>(&::fma))}, {"fmaf", Addr(&::fmaf)},
  };
  // clang-format on
  return table;
}

#undef KILN_MATH1
#undef KILN_MATH2

size_t PageSize() {
  long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? static_cast<size_t>(p) : 4096;
}

}  // namespace

void* LoadedObject::ExternalSymbol(std::string_view name) {
  for (const External& e : ExternalTable()) {
    if (name == e.name) return e.address;
  }
  return nullptr;
}

// Does the work of LoadedObject::Load: parse and check, lay out, map, relocate, protect.
class ObjectLinker {
 public:
  ObjectLinker(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  std::unique_ptr<LoadedObject> Link() {
    ReadHeaders();
    ChooseSections();
    ReadSymbols();
    ReadRelocations();
    std::unique_ptr<LoadedObject> obj(new LoadedObject());
    // Find's names are views of a copy of the symbol string table: memory linear in the input.
    if (symtab_ != 0) {
      const Shdr& names = sh_[sh_[symtab_].link];
      obj->names_.assign(reinterpret_cast<const char*>(data_ + names.offset), names.size);
    }
    Layout();
    if (total_ > 0) {
      void* p = mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED)
        Fail("mmap of " + std::to_string(total_) + " bytes failed: " + std::strerror(errno));
      obj->base_ = p;
      obj->size_ = total_;
      base_ = static_cast<uint8_t*>(p);
    }
    CopySections();
    Relocate();
    WriteStubsAndGot();
    Protect();
    for (const Sym& s : syms_) {
      if (s.external || s.address == 0 || s.shndx == kShnAbs) continue;
      if (s.bind != kStbGlobal && s.bind != kStbWeak) continue;
      if (s.type != kSttFunc && s.type != kSttObject) continue;
      std::string_view name(obj->names_.data() + s.name_offset, s.name.size());
      if (!obj->symbols_.emplace(name, reinterpret_cast<void*>(s.address)).second) {
        Fail("symbol '" + Printable(s.name) + "' is defined twice");
      }
    }
    return obj;
  }

 private:
  std::string SectionName(size_t i) const {
    return "section [" + std::to_string(i) + "] '" + Printable(names_[i]) + "'";
  }

  // The NUL-terminated string at `off` of string table section `sec` (a view of the input; at
  // most kMaxName bytes, which bounds the time spent looking for the NUL).
  std::string_view String(size_t sec, uint64_t off, const std::string& what) const {
    const Shdr& s = sh_[sec];
    if (s.type != kShtStrtab)
      Fail(what + ": section [" + std::to_string(sec) + "] is no string table");
    if (off >= s.size) Fail(what + ": name offset " + Hex(off) + " is outside the string table");
    const uint8_t* begin = data_ + s.offset + off;
    const void* nul = std::memchr(begin, 0, std::min<uint64_t>(s.size - off, kMaxName + 1));
    if (!nul) {
      Fail(what + ": the name at offset " + Hex(off) +
           (s.size - off > kMaxName ? " is too long" : " is not terminated"));
    }
    return std::string_view(reinterpret_cast<const char*>(begin),
                            static_cast<const uint8_t*>(nul) - begin);
  }

  void ReadHeaders() {
    if (size_ < 64)
      Fail("the file is " + std::to_string(size_) + " bytes, shorter than an ELF header");
    static const uint8_t kMagic[4] = {0x7f, 'E', 'L', 'F'};
    if (std::memcmp(data_, kMagic, 4) != 0) Fail("no ELF magic number");
    if (data_[4] != 2) Fail("not a 64-bit ELF file (class " + std::to_string(data_[4]) + ")");
    if (data_[5] != 1) Fail("not a little-endian ELF file");
    if (data_[6] != 1) Fail("unknown ELF version " + std::to_string(data_[6]));
    uint16_t type = Get<uint16_t>(data_ + 16), machine = Get<uint16_t>(data_ + 18);
    if (type != kEtRel) Fail("not a relocatable object (ELF type " + std::to_string(type) + ")");
    if (machine != kEmX86_64)
      Fail("not an x86-64 object (ELF machine " + std::to_string(machine) + ")");
    uint64_t shoff = Get<uint64_t>(data_ + 40);
    uint16_t shentsize = Get<uint16_t>(data_ + 58), shnum = Get<uint16_t>(data_ + 60),
             shstrndx = Get<uint16_t>(data_ + 62);
    if (shentsize != 64) Fail("section header size " + std::to_string(shentsize) + ", not 64");
    if (shnum == 0) Fail("no section headers (or more than 65279, which is unsupported)");
    if (!InRange(shoff, uint64_t(shnum) * 64, size_)) {
      Fail("the section header table (offset " + Hex(shoff) + ", " + std::to_string(shnum) +
           " entries) lies outside the file");
    }
    if (shstrndx == 0 || shstrndx >= shnum) {
      Fail("section name table index " + std::to_string(shstrndx) + " is out of range");
    }
    sh_.resize(shnum);
    for (size_t i = 0; i < shnum; ++i) {
      const uint8_t* p = data_ + shoff + i * 64;
      Shdr& s = sh_[i];
      s.name = Get<uint32_t>(p);
      s.type = Get<uint32_t>(p + 4);
      s.flags = Get<uint64_t>(p + 8);
      s.addr = Get<uint64_t>(p + 16);
      s.offset = Get<uint64_t>(p + 24);
      s.size = Get<uint64_t>(p + 32);
      s.link = Get<uint32_t>(p + 40);
      s.info = Get<uint32_t>(p + 44);
      s.addralign = Get<uint64_t>(p + 48);
      s.entsize = Get<uint64_t>(p + 56);
    }
    const Shdr& names = sh_[shstrndx];
    if (names.type != kShtStrtab || !InRange(names.offset, names.size, size_)) {
      Fail("the section name table (section [" + std::to_string(shstrndx) + "]) is invalid");
    }
    names_.resize(shnum);
    for (size_t i = 1; i < shnum; ++i) {
      names_[i] = String(shstrndx, sh_[i].name, "section [" + std::to_string(i) + "]");
    }
  }

  // Which sections are loaded, and into which group: 0 executable, 1 read-only, 2 writable.
  void ChooseSections() {
    place_.assign(sh_.size(), kNotLoaded);
    group_.assign(sh_.size(), -1);
    for (size_t i = 1; i < sh_.size(); ++i) {
      const Shdr& s = sh_[i];
      if (!(s.flags & kShfAlloc)) continue;
      if (s.type == kShtNote || s.type == kShtX86_64Unwind || names_[i] == ".eh_frame") continue;
      if (s.type == kShtInitArray || s.type == kShtFiniArray || s.type == kShtPreinitArray) {
        Fail(SectionName(i) + " holds constructors or destructors, which are unsupported");
      }
      if (s.type != kShtProgbits && s.type != kShtNobits) {
        Fail(SectionName(i) + " is allocatable with unsupported type " + Hex(s.type));
      }
      if (s.flags & kShfTls) Fail(SectionName(i) + " is thread-local, which is unsupported");
      if (s.flags & kShfCompressed) Fail(SectionName(i) + " is compressed, which is unsupported");
      if ((s.flags & kShfWrite) && (s.flags & kShfExec)) {
        Fail(SectionName(i) + " is both writable and executable");
      }
      uint64_t align = s.addralign == 0 ? 1 : s.addralign;
      if ((align & (align - 1)) != 0 || align > kMaxAlign) {
        Fail(SectionName(i) + " has unsupported alignment " + Hex(s.addralign));
      }
      if (s.type == kShtProgbits && !InRange(s.offset, s.size, size_)) {
        Fail(SectionName(i) + " (offset " + Hex(s.offset) + ", size " + Hex(s.size) +
             ") lies outside the file");
      }
      if (s.size > kMaxMapped) Fail(SectionName(i) + " is too large (" + Hex(s.size) + " bytes)");
      group_[i] = (s.flags & kShfExec) ? 0 : (s.flags & kShfWrite) ? 2 : 1;
    }
  }

  void ReadSymbols() {
    size_t symtab = 0;
    for (size_t i = 1; i < sh_.size(); ++i) {
      if (sh_[i].type != kShtSymtab) continue;
      if (symtab != 0) Fail("more than one symbol table");
      symtab = i;
    }
    syms_.resize(1);  // the null symbol
    if (symtab == 0) return;
    symtab_ = symtab;
    const Shdr& st = sh_[symtab];
    if (st.entsize != 24)
      Fail(SectionName(symtab) + ": symbol size " + Hex(st.entsize) + ", not 24");
    if (!InRange(st.offset, st.size, size_)) Fail(SectionName(symtab) + " lies outside the file");
    if (st.link == 0 || st.link >= sh_.size() || sh_[st.link].type != kShtStrtab ||
        !InRange(sh_[st.link].offset, sh_[st.link].size, size_)) {
      Fail(SectionName(symtab) + ": its string table (section [" + std::to_string(st.link) +
           "]) is invalid");
    }
    size_t n = st.size / 24;
    syms_.resize(n > 0 ? n : 1);
    for (size_t i = 1; i < n; ++i) {
      const uint8_t* p = data_ + st.offset + i * 24;
      Sym& s = syms_[i];
      std::string what = "symbol #" + std::to_string(i);
      s.name_offset = Get<uint32_t>(p);
      s.name = String(st.link, s.name_offset, what);
      what = "symbol #" + std::to_string(i) + " '" + Printable(s.name) + "'";
      s.type = p[4] & 0xf;
      s.bind = p[4] >> 4;
      s.shndx = Get<uint16_t>(p + 6);
      s.value = Get<uint64_t>(p + 8);
      if (s.type == kSttTls || s.type == kSttGnuIfunc) {
        Fail(what + " is thread-local or an indirect function, which is unsupported");
      }
      if (s.shndx == kShnUndef) {
        if (s.name.empty()) continue;
        void* addr = LoadedObject::ExternalSymbol(s.name);
        if (!addr) {
          Fail("undefined symbol '" + Printable(s.name) +
               "' is not one the loader provides (memcpy, memset, memmove, libm)");
        }
        s.external = true;
        s.address = reinterpret_cast<uint64_t>(addr);
      } else if (s.shndx == kShnAbs) {
        s.address = s.value;
      } else if (s.shndx == kShnCommon) {
        Fail(what + " is a common symbol, which is unsupported");
      } else if (s.shndx >= kShnLoReserve || s.shndx >= sh_.size()) {
        Fail(what + " has unsupported section index " + Hex(s.shndx));
      } else if (group_[s.shndx] >= 0 && s.value > sh_[s.shndx].size) {
        Fail(what + " (value " + Hex(s.value) + ") lies outside " + SectionName(s.shndx));
      }
    }
  }

  void ReadRelocations() {
    for (size_t i = 1; i < sh_.size(); ++i) {
      const Shdr& r = sh_[i];
      if (r.type != kShtRela && r.type != kShtRel) continue;
      if (r.info == 0 || r.info >= sh_.size()) {
        Fail(SectionName(i) + " applies to section index " + std::to_string(r.info) +
             ", which is out of range");
      }
      if (group_[r.info] < 0) continue;  // relocates something not loaded (.eh_frame, debug)
      if (r.type == kShtRel) Fail(SectionName(i) + ": SHT_REL relocations are unsupported");
      if (sh_[r.info].type == kShtNobits) {
        Fail(SectionName(i) + " relocates " + SectionName(r.info) + ", which has no contents");
      }
      if (r.entsize != 24) Fail(SectionName(i) + ": entry size " + Hex(r.entsize) + ", not 24");
      if (!InRange(r.offset, r.size, size_)) Fail(SectionName(i) + " lies outside the file");
      if (r.link != symtab_ || symtab_ == 0) {
        Fail(SectionName(i) + " does not use the symbol table (link " + std::to_string(r.link) +
             ")");
      }
      for (size_t k = 0; k < r.size / 24; ++k) {
        const uint8_t* p = data_ + r.offset + k * 24;
        uint64_t info = Get<uint64_t>(p + 8);
        Rela rel{
            i, k, Get<uint64_t>(p), uint32_t(info), uint32_t(info >> 32), Get<int64_t>(p + 16)};
        if (!RelocName(rel.type)) {
          Fail(RelocDesc(rel) + ": unsupported relocation type");
        }
        if (rel.sym >= syms_.size()) {
          Fail(RelocDesc(rel) + ": symbol index " + std::to_string(rel.sym) + " is out of range");
        }
        uint64_t width = rel.type == kR64 || rel.type == kRPc64 ? 8 : rel.type == kRNone ? 0 : 4;
        if (!InRange(rel.offset, width, sh_[r.info].size)) {
          Fail(RelocDesc(rel) + ": offset " + Hex(rel.offset) + " lies outside " +
               SectionName(r.info));
        }
        Sym& s = syms_[rel.sym];
        if ((rel.type == kRPc32 || rel.type == kRPlt32) && s.external) s.stub = 0;
        if (rel.type == kRGotPcRel || rel.type == kRGotPcRelX || rel.type == kRRexGotPcRelX) {
          s.got = 0;
        }
        relas_.push_back(rel);
      }
    }
  }

  std::string RelocDesc(const Rela& r) const {
    const char* type = RelocName(r.type);
    std::string d = "relocation #" + std::to_string(r.index) + " of " + SectionName(r.section) +
                    " (" + (type ? type : "type " + std::to_string(r.type));
    if (r.sym != 0 && r.sym < syms_.size()) {
      const Sym& s = syms_[r.sym];
      bool section_sym = s.name.empty() && s.shndx < names_.size();
      d += " against '" + Printable(section_sym ? names_[s.shndx] : s.name) + "'";
    }
    return d + ")";
  }

  // Places `size` bytes aligned to `align` at the end of group g.
  uint64_t Allocate(int g, uint64_t size, uint64_t align, const std::string& what) {
    uint64_t at = (cursor_[g] + (align - 1)) & ~(align - 1);
    if (at > kMaxMapped || size > kMaxMapped - at) Fail(what + " does not fit in 1 GiB");
    cursor_[g] = at + size;
    return at;
  }

  void Layout() {
    std::vector<uint64_t> offset(sh_.size(), 0);
    for (size_t i = 1; i < sh_.size(); ++i) {
      if (group_[i] < 0) continue;
      uint64_t align = sh_[i].addralign == 0 ? 1 : sh_[i].addralign;
      offset[i] = Allocate(group_[i], sh_[i].size, align, SectionName(i));
    }
    for (Sym& s : syms_) {
      if (s.stub == 0) s.stub = Allocate(0, kStubSize, 16, "the call stubs");
      if (s.got == 0) s.got = Allocate(1, 8, 8, "the GOT");
    }
    const uint64_t page = PageSize();
    uint64_t start = 0;
    for (int g = 0; g < 3; ++g) {
      start_[g] = start;
      uint64_t len = (cursor_[g] + page - 1) & ~(page - 1);
      start += len;
      if (start > kMaxMapped) Fail("the object needs more than 1 GiB");
    }
    total_ = start;
    for (size_t i = 1; i < sh_.size(); ++i) {
      if (group_[i] >= 0) place_[i] = start_[group_[i]] + offset[i];
    }
    for (Sym& s : syms_) {
      if (s.stub != kNotLoaded) s.stub += start_[0];
      if (s.got != kNotLoaded) s.got += start_[1];
    }
  }

  uint64_t Base() const { return reinterpret_cast<uint64_t>(base_); }

  void CopySections() {
    for (size_t i = 1; i < sh_.size(); ++i) {
      if (group_[i] < 0 || sh_[i].type != kShtProgbits || sh_[i].size == 0) continue;
      std::memcpy(base_ + place_[i], data_ + sh_[i].offset, sh_[i].size);
    }
    for (size_t i = 1; i < syms_.size(); ++i) {
      Sym& s = syms_[i];
      if (s.external || s.shndx == kShnUndef || s.shndx == kShnAbs) continue;
      if (group_[s.shndx] >= 0) s.address = Base() + place_[s.shndx] + s.value;
    }
  }

  // The address a relocation refers to (S), checking that it is known.
  uint64_t SymbolAddress(const Rela& r) const {
    if (r.sym == 0) return 0;
    const Sym& s = syms_[r.sym];
    if (s.external || s.shndx == kShnAbs) return s.address;
    if (group_[s.shndx] < 0) {
      Fail(RelocDesc(r) + ": the symbol is in " + SectionName(s.shndx) + ", which is not loaded");
    }
    return s.address;
  }

  void Relocate() {
    for (const Rela& r : relas_) {
      if (r.type == kRNone) continue;
      const Sym& s = syms_[r.sym];
      uint64_t S = SymbolAddress(r);
      uint64_t A = static_cast<uint64_t>(r.addend);
      uint64_t P = Base() + place_[sh_[r.section].info] + r.offset;
      uint8_t* at = base_ + (P - Base());
      switch (r.type) {
        case kR64:
          Put<uint64_t>(at, S + A);
          break;
        case kRPc64:
          Put<uint64_t>(at, S + A - P);
          break;
        case kR32:
          if (S + A > UINT32_MAX) Fail(RelocDesc(r) + ": value " + Hex(S + A) + " needs > 32 bits");
          Put<uint32_t>(at, uint32_t(S + A));
          break;
        case kR32S:
          PutSigned32(at, S + A, r);
          break;
        case kRPc32:
        case kRPlt32:
          PutSigned32(at, (s.external ? Base() + s.stub : S) + A - P, r);
          break;
        default:  // the GOT-relative ones
          PutSigned32(at, Base() + s.got + A - P, r);
          break;
      }
    }
  }

  void PutSigned32(uint8_t* at, uint64_t v, const Rela& r) {
    int64_t x = static_cast<int64_t>(v);
    if (x < INT32_MIN || x > INT32_MAX) {
      Fail(RelocDesc(r) + ": value " + Hex(v) + " does not fit in 32 signed bits");
    }
    Put<int32_t>(at, static_cast<int32_t>(x));
  }

  void WriteStubsAndGot() {
    for (size_t i = 1; i < syms_.size(); ++i) {
      const Sym& s = syms_[i];
      if (s.stub != kNotLoaded) {
        static const uint8_t kJmp[8] = {0xff, 0x25, 0, 0, 0, 0, 0xcc, 0xcc};  // jmp *0(%rip)
        std::memcpy(base_ + s.stub, kJmp, 6);
        Put<uint64_t>(base_ + s.stub + 6, s.address);
        std::memcpy(base_ + s.stub + 14, kJmp + 6, 2);
      }
      // Relocate() has checked that the symbol's address is known.
      if (s.got != kNotLoaded) Put<uint64_t>(base_ + s.got, s.address);
    }
  }

  void Protect() {
    static const int kProt[3] = {PROT_READ | PROT_EXEC, PROT_READ, PROT_READ | PROT_WRITE};
    for (int g = 0; g < 3; ++g) {
      uint64_t end = g < 2 ? start_[g + 1] : total_;
      if (end == start_[g]) continue;
      if (mprotect(base_ + start_[g], end - start_[g], kProt[g]) != 0) {
        Fail(std::string("mprotect failed: ") + std::strerror(errno));
      }
    }
  }

  const uint8_t* data_;
  size_t size_;
  std::vector<Shdr> sh_;
  std::vector<std::string_view> names_;  // of the sections, into the input
  std::vector<int> group_;       // per section: 0 exec, 1 read-only, 2 writable, -1 not loaded
  std::vector<uint64_t> place_;  // per section: offset in the mapping
  std::vector<Sym> syms_;
  std::vector<Rela> relas_;
  size_t symtab_ = 0;
  uint64_t cursor_[3] = {0, 0, 0};
  uint64_t start_[3] = {0, 0, 0};
  uint64_t total_ = 0;
  uint8_t* base_ = nullptr;
};

std::unique_ptr<LoadedObject> LoadedObject::Load(const void* data, size_t size) {
  if (data == nullptr && size != 0) Fail("null data");
  return ObjectLinker(static_cast<const uint8_t*>(data), size).Link();
}

LoadedObject::~LoadedObject() {
  if (base_) munmap(base_, size_);
}

void* LoadedObject::Find(const std::string& symbol) const {
  auto it = symbols_.find(symbol);
  return it == symbols_.end() ? nullptr : it->second;
}

}  // namespace kiln
