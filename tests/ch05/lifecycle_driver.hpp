// Chapter 05 and 06 tests: random sequence lifecycles (start, grow, fork,
// finish, release) through PrefixCachingBlockManager on a small pool, with a
// fake K/V pool that remembers the token written to every slot, so a reused
// block that no longer holds its tokens fails the test. Every invariant is
// checked after every operation.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "chapters/05_radix_cache/prefix_caching_blocks.hpp"

namespace kvc::ch05::testing {

// Stands in for the pool's K, V: the token each slot was last written with.
class FakePool {
 public:
  FakePool(int num_blocks, int block_size) : slots_(std::size_t(num_blocks) * block_size, -1) {}
  void write(std::int64_t slot, int token) { slots_.at(static_cast<std::size_t>(slot)) = token; }
  int read(std::int64_t slot) const { return slots_.at(static_cast<std::size_t>(slot)); }
  // Copy-on-write copies the rows.
  void copy(const ch04::BlockCopy& c, int block_size) {
    std::copy_n(slots_.begin() + std::ptrdiff_t(c.from) * block_size, block_size,
                slots_.begin() + std::ptrdiff_t(c.to) * block_size);
  }

 private:
  std::vector<int> slots_;
};

struct Live {
  std::vector<int> tokens;  // what it holds K, V for, then the next token to feed
};

class Driver {
 public:
  Driver(int num_blocks, int block_size, std::unique_ptr<PrefixCache> cache, unsigned seed)
      : blocks_(num_blocks, block_size, std::move(cache)),
        pool_(num_blocks, block_size),
        rng_(seed) {
    // A few shared "system prompts" so that hits happen.
    for (int p = 0; p < 4; ++p) {
      std::vector<int> prefix;
      const int length = uniform(1, 4 * block_size);
      for (int i = 0; i < length; ++i) prefix.push_back(uniform(1, 6));
      prefixes_.push_back(prefix);
    }
  }

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  // Every held position of every live sequence still reads its own token.
  void check_contents() {
    for (const auto& [seq, live] : live_) {
      const ch04::BlockTable* t = blocks_.table(seq);
      const int held = t ? t->num_tokens : 0;
      for (int p = 0; p < held; ++p) {
        ASSERT_EQ(pool_.read(ch04::slot_for(*t, p, blocks_.block_size())), live.tokens[p])
            << "sequence " << seq << " position " << p;
      }
    }
  }

  // Feeds every not-yet-held token of `seq` as one batch. False: it did not fit.
  bool feed(int seq) {
    const ch04::BlockTable* t = blocks_.table(seq);
    const int held = t ? t->num_tokens : 0;
    const std::vector<int>& tokens = live_[seq].tokens;
    Batch batch;
    for (int p = held; p < static_cast<int>(tokens.size()); ++p)
      batch.add(tokens[p], seq, p, false);
    const std::optional<ch04::Reservation> r = blocks_.try_reserve(batch);
    if (!r) return false;
    for (const ch04::BlockCopy& c : r->copies) pool_.copy(c, blocks_.block_size());
    for (int i = 0; i < batch.size(); ++i) pool_.write(r->slots[i], batch.tokens[i]);
    return true;
  }

  void start() {
    const int seq = next_id_++;
    std::vector<int> tokens = prefixes_[uniform(0, prefixes_.size() - 1)];
    const int suffix = uniform(1, 2 * blocks_.block_size());
    for (int i = 0; i < suffix; ++i) tokens.push_back(uniform(1, 6));
    const int peeked = blocks_.cached_prefix_tokens(tokens);
    const int cached = blocks_.begin_sequence(seq, tokens);
    ASSERT_EQ(cached, peeked) << "peek and begin disagree";
    ASSERT_LT(cached, static_cast<int>(tokens.size()));
    ASSERT_EQ(cached % blocks_.block_size(), 0);
    hits_ += cached > 0;
    live_[seq] = Live{tokens};
    check_contents();  // the matched blocks hold exactly these tokens
    if (!feed(seq)) {
      blocks_.release(seq);  // an aborted admission gives the claim back
      live_.erase(seq);
      return;
    }
    blocks_.publish(seq, tokens);
  }

  void grow(int seq) {
    Live& live = live_[seq];
    const int n = uniform(1, blocks_.block_size() + 1);
    for (int i = 0; i < n; ++i) live.tokens.push_back(uniform(1, 6));
    if (!feed(seq)) {  // preempt it: what it computed stays cached
      const ch04::BlockTable* t = blocks_.table(seq);
      const std::vector<int> held(live.tokens.begin(), live.tokens.begin() + t->num_tokens);
      blocks_.finish_sequence(seq, held);
      live_.erase(seq);
    }
  }

  void run(int operations) {
    for (int op = 0; op < operations; ++op) {
      const int action = uniform(0, 9);
      if (live_.empty() || action < 3) {
        start();
      } else {
        auto it = live_.begin();
        std::advance(it, uniform(0, live_.size() - 1));
        const int seq = it->first;
        if (action < 6) {
          grow(seq);
        } else if (action < 7 && blocks_.table(seq)) {
          blocks_.fork(seq, next_id_);
          live_[next_id_++] = live_[seq];
        } else if (action < 9) {
          blocks_.finish_sequence(seq, live_[seq].tokens);
          live_.erase(seq);
        } else {
          blocks_.release(seq);
          live_.erase(seq);
        }
      }
      blocks_.check_invariants();
      check_contents();
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  PrefixCachingBlockManager blocks_;
  FakePool pool_;
  std::mt19937 rng_;
  std::vector<std::vector<int>> prefixes_;
  std::map<int, Live> live_;
  int next_id_ = 0;
  int hits_ = 0;
};

}  // namespace kvc::ch05::testing
