// Chapter 06: the bounded radix cache against a brute-force reference, over
// long random streams of match / insert / lock / unlock / pin / unpin /
// evict / expire / end_session / clear_tag / clear, for every policy.
//
// Every operation must agree with ReferencePolicyCache exactly (the blocks a
// match returns, what an insert finds cached, the exact blocks and order
// every eviction and invalidation frees, the sizes), and check_invariants()
// runs after each one. A block-id pool tracks who holds every id, so a
// block leaked, owned twice, or freed while locked fails the test.
//
// The CI suite runs 15 cases x 4,000 operations. The soak runs the same
// cases longer: KVC_SOAK_OPERATIONS is the total over all cases, e.g.
//   KVC_SOAK_OPERATIONS=1000000 build/bin/kvc_ch06_tests --gtest_filter='Ch06Random*'
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "chapters/06_lru_eviction/policy_radix_cache.hpp"
#include "tests/ch05/block_pool.hpp"
#include "tests/ch06/reference_policy_cache.hpp"

namespace kvc::ch06 {
namespace {

using ch05::testing::BlockPool;
using Owner = BlockPool::Owner;

constexpr int kCases = 15;  // 5 policies x 3 (block size, ttl) shapes
constexpr int kCiOperationsPerCase = 4000;

int operations_per_case() {
  const char* soak = std::getenv("KVC_SOAK_OPERATIONS");
  if (soak == nullptr) return kCiOperationsPerCase;
  const long total = std::strtol(soak, nullptr, 10);
  return total > 0 ? static_cast<int>((total + kCases - 1) / kCases) : kCiOperationsPerCase;
}

struct HeldLock {
  ch05::PrefixHandle handle;
  std::string isolation_key;
  std::vector<int> tokens;  // the locked whole-block prefix
  bool pinned = false;
};

struct Request {
  std::vector<int> tokens;
  RequestTags tags;
};

using Shape = std::tuple<int, std::uint64_t>;  // (block size, ttl)

class Ch06RandomOps : public ::testing::TestWithParam<std::tuple<EvictionPolicy, Shape>> {};

TEST_P(Ch06RandomOps, MatchTheBruteForceReference) {
  const auto& [policy, shape] = GetParam();
  const auto& [block_size, ttl] = shape;
  const int operations = operations_per_case();
  constexpr int kPoolBlocks = 1024;
  constexpr int kCacheCap = 96;  // evict down to this, so every check stays cheap
  constexpr int kMaxLocks = 6;
  const int b = block_size;

  std::mt19937 rng(static_cast<unsigned>(2025 + 7 * block_size + static_cast<int>(policy)));
  const auto uniform = [&rng](int lo, int hi) {  // [lo, hi]
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  const std::vector<std::string> keys = {"", "", "", "tenant-b"};
  const std::vector<std::string> tags = {"", "", "repo-a", "repo-b"};
  const auto random_tags = [&] {
    return RequestTags{.isolation_key = keys[std::size_t(uniform(0, 3))],
                       .tag = tags[std::size_t(uniform(0, 3))],
                       .session = uniform(0, 3),
                       .priority = uniform(0, 3)};
  };
  std::vector<std::vector<int>> stems(4);  // shared "system prompts", up to 6 blocks
  for (auto& stem : stems) {
    for (int i = 0; i < 6 * b; ++i) stem.push_back(uniform(0, 3));
  }
  std::vector<Request> history;  // inserted requests, for later turns
  const auto make_request = [&] {
    Request request{.tokens = {}, .tags = random_tags()};
    const int shape_of = uniform(0, 9);
    if (shape_of < 4 && !history.empty()) {  // a later turn: same tags, longer tokens
      request = history[std::size_t(uniform(0, int(history.size()) - 1))];
      if (int(request.tokens.size()) > 12 * b) request.tokens.resize(std::size_t(4 * b));
    } else if (shape_of < 9) {  // a system prompt, cut anywhere (block edges included)
      const auto& stem = stems[static_cast<std::size_t>(uniform(0, 3))];
      request.tokens.assign(stem.begin(), stem.begin() + uniform(0, int(stem.size())));
    }
    const int suffix = uniform(0, 3 * b);
    for (int i = 0; i < suffix; ++i) request.tokens.push_back(uniform(0, 2));
    return request;
  };

  PolicyRadixCache cache(block_size, policy, ttl);
  testing::ReferencePolicyCache reference(block_size, policy, ttl);
  BlockPool pool(kPoolBlocks);
  std::vector<HeldLock> locks;

  const auto whole_prefix = [b](const std::vector<int>& tokens, int num_tokens) {
    return std::vector<int>(tokens.begin(), tokens.begin() + num_tokens / b * b);
  };
  const auto give_back = [&](const std::vector<int>& freed, const std::vector<int>& expected,
                             const char* what) {
    ASSERT_EQ(freed, expected) << what;
    for (const int id : freed) ASSERT_TRUE(pool.move(id, Owner::kCache, Owner::kFree)) << id;
  };
  const auto check_match = [&](const Request& request) {
    const ch05::PrefixMatch match = cache.match_prefix(request.tokens, request.tags);
    const std::vector<int> expected = reference.match(request.tokens, request.tags);
    EXPECT_EQ(match.blocks, expected);
    EXPECT_EQ(match.matched_tokens, static_cast<int>(expected.size()) * b);
    return match;
  };
  const auto hold = [&](ch05::PrefixHandle handle, const Request& request, int num_tokens) {
    const bool pin = uniform(0, 3) == 0;
    if (pin) {
      cache.pin(handle);
    } else {
      cache.lock(handle);
    }
    const auto prefix = whole_prefix(request.tokens, num_tokens);
    reference.lock(request.tags.isolation_key, prefix, +1);
    locks.push_back({handle, request.tags.isolation_key, prefix, pin});
  };

  for (int op = 0; op < operations; ++op) {
    SCOPED_TRACE("operation " + std::to_string(op));
    const int what = uniform(0, 999);  // per mille
    if (what < 260) {  // a request arrives: match, and hold its prefix while it runs
      const Request request = make_request();
      const ch05::PrefixMatch match = check_match(request);
      if (uniform(0, 1) && static_cast<int>(locks.size()) < kMaxLocks) {
        hold(match.handle, request, match.matched_tokens);
      }
    } else if (what < 640) {  // a request finishes: insert its blocks
      const Request request = make_request();
      const std::vector<int>& tokens = request.tokens;
      if (pool.num_free() < int(tokens.size()) / b + 1) continue;
      std::vector<int> blocks;
      if (uniform(0, 1)) blocks = check_match(request).blocks;  // it started on a match
      while (blocks.size() < (tokens.size() + b - 1) / b) blocks.push_back(pool.allocate());
      const ch05::InsertResult result = cache.insert(tokens, blocks, request.tags);
      const std::vector<int> expected_cached = reference.insert(tokens, blocks, request.tags);
      ASSERT_EQ(result.cached_blocks, expected_cached);
      ASSERT_EQ(pool.settle_insert(blocks, expected_cached, tokens.size() / b), -1);
      if (uniform(0, 3) == 0 && static_cast<int>(locks.size()) < kMaxLocks) {
        hold(result.handle, request, int(tokens.size()));
      }
      history.push_back(request);
      if (history.size() > 64) history.erase(history.begin());
    } else if (what < 760) {  // a running request finishes, or a pin is lifted
      if (locks.empty()) continue;
      const auto victim = locks.begin() + uniform(0, int(locks.size()) - 1);
      if (victim->pinned) {
        cache.unpin(victim->handle);
      } else {
        cache.unlock(victim->handle);
      }
      reference.lock(victim->isolation_key, victim->tokens, -1);
      locks.erase(victim);
    } else if (what < 880) {
      const int n = uniform(0, 2 * b);
      give_back(cache.evict(n), reference.evict(n), "evict");
    } else if (what < 920) {
      give_back(cache.expire(), reference.expire(), "expire");
    } else if (what < 960) {
      const int session = uniform(1, 3);
      give_back(cache.end_session(session), reference.end_session(session), "end_session");
    } else if (what < 998) {
      const std::string& tag = tags[std::size_t(uniform(2, 3))];
      give_back(cache.clear_tag(tag), reference.clear_tag(tag), "clear_tag");
    } else {
      give_back(cache.clear(), reference.clear(), "clear");
    }
    if (cache.size_info().total_blocks() > kCacheCap) {
      const int n = uniform(1, 32);
      give_back(cache.evict(n), reference.evict(n), "evict to the cap");
    }
    if (::testing::Test::HasFatalFailure()) return;

    const ch05::SizeInfo sizes = cache.size_info();
    ASSERT_EQ(sizes.evictable_blocks, reference.evictable_blocks());
    ASSERT_EQ(sizes.protected_blocks, reference.protected_blocks());
    ASSERT_EQ(pool.count(Owner::kCache), sizes.total_blocks());
    ASSERT_EQ(pool.count(Owner::kRequest), 0);
    ASSERT_NO_THROW(cache.check_invariants());
  }

  // The end of the run: nothing locked or pinned is freed, then everything is.
  const int protected_blocks = cache.size_info().protected_blocks;
  give_back(cache.clear(), reference.clear(), "final clear");
  EXPECT_EQ(cache.size_info().total_blocks(), protected_blocks);
  for (const HeldLock& held : locks) {
    if (held.pinned) {
      cache.unpin(held.handle);
    } else {
      cache.unlock(held.handle);
    }
  }
  EXPECT_EQ(cache.num_pins(), 0);
  const std::vector<int> rest = cache.clear();
  EXPECT_EQ(static_cast<int>(rest.size()), protected_blocks);
  for (const int id : rest) EXPECT_TRUE(pool.move(id, Owner::kCache, Owner::kFree)) << id;
  EXPECT_EQ(pool.num_free(), kPoolBlocks);
  const CacheCounters& counters = cache.counters();
  EXPECT_GT(counters.hits, 0);
  EXPECT_GT(counters.misses, 0);
  EXPECT_GT(counters.evicted_blocks, 0);
  EXPECT_GT(counters.dropped_blocks, 0);
}

INSTANTIATE_TEST_SUITE_P(EveryPolicy, Ch06RandomOps,
                         ::testing::Combine(::testing::ValuesIn(kEvictionPolicies),
                                            ::testing::Values(Shape{1, 0}, Shape{4, 0},
                                                              Shape{2, 40})),
                         [](const auto& info) {
                           const Shape& shape = std::get<1>(info.param);
                           return std::string(eviction_policy_name(std::get<0>(info.param))) +
                                  "_block" + std::to_string(std::get<0>(shape)) + "_ttl" +
                                  std::to_string(std::get<1>(shape));
                         });

}  // namespace
}  // namespace kvc::ch06
