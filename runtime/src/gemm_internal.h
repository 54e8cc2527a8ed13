// gemm_internal.h - what conv.cpp needs of gemm.cpp beyond the public API (internal).
#pragma once

#include <cstdint>

#include "gemm_kernels.h"
#include "kiln/runtime/gemm.h"

namespace kiln::gemm_detail {

// Resolves kAuto (and KILN_GEMM_ISA) to a kernel table; throws UserError for an ISA this CPU
// lacks.
const GemmKernels& SelectKernels(GemmIsa isa);

// Packs op(B) [K, N] into panels (the PackedB panel layout: block k0 at out + k0 * Npad, panel
// p of it at + p * kc * kNR) from a source that fills one panel: `pack(ctx, k0, kc, j0, cols,
// dst)` writes rows [k0, k0 + kc) x columns [j0, j0 + cols) (cols <= kNR) as kc rows of kNR
// floats (columns cols..kNR zero).
struct PanelSource {
  void (*pack)(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t cols, float* dst);
  const void* ctx;
};
void PackPanels(const PanelSource& src, int64_t n, int64_t k, float* out, ThreadPool* pool);

// Runs args (batch 1; b and packed_b ignored) with op(B) already in panel layout at `panels`
// (n, k of args); args.workspace (not null) holds GemmOnPanelsWorkspaceBytes bytes.
// `packed_a` (may be null): A packed beforehand by PackAForPanels (PackedAFloats floats), so
// that a caller running several column ranges of one product packs A once.
int64_t GemmOnPanelsWorkspaceBytes(const GemmArgs& args, int num_threads);
void GemmOnPanels(const GemmArgs& args, const float* panels, ThreadPool* pool,
                  const float* packed_a = nullptr);
int64_t PackedAFloats(const GemmArgs& args);
void PackAForPanels(const GemmArgs& args, float* out);

inline int64_t RoundUp(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

}  // namespace kiln::gemm_detail
