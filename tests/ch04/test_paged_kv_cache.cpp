// Chapter 04: the paged cache gives chapter 02's tokens, shares and copies
// blocks correctly, and answers an exhausted pool with a result, not a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <string>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "common/thread_pool.hpp"
#include "engine/forward.hpp"
#include "engine/generate.hpp"
#include "kernels/cpu/ops.hpp"
#include "tests/support/bit_identical.hpp"
#include "tests/support/test_support.hpp"
#include "tools/synthetic_model.hpp"

namespace kvc::ch04 {
namespace {

// Feeds `tokens` of sequence `seq` from position `first` and returns the last token's logits.
std::vector<float> feed(const Model& model, KVStrategy& kv, int seq, int first,
                        const std::vector<int>& tokens) {
  Batch batch;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    batch.add(tokens[i], seq, first + static_cast<int>(i), i + 1 == tokens.size());
  }
  Activations acts;
  forward(model, batch, kv, acts, nullptr);
  return acts.logits;
}

// paged_decode_attention against the kernel on the same rows laid out
// contiguously. The pool is NaN except the sequence's rows, its blocks are
// shuffled, and contexts end inside a block: reading one position too few or
// too many, or a row the table does not name, fails here.
TEST(Ch04PagedDecodeAttention, BitIdenticalToContiguousRowsThroughShuffledTables) {
  const int n_heads = 4, n_kv_heads = 2, head_dim = 12, kv_dim = n_kv_heads * head_dim;
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (int block_size : {1, 3, 16}) {
    for (int pos : {0, 1, 2, 16, 17, 39}) {
      SCOPED_TRACE("block size " + std::to_string(block_size) + ", pos " + std::to_string(pos));
      const int n_ctx = pos + 1;
      const PagedLayout layout{.n_layers = 1,
                               .num_blocks = blocks_needed(40, block_size) + 3,
                               .block_size = block_size,
                               .n_kv_heads = n_kv_heads,
                               .head_dim = head_dim,
                               .dtype = {}};  // fp32
      std::vector<int> physical(layout.num_blocks);
      std::iota(physical.begin(), physical.end(), 0);
      std::shuffle(physical.begin(), physical.end(), rng);
      BlockTable table;
      table.blocks.assign(physical.begin(), physical.begin() + blocks_needed(n_ctx, block_size));
      table.num_tokens = n_ctx;

      std::vector<float> k_pages(layout.values_per_layer(), std::nanf(""));
      std::vector<float> v_pages(k_pages);
      std::vector<float> k_rows(n_ctx * kv_dim), v_rows(k_rows.size());  // [n_ctx][kv_dim]
      for (int t = 0; t < n_ctx; ++t) {
        const std::size_t row = table.blocks[t / block_size] * block_size + t % block_size;
        for (int i = 0; i < kv_dim; ++i) {
          k_rows[t * kv_dim + i] = k_pages[row * kv_dim + i] = dist(rng);
          v_rows[t * kv_dim + i] = v_pages[row * kv_dim + i] = dist(rng);
        }
      }
      std::vector<float> q(n_heads * head_dim), out(q.size()), expected(q.size());
      for (float& x : q) x = dist(rng);
      std::vector<float> scratch(paged_decode_scratch_floats(n_ctx, n_heads));
      paged_decode_attention(out.data(), q.data(), layout, k_pages.data(), v_pages.data(), table,
                             pos, n_heads, scratch.data());
      cpu::attention_decode(expected.data(), q.data(), k_rows.data(), v_rows.data(), n_ctx, n_heads,
                            n_kv_heads, head_dim, scratch.data());
      EXPECT_TRUE(testing::bit_identical(out, expected));
    }
  }
}

TEST(Ch04PagedKVCache, SameTokensAsChapter02OnRealModelForEveryBlockSize) {
  const auto real = testing::load_real_model();
  const Model& model = real.model;
  const Tokenizer& tokenizer = real.tokenizer;
  ThreadPool pool(2);
  CpuEngine engine(model, &pool);
  const GenerationOptions options{"Lily and Tom went to the beach", 200, {1.0f, 0.9f, 42}};
  ch02::ContiguousKVCache contiguous(model.config, 1, &pool);
  const auto expected = generate(engine, tokenizer, contiguous, options);
  for (int block_size : {1, 7, 16, 128}) {
    PagedKVCache paged(model.config, blocks_needed(model.config.seq_len, block_size), block_size,
                       &pool);
    EXPECT_EQ(generate(engine, tokenizer, paged, options).tokens, expected.tokens)
        << "block size " << block_size;
    paged.blocks().check_invariants();
    EXPECT_EQ(paged.blocks().allocator().num_used(), 0) << "generate() releases the sequence";
  }
}

// --kernel fast (paged variant 3) gives chapter 02's tokens exactly, greedy
// and sampled; --kernel split (paged variant 4, its own rounding) the same
// greedy text. Block size 7 puts block edges inside the kernels' chunks of rows.
TEST(Ch04PagedKVCache, TunedKernelsGiveChapter02TokensOnRealModel) {
  const auto real = testing::load_real_model();
  const ModelConfig& config = real.model.config;
  ThreadPool pool(2);
  CpuEngine engine(real.model, &pool);
  const GenerationOptions greedy{"Lily and Tom went to the beach", 256, {0.0f, 0.9f, 1}};
  const GenerationOptions sampled{"One day", 256, {1.0f, 0.9f, 42}};
  for (const GenerationOptions& options : {greedy, sampled}) {
    ch02::ContiguousKVCache contiguous(config, 1, &pool);
    const auto expected = generate(engine, real.tokenizer, contiguous, options).tokens;
    for (int block_size : {7, 16}) {
      for (auto kernel : {ch02::AttentionKernel::kFast, ch02::AttentionKernel::kSplit}) {
        if (kernel == ch02::AttentionKernel::kSplit && &options != &greedy) continue;
        PagedKVCache paged(config, blocks_needed(config.seq_len, block_size), block_size, &pool,
                           kernel);
        EXPECT_EQ(generate(engine, real.tokenizer, paged, options).tokens, expected)
            << ch02::to_string(kernel) << ", block size " << block_size;
      }
    }
  }
}

TEST(Ch04PagedKVCache, HoldsOnlyTheBlocksItsTokensFill) {
  const ModelConfig config = find_synthetic_preset("tiny").config;
  const Model model = make_synthetic_model(config, 3);
  PagedKVCache kv(config, /*num_blocks=*/40, /*block_size=*/16, nullptr);
  const std::size_t block_bytes = 2 * config.n_layers * 16 * config.kv_dim() * sizeof(float);
  feed(model, kv, 0, 0, std::vector<int>(17, 300));  // 17 tokens -> 2 blocks
  EXPECT_EQ(kv.kv_bytes_reserved(), 2 * block_bytes);
  EXPECT_EQ(kv.blocks().blocks_to_append(0, 15), 0);
  EXPECT_EQ(kv.blocks().blocks_to_append(0, 16), 1);
  kv.blocks().check_invariants();
  kv.release(0);
  EXPECT_EQ(kv.kv_bytes_reserved(), 0u);
  kv.blocks().check_invariants();
}

// A fork shares the prompt's blocks; each branch then writes its own tokens,
// the shared partial block is copied on the first write, and both branches
// see exactly the logits they would see alone.
TEST(Ch04PagedKVCache, ForkSharesBlocksAndCopiesOnWrite) {
  const ModelConfig config = find_synthetic_preset("tiny").config;
  const Model model = make_synthetic_model(config, 5);
  const std::vector<int> prompt = {1,   300, 301,
                                   302, 303, 304};  // 6 tokens: one full, one partial block
  PagedKVCache kv(config, /*num_blocks=*/16, /*block_size=*/4, nullptr);
  feed(model, kv, 0, 0, prompt);
  kv.blocks().fork(0, 1);
  EXPECT_EQ(kv.blocks().allocator().num_used(), 2);
  EXPECT_EQ(kv.blocks().allocator().ref_count(kv.blocks().table(0)->blocks[0]), 2);
  kv.blocks().check_invariants();

  const auto logits_a = feed(model, kv, 0, 6, {310});
  const auto logits_b = feed(model, kv, 1, 6, {320});
  kv.blocks().check_invariants();
  EXPECT_EQ(kv.blocks().table(0)->blocks[0], kv.blocks().table(1)->blocks[0])
      << "the full block stays shared";
  EXPECT_NE(kv.blocks().table(0)->blocks[1], kv.blocks().table(1)->blocks[1])
      << "the written block was copied";
  EXPECT_EQ(kv.blocks().allocator().num_used(), 3);

  for (const auto& [token, logits] : {std::pair{310, logits_a}, std::pair{320, logits_b}}) {
    PagedKVCache alone(config, 16, 4, nullptr);
    std::vector<int> sequence = prompt;
    sequence.push_back(token);
    const auto expected = feed(model, alone, 0, 0, sequence);
    EXPECT_EQ(0, std::memcmp(logits.data(), expected.data(), logits.size() * sizeof(float)))
        << "branch with token " << token;
  }
  kv.release(0);
  kv.release(1);
  EXPECT_EQ(kv.blocks().allocator().num_used(), 0);
  kv.blocks().check_invariants();
}

TEST(Ch04PagedKVCache, ExhaustedPoolIsAResultNotACrash) {
  const ModelConfig config = find_synthetic_preset("tiny").config;
  const Model model = make_synthetic_model(config, 7);
  PagedKVCache kv(config, /*num_blocks=*/2, /*block_size=*/4, nullptr);
  feed(model, kv, 0, 0, std::vector<int>(8, 300));  // fills both blocks
  EXPECT_THROW(feed(model, kv, 1, 0, {1}), PoolExhausted);
  kv.blocks().check_invariants();
  kv.release(0);  // the policy's move: free a sequence, then the other fits
  kv.release(1);
  feed(model, kv, 1, 0, {1, 300});
  kv.blocks().check_invariants();
}

// What the scheduler asks before every step: the blocks a sequence's next
// tokens take, a copy-on-write included.
TEST(Ch04BlockManager, BlocksToAppendCountsNewBlocksAndCopies) {
  BlockManager blocks(/*num_blocks=*/16, /*block_size=*/4);
  EXPECT_EQ(blocks.blocks_to_append(7, 0), 0);
  EXPECT_EQ(blocks.blocks_to_append(7, 4), 1) << "an unknown sequence starts empty";
  EXPECT_EQ(blocks.blocks_to_append(7, 5), 2);
  for (int pos = 0; pos < 6; ++pos) blocks.place(0, pos);  // one full block, one half full
  EXPECT_EQ(blocks.blocks_to_append(0, 2), 0);
  EXPECT_EQ(blocks.blocks_to_append(0, 3), 1);
  blocks.fork(0, 1);
  EXPECT_EQ(blocks.blocks_to_append(0, 1), 1) << "the shared half-full block gets copied";
  EXPECT_EQ(blocks.blocks_to_append(0, 3), 2);
  blocks.place(0, 6);
  EXPECT_EQ(blocks.blocks_to_append(1, 1), 0) << "after 0 copied it, 1 holds the original alone";
  for (int pos = 6; pos < 8; ++pos) blocks.place(1, pos);
  blocks.fork(1, 2);
  EXPECT_EQ(blocks.blocks_to_append(2, 1), 1) << "a full shared block is never written again";
  EXPECT_EQ(blocks.blocks_to_append(2, 4), 1);
}

// The prediction equals what placing then takes, over random forks, growth and releases.
TEST(Ch04BlockManager, BlocksToAppendPredictsWhatPlacingTakes) {
  std::mt19937 rng(7);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int block_size : {1, 3, 8}) {
    BlockManager blocks(/*num_blocks=*/400, block_size);
    std::vector<int> live;
    int next_id = 0;
    for (int op = 0; op < 400; ++op) {
      const int action = uniform(0, 9);
      if (live.empty() || action < 5) {  // grow a sequence (or start one)
        const int seq = live.empty() || action == 0 ? next_id++ : live[uniform(0, live.size() - 1)];
        if (std::find(live.begin(), live.end(), seq) == live.end()) live.push_back(seq);
        const int n = uniform(1, 2 * block_size);
        const BlockTable* t = blocks.table(seq);
        const int first = t ? t->num_tokens : 0;
        const int predicted = blocks.blocks_to_append(seq, n);
        const int free_before = blocks.allocator().num_free();
        for (int pos = first; pos < first + n; ++pos) blocks.place(seq, pos);
        EXPECT_EQ(free_before - blocks.allocator().num_free(), predicted)
            << "block size " << block_size << ", sequence " << seq << ", " << n << " tokens";
      } else if (action < 8) {  // fork
        const int parent = live[uniform(0, live.size() - 1)];
        blocks.fork(parent, next_id);
        live.push_back(next_id++);
      } else {  // finish
        const std::size_t i = uniform(0, live.size() - 1);
        blocks.release(live[i]);
        live.erase(live.begin() + i);
      }
      blocks.check_invariants();
    }
  }
}

// n sequences share a half-full block and all write to it in one step: the
// first n - 1 copy it, the last finds itself its only holder and writes in place.
TEST(Ch04BlockManager, AStepsCostIsExactForEverySharerOfAPartialBlock) {
  BlockManager blocks(/*num_blocks=*/16, /*block_size=*/4);
  for (int pos = 0; pos < 6; ++pos) blocks.place(0, pos);
  blocks.fork(0, 1);
  blocks.fork(0, 2);
  const std::vector<SequenceAppend> all = {{0, 1}, {1, 1}, {2, 1}};
  EXPECT_EQ(blocks.blocks_to_append(all), 2) << "3 sharers, 2 copies";
  const std::vector<SequenceAppend> two = {{0, 1}, {2, 3}};
  EXPECT_EQ(blocks.blocks_to_append(two), 3) << "sequence 1 keeps sharing: both writers copy";
  Batch batch;
  for (int seq : {0, 1, 2}) batch.add(1, seq, 6, false);
  const int free_before = blocks.allocator().num_free();
  ASSERT_TRUE(blocks.try_reserve(batch).has_value());
  EXPECT_EQ(free_before - blocks.allocator().num_free(), 2);
  blocks.check_invariants();
}

// The batch's blocks, all or nothing: a refused reservation leaves every table
// as it was, and an accepted one takes exactly what blocks_to_append predicted.
TEST(Ch04BlockManager, ReserveIsAllOrNothingAndTakesWhatItPredicts) {
  std::mt19937 rng(11);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int refused = 0, accepted = 0;
  for (int block_size : {1, 2, 5}) {
    BlockManager blocks(/*num_blocks=*/24, block_size);
    std::vector<int> live;
    int next_id = 0;
    for (int op = 0; op < 2000; ++op) {
      const int action = uniform(0, 9);
      if (live.empty() || action < 6) {  // a step: some sequences grow, maybe a new one starts
        if (live.empty() || action == 0) live.push_back(next_id++);
        Batch batch;
        std::vector<SequenceAppend> appends;
        for (int seq : live) {
          if (uniform(0, 2) == 0) continue;
          const int n = uniform(1, 2 * block_size);
          const BlockTable* t = blocks.table(seq);
          const int first = t ? t->num_tokens : 0;
          for (int pos = first; pos < first + n; ++pos) batch.add(1, seq, pos, false);
          appends.push_back({seq, n});
        }
        std::map<int, BlockTable> before;
        for (int seq : live) {
          if (blocks.table(seq)) before[seq] = *blocks.table(seq);
        }
        const int free_before = blocks.allocator().num_free();
        const int predicted = blocks.blocks_to_append(appends);
        const std::optional<Reservation> reservation = blocks.try_reserve(batch);
        if (!reservation) {
          ++refused;
          EXPECT_GT(predicted, free_before);
          EXPECT_EQ(blocks.allocator().num_free(), free_before);
          for (int seq : live) {
            const BlockTable* t = blocks.table(seq);
            ASSERT_EQ(t != nullptr, before.count(seq) == 1) << "sequence " << seq;
            if (t) {
              EXPECT_EQ(t->blocks, before[seq].blocks);
              EXPECT_EQ(t->num_tokens, before[seq].num_tokens);
            }
          }
          // As a scheduler would: preempt someone to make room.
          const std::size_t victim = uniform(0, live.size() - 1);
          blocks.release(live[victim]);
          live.erase(live.begin() + victim);
        } else {
          ++accepted;
          EXPECT_EQ(free_before - blocks.allocator().num_free(), predicted);
          EXPECT_EQ(reservation->slots.size(), static_cast<std::size_t>(batch.size()));
        }
      } else if (action < 8) {  // fork
        const int parent = live[uniform(0, live.size() - 1)];
        if (blocks.table(parent)) {
          blocks.fork(parent, next_id);
          live.push_back(next_id++);
        }
      } else {  // finish
        const std::size_t i = uniform(0, live.size() - 1);
        blocks.release(live[i]);
        live.erase(live.begin() + i);
      }
      blocks.check_invariants();
    }
  }
  EXPECT_GT(refused, 200) << "the pool should run dry often";
  EXPECT_GT(accepted, 1000);
}

// A batch that skips or repeats a position is an error that changes nothing,
// even when an earlier token of the batch was fine.
TEST(Ch04BlockManager, ABatchThatDoesNotContinueItsSequenceChangesNothing) {
  BlockManager blocks(/*num_blocks=*/8, /*block_size=*/4);
  for (int pos = 0; pos < 3; ++pos) blocks.place(0, pos);
  Batch gap;
  gap.add(1, 1, 0, false);  // fine on its own
  gap.add(1, 0, 4, true);   // position 3 skipped
  EXPECT_THROW(blocks.try_reserve(gap), Error);
  Batch repeat;
  repeat.add(1, 0, 2, true);
  EXPECT_THROW(blocks.try_reserve(repeat), Error);
  EXPECT_EQ(blocks.table(1), nullptr);
  EXPECT_EQ(blocks.table(0)->num_tokens, 3);
  EXPECT_EQ(blocks.allocator().num_used(), 1);
  blocks.check_invariants();
}

// Through the engine: a forward pass the pool cannot hold throws PoolExhausted
// before any work, and the sequences carry on as if it had never been tried.
TEST(Ch04PagedKVCache, AnExhaustedForwardChangesNothingAndGenerationCarriesOn) {
  const Model model = make_synthetic_model(find_synthetic_preset("tiny").config, 5);
  PagedKVCache kv(model.config, /*num_blocks=*/3, /*block_size=*/4, nullptr);
  PagedKVCache alone(model.config, /*num_blocks=*/3, /*block_size=*/4, nullptr);
  const std::vector<int> prompt = {1, 17, 42, 99, 7, 3};  // 2 blocks
  feed(model, kv, 0, 0, prompt);
  const std::vector<float> expected = feed(model, alone, 0, 0, prompt);
  EXPECT_THROW(feed(model, kv, 1, 0, prompt), PoolExhausted) << "sequence 1 needs 2, 1 is free";
  EXPECT_EQ(kv.blocks().table(1), nullptr);
  EXPECT_EQ(kv.blocks().allocator().num_used(), 2);
  kv.blocks().check_invariants();
  EXPECT_EQ(feed(model, kv, 0, 6, {5}), feed(model, alone, 0, 6, {5}));
  kv.release(0);
  EXPECT_EQ(feed(model, kv, 1, 0, prompt), expected);
}

TEST(Ch04PagedKVCache, BadConfigurationsAreErrors) {
  const ModelConfig config = find_synthetic_preset("tiny").config;
  EXPECT_THROW(PagedKVCache(config, 4, 0, nullptr), Error);
  EXPECT_THROW(PagedKVCache(config, 4, 257, nullptr), Error);
  EXPECT_THROW(PagedKVCache(config, 0, 16, nullptr), Error);
  PagedKVCache kv(config, 4, 16, nullptr);
  EXPECT_THROW(kv.blocks().fork(3, 4), Error);
}

TEST(PagedKVCache, AbsurdPoolFailsUpFrontNamingTheCause) {
  const ModelConfig c = testing::config_beyond_any_memory();
  try {
    PagedKVCache cache(c, 1 << 18, 16, nullptr);
    FAIL() << "a 128 TiB pool was allocated";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("128.00 TiB"), std::string::npos) << message;
    EXPECT_NE(message.find("262144 blocks x 16 tokens"), std::string::npos) << message;
  }
  // max_seqs x blocks per sequence beyond int: an error, not a wrapped pool size.
  DeviceContext cpu;
  EXPECT_THROW(make_strategy(c, cpu, 1, 1 << 20), Error);
}

// What the GPU caches upload: one table row per sequence, in order of first
// appearance in the batch, as wide as the longest table, zeros past a table's end.
TEST(Ch04BlockManager, BatchBlockTablesHaveOneRowPerSequence) {
  BlockManager blocks(/*num_blocks=*/16, /*block_size=*/4);
  Batch batch;
  for (int pos = 0; pos < 9; ++pos) batch.add(1, 7, pos, false);  // 3 blocks
  for (int pos = 0; pos < 2; ++pos) batch.add(1, 3, pos, false);  // 1 block
  batch.add(1, 7, 9, false);                                      // back to sequence 7
  ASSERT_TRUE(blocks.try_reserve(batch).has_value());
  const BatchBlockTables t = batch_block_tables(batch, blocks);
  EXPECT_EQ(t.max_blocks, 3);
  EXPECT_EQ(t.rows, (std::vector<int>{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0}));
  const std::vector<int>& seven = blocks.table(7)->blocks;
  const std::vector<int>& three = blocks.table(3)->blocks;
  EXPECT_EQ(t.tables, (std::vector<int>{seven[0], seven[1], seven[2], three[0], 0, 0}));
}

}  // namespace
}  // namespace kvc::ch04
