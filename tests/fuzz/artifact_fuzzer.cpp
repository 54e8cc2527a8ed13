// artifact_fuzzer.cpp - libFuzzer target: the .kiln loader on arbitrary bytes.
//
// Every input must either load (and then a session can be made for it) or be refused with a
// kiln error; a crash, a hang, an out-of-bounds access (AddressSanitizer) or undefined behaviour
// (UBSan) is a bug. Built with clang-19 by tests/fuzz/CMakeLists.txt; CTest runs it for a
// bounded time on a corpus seeded with real artifacts.
#include <cstddef>
#include <cstdint>

#include "kiln/runtime/artifact.h"
#include "kiln/runtime/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto model = kiln::Artifact::LoadMemory(data, size, "fuzz");
    kiln::ArtifactSession session(model);  // buffers for every tensor the plan names
  } catch (const kiln::Error&) {
  }
  return 0;
}
