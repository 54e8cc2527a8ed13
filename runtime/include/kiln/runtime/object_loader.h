// kiln/runtime/object_loader.h - mapping an ELF relocatable object of kernels into memory
// without LLVM, a linker or dlopen.
//
// codegen's KernelsToObject (kiln/codegen/llvm_jit.h) emits the kernels of a module as an
// ELF64 x86-64 relocatable object (position-independent, small code model). An artifact carries
// those bytes; at load time LoadedObject::Load maps them:
//
//   - the allocatable sections (.text*, .rodata*, .data*, .bss*) are placed in one anonymous
//     mapping: executable sections first, then read-only ones, then writable ones, each group
//     starting on a page boundary; SHT_NOBITS sections get zeroed space;
//   - .eh_frame, notes, .comment, .llvm_addrsig, debug sections, the symbol and string tables
//     are not loaded (the kernels are nounwind: no unwind information is registered);
//   - relocations (SHT_RELA) are applied: R_X86_64_64, PC32, PLT32, GOTPCREL, GOTPCRELX,
//     REX_GOTPCRELX, PC64, and 32/32S when the value fits. Calls to external functions go
//     through stubs (jmp *0(%rip); .quad address) in the executable part of the mapping, and
//     GOT-relative references through 8-byte slots in its read-only part, so that every 32-bit
//     displacement reaches;
//   - undefined symbols are resolved from a fixed table: memcpy, memset, memmove, the C
//     library's math functions (float and double forms) and the compiler runtime's float16
//     conversions. Anything else is an error that names the symbol;
//   - finally the executable group becomes read+execute, the read-only group read-only and
//     the writable group (if any) read+write: no page is ever writable and executable at once
//     after Load returns.
//
// Every offset, size and index read from the file is bounds-checked; anything malformed or
// unsupported throws kiln::RuntimeError naming the section, relocation or symbol at fault.
// Load never reads outside `data` and never writes outside its mapping, whatever the input.
// It does not run any code of the object.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kiln {

class LoadedObject {
 public:
  // Maps the ELF64 x86-64 relocatable object `data` (copied: the caller may free it after the
  // call). Throws RuntimeError for anything malformed or unsupported.
  static std::unique_ptr<LoadedObject> Load(const void* data, size_t size);

  ~LoadedObject();  // unmaps: every address Find returned becomes invalid
  LoadedObject(const LoadedObject&) = delete;
  LoadedObject& operator=(const LoadedObject&) = delete;

  // The address of a defined global (or weak) function or object symbol, or nullptr.
  void* Find(const std::string& symbol) const;

  // The size of the mapping: code, constants, stubs and GOT slots, page-rounded per group.
  size_t mapped_bytes() const { return size_; }

  // The address of an external function the loader resolves `name` to, or nullptr: the fixed
  // table of what loaded code may call.
  static void* ExternalSymbol(std::string_view name);

 private:
  LoadedObject() = default;
  void* base_ = nullptr;
  size_t size_ = 0;
  std::string names_;  // a copy of the symbol string table: the keys of symbols_ point into it
  std::unordered_map<std::string_view, void*> symbols_;
  friend class ObjectLinker;
};

}  // namespace kiln
