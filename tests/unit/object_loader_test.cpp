// object_loader_test.cpp - kernels as ELF relocatable objects (codegen::KernelsToObject) mapped
// by the runtime's own loader (kiln/runtime/object_loader.h), against the same kernels from the
// ORC JIT; hand-built objects for the relocation types LLVM does not emit for kernels; and
// malformed input (wrong header fields, truncation, flipped bytes), which must be rejected with
// a kiln::Error and never crash the loader or make it read outside the input.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kiln/codegen/kernel_ir.h"
#include "kiln/codegen/llvm_jit.h"
#include "kiln/codegen/lower.h"
#include "kiln/ir/text.h"
#include "kiln/passes/fuse.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/error.h"
#include "kiln/runtime/object_loader.h"
#include "kiln/runtime/thread_pool.h"

namespace kiln::codegen {
namespace {

// ---- A reader for the objects the tests build (trusted input) ----

template <class T>
T Get(const std::string& s, size_t off) {
  T v;
  std::memcpy(&v, s.data() + off, sizeof v);
  return v;
}

struct ObjectFacts {
  std::set<std::string> sections, undefined;
  std::map<std::string, int> relocations;  // by type name, in loaded sections
};

ObjectFacts Inspect(const std::string& o) {
  ObjectFacts f;
  uint64_t shoff = Get<uint64_t>(o, 40);
  uint16_t n = Get<uint16_t>(o, 60), shstr = Get<uint16_t>(o, 62);
  auto sh = [&](size_t i, size_t field_off, auto t) {
    return Get<decltype(t)>(o, shoff + i * 64 + field_off);
  };
  auto str = [&](size_t sec, uint32_t off) {
    return std::string(o.data() + sh(sec, 24, uint64_t()) + off);
  };
  static const std::map<uint32_t, std::string> kNames = {
      {1, "64"},   {2, "PC32"},  {4, "PLT32"},      {9, "GOTPCREL"},      {10, "32"},
      {11, "32S"}, {24, "PC64"}, {41, "GOTPCRELX"}, {42, "REX_GOTPCRELX"}};
  for (size_t i = 1; i < n; ++i) {
    f.sections.insert(str(shstr, sh(i, 0, uint32_t())));
    uint32_t type = sh(i, 4, uint32_t());
    uint64_t off = sh(i, 24, uint64_t()), size = sh(i, 32, uint64_t());
    if (type == 2) {  // SHT_SYMTAB
      for (size_t k = 1; k < size / 24; ++k) {
        if (Get<uint16_t>(o, off + k * 24 + 6) == 0) {
          f.undefined.insert(str(sh(i, 40, uint32_t()), Get<uint32_t>(o, off + k * 24)));
        }
      }
    } else if (type == 4) {  // SHT_RELA
      for (size_t k = 0; k < size / 24; ++k) {
        uint32_t t = uint32_t(Get<uint64_t>(o, off + k * 24 + 8));
        f.relocations[kNames.count(t) ? kNames.at(t) : std::to_string(t)]++;
      }
    }
  }
  return f;
}

// ---- The same kernels from the JIT and from a loaded object, run on the same inputs ----

// Random contents for a buffer of `t`: floats in [-3, 3] with a few special values, bool 0/1,
// other types random bytes (float16 bit patterns included).
void Fill(std::vector<uint8_t>& b, DType t, std::mt19937& gen) {
  std::uniform_real_distribution<double> d(-3, 3);
  size_t n = b.size() / DTypeSize(t);
  for (size_t i = 0; i < n; ++i) {
    double v = i % 17 == 5 ? 0.0 : i % 23 == 7 ? -INFINITY : i % 29 == 3 ? NAN : d(gen);
    if (t == DType::kFloat32) {
      float f = float(v);
      std::memcpy(&b[i * 4], &f, 4);
    } else if (t == DType::kFloat64) {
      std::memcpy(&b[i * 8], &v, 8);
    } else if (t == DType::kBool) {
      b[i] = gen() & 1;
    } else {
      for (size_t k = 0; k < DTypeSize(t); ++k) b[i * DTypeSize(t) + k] = uint8_t(gen());
    }
  }
}

// Each kernel's buffers (and scalar parameters, 1.25 or 3) filled from one seed.
struct Args {
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<double> scalars;  // storage, one 8-byte slot each
  std::vector<void*> ptrs;
  Args(const Kernel& k, uint32_t seed) {
    std::mt19937 gen(seed);
    for (const Buffer& b : k.buffers) {
      buffers.emplace_back(size_t(b->NumElements()) * DTypeSize(b->dtype));
      Fill(buffers.back(), b->dtype, gen);
    }
    scalars.resize(k.scalars.size());
    for (const std::vector<uint8_t>& b : buffers) ptrs.push_back(const_cast<uint8_t*>(b.data()));
    for (size_t i = 0; i < k.scalars.size(); ++i) {
      DType t = k.scalars[i]->dtype;
      float f = 1.25f;
      int32_t i32 = 3;
      int64_t i64 = 3;
      double f64 = 1.25;
      void* slot = &scalars[i];
      if (t == DType::kFloat32) std::memcpy(slot, &f, 4);
      if (t == DType::kFloat64) std::memcpy(slot, &f64, 8);
      if (t == DType::kInt32) std::memcpy(slot, &i32, 4);
      if (t == DType::kInt64) std::memcpy(slot, &i64, 8);
      ptrs.push_back(slot);
    }
  }
};

// Runs fn over several task ranges: a first task alone, the rest split in two, a range past the
// end (clipped away), then everything again on a pool of 3 threads.
void RunTasks(KernelFn fn, const Kernel& k, Args& a) {
  int64_t n = TaskCount(k);
  void* const* args = a.ptrs.data();
  fn(args, 0, std::min<int64_t>(n, 1));
  if (n > 1) {
    fn(args, 1, n / 2 + 1);
    fn(args, n / 2 + 1, n);
    fn(args, n, n + 5);
  }
  ThreadPool pool(3);
  pool.ParallelFor(n, [&](int64_t b, int64_t e) { fn(args, b, e); });
}

// Compiles `kernels` with the JIT and as an object for `cpu`, runs both and requires every
// buffer to come out bit-identical. Returns what the object holds.
ObjectFacts CompareJitAndObject(const std::vector<Kernel>& kernels, const std::string& cpu) {
  CpuOptions opt;
  opt.cpu = cpu;
  LLVMJit jit(opt);
  std::vector<KernelFn> jitted = jit.Compile(kernels);
  std::string bytes = KernelsToObject(kernels, opt);
  ObjectFacts facts = Inspect(bytes);
  std::unique_ptr<LoadedObject> obj = LoadedObject::Load(bytes.data(), bytes.size());
  std::fill(bytes.begin(), bytes.end(), 0);  // the loader keeps no reference to the input
  EXPECT_GT(obj->mapped_bytes(), 0u);
  for (size_t i = 0; i < kernels.size(); ++i) {
    const Kernel& k = kernels[i];
    SCOPED_TRACE("cpu '" + cpu + "'\n" + PrintKernel(k));
    auto loaded = reinterpret_cast<KernelFn>(obj->Find(k.name));
    EXPECT_NE(loaded, nullptr) << k.name << " is not in the object";
    if (!loaded) continue;
    Args want(k, 17 + uint32_t(i)), got(k, 17 + uint32_t(i));
    Args before(k, 17 + uint32_t(i));
    RunTasks(jitted[i], k, want);
    RunTasks(loaded, k, got);
    EXPECT_FALSE(want.buffers == before.buffers) << "the kernel wrote nothing";
    for (size_t b = 0; b < want.buffers.size(); ++b) {
      EXPECT_TRUE(want.buffers[b] == got.buffers[b]) << "buffer " << k.buffers[b]->name;
    }
  }
  return facts;
}

// The CPUs this machine can run code for: the host, baseline x86-64 (libm calls for floor,
// ceil, round, fma and the float16 conversions) and x86-64-v3 where supported.
std::vector<std::string> Cpus() {
  std::vector<std::string> cpus = {"", "x86-64"};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) cpus.push_back("x86-64-v3");
  return cpus;
}

Kernel Elementwise(const std::string& name, Intrinsic f, DType t, ForKind kind, int64_t n) {
  Buffer x = MakeBuffer("x", t, {n}), y = MakeBuffer("y", t, {n});
  Var i = MakeVar("i");
  std::vector<Expr> args;
  for (int a = 0; a < IntrinsicArity(f); ++a) args.push_back(Load(x, {Ref(i)}) * (1.0 + a));
  return Kernel{
      name, {x, y}, {}, For(i, IntImm(0), IntImm(n), kind, Store(y, {Ref(i)}, Call(f, args)))};
}

TEST(ObjectLoader, EveryIntrinsicInFloat32AndFloat64MatchesTheJit) {
  std::vector<Kernel> ks;
  for (DType t : {DType::kFloat32, DType::kFloat64})
    for (int f = 0; f <= int(Intrinsic::kFma); ++f)
      for (ForKind kind : {ForKind::kVectorize, ForKind::kSerial}) {
        std::string name =
            StrCat(IntrinsicName(Intrinsic(f)), "_", DTypeName(t), "_", ForKindName(kind));
        ks.push_back(Elementwise(name, Intrinsic(f), t, kind, 101));
      }
  std::set<std::string> externals;
  for (const std::string& cpu : Cpus()) {
    ObjectFacts facts = CompareJitAndObject(ks, cpu);
    externals.insert(facts.undefined.begin(), facts.undefined.end());
    // Vector constants (vmath's polynomial coefficients, masks) come from constant pools.
    bool rodata = false;
    for (const std::string& s : facts.sections) rodata |= s.rfind(".rodata", 0) == 0;
    EXPECT_TRUE(rodata) << "no .rodata section for cpu '" << cpu << "'";
    EXPECT_EQ(facts.sections.count(".eh_frame"), 0u) << "nounwind kernels need no unwind tables";
  }
  // float64 math and pow call the C library, as do floor/ceil/round/fma on baseline x86-64.
  for (const char* f :
       {"exp", "log", "tanh", "erf", "expm1", "log1p", "pow", "powf", "floorf", "fma"}) {
    EXPECT_EQ(externals.count(f), 1u) << f << " was expected among the external calls";
  }
}

TEST(ObjectLoader, CastsIncludingFloat16MatchTheJit) {
  // float16 conversions are compiler-runtime calls (libgcc) on CPUs without F16C, and from
  // float64 on every CPU. Casts to bfloat16 are left out: they call __truncsfbf2/__truncdfbf2
  // (unless the CPU has AVX512-BF16), which GCC 12's libgcc lacks, so the JIT fails on them too.
  const DType types[] = {DType::kFloat16, DType::kFloat32, DType::kFloat64, DType::kInt8,
                         DType::kUInt8,   DType::kInt32,   DType::kInt64,   DType::kBool};
  std::vector<Kernel> ks;
  for (DType a : types)
    for (DType b : types) {
      if (a == b) continue;
      Buffer x = MakeBuffer("x", a, {67}), y = MakeBuffer("y", b, {67});
      Var i = MakeVar("i");
      ks.push_back(Kernel{StrCat("cast_", DTypeName(a), "_", DTypeName(b)),
                          {x, y},
                          {},
                          For(i, IntImm(0), IntImm(67), ForKind::kVectorize,
                              Store(y, {Ref(i)}, Cast(b, Load(x, {Ref(i)}))))});
    }
  Buffer x = MakeBuffer("x", DType::kBFloat16, {67}), y = MakeBuffer("y", DType::kFloat32, {67});
  Var i = MakeVar("i");
  ks.push_back(Kernel{"cast_bf16_f32",
                      {x, y},
                      {},
                      For(i, IntImm(0), IntImm(67), ForKind::kVectorize,
                          Store(y, {Ref(i)}, Cast(DType::kFloat32, Load(x, {Ref(i)}))))});
  for (const std::string& cpu : Cpus()) CompareJitAndObject(ks, cpu);
}

TEST(ObjectLoader, ParallelKernelOverTaskRangesAndCopiesMatchTheJit) {
  // y[i, j] = tanh(x[i, j] * alpha) + exp(i) over 13 x 37 rows in parallel; z[i, j] = pow in
  // float64; a copy and a fill, which LLVM turns into library calls (memmove, memset).
  const int64_t rows = 13, cols = 37, n = 4096;
  Buffer x = MakeBuffer("x", DType::kFloat32, {rows, cols});
  Buffer y = MakeBuffer("y", DType::kFloat32, {rows, cols});
  Buffer z = MakeBuffer("z", DType::kFloat64, {rows, cols});
  Var i = MakeVar("i"), j = MakeVar("j"), alpha = MakeVar("alpha", DType::kFloat32);
  Expr xi = Load(x, {Ref(i), Ref(j)});
  Expr fi = Cast(DType::kFloat32, Ref(i));
  Stmt body =
      Block({Store(y, {Ref(i), Ref(j)},
                   Call(Intrinsic::kTanh, {xi * Ref(alpha)}) + Call(Intrinsic::kExp, {fi})),
             Store(z, {Ref(i), Ref(j)},
                   Call(Intrinsic::kPow, {Cast(DType::kFloat64, xi), Imm(1.5, DType::kFloat64)}))});
  Kernel par{"par_rows",
             {x, y, z},
             {alpha},
             For(i, IntImm(0), IntImm(rows), ForKind::kParallel,
                 For(j, IntImm(0), IntImm(cols), ForKind::kVectorize, body))};
  ASSERT_EQ(TaskCount(par), rows);
  Buffer a = MakeBuffer("a", DType::kFloat32, {n}), b = MakeBuffer("b", DType::kFloat32, {n});
  Buffer tmp = MakeBuffer("tmp", DType::kFloat32, {n});
  Var k = MakeVar("k"), k2 = MakeVar("k2");
  Kernel copy{"copy",
              {a, b},
              {},
              Allocate(tmp, Block({For(k, IntImm(0), IntImm(n), ForKind::kSerial,
                                       Store(tmp, {Ref(k)}, Load(a, {Ref(k)}))),
                                   For(k2, IntImm(0), IntImm(n), ForKind::kSerial,
                                       Store(b, {Ref(k2)}, Load(tmp, {Ref(k2)})))}))};
  Buffer c = MakeBuffer("c", DType::kFloat32, {n});
  Var m = MakeVar("m");
  Kernel fill{"fill",
              {c},
              {},
              For(m, IntImm(0), IntImm(n), ForKind::kSerial, Store(c, {Ref(m)}, FloatImm(0.0)))};
  ObjectFacts facts = CompareJitAndObject({par, copy, fill}, "");
  // (The copy through a local buffer becomes one memmove: LLVM drops the buffer.)
  EXPECT_EQ(facts.undefined.count("memset"), 1u);
  EXPECT_GE(facts.undefined.count("memcpy") + facts.undefined.count("memmove"), 1u);
}

TEST(ObjectLoader, LoweredReductionsAndSoftmaxMatchTheJit) {
  const char* graphs[] = {
      "graph {\n %x = var : float32[7, 301]\n %y = sum(%x) {axis=\"(1)\"}\n return %y\n}",
      "graph {\n %x = var : float32[33, 9]\n %y = mean(%x) {axis=\"(0)\"}\n return %y\n}",
      "graph {\n %x = var : float32[5, 67]\n %y = softmax(%x)\n return %y\n}",
      "graph {\n %x = var : float32[3, 17]\n %b = var : float32[17]\n"
      " %a = broadcast_add(%x, %b)\n %e = exp(%a)\n %t = Activation(%e) {act_type=tanh}\n"
      " return %t\n}",
  };
  std::vector<Kernel> ks;
  for (const char* text : graphs) {
    Graph g = ParseGraph(text);
    InferShapes(g);
    InferTypes(g);
    Graph f = Fuse(g, {});
    for (int forced : {0, 1}) {
      LowerOptions o;
      if (forced) {
        o.parallel_min_elements = 0;
        o.parallel_chunk = 8;
      }
      for (uint32_t id = 0; id < f.num_nodes(); ++id) {
        if (f.node(id).is_variable()) continue;
        o.kernel_name = "k" + std::to_string(ks.size());
        ks.push_back(LowerNode(f, id, o));
      }
    }
  }
  CompareJitAndObject(ks, "");
}

// ---- Hand-built objects: every supported relocation type, sections that are not loaded ----

struct ElfBuilder {
  struct Section {
    std::string name;
    uint32_t type;
    uint64_t flags;
    std::string data;
    uint64_t align, size = 0;
  };
  struct Reloc {
    size_t section;
    uint64_t offset;
    uint32_t type, sym;
    int64_t addend;
  };
  std::vector<Section> sections{{"", 0, 0, "", 0}};
  std::vector<std::string> sym_names{""};
  std::string symtab = std::string(24, '\0');
  std::vector<Reloc> relocs;

  size_t Add(std::string name, uint32_t type, uint64_t flags, std::string data, uint64_t align,
             uint64_t nobits_size = 0) {
    sections.push_back({std::move(name), type, flags, std::move(data), align, nobits_size});
    return sections.size() - 1;
  }
  uint32_t Sym(const std::string& name, int bind, int type, uint16_t shndx, uint64_t value) {
    sym_names.push_back(name);
    char e[24] = {};
    e[4] = char(bind << 4 | type);
    std::memcpy(e + 6, &shndx, 2);
    std::memcpy(e + 8, &value, 8);
    symtab.append(e, 24);
    return uint32_t(sym_names.size() - 1);
  }
  void Rel(size_t sec, uint64_t off, uint32_t type, uint32_t sym, int64_t addend) {
    relocs.push_back({sec, off, type, sym, addend});
  }
  std::string Build() {
    std::string strtab(1, '\0');
    for (size_t i = 1; i < sym_names.size(); ++i) {
      uint32_t off = uint32_t(strtab.size());
      std::memcpy(&symtab[i * 24], &off, 4);
      strtab += sym_names[i] + '\0';
    }
    std::vector<Section> all = sections;
    size_t symtab_index = all.size() + 0;
    std::map<size_t, std::string> rela;
    for (const Reloc& r : relocs) {
      char e[24];
      uint64_t info = uint64_t(r.sym) << 32 | r.type;
      std::memcpy(e, &r.offset, 8);
      std::memcpy(e + 8, &info, 8);
      std::memcpy(e + 16, &r.addend, 8);
      rela[r.section].append(e, 24);
    }
    symtab_index += rela.size();
    std::vector<std::pair<uint32_t, uint32_t>> link_info(all.size());
    for (auto& [sec, data] : rela) {
      all.push_back({".rela" + sections[sec].name, 4, 0, data, 8});
      link_info.push_back({uint32_t(symtab_index), uint32_t(sec)});
    }
    all.push_back({".symtab", 2, 0, symtab, 8});
    link_info.push_back({uint32_t(symtab_index + 1), 1});
    all.push_back({".strtab", 3, 0, strtab, 1});
    link_info.push_back({0, 0});
    all.push_back({".shstrtab", 3, 0, "", 1});
    link_info.push_back({0, 0});
    std::string shstr(1, '\0');
    std::vector<uint32_t> name_off;
    for (const Section& s : all) {
      name_off.push_back(s.name.empty() ? 0 : uint32_t(shstr.size()));
      if (!s.name.empty()) shstr += s.name + '\0';
    }
    all.back().data = shstr;
    std::string out(64, '\0');
    std::vector<uint64_t> offsets;
    for (const Section& s : all) {
      while (out.size() % 8) out += '\0';
      offsets.push_back(out.size());
      if (s.type != 8) out += s.data;
    }
    while (out.size() % 8) out += '\0';
    uint64_t shoff = out.size();
    for (size_t i = 0; i < all.size(); ++i) {
      char h[64] = {};
      const Section& s = all[i];
      uint64_t size = s.type == 8 ? s.size : s.data.size(),
               entsize = s.type == 2 || s.type == 4 ? 24 : 0;
      std::memcpy(h, &name_off[i], 4);
      std::memcpy(h + 4, &s.type, 4);
      std::memcpy(h + 8, &s.flags, 8);
      std::memcpy(h + 24, &offsets[i], 8);
      std::memcpy(h + 32, &size, 8);
      std::memcpy(h + 40, &link_info[i].first, 4);
      std::memcpy(h + 44, &link_info[i].second, 4);
      std::memcpy(h + 48, &s.align, 8);
      std::memcpy(h + 56, &entsize, 8);
      out.append(h, 64);
    }
    const unsigned char ident[16] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    std::memcpy(&out[0], ident, 16);
    uint16_t half[] = {1, 62};  // ET_REL, EM_X86_64
    std::memcpy(&out[16], half, 4);
    uint32_t version = 1;
    std::memcpy(&out[20], &version, 4);
    std::memcpy(&out[40], &shoff, 8);
    uint16_t sizes[] = {64, 0, 0, 64, uint16_t(all.size()), uint16_t(all.size() - 1)};
    std::memcpy(&out[52], sizes, sizeof sizes);
    return out;
  }
};

enum class Variant { kGood, k32SAgainstCode, kUnknownType, kInitArray, kSymbolInEhFrame };

// Functions (x86-64 machine code, offsets in .text) that return what their relocations made.
std::string HandObject(Variant v) {
  ElfBuilder e;
  std::string text(96, '\xcc');
  auto code = [&](size_t at, std::initializer_list<int> bytes) {
    for (int b : bytes) text[at++] = char(b);
  };
  code(0, {0x48, 0x8b, 0x05, 0, 0, 0, 0, 0xc3});   // get_got_memset: mov rax,[rip+GOT]
  code(8, {0xe9, 0, 0, 0, 0});                     // call_memset: jmp memset@PLT
  code(16, {0x48, 0x8b, 0x05, 0, 0, 0, 0, 0xc3});  // get_abs: mov rax,[rip+.data]
  code(24, {0x48, 0x8d, 0x15, 0, 0, 0, 0, 0x48, 0x8b, 0x02, 0x48, 0x01, 0xd0, 0xc3});  // get_pc64
  code(40, {0xb8, 0, 0, 0, 0, 0xc3});  // get_imm32: mov eax, imm32
  code(48, {0x48, 0xff, 0x05, 0, 0, 0, 0, 0x48, 0x8b, 0x05, 0, 0, 0, 0, 0xc3});  // bump
  code(64, {0x48, 0x8d, 0x05, 0, 0, 0, 0, 0xc3});  // get_bss: lea rax,[rip+.bss]
  code(72, {0x48, 0x8b, 0x05, 0, 0, 0, 0, 0xc3});  // get_got_table
  code(80, {0xff, 0x25, 0, 0, 0, 0});              // call_via_got: jmp *[rip+GOT]
  code(88, {0x48, 0xc7, 0xc0, 0, 0, 0, 0, 0xc3});  // get_imm32s: mov rax, simm32
  std::string rodata(40, '\0');
  for (int64_t i = 0; i < 4; ++i) std::memcpy(&rodata[i * 8], &i, 8);
  std::string data(16, '\0');
  int64_t counter = 41;
  std::memcpy(&data[8], &counter, 8);
  size_t t = e.Add(".text", 1, 0x6, text, 16), ro = e.Add(".rodata", 1, 0x2, rodata, 8);
  size_t d = e.Add(".data", 1, 0x3, data, 8), bss = e.Add(".bss", 8, 0x3, "", 32, 64);
  size_t eh = e.Add(".eh_frame", 0x70000001, 0x2, std::string(24, '\0'), 8);
  e.Add(".comment", 1, 0x30, std::string("kiln test\0", 10), 1);
  e.Add(".note.GNU-stack", 1, 0, "", 1);
  e.Add(".llvm_addrsig", 0x6fff4c03, 0x80000000, "", 1);
  if (v == Variant::kInitArray) e.Add(".init_array", 14, 0x3, std::string(8, '\0'), 8);
  uint32_t st = e.Sym("", 0, 3, uint16_t(t), 0), sd = e.Sym("", 0, 3, uint16_t(d), 0);
  uint32_t sro = e.Sym("", 0, 3, uint16_t(ro), 0), sb = e.Sym("", 0, 3, uint16_t(bss), 0);
  uint32_t answer = e.Sym("answer", 0, 0, 0xfff1, 12345);
  uint32_t minus5 = e.Sym("minus5", 0, 0, 0xfff1, uint64_t(-5));
  uint32_t ehsym = e.Sym("in_eh_frame", 0, 1, uint16_t(eh), 0);
  const char* fns[] = {"get_got_memset", "call_memset", "get_abs", "get_pc64",
                       "get_imm32",      "bump",        "get_bss", "get_got_table",
                       "call_via_got",   "get_imm32s"};
  const int at[] = {0, 8, 16, 24, 40, 48, 64, 72, 80, 88};
  for (int i = 0; i < 10; ++i) e.Sym(fns[i], 1, 2, uint16_t(t), uint64_t(at[i]));
  uint32_t table = e.Sym("table", 1, 1, uint16_t(ro), 0);
  uint32_t ctr = e.Sym("counter", 1, 1, uint16_t(d), 8);
  e.Sym("zeros", 1, 1, uint16_t(bss), 0);
  uint32_t memset_sym = e.Sym("memset", 1, 0, 0, 0);
  e.Rel(t, 3, 42, memset_sym, -4);  // REX_GOTPCRELX
  e.Rel(t, 9, 4, memset_sym, -4);   // PLT32 through a stub
  e.Rel(t, 19, 2, sd, -4);          // PC32 against a section symbol
  e.Rel(t, 27, 2, sro, 32 - 4);     // PC32 to the PC64 slot
  e.Rel(ro, 32, 24, table, 16);     // PC64
  e.Rel(t, 41, 10, answer, 0);      // 32, fits
  e.Rel(t, 51, 2, ctr, -4);
  e.Rel(t, 58, 2, ctr, -4);
  e.Rel(t, 67, 2, sb, -4);
  e.Rel(t, 75, 9, table, -4);        // GOTPCREL to a defined symbol
  e.Rel(t, 82, 41, memset_sym, -4);  // GOTPCRELX
  e.Rel(t, 91, 11, minus5, 0);       // 32S, fits
  e.Rel(d, 0, 1, table, 8);          // 64
  e.Rel(t, 0, 0, 0, 0);              // NONE
  e.Rel(eh, 8, 2, st, 0);            // in .eh_frame: not loaded, not applied
  if (v == Variant::k32SAgainstCode) e.Rel(t, 91, 11, st, 0);
  if (v == Variant::kUnknownType) e.Rel(t, 91, 25, st, 0);  // GOTOFF64
  if (v == Variant::kSymbolInEhFrame) e.Rel(t, 91, 2, ehsym, 0);
  return e.Build();
}

// The permissions ("r-x", "r--", "rw-") of the mapping holding `p`, from /proc/self/maps.
std::string Permissions(const void* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) == 3 && lo <= a && a < hi) {
      return std::string(perms, 3);
    }
  }
  return "?";
}

TEST(ObjectLoader, HandBuiltObjectCoversEveryRelocationType) {
  std::string bytes = HandObject(Variant::kGood);
  ObjectFacts facts = Inspect(bytes);
  EXPECT_EQ(facts.relocations.size(), 10u);  // the nine supported types and NONE
  auto obj = LoadedObject::Load(bytes.data(), bytes.size());
  using Get0 = int64_t (*)();
  auto fn = [&](const char* name) {
    void* p = obj->Find(name);
    EXPECT_NE(p, nullptr) << name;
    return p;
  };
  auto table = static_cast<const int64_t*>(fn("table"));
  void* memset_addr = LoadedObject::ExternalSymbol("memset");
  ASSERT_NE(memset_addr, nullptr);
  EXPECT_EQ(reinterpret_cast<Get0>(fn("get_got_memset"))(), int64_t(memset_addr));
  EXPECT_EQ(reinterpret_cast<Get0>(fn("get_abs"))(), int64_t(table + 1));
  EXPECT_EQ(reinterpret_cast<Get0>(fn("get_pc64"))(), int64_t(table + 2));
  EXPECT_EQ(uint32_t(reinterpret_cast<Get0>(fn("get_imm32"))()), 12345u);
  EXPECT_EQ(reinterpret_cast<Get0>(fn("get_imm32s"))(), -5);
  EXPECT_EQ(reinterpret_cast<Get0>(fn("get_got_table"))(), int64_t(table));
  EXPECT_EQ(reinterpret_cast<Get0>(fn("bump"))(), 42);
  EXPECT_EQ(reinterpret_cast<Get0>(fn("bump"))(), 43);
  auto zeros = reinterpret_cast<const uint8_t*>(reinterpret_cast<Get0>(fn("get_bss"))());
  EXPECT_EQ(zeros, fn("zeros"));
  for (int i = 0; i < 64; ++i) EXPECT_EQ(zeros[i], 0) << i;
  using Memset = void* (*)(void*, int, size_t);
  char buf[16] = {};
  EXPECT_EQ(reinterpret_cast<Memset>(fn("call_memset"))(buf, 7, 10), buf);
  EXPECT_EQ(reinterpret_cast<Memset>(fn("call_via_got"))(buf + 10, 9, 2), buf + 10);
  EXPECT_EQ(std::string(buf), std::string(10, '\7') + "\t\t");
  EXPECT_EQ(table[3], 3);
  // W^X: code read+execute, constants read-only, writable data read+write.
  EXPECT_EQ(Permissions(fn("bump")), "r-x");
  EXPECT_EQ(Permissions(table), "r--");
  EXPECT_EQ(Permissions(fn("counter")), "rw-");
  EXPECT_EQ(obj->Find("answer"), nullptr);  // absolute, local
  EXPECT_EQ(obj->Find("memset"), nullptr);  // undefined here
  EXPECT_EQ(obj->Find("in_eh_frame"), nullptr);
  EXPECT_EQ(obj->mapped_bytes(), 3 * size_t(sysconf(_SC_PAGESIZE)));
}

// Load must throw a kiln::Error whose message contains `want`.
void ExpectLoadError(const std::string& bytes, const std::string& want) {
  try {
    LoadedObject::Load(bytes.data(), bytes.size());
    ADD_FAILURE() << "loaded; expected an error containing '" << want << "'";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
}

TEST(ObjectLoader, UnsupportedContentIsNamed) {
  ExpectLoadError(HandObject(Variant::kUnknownType), "type 25");
  ExpectLoadError(HandObject(Variant::kInitArray), "'.init_array'");
  ExpectLoadError(HandObject(Variant::kSymbolInEhFrame), "'.eh_frame', which is not loaded");
  // The mapping lies far above 2 GiB: an absolute 32-bit address of code cannot fit.
  ExpectLoadError(HandObject(Variant::k32SAgainstCode), "R_X86_64_32S");
  std::string good = HandObject(Variant::kGood);
  std::string bad = good;
  bad[0] = 'X';
  ExpectLoadError(bad, "no ELF magic");
  bad = good;
  bad[18] = 3;  // EM_386
  ExpectLoadError(bad, "not an x86-64 object");
  bad = good;
  bad[4] = 1;
  ExpectLoadError(bad, "not a 64-bit");
  bad = good;
  bad[16] = 3;  // ET_DYN
  ExpectLoadError(bad, "not a relocatable object");
  ExpectLoadError("", "shorter than an ELF header");
}

TEST(ObjectLoader, UnknownExternalSymbolIsNamed) {
  std::string bytes = KernelsToObject(
      {Elementwise("tanh64", Intrinsic::kTanh, DType::kFloat64, ForKind::kSerial, 5)});
  size_t at = bytes.find(std::string("\0tanh\0", 6));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 4] = 'x';
  ExpectLoadError(bytes, "undefined symbol 'tanx'");
}

// ---- Malformed input: errors only, never a crash or a read outside the input ----

// Loads `bytes` from a copy that ends at an inaccessible page, so that reading past the end
// faults. Returns whether it loaded; anything but a kiln::Error fails the test.
bool TryLoad(const std::string& bytes) {
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  size_t len = (bytes.size() + page - 1) / page * page + page;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::runtime_error("mmap");
  uint8_t* end = static_cast<uint8_t*>(m) + len - page;
  mprotect(end, page, PROT_NONE);
  std::memcpy(end - bytes.size(), bytes.data(), bytes.size());
  bool ok = false;
  try {
    ok = LoadedObject::Load(end - bytes.size(), bytes.size()) != nullptr;  // never run
  } catch (const Error&) {
  }
  munmap(m, len);
  return ok;
}

void Mutate(const std::string& good, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_TRUE(TryLoad(good));
  int loaded = 0, tried = 0;
  for (size_t n = 0; n < good.size(); n += n < 256 ? 1 : 7) loaded += TryLoad(good.substr(0, n));
  EXPECT_EQ(loaded, 0) << "a truncated object loaded";
  uint64_t shoff = Get<uint64_t>(good, 40);
  size_t shend = shoff + 64 * Get<uint16_t>(good, 60);
  for (size_t i = 0; i < good.size(); ++i) {
    if (i >= 64 && (i < shoff || i >= shend)) continue;
    for (int mask : {0xff, 0x01, 0x02, 0x10, 0x80, 0x7f}) {
      std::string bad = good;
      bad[i] = char(bad[i] ^ mask);
      loaded += TryLoad(bad);
      ++tried;
    }
  }
  std::mt19937 gen(5);
  for (int k = 0; k < 3000; ++k) {
    std::string bad = good;
    for (int flips = 1 + k % 3; flips > 0; --flips)
      bad[gen() % bad.size()] ^= char(1 + gen() % 255);
    loaded += TryLoad(bad);
    ++tried;
  }
  std::cout << what << ": " << tried << " mutations, " << loaded << " still loaded\n";
}

TEST(ObjectLoader, MalformedObjectsAreRejectedWithoutCrashing) {
  Mutate(HandObject(Variant::kGood), "hand-built object");
  Mutate(KernelsToObject(
             {Elementwise("e", Intrinsic::kExp, DType::kFloat64, ForKind::kVectorize, 19),
              Elementwise("t", Intrinsic::kTanh, DType::kFloat32, ForKind::kVectorize, 19)}),
         "kernel object");
}

}  // namespace
}  // namespace kiln::codegen
