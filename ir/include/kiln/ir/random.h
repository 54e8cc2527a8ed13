// kiln/ir/random.h - the counter-based random numbers of random ops (Dropout, rrelu).
//
// Draw i of a random node is a pure function of three numbers: the run's seed (the executor's
// seed mixed with its count of training steps), the node's stream (a hash of its name) and i,
// the element's flat index. The function is Philox4x32-10 (Salmon, Moraes, Dror and Shaw,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011): key = the seed's two 32-bit halves,
// counter = (i low, i high, stream low, stream high), the first output word. The reference
// kernels call RandomBits; compiled kernels compute the same function (the kernel IR's
// random_bits intrinsic, emitted inline and vectorised), so a mask is the same bit for bit on
// the interpreter and in compiled code, at any thread count, fused or not (docs/decisions.md
// D50).
//
//   uint64_t stream = RandomStream(node_name);
//   bool keep = RandomBits(seed, stream, i) >= KeepThreshold(p);   // probability 1 - p
//   double u = RandomUnit(RandomBits(seed, stream, i));             // uniform in [0, 1)
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace kiln {

// Philox4x32-10's constants: the round multipliers and the key increments (Weyl sequence).
inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

// The four output words of Philox4x32-10 for one counter and key.
inline std::array<uint32_t, 4> Philox4x32x10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(kPhiloxM0) * c[0];
    uint64_t p1 = uint64_t(kPhiloxM1) * c[2];
    c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1],
         uint32_t(p0)};
    k[0] += kPhiloxW0;
    k[1] += kPhiloxW1;
  }
  return c;
}

// 32 random bits (in an int64, in [0, 2^32)) for draw `counter` of `stream` under `seed`.
inline int64_t RandomBits(uint64_t seed, uint64_t stream, uint64_t counter) {
  std::array<uint32_t, 4> c = {uint32_t(counter), uint32_t(counter >> 32), uint32_t(stream),
                               uint32_t(stream >> 32)};
  return int64_t(Philox4x32x10(c, {uint32_t(seed), uint32_t(seed >> 32)})[0]);
}

// A node's stream: the top 52 bits of the 64-bit FNV-1a hash of its name, so that it is exact
// as the double that holds a compute definition's constants. Two random nodes of one name draw
// the same numbers.
inline uint64_t RandomStream(std::string_view node_name) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char ch : node_name) {
    h ^= uint8_t(ch);
    h *= 0x100000001B3ull;
  }
  return h >> 12;
}

// The bits at or above which an element is kept with probability 1 - p (p in [0, 1]):
// ceil(p 2^32), so p = 0 keeps everything and p = 1 nothing.
inline int64_t KeepThreshold(double p) {
  double t = std::ceil(p * 4294967296.0);
  return t <= 0 ? 0 : t >= 4294967296.0 ? int64_t(1) << 32 : int64_t(t);
}

// Random bits as a double uniform in [0, 1) (exact: bits 2^-32).
inline double RandomUnit(int64_t bits) {
  return double(bits) * (1.0 / 4294967296.0);
}

}  // namespace kiln
