// Memory for the big arrays a decode step streams front to back every token:
// the model's weights and the KV caches. Page-aligned, and on 2 MiB
// transparent huge pages from 2 MiB up.
//
// Why: a 4 KiB page costs a TLB miss each time a stream enters it. One core of
// this course's machine streams 2 MiB pages ~1.6x faster than 4 KiB ones (the
// read probes of every benchmark program print both); chapter 02 on the 15M
// shape ran ~1.5x faster on one thread with its weights moved onto them
// (benchmarks/README.md). And a 4 KiB cache row that starts mid-page straddles
// two pages: rows starting 3792 bytes into a page (where a pool happened to
// land in the heap) made the split-context kernel 1.2x slower than
// page-aligned rows, at 4K positions on one core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace kvc {

// `bytes` from the C heap, starting on a 4 KiB page, and on a 2 MiB boundary
// and asked for on transparent huge pages (Linux madvise, a hint the OS may
// ignore) when it is at least 2 MiB. Freed with std::free. Throws
// std::bad_alloc when there is no memory.
void* allocate_page_aligned(std::size_t bytes);

// std::vector's allocator for such memory (allocate_page_aligned).
template <typename T>
struct PageAllocator {
  using value_type = T;
  PageAllocator() = default;
  template <typename U>
  PageAllocator(const PageAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(allocate_page_aligned(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }
  template <typename U>
  bool operator==(const PageAllocator<U>&) const noexcept {
    return true;
  }
};

// Floats (weights, an fp32 KV cache) and bytes (a quantized KV cache's codes).
using PageFloats = std::vector<float, PageAllocator<float>>;
using PageBytes = std::vector<unsigned char, PageAllocator<unsigned char>>;

}  // namespace kvc
