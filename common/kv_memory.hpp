// What a KV cache will cost, checked before it is allocated: a header with a
// huge seq_len, many layers or many KV heads fails up front with the bytes and
// their cause, not with "out of memory" halfway through setup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/config.hpp"
#include "common/page_memory.hpp"

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

// A KV cache's floats, and a quantized KV cache's codes: page-aligned, on
// huge pages from 2 MiB (common/page_memory.hpp). Decode attention walks the
// cache row by row, and a row is often exactly one 4 KiB page (8 KV heads x
// 128 dims, fp32): on 2 MiB pages the split-context kernel read a
// 16K-position cache about 13% faster on one core.
using KvFloats = PageFloats;
using KvBytes = PageBytes;

// `count` zeroed floats for a KV cache: page-aligned, on huge pages from 2 MiB.
KvFloats zeroed_kv_floats(std::size_t count);

}  // namespace kvc
