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
    // A session allocates the arena and the outputs. A damaged size can ask for hundreds of
    // gigabytes, which a real run reports as "out of memory" (RuntimeError) but a sanitizer
    // build treats as a fatal error: sessions are made only for sizes a machine can hold.
    int64_t bytes = model->plan().arena_size;
    for (const kiln::ArtifactTensor& t : model->outputs()) bytes += t.bytes;
    if (bytes < (int64_t(1) << 30)) kiln::ArtifactSession session(model);
  } catch (const kiln::Error&) {
  }
  return 0;
}
