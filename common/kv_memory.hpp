// What a KV cache will cost, checked before it is allocated: a header with a
// huge seq_len, many layers or many KV heads fails up front with the bytes and
// their cause, not with "out of memory" halfway through setup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string_view>
#include <vector>

#include "common/config.hpp"

namespace kvc {

// This machine's physical memory in bytes (the largest uint64 when unknown).
std::uint64_t host_memory_bytes();

// Floats of K (or of V) for `positions` token positions in every layer:
//   n_layers x positions x n_kv_heads x head_dim
// Throws kvc::Error when K and V together (2 x that x 4 bytes) do not fit in
// 64 bits or exceed `memory_bytes`. The message starts with `what`, gives the
// bytes and the product they come from, and `positions_cause` (how the
// positions were counted, e.g. "1 sequence x seq_len 4194304").
std::size_t checked_kv_floats(const ModelConfig& config, std::int64_t positions,
                              std::uint64_t memory_bytes, std::string_view what,
                              std::string_view positions_cause);

// The same against this machine's physical memory, for caches kept on the host.
std::size_t checked_host_kv_floats(const ModelConfig& config, std::int64_t positions,
                                   std::string_view what, std::string_view positions_cause);

// Memory for a KV cache: `bytes` from the C heap, starting on a 4 KiB
// page, and on a 2 MiB boundary and asked for on transparent huge pages
// (Linux madvise, a hint the OS may ignore) when it is at least 2 MiB. Freed
// with std::free. Throws std::bad_alloc when there is no memory.
//
// Why: decode attention walks the cache row by row, and a row is often exactly
// one 4 KiB page (8 KV heads x 128 dims, fp32). On 4 KiB pages every row is a
// TLB miss; on 2 MiB pages the split-context kernel read a 16K-position cache
// about 13% faster on one core. And a row that starts mid-page straddles two
// pages: rows starting 3792 bytes into a page (where a pool happened to land
// in the heap) made the same kernel 1.2x slower than page-aligned rows, at
// 4K positions on one core (benchmarks/README.md).
void* allocate_kv_bytes(std::size_t bytes);

// std::vector's allocator for KV caches (allocate_kv_bytes).
template <typename T>
struct KvPageAllocator {
  using value_type = T;
  KvPageAllocator() = default;
  template <typename U>
  KvPageAllocator(const KvPageAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(allocate_kv_bytes(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }
  template <typename U>
  bool operator==(const KvPageAllocator<U>&) const noexcept {
    return true;
  }
};

// A KV cache's floats, page-aligned (see allocate_kv_bytes).
using KvFloats = std::vector<float, KvPageAllocator<float>>;
// A quantized KV cache's codes, page-aligned the same way.
using KvBytes = std::vector<unsigned char, KvPageAllocator<unsigned char>>;

// `count` zeroed floats for a KV cache: page-aligned, on huge pages from 2 MiB.
KvFloats zeroed_kv_floats(std::size_t count);

}  // namespace kvc
