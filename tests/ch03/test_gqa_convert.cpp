// Chapter 03: converting checkpoints between MHA, GQA and MQA.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "chapters/03_gqa/gqa_convert.hpp"
#include "common/check.hpp"
#include "common/thread_pool.hpp"
#include "engine/forward.hpp"
#include "engine/generate.hpp"
#include "tests/support/test_support.hpp"
#include "tools/synthetic_model.hpp"

namespace kvc::ch03 {
namespace {

// One layer, head_dim 2, small enough to write the K/V rows by hand. Every
// other weight gets a distinct value, so a tensor copied to the wrong place shows.
Model hand_made_model(int n_heads, int n_kv_heads) {
  ModelConfig c;
  c.dim = 2 * n_heads;
  c.hidden_dim = 4;
  c.n_layers = 1;
  c.n_heads = n_heads;
  c.n_kv_heads = n_kv_heads;
  c.vocab_size = 8;
  c.seq_len = 4;
  Model m = make_model(c);
  for (std::size_t i = 0; i < m.storage.size(); ++i) m.storage[i] = 0.001f * static_cast<float>(i);
  return m;
}

std::span<float> tensor(Model& m, const float* t, std::size_t count) {
  return std::span<float>(m.storage).subspan(t - m.storage.data(), count);
}

// Sets every row of KV head h of wk to k_values[h] and of wv to v_values[h].
void set_heads(Model& m, const std::vector<float>& k_values, const std::vector<float>& v_values) {
  const std::size_t head_floats = 2 * m.config.dim;
  for (std::size_t h = 0; h < k_values.size(); ++h) {
    for (float& x : tensor(m, m.layers[0].wk, m.config.kv_dim() * m.config.dim)
                        .subspan(h * head_floats, head_floats)) {
      x = k_values[h];
    }
    for (float& x : tensor(m, m.layers[0].wv, m.config.kv_dim() * m.config.dim)
                        .subspan(h * head_floats, head_floats)) {
      x = v_values[h];
    }
  }
}

// The value of every row of each KV head, or NaN for a head that is not constant.
std::vector<float> head_values(const Model& m, const float* projection) {
  const std::size_t head_floats = 2 * m.config.dim;
  std::vector<float> values;
  for (int h = 0; h < m.config.n_kv_heads; ++h) {
    const float* head = projection + h * head_floats;
    bool constant = true;
    for (std::size_t i = 0; i < head_floats; ++i) constant = constant && head[i] == head[0];
    values.push_back(constant ? head[0] : std::numeric_limits<float>::quiet_NaN());
  }
  return values;
}

bool same_floats(const float* a, const float* b, std::size_t count) {
  return std::memcmp(a, b, count * sizeof(float)) == 0;
}

void expect_all_but_kv_unchanged(const Model& in, const Model& out) {
  const ModelConfig& c = in.config;
  const std::size_t d = c.dim, h = c.hidden_dim, vocab = c.vocab_size;
  EXPECT_TRUE(same_floats(in.token_embedding, out.token_embedding, vocab * d));
  EXPECT_TRUE(same_floats(in.classifier, out.classifier, vocab * d));
  EXPECT_TRUE(same_floats(in.rms_final, out.rms_final, d));
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights &a = in.layers[l], &b = out.layers[l];
    EXPECT_TRUE(same_floats(a.rms_att, b.rms_att, d)) << l;
    EXPECT_TRUE(same_floats(a.wq, b.wq, d * d)) << l;
    EXPECT_TRUE(same_floats(a.wo, b.wo, d * d)) << l;
    EXPECT_TRUE(same_floats(a.rms_ffn, b.rms_ffn, d)) << l;
    EXPECT_TRUE(same_floats(a.w1, b.w1, h * d)) << l;
    EXPECT_TRUE(same_floats(a.w2, b.w2, d * h)) << l;
    EXPECT_TRUE(same_floats(a.w3, b.w3, h * d)) << l;
  }
}

TEST(Ch03ConvertKvHeads, MeanPoolsHandWrittenRowsIntoMqa) {
  Model mha = hand_made_model(/*n_heads=*/2, /*n_kv_heads=*/2);  // wk, wv: [2 heads][2][4]
  const std::vector<float> wk = {1, 2, 3, 4, 5, 6, 7, 8, 3, 4, 5, 6, 9, 10, 11, 12};
  const std::vector<float> wv = {0, 0, 0, 0, 1, 1, 1, 1, 2, 4, 6, 8, -1, -3, -5, -7};
  std::ranges::copy(wk, tensor(mha, mha.layers[0].wk, wk.size()).begin());
  std::ranges::copy(wv, tensor(mha, mha.layers[0].wv, wv.size()).begin());

  const Model mqa = convert_kv_heads(mha, 1);
  EXPECT_EQ(mqa.config.n_kv_heads, 1);
  EXPECT_EQ(std::vector<float>(mqa.layers[0].wk, mqa.layers[0].wk + 8),
            (std::vector<float>{2, 3, 4, 5, 7, 8, 9, 10}));
  EXPECT_EQ(std::vector<float>(mqa.layers[0].wv, mqa.layers[0].wv + 8),
            (std::vector<float>{1, 2, 3, 4, 0, -1, -2, -3}));
  expect_all_but_kv_unchanged(mha, mqa);
}

TEST(Ch03ConvertKvHeads, PoolsConsecutiveHeadsIntoGroups) {
  Model mha = hand_made_model(4, 4);
  set_heads(mha, {1, 2, 3, 4}, {10, 20, 30, 40});
  const Model gqa = convert_kv_heads(mha, 2);  // query heads {0, 1} and {2, 3}
  EXPECT_EQ(head_values(gqa, gqa.layers[0].wk), (std::vector<float>{1.5f, 3.5f}));
  EXPECT_EQ(head_values(gqa, gqa.layers[0].wv), (std::vector<float>{15, 35}));
  expect_all_but_kv_unchanged(mha, gqa);
}

TEST(Ch03ConvertKvHeads, UnsharingCopiesEachHeadForItsQueryHeads) {
  Model gqa = hand_made_model(4, 2);
  set_heads(gqa, {1, 2}, {-1, -2});
  const Model mha = convert_kv_heads(gqa, 4);
  EXPECT_EQ(head_values(mha, mha.layers[0].wk), (std::vector<float>{1, 1, 2, 2}));
  EXPECT_EQ(head_values(mha, mha.layers[0].wv), (std::vector<float>{-1, -1, -2, -2}));
  expect_all_but_kv_unchanged(gqa, mha);
}

TEST(Ch03ConvertKvHeads, CountsThatDoNotDivideEachOtherGoThroughMha) {
  // 12 query heads: old head h serves query heads 3h..3h+2, new head j serves 4j..4j+3.
  Model gqa = hand_made_model(12, 4);
  set_heads(gqa, {1, 2, 3, 4}, {4, 8, 12, 16});
  const Model three = convert_kv_heads(gqa, 3);
  EXPECT_EQ(head_values(three, three.layers[0].wk), (std::vector<float>{1.25f, 2.5f, 3.75f}));
  EXPECT_EQ(head_values(three, three.layers[0].wv), (std::vector<float>{5, 10, 15}));
}

TEST(Ch03ConvertKvHeads, SameCountIsTheIdentity) {
  const Model model = make_synthetic_model(find_synthetic_preset("tiny").config, /*seed=*/5);
  const Model same = convert_kv_heads(model, model.config.n_kv_heads);
  EXPECT_EQ(describe(same.config), describe(model.config));
  EXPECT_EQ(same.config.shared_classifier, model.config.shared_classifier);
  EXPECT_EQ(same.storage, model.storage);
}

TEST(Ch03ConvertKvHeads, UnshareThenPoolGivesBackTheOriginalBytes) {
  const Model model = make_synthetic_model(find_synthetic_preset("tiny").config, /*seed=*/6);
  const Model mha = convert_kv_heads(model, model.config.n_heads);
  EXPECT_EQ(mha.config.n_kv_heads, model.config.n_heads);
  EXPECT_EQ(convert_kv_heads(mha, model.config.n_kv_heads).storage, model.storage);
}

TEST(Ch03ConvertKvHeads, RejectsCountsThatDoNotDivideTheQueryHeads) {
  const Model model = hand_made_model(8, 4);
  for (int bad : {0, -2, 3, 5, 16}) {
    EXPECT_THROW(convert_kv_heads(model, bad), Error) << bad;
  }
  try {
    convert_kv_heads(model, 3);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("8 query heads (8, 4, 2, 1)"), std::string::npos)
        << e.what();
  }
}

TEST(Ch03ConvertKvHeads, ValidCountsAreTheDivisorsLargestFirst) {
  EXPECT_EQ(valid_kv_head_counts(8), (std::vector<int>{8, 4, 2, 1}));
  EXPECT_EQ(valid_kv_head_counts(12), (std::vector<int>{12, 6, 4, 3, 2, 1}));
  EXPECT_EQ(valid_kv_head_counts(1), (std::vector<int>{1}));
}

// ---- un-sharing keeps the model's function ------------------------------------

class UnsharedModel : public ::testing::Test {
 protected:
  ThreadPool pool_{2};

  std::vector<int> greedy_tokens(const Model& model, const Tokenizer& tokenizer,
                                 const std::string& prompt, int steps) {
    CpuEngine engine(model, &pool_);
    auto kv = ch02::make_strategy(model.config, engine.context());
    return generate(engine, tokenizer, *kv, {prompt, steps, {0.0f, 0.9f, 1}}).tokens;
  }

  // Logits of every position of `tokens`, one batch.
  std::vector<float> all_logits(const Model& model, const std::vector<int>& tokens) {
    Batch batch;
    for (std::size_t p = 0; p < tokens.size(); ++p) batch.add(tokens[p], 0, int(p), true);
    CpuEngine engine(model, &pool_);
    auto kv = ch02::make_strategy(model.config, engine.context());
    Activations acts;
    forward(model, batch, *kv, acts, &pool_);
    return acts.logits;
  }
};

TEST_F(UnsharedModel, SyntheticModelGivesTheSameLogitsAndTokens) {
  const ModelConfig config = find_synthetic_preset("tiny").config;
  const Model gqa = make_synthetic_model(config, /*seed=*/9);
  const Model mha = convert_kv_heads(gqa, config.n_heads);
  const Tokenizer tokenizer = make_synthetic_tokenizer(config.vocab_size);
  const auto tokens = greedy_tokens(gqa, tokenizer, "Once upon a time", 64);
  EXPECT_EQ(greedy_tokens(mha, tokenizer, "Once upon a time", 64), tokens);
  EXPECT_EQ(all_logits(mha, tokens), all_logits(gqa, tokens));  // bit for bit
}

TEST_F(UnsharedModel, Stories260KGivesTheSameGreedyTokens) {
  const auto real = testing::load_real_model();
  const Model& gqa = real.model;
  const Model mha = convert_kv_heads(gqa, gqa.config.n_heads);
  const Tokenizer& tokenizer = real.tokenizer;
  for (const std::string prompt : {"", "Lily and Tom went to the beach", "The cat"}) {
    const auto tokens = greedy_tokens(gqa, tokenizer, prompt, 256);
    EXPECT_GT(tokens.size(), 100u);
    EXPECT_EQ(greedy_tokens(mha, tokenizer, prompt, 256), tokens) << prompt;
  }
}

}  // namespace
}  // namespace kvc::ch03
