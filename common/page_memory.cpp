#include "common/page_memory.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace kvc {

void* allocate_page_aligned(std::size_t bytes) {
  constexpr std::size_t kPage = std::size_t{1} << 12;
  constexpr std::size_t kHugePage = std::size_t{1} << 21;
  const std::size_t alignment = bytes >= kHugePage ? kHugePage : kPage;
  // aligned_alloc wants a multiple of the alignment; the rounding stays untouched.
  if (bytes > SIZE_MAX - alignment) throw std::bad_alloc();
  const std::size_t rounded =
      std::max<std::size_t>(1, (bytes + alignment - 1) / alignment) * alignment;
  void* memory = std::aligned_alloc(alignment, rounded);
  if (memory == nullptr) throw std::bad_alloc();
  // The advice must come before the first write, which is when the pages are
  // chosen; where huge pages are off the call fails and the memory keeps 4 KiB pages.
  if (alignment == kHugePage) madvise(memory, rounded, MADV_HUGEPAGE);
  return memory;
}

}  // namespace kvc
