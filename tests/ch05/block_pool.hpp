// Chapter 05 and 06 tests: a block-id pool that stands in for the allocator
// and tracks who holds every id, so a block leaked or owned twice fails a test.
#pragma once

#include <algorithm>
#include <span>
#include <vector>

namespace kvc::ch05::testing {

// Who holds each block id: free, the test (a request's blocks), or the cache.
class BlockPool {
 public:
  enum class Owner { kFree, kRequest, kCache };

  explicit BlockPool(int num_blocks) : owners_(static_cast<std::size_t>(num_blocks), Owner::kFree) {
    for (int id = num_blocks - 1; id >= 0; --id) free_.push_back(id);
  }
  int num_free() const { return static_cast<int>(free_.size()); }

  int allocate() {
    const int id = free_.back();
    free_.pop_back();
    owners_[static_cast<std::size_t>(id)] = Owner::kRequest;
    return id;
  }
  // Moves `id` from `from` to `to`; false when it was not held by `from`.
  [[nodiscard]] bool move(int id, Owner from, Owner to) {
    if (id < 0 || id >= static_cast<int>(owners_.size())) return false;
    Owner& owner = owners_[static_cast<std::size_t>(id)];
    if (owner != from) return false;
    owner = to;
    if (to == Owner::kFree) free_.push_back(id);
    return true;
  }
  int count(Owner who) const { return static_cast<int>(std::ranges::count(owners_, who)); }

  // After an insert of a request's `blocks` (full_blocks whole ones), which
  // found `cached` already cached: the request gives back its duplicates and
  // its partial block, and the cache now owns the new whole blocks. Returns
  // the first block that was not the request's, or -1.
  [[nodiscard]] int settle_insert(std::span<const int> blocks, std::span<const int> cached,
                                  std::size_t full_blocks) {
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const bool was_cached = i < cached.size();
      if (was_cached && blocks[i] == cached[i]) continue;  // the cache's own block
      const bool partial = i >= full_blocks;
      if (!move(blocks[i], Owner::kRequest, was_cached || partial ? Owner::kFree : Owner::kCache)) {
        return blocks[i];
      }
    }
    return -1;
  }

 private:
  std::vector<Owner> owners_;
  std::vector<int> free_;
};

}  // namespace kvc::ch05::testing
