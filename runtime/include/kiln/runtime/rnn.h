// kiln/runtime/rnn.h - float32 LSTM, GRU and tanh RNN layers (forward, inference) on kiln's GEMM.
//
// The recurrent ops of ir/src/ops/rnn.cpp (ONNX's equations, layouts and gate orders; see that
// file for the formulas) computed in float32 for compiled plans and artifacts (the LibraryOp
// kind kRnn, kiln/runtime/library_ops.h). A recurrence is no kiln compute definition, so it runs
// here:
//   1. the input projections of every step and both directions as one GEMM,
//        XW [S*N, D*G*H] = x [S*N, I] * W' (W read as [D*G*H, I]), plus the biases,
//   2. per direction, per step: the recurrent product h R' (R packed once per run) on the GEMM,
//      then the gates elementwise in plain loops the compiler vectorises (exp and tanh by a
//      polynomial, see rnn.cpp).
// The GEMMs split over the thread pool; the gates run on the calling thread. Results depend on
// the shape only, never on the thread count (the GEMM's own guarantee; the gates are per
// element), so JIT runs and loaded artifacts agree bit for bit.
//
//   RnnShape s;
//   s.cell = RnnCell::kLstm, s.seq = 32, s.batch = 16, s.input = 256, s.hidden = 256;
//   std::vector<char> ws(size_t(RnnWorkspaceBytes(s, pool.num_threads())));  // 64-aligned
//   RnnForward(s, in, out, ws.data(), int64_t(ws.size()), &pool);
//
// Inputs and outputs (float32) are as the op's reference kernel sees them: LSTM (x, W, R, B,
// initial_h, initial_c, P) -> (Y, Y_h, Y_c); GRU and RNN_tanh (x, W, R, B, initial_h) -> (Y, Y_h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/runtime/thread_pool.h"

namespace kiln {

// The cell: its number of gates is 1 (tanh), 4 (LSTM, gates i o f c) or 3 (GRU, gates z r h).
enum class RnnCell : int64_t { kTanh = 0, kLstm = 1, kGru = 2 };
enum class RnnDirection : int64_t { kForward = 0, kReverse = 1, kBidirectional = 2 };

struct RnnShape {
  RnnCell cell = RnnCell::kLstm;
  RnnDirection direction = RnnDirection::kForward;
  int64_t layout = 0;  // 0: x (S, N, I), Y (S, D, N, H); 1: x (N, S, I), Y (N, S, D, H)
  int64_t seq = 0, batch = 0, input = 0, hidden = 0;  // S, N, I, H
  bool has_clip = false;
  float clip = 0;  // with has_clip: every gate's pre-activation clamped to [-clip, clip]
  bool linear_before_reset = false;  // GRU only
  bool input_forget = false;         // LSTM only

  int64_t gates() const { return cell == RnnCell::kLstm ? 4 : cell == RnnCell::kGru ? 3 : 1; }
  int64_t directions() const { return direction == RnnDirection::kBidirectional ? 2 : 1; }
  // "" when the shape is valid (sizes >= 0 and small enough that every buffer's byte count fits
  // int64 with room to spare, layout 0 or 1, clip >= 0 and finite, flags only on their cell);
  // else what is wrong.
  std::string Problem() const;
};

// The bytes of every input the forward pass reads and every output it writes.
void RnnArgBytes(const RnnShape& s, std::vector<int64_t>& in, std::vector<int64_t>& out);

// Scratch bytes RnnForward needs with a pool of `threads` threads.
int64_t RnnWorkspaceBytes(const RnnShape& s, int threads);

// Runs the layer. `workspace` (64-byte aligned, `workspace_bytes` long) may be null or short:
// what is missing is allocated for the call. `pool` may be null (the calling thread only).
void RnnForward(const RnnShape& s, const void* const* in, void* const* out, void* workspace,
                int64_t workspace_bytes, ThreadPool* pool);

}  // namespace kiln
