// Chapter 05: what both prefix caches share.
#include "chapters/05_radix_cache/prefix_cache.hpp"

#include "chapters/05_radix_cache/hash_block_cache.hpp"
#include "chapters/05_radix_cache/radix_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch05 {

std::unique_ptr<PrefixCache> make_prefix_cache(std::string_view kind, int block_size) {
  if (kind == "radix") return std::make_unique<RadixCache>(block_size);
  if (kind == "hash") return std::make_unique<HashBlockCache>(block_size);
  KVC_FAIL("unknown prefix cache '", kind, "' (expected radix or hash)");
}

void check_insert_arguments(std::span<const int> tokens, std::span<const int> blocks,
                            int block_size) {
  const std::size_t b = static_cast<std::size_t>(block_size);
  const std::size_t full_blocks = tokens.size() / b;
  const std::size_t all_blocks = (tokens.size() + b - 1) / b;
  KVC_CHECK(blocks.size() >= full_blocks && blocks.size() <= all_blocks,
            "prefix cache: ", tokens.size(), " tokens in blocks of ", block_size, " need ",
            full_blocks,
            (all_blocks > full_blocks ? " or " + std::to_string(all_blocks) : std::string()),
            " block ids, got ", blocks.size());
  for (const int block : blocks) {
    KVC_CHECK(block >= 0, "prefix cache: negative block id ", block);
  }
}

std::vector<int> differing_blocks(std::span<const int> caller_blocks,
                                  std::span<const int> cached_blocks) {
  KVC_CHECK(caller_blocks.size() >= cached_blocks.size(), "prefix cache: ", caller_blocks.size(),
            " caller blocks for ", cached_blocks.size(), " cached");
  std::vector<int> differing;
  for (std::size_t i = 0; i < cached_blocks.size(); ++i) {
    if (caller_blocks[i] != cached_blocks[i]) differing.push_back(caller_blocks[i]);
  }
  return differing;
}

}  // namespace kvc::ch05
