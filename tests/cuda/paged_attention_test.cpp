// Chapter 04 on the GPU: every paged decode variant and the paged store against
// the CPU reference, and PagedKVCacheCuda against the CPU PagedKVCache through
// forks, copy-on-write and an exhausted pool. Chapter 05: the paged prefill of a
// chunk from any start, and split-K decode on one long sequence.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "chapters/04_paged_allocator/paged_kv_cache_cuda.hpp"
#include "engine/cuda/cuda_engine.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/cuda/attention.hpp"
#include "tests/cuda/cuda_test_helpers.hpp"
#include "tools/synthetic_model.hpp"

namespace kvc::cuda {
namespace {

using test::random_floats;

// ---- the kernels ----------------------------------------------------------------------

struct Heads {
  int n_heads, n_kv_heads, head_dim;
};

// A batch of query tokens over one layer's pool holding several sequences, in
// attention_decode_paged's layout.
struct PagedCase {
  PagedDecodeShape shape;
  std::vector<int> block_tables;     // [n_seqs][max_blocks_per_seq]
  std::vector<int> table_rows;       // [n_tokens]
  std::vector<int> context_lengths;  // [n_tokens]
  std::vector<float> k_pages;        // [num_blocks][block_size][n_kv_heads][head_dim]
  std::vector<float> v_pages;        // same
};

std::string describe(const PagedCase& c) {
  std::ostringstream text;
  text << "heads=" << c.shape.n_heads << "/" << c.shape.n_kv_heads
       << " head_dim=" << c.shape.head_dim << " block_size=" << c.shape.block_size << " "
       << format_name(c.shape.cache_dtype);
  return text.str();
}

// A pool holding sequences of the given lengths, their logical blocks scattered over a
// random permutation of its blocks, so no table is in order, and no queries yet. Every
// pool row that no position maps to holds NaN, and so does the block that pads the
// tables past each sequence's end, so a read of either shows in the output.
PagedCase make_pool(const Heads& heads, int block_size, NumberFormat dtype, unsigned seed,
                    const std::vector<int>& seq_lengths) {
  const int n_seqs = static_cast<int>(seq_lengths.size());
  std::vector<int> blocks_of_seq;
  for (int length : seq_lengths) blocks_of_seq.push_back((length + block_size - 1) / block_size);
  const int used_blocks = std::accumulate(blocks_of_seq.begin(), blocks_of_seq.end(), 0);
  const int num_blocks = used_blocks + 1;  // + the padding block
  const int max_blocks_per_seq = *std::max_element(blocks_of_seq.begin(), blocks_of_seq.end()) + 1;

  std::mt19937 rng(seed);
  std::vector<int> physical(num_blocks);
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), rng);
  const int padding_block = physical.back();

  PagedCase c;
  c.shape = {.n_tokens = 0,
             .block_size = block_size,
             .max_blocks_per_seq = max_blocks_per_seq,
             .n_heads = heads.n_heads,
             .n_kv_heads = heads.n_kv_heads,
             .head_dim = heads.head_dim,
             .cache_dtype = dtype};
  c.block_tables.assign(std::size_t(n_seqs) * max_blocks_per_seq, padding_block);
  int next = 0;
  for (int s = 0; s < n_seqs; ++s)
    for (int b = 0; b < blocks_of_seq[s]; ++b)
      c.block_tables[std::size_t(s) * max_blocks_per_seq + b] = physical[next++];

  const std::size_t row_floats = std::size_t(heads.n_kv_heads) * heads.head_dim;
  const std::size_t pool_floats = std::size_t(num_blocks) * block_size * row_floats;
  c.k_pages.assign(pool_floats, std::numeric_limits<float>::quiet_NaN());
  c.v_pages.assign(pool_floats, std::numeric_limits<float>::quiet_NaN());
  for (int s = 0; s < n_seqs; ++s) {
    const std::vector<float> k = random_floats(seq_lengths[s] * row_floats, seed + 10 + s, -2, 2);
    const std::vector<float> v = random_floats(seq_lengths[s] * row_floats, seed + 20 + s);
    const int* table = &c.block_tables[std::size_t(s) * max_blocks_per_seq];
    for (int t = 0; t < seq_lengths[s]; ++t) {
      const std::size_t slot = std::size_t(table[t / block_size]) * block_size + t % block_size;
      std::copy_n(k.begin() + t * row_floats, row_floats, c.k_pages.begin() + slot * row_floats);
      std::copy_n(v.begin() + t * row_floats, row_floats, c.v_pages.begin() + slot * row_floats);
    }
  }
  return c;
}

struct Query {
  int seq, context_length;
};

// Adds the queries to the pool's case, in the given order; attending_tokens counts the
// ones with a context.
void add_queries(PagedCase& c, const std::vector<Query>& queries) {
  for (const Query& query : queries) {
    c.table_rows.push_back(query.seq);
    c.context_lengths.push_back(query.context_length);
  }
  c.shape.n_tokens = static_cast<int>(queries.size());
  c.shape.attending_tokens = static_cast<int>(std::count_if(
      queries.begin(), queries.end(), [](const Query& q) { return q.context_length > 0; }));
}

// Sequences of 300, 37, 1 and 513 positions (513: past two 256-key tiles) in one pool. The
// queries, shuffled: one decode token per sequence, a prefill chunk of the 37-position
// sequence (positions 32..36: five tokens of one table, five lengths), and one token with
// context length 0, which the kernel must skip.
PagedCase make_case(const Heads& heads, int block_size, NumberFormat dtype, unsigned seed) {
  PagedCase c = make_pool(heads, block_size, dtype, seed, {300, 37, 1, 513});
  std::vector<Query> queries = {{0, 300}, {2, 1}, {3, 513}, {0, 0}};
  for (int length = 33; length <= 37; ++length) queries.push_back({1, length});
  std::shuffle(queries.begin(), queries.end(), std::mt19937(seed));
  add_queries(c, queries);
  return c;
}

// What a skipped token's out row holds before and after the kernel.
constexpr float kUntouched = 7.0f;

// Runs `variant` on the case and compares with cpu::attention_decode_paged per token, fed
// the pool as the GPU sees it (rounded to the cache dtype).
void check_paged(int variant, const PagedCase& c) {
  const PagedDecodeShape& s = c.shape;
  SCOPED_TRACE(testing::Message() << "v" << variant << " " << describe(c));
  const std::size_t dim = std::size_t(s.n_heads) * s.head_dim;
  const std::vector<float> q = random_floats(s.n_tokens * dim, 50, -2.0f, 2.0f);

  const std::vector<float> k_seen = test::rounded(c.k_pages, s.cache_dtype);
  const std::vector<float> v_seen = test::rounded(c.v_pages, s.cache_dtype);
  std::vector<float> expected(q.size(), kUntouched);
  for (int i = 0; i < s.n_tokens; ++i) {
    const int length = c.context_lengths[i];
    if (length == 0) continue;
    std::vector<float> scratch(
        cpu::attention_decode_paged_scratch_floats(1, length, s.n_heads, s.n_kv_heads));
    cpu::attention_decode_paged(
        1, expected.data() + i * dim, q.data() + i * dim, k_seen.data(), v_seen.data(),
        &c.block_tables[std::size_t(c.table_rows[i]) * s.max_blocks_per_seq], length, s.block_size,
        s.n_heads, s.n_kv_heads, s.head_dim, scratch.data());
  }

  const DeviceBuffer<float> d_q = to_device(q);
  const DeviceBuffer<std::byte> d_k = upload_as(c.k_pages.data(), c.k_pages.size(), s.cache_dtype);
  const DeviceBuffer<std::byte> d_v = upload_as(c.v_pages.data(), c.v_pages.size(), s.cache_dtype);
  const DeviceBuffer<int> d_tables = to_device(c.block_tables);
  const DeviceBuffer<int> d_rows = to_device(c.table_rows);
  const DeviceBuffer<int> d_lengths = to_device(c.context_lengths);
  DeviceBuffer<std::byte> workspace(attention_decode_paged_workspace_bytes(variant, s));
  DeviceBuffer<float> d_out = to_device(std::vector<float>(q.size(), kUntouched));
  attention_decode_paged(variant, d_out.data(), d_q.data(), d_k.data(), d_v.data(), d_tables.data(),
                         d_rows.data(), d_lengths.data(), s, workspace.data(), nullptr);
  test::expect_close(to_host(d_out), expected, 1e-5, 1e-4);
}

TEST(CudaPagedAttention, DecodeVariantsMatchCpu) {
  KVC_SKIP_WITHOUT_GPU();
  // MHA, GQA 4:1, MQA 6:1, a group of 12 (more heads than one v2 block serves), the
  // stories260K head shape, and head_dim 12 (no 16-byte vectors: v1 only, best = v1).
  const Heads head_shapes[] = {{4, 4, 64},  {8, 2, 128}, {6, 1, 64},
                               {24, 2, 32}, {8, 4, 8},   {4, 2, 12}};
  unsigned seed = 1;
  for (NumberFormat dtype : {NumberFormat::fp32, NumberFormat::fp16, NumberFormat::bf16})
    for (int block_size : {1, 16, 32})
      for (const Heads& heads : head_shapes) {
        PagedCase c = make_case(heads, block_size, dtype, seed++);
        for (int variant = kBestVariant; variant <= kPagedDecodeVariants; ++variant)
          if (attention_decode_paged_supports(variant, c.shape, nullptr)) check_paged(variant, c);
        // The workspace sized for every token, as before chapter 05, gives the same out.
        c.shape.attending_tokens = -1;
        for (int variant : {1, 3})
          if (attention_decode_paged_supports(variant, c.shape, nullptr)) check_paged(variant, c);
      }
}

// Split-K's home ground: one long sequence, one decode token (and one token that is
// skipped, so the workspace row lookup matters), many slices to merge. Lengths just past
// a slice boundary and well inside one, so the last slice is short or long.
TEST(CudaPagedAttention, SplitKOnOneLongSequenceMatchesCpu) {
  KVC_SKIP_WITHOUT_GPU();
  const Heads head_shapes[] = {{32, 8, 128}, {4, 4, 64}, {8, 1, 64}, {24, 2, 32}};
  unsigned seed = 300;
  for (NumberFormat dtype : {NumberFormat::fp32, NumberFormat::fp16})
    for (int block_size : {1, 16, 32})
      for (const Heads& heads : head_shapes)
        for (int length : {4097, 6000}) {
          PagedCase c = make_pool(heads, block_size, dtype, seed++, {length, 40});
          add_queries(c, {{1, 0}, {0, length}});
          SCOPED_TRACE(testing::Message() << "length " << length);
          check_paged(3, c);
          check_paged(2, c);
        }
}

// ---- paged prefill from an offset (chapter 05) ----------------------------------------

// The chunk of `n` tokens at positions start.. of sequence 0 (start + n positions in the
// pool, beside a second sequence whose blocks interleave with its own) against
// cpu::attention_decode_paged per token, which sees positions 0..start+i.
void check_paged_prefill(const Heads& heads, int block_size, NumberFormat dtype, int start, int n,
                         unsigned seed) {
  const PagedCase c = make_pool(heads, block_size, dtype, seed, {start + n, 45});
  const PagedPrefillShape shape{.n_tokens = n,
                                .start = start,
                                .block_size = block_size,
                                .n_heads = heads.n_heads,
                                .n_kv_heads = heads.n_kv_heads,
                                .head_dim = heads.head_dim,
                                .cache_dtype = dtype};
  SCOPED_TRACE(testing::Message() << describe(c) << " start=" << start << " n=" << n);
  const std::size_t dim = std::size_t(heads.n_heads) * heads.head_dim;
  const std::vector<float> q = random_floats(n * dim, seed + 1, -2.0f, 2.0f);
  const std::vector<float> k_seen = test::rounded(c.k_pages, dtype);
  const std::vector<float> v_seen = test::rounded(c.v_pages, dtype);
  const std::vector<int> table(c.block_tables.begin(),
                               c.block_tables.begin() + c.shape.max_blocks_per_seq);
  std::vector<float> expected(q.size());
  for (int i = 0; i < n; ++i) {
    const int length = start + i + 1;
    std::vector<float> scratch(
        cpu::attention_decode_paged_scratch_floats(1, length, heads.n_heads, heads.n_kv_heads));
    cpu::attention_decode_paged(1, expected.data() + i * dim, q.data() + i * dim, k_seen.data(),
                                v_seen.data(), table.data(), length, block_size, heads.n_heads,
                                heads.n_kv_heads, heads.head_dim, scratch.data());
  }

  const DeviceBuffer<float> d_q = to_device(q);
  const DeviceBuffer<std::byte> d_k = upload_as(c.k_pages.data(), c.k_pages.size(), dtype);
  const DeviceBuffer<std::byte> d_v = upload_as(c.v_pages.data(), c.v_pages.size(), dtype);
  const DeviceBuffer<int> d_table = to_device(table);
  for (int variant = kBestVariant; variant <= kPagedPrefillVariants; ++variant) {
    SCOPED_TRACE(testing::Message() << "v" << variant);
    DeviceBuffer<float> d_out = to_device(std::vector<float>(q.size(), kUntouched));
    attention_prefill_paged(variant, d_out.data(), d_q.data(), d_k.data(), d_v.data(),
                            d_table.data(), shape, nullptr);
    test::expect_close(to_host(d_out), expected, 1e-5, 1e-4);
  }
}

TEST(CudaPagedPrefill, ChunksFromAnyStartMatchCpu) {
  KVC_SKIP_WITHOUT_GPU();
  // MHA, GQA 4:1 at head_dim 128, MQA 6:1, a group of 12 (two chunks of 8 heads, the last
  // part empty), head_dim 8, 12 (not a multiple of 32) and 256 (the largest).
  const Heads head_shapes[] = {{4, 4, 64}, {8, 2, 128}, {6, 1, 64}, {24, 2, 32},
                               {8, 4, 8},  {4, 2, 12},  {2, 1, 256}};
  unsigned seed = 500;
  for (NumberFormat dtype : {NumberFormat::fp32, NumberFormat::fp16, NumberFormat::bf16})
    for (int block_size : {1, 16, 32})
      for (const Heads& heads : head_shapes)
        // From the start, inside a block, at a block boundary (of 16 and 32), past a tile.
        for (int start : {0, 37, 64})
          for (int n : {1, 5, 70}) check_paged_prefill(heads, block_size, dtype, start, n, seed++);
}

// Pure host checks, so they run without a GPU too.
TEST(CudaPagedAttention, UnsupportedShapesAreClearErrors) {
  // 12 fp16 values are 24 bytes: no 16-byte vectors, so only v1 (and best = v1) apply.
  const PagedDecodeShape shape{.n_tokens = 2,
                               .block_size = 16,
                               .max_blocks_per_seq = 4,
                               .n_heads = 4,
                               .n_kv_heads = 2,
                               .head_dim = 12,
                               .cache_dtype = NumberFormat::fp16};
  std::string why;
  EXPECT_FALSE(attention_decode_paged_supports(2, shape, &why));
  EXPECT_NE(why.find("paged decode attention v2 needs rows of head_dim * 16 bits to be whole "
                     "16-byte loads"),
            std::string::npos)
      << why;
  EXPECT_TRUE(attention_decode_paged_supports(1, shape, nullptr));
  EXPECT_EQ(attention_decode_paged_best_variant(shape), 1);
  EXPECT_THROW(attention_decode_paged(2, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                      nullptr, shape, nullptr, nullptr),
               kvc::Error);

  EXPECT_FALSE(attention_decode_paged_supports(kPagedDecodeVariants + 1, shape, &why));
  EXPECT_NE(why.find("no paged decode attention variant"), std::string::npos) << why;

  PagedDecodeShape uneven = shape;
  uneven.n_kv_heads = 3;  // does not divide 4 query heads
  EXPECT_THROW(attention_decode_paged_workspace_bytes(1, uneven), kvc::Error);
  PagedDecodeShape no_blocks = shape;
  no_blocks.block_size = 0;
  EXPECT_THROW(attention_decode_paged_best_variant(no_blocks), kvc::Error);
  PagedDecodeShape too_many = shape;
  too_many.attending_tokens = shape.n_tokens + 1;
  EXPECT_THROW(attention_decode_paged_workspace_bytes(1, too_many), kvc::Error);
}

// v1's workspace: a row index per token, then score rows for the attending tokens only.
TEST(CudaPagedAttention, V1WorkspaceCountsAttendingTokens) {
  PagedDecodeShape shape{.n_tokens = 1000,  // e.g. a 998-token prefill chunk and 2 decodes
                         .block_size = 16,
                         .max_blocks_per_seq = 8,
                         .n_heads = 4,
                         .n_kv_heads = 2,
                         .head_dim = 12,
                         .cache_dtype = NumberFormat::fp16,
                         .attending_tokens = 2};
  const std::size_t scores = std::size_t(2) * 4 * 128 * sizeof(float);
  EXPECT_EQ(attention_decode_paged_workspace_bytes(1, shape), 1000 * sizeof(int) + scores);
  EXPECT_EQ(attention_decode_paged_workspace_bytes(kBestVariant, shape),
            1000 * sizeof(int) + scores);
  shape.attending_tokens = -1;  // unknown: every token gets a row
  EXPECT_EQ(attention_decode_paged_workspace_bytes(1, shape), 1000 * sizeof(int) + 500 * scores);
}

TEST(CudaPagedPrefill, BadShapesAreClearErrors) {
  const PagedPrefillShape shape{
      .n_tokens = 4, .start = 10, .block_size = 16, .n_heads = 4, .n_kv_heads = 2, .head_dim = 64};
  std::string why;
  EXPECT_TRUE(attention_prefill_paged_supports(1, shape, nullptr));
  EXPECT_FALSE(attention_prefill_paged_supports(kPagedPrefillVariants + 1, shape, &why));
  EXPECT_NE(why.find("no paged prefill attention variant"), std::string::npos) << why;
  PagedPrefillShape wide = shape;
  wide.head_dim = 320;
  EXPECT_FALSE(attention_prefill_paged_supports(1, wide, &why));
  EXPECT_NE(why.find("head_dim <= 256"), std::string::npos) << why;
  EXPECT_THROW(
      attention_prefill_paged(1, nullptr, nullptr, nullptr, nullptr, nullptr, wide, nullptr),
      kvc::Error);
  PagedPrefillShape before_zero = shape;
  before_zero.start = -1;
  EXPECT_THROW(
      attention_prefill_paged(1, nullptr, nullptr, nullptr, nullptr, nullptr, before_zero, nullptr),
      kvc::Error);
  PagedPrefillShape uneven = shape;
  uneven.n_kv_heads = 3;
  EXPECT_THROW(
      attention_prefill_paged(1, nullptr, nullptr, nullptr, nullptr, nullptr, uneven, nullptr),
      kvc::Error);
}

TEST(CudaPagedAttention, StoreWritesEachTokenToItsSlot) {
  KVC_SKIP_WITHOUT_GPU();
  const int n_kv_heads = 2, head_dim = 64, pool_rows = 4 * 16;
  const std::size_t row_floats = std::size_t(n_kv_heads) * head_dim;
  const std::vector<std::int64_t> slots = {17, 3, 63, 40, 0};
  const int n = static_cast<int>(slots.size());
  const std::vector<float> k = random_floats(n * row_floats, 60);
  const std::vector<float> v = random_floats(n * row_floats, 61);
  std::vector<float> expected_k(pool_rows * row_floats, 0.0f);
  std::vector<float> expected_v(expected_k.size(), 0.0f);
  for (int i = 0; i < n; ++i) {
    std::copy_n(k.begin() + i * row_floats, row_floats, expected_k.begin() + slots[i] * row_floats);
    std::copy_n(v.begin() + i * row_floats, row_floats, expected_v.begin() + slots[i] * row_floats);
  }
  const DeviceBuffer<float> d_k = to_device(k);
  const DeviceBuffer<float> d_v = to_device(v);
  const DeviceBuffer<std::int64_t> d_slots = to_device(slots);
  for (NumberFormat dtype : {NumberFormat::fp32, NumberFormat::fp16, NumberFormat::bf16}) {
    SCOPED_TRACE(format_name(dtype));
    const std::vector<float> zeros(expected_k.size(), 0.0f);
    DeviceBuffer<std::byte> k_pages = upload_as(zeros.data(), zeros.size(), dtype);
    DeviceBuffer<std::byte> v_pages = upload_as(zeros.data(), zeros.size(), dtype);
    paged_kv_store(k_pages.data(), v_pages.data(), dtype, d_k.data(), d_v.data(), d_slots.data(), n,
                   n_kv_heads, head_dim, nullptr);
    EXPECT_TRUE(to_host(k_pages) == convert_from_f32(expected_k.data(), expected_k.size(), dtype));
    EXPECT_TRUE(to_host(v_pages) == convert_from_f32(expected_v.data(), expected_v.size(), dtype));
  }
}

// ---- PagedKVCacheCuda against the CPU PagedKVCache -------------------------------------

// Runs the batch and returns the logits of its logit rows, [rows][vocab].
std::vector<float> run(Engine& engine, KVStrategy& kv, const Batch& batch) {
  const float* logits = engine.forward(batch, kv);
  return std::vector<float>(logits, logits + batch.logit_rows.size() * engine.config().vocab_size);
}

// Feeds `tokens` of sequence `seq` from position `first`; the last token's logits.
std::vector<float> feed(Engine& engine, KVStrategy& kv, int seq, int first,
                        const std::vector<int>& tokens) {
  Batch batch;
  for (std::size_t i = 0; i < tokens.size(); ++i)
    batch.add(tokens[i], seq, first + static_cast<int>(i), i + 1 == tokens.size());
  return run(engine, kv, batch);
}

// The same model and the same pool on both devices, driven step by step.
struct BothDevices {
  BothDevices(std::uint64_t seed, int num_blocks, int block_size)
      : config(find_synthetic_preset("tiny").config),
        model(make_synthetic_model(config, seed)),
        cpu(model, nullptr),
        gpu(model, NumberFormat::fp32),
        cpu_kv(ch04::make_paged_cache(config, cpu.context(), num_blocks, block_size)),
        gpu_kv(ch04::make_paged_cache(config, gpu.context(), num_blocks, block_size)) {}

  // Runs the batch on both and expects the same logits (to fp32 rounding) and block tables.
  void step(const Batch& batch) {
    const auto expected = run(cpu, *cpu_kv, batch);
    test::expect_close(run(gpu, *gpu_kv, batch), expected, 1e-4, 1e-3);
    gpu_kv->blocks().check_invariants();
    for (int seq : batch.seq_ids) {
      EXPECT_EQ(gpu_kv->blocks().table(seq)->blocks, cpu_kv->blocks().table(seq)->blocks)
          << "sequence " << seq;
    }
  }
  void feed_both(int seq, int first, const std::vector<int>& tokens) {
    Batch batch;
    for (std::size_t i = 0; i < tokens.size(); ++i)
      batch.add(tokens[i], seq, first + static_cast<int>(i), i + 1 == tokens.size());
    step(batch);
  }

  ModelConfig config;
  Model model;
  CpuEngine cpu;
  CudaEngine gpu;
  std::unique_ptr<ch04::PagedKVStrategy> cpu_kv, gpu_kv;
};

// A fork shares the prompt's blocks; each branch then writes its own tokens, the shared
// partial block is copied on the first write (on the device, every layer), and both
// branches get the CPU cache's logits, alone and batched together.
TEST(CudaPagedKVCache, ForkAndCopyOnWriteMatchTheCpuCache) {
  KVC_SKIP_WITHOUT_GPU();
  BothDevices both(/*seed=*/5, /*num_blocks=*/16, /*block_size=*/4);
  EXPECT_NE(both.gpu_kv->name().find("cuda"), std::string::npos) << both.gpu_kv->name();
  both.feed_both(0, 0, {1, 300, 301, 302, 303, 304});  // 6 tokens: one full, one partial block
  both.cpu_kv->blocks().fork(0, 1);
  both.gpu_kv->blocks().fork(0, 1);

  both.feed_both(0, 6, {310});  // copies the shared partial block
  both.feed_both(1, 6, {320});
  EXPECT_EQ(both.gpu_kv->blocks().table(0)->blocks[0], both.gpu_kv->blocks().table(1)->blocks[0])
      << "the full block stays shared";
  EXPECT_NE(both.gpu_kv->blocks().table(0)->blocks[1], both.gpu_kv->blocks().table(1)->blocks[1])
      << "the written block was copied";

  // Both branches in one batch, each token wanting logits: a 3-token chunk of sequence 0
  // (into a new block) and a decode token of sequence 1, in one decode launch.
  Batch batch;
  batch.add(311, 0, 7, true);
  batch.add(312, 0, 8, true);
  batch.add(313, 0, 9, true);
  batch.add(321, 1, 7, true);
  both.step(batch);

  // A second fork, of sequence 0's 10 tokens (a shared partial last block), whose copy is
  // made in the middle of a batch that also prefills a new sequence from position 0.
  both.cpu_kv->blocks().fork(0, 2);
  both.gpu_kv->blocks().fork(0, 2);
  Batch mixed;
  mixed.add(330, 2, 10, true);  // copies the shared partial block
  mixed.add(1, 3, 0, true);     // a new sequence: the prefill kernel beside the paged one
  mixed.add(340, 3, 1, true);
  mixed.add(314, 0, 10, true);  // the block is sequence 0's alone again: written in place
  mixed.add(322, 1, 8, true);
  both.step(mixed);
  EXPECT_NE(both.gpu_kv->blocks().table(0)->blocks[2], both.gpu_kv->blocks().table(2)->blocks[2]);

  for (int seq = 0; seq < 4; ++seq) both.gpu_kv->release(seq);
  EXPECT_EQ(both.gpu_kv->blocks().allocator().num_used(), 0);
  EXPECT_EQ(both.gpu_kv->kv_bytes_reserved(), 0u);
  both.gpu_kv->blocks().check_invariants();
}

TEST(CudaPagedKVCache, ExhaustedPoolThrowsAndStaysConsistent) {
  KVC_SKIP_WITHOUT_GPU();
  BothDevices both(/*seed=*/7, /*num_blocks=*/2, /*block_size=*/4);
  ch04::PagedKVStrategy& kv = *both.gpu_kv;
  // No block for a new sequence.
  both.feed_both(0, 0, std::vector<int>(8, 300));  // fills both blocks
  EXPECT_THROW(feed(both.gpu, kv, 1, 0, {1}), ch04::PoolExhausted);
  kv.blocks().check_invariants();
  kv.release(0);
  kv.release(1);
  both.cpu_kv->release(0);
  both.feed_both(1, 0, {1, 300, 301, 302, 303, 304});  // the pool is whole again

  // No block for a copy-on-write: the fork cannot write its shared partial block.
  kv.blocks().fork(1, 2);
  both.cpu_kv->blocks().fork(1, 2);
  EXPECT_THROW(feed(both.gpu, kv, 2, 6, {320}), ch04::PoolExhausted);
  kv.blocks().check_invariants();
  kv.release(1);  // now sequence 2 holds its blocks alone and writes in place
  both.cpu_kv->release(1);
  both.feed_both(2, 6, {320});
}

// NEW (ch07): the pool's layout carries its format. In fp16 or bf16 a block costs half
// the bytes of fp32, the pages hold k, v rounded to the format, and a decode step over
// them gives what the CPU cache gives on rounded k, v.
TEST(CudaPagedKVCache, HalfPrecisionPagesMatchTheCpuCacheOnRoundedKv) {
  KVC_SKIP_WITHOUT_GPU();
  const ModelConfig c = find_synthetic_preset("tiny").config;
  constexpr int kPrompt = 9;
  const std::size_t n = kPrompt + 1, dim = c.dim, kv_dim = c.kv_dim();
  const std::vector<float> q = random_floats(n * dim, 70);
  const std::vector<float> k = random_floats(n * kv_dim, 71);
  const std::vector<float> v = random_floats(n * kv_dim, 72);
  Batch prompt, decode;
  for (int p = 0; p < kPrompt; ++p) prompt.add(0, 0, p, false);
  decode.add(0, 0, kPrompt, true);
  CudaContext context;
  for (NumberFormat format : {NumberFormat::fp16, NumberFormat::bf16}) {
    SCOPED_TRACE(format_name(format));
    ch04::PagedKVCacheCuda gpu_kv(c, 8, 4, context, format);
    ch04::PagedKVCache cpu_kv(c, 8, 4, nullptr);
    EXPECT_EQ(gpu_kv.layout().dtype.format, format);
    EXPECT_EQ(2 * gpu_kv.layout().kv_bytes_per_block(), cpu_kv.layout().kv_bytes_per_block());

    const std::vector<float> k_rounded = test::rounded(k, format);
    const std::vector<float> v_rounded = test::rounded(v, format);
    std::vector<float> expected(n * dim);
    cpu_kv.reserve(prompt);
    cpu_kv.attend(0, prompt, q.data(), k_rounded.data(), v_rounded.data(), expected.data());
    cpu_kv.reserve(decode);
    cpu_kv.attend(0, decode, &q[kPrompt * dim], &k_rounded[kPrompt * kv_dim],
                  &v_rounded[kPrompt * kv_dim], &expected[kPrompt * dim]);

    const DeviceBuffer<float> d_q = to_device(q), d_k = to_device(k), d_v = to_device(v);
    DeviceBuffer<float> d_out(n * dim);
    gpu_kv.reserve(prompt);
    gpu_kv.attend(0, prompt, d_q.data(), d_k.data(), d_v.data(), d_out.data());
    gpu_kv.reserve(decode);
    gpu_kv.attend(0, decode, d_q.data() + kPrompt * dim, d_k.data() + kPrompt * kv_dim,
                  d_v.data() + kPrompt * kv_dim, d_out.data() + kPrompt * dim);
    context.synchronize();
    const std::vector<float> out = to_host(d_out);
    test::expect_close(std::vector<float>(out.begin() + kPrompt * dim, out.end()),
                       std::vector<float>(expected.begin() + kPrompt * dim, expected.end()), 1e-4,
                       1e-3);
  }
  EXPECT_THROW(ch04::PagedKVCacheCuda(c, 8, 4, context, NumberFormat::int8), kvc::Error);
}

}  // namespace
}  // namespace kvc::cuda
