#include "chapters/03_gqa/gqa_convert.hpp"

#include <algorithm>
#include <cstddef>
#include <span>
#include <sstream>

#include "chapters/03_gqa/gqa_kv_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch03 {
namespace {

void copy_tensor(const float* from, Model& to_model, const float* to, std::size_t count) {
  std::ranges::copy(std::span(from, count), writable(to_model, to, count).begin());
}

// Where one layer's wk or wv is, and its shape: [n_kv_heads][head_dim][dim].
struct Projection {
  std::span<const float> weights;
  int n_kv_heads;
};

// `in` regrouped into out.size() / head_floats heads, by the rules in the header.
void regroup(const Projection& in, std::span<float> out, int n_heads, int head_dim, int dim) {
  const std::size_t head_floats = static_cast<std::size_t>(head_dim) * dim;
  const int out_heads = static_cast<int>(out.size() / head_floats);
  if (out_heads % in.n_kv_heads == 0) {
    // Un-share: new head j serves query heads that all read old head j / copies.
    const int copies = out_heads / in.n_kv_heads;
    for (int j = 0; j < out_heads; ++j) {
      std::ranges::copy(in.weights.subspan((j / copies) * head_floats, head_floats),
                        out.begin() + j * head_floats);
    }
  } else if (in.n_kv_heads % out_heads == 0) {
    mean_pool_kv_heads(in.weights.data(), out.data(), in.n_kv_heads, out_heads, head_dim, dim);
  } else {
    std::vector<float> mha(n_heads * head_floats);
    regroup(in, mha, n_heads, head_dim, dim);
    regroup({mha, n_heads}, out, n_heads, head_dim, dim);
  }
}

std::string join(const std::vector<int>& values) {
  std::ostringstream s;
  for (std::size_t i = 0; i < values.size(); ++i) s << (i ? ", " : "") << values[i];
  return s.str();
}

}  // namespace

std::vector<int> valid_kv_head_counts(int n_heads) {
  std::vector<int> counts;
  for (int n = n_heads; n >= 1; --n) {
    if (n_heads % n == 0) counts.push_back(n);
  }
  return counts;
}

Model convert_kv_heads(const Model& in, int new_n_kv_heads) {
  const ModelConfig& c = in.config;
  KVC_CHECK(new_n_kv_heads >= 1 && c.n_heads % new_n_kv_heads == 0, "cannot convert to ",
            new_n_kv_heads, " KV heads: the count must divide the model's ", c.n_heads,
            " query heads (", join(valid_kv_head_counts(c.n_heads)), ")");
  ModelConfig out_config = c;
  out_config.n_kv_heads = new_n_kv_heads;
  Model out = make_model(out_config);

  const std::size_t d = c.dim, h = c.hidden_dim, vocab = c.vocab_size;
  copy_tensor(in.token_embedding, out, out.token_embedding, vocab * d);
  if (!c.shared_classifier) copy_tensor(in.classifier, out, out.classifier, vocab * d);
  copy_tensor(in.rms_final, out, out.rms_final, d);
  const std::size_t in_kv = static_cast<std::size_t>(c.kv_dim()) * d;
  const std::size_t out_kv = static_cast<std::size_t>(out_config.kv_dim()) * d;
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& from = in.layers[l];
    const LayerWeights& to = out.layers[l];
    copy_tensor(from.rms_att, out, to.rms_att, d);
    copy_tensor(from.wq, out, to.wq, d * d);
    copy_tensor(from.wo, out, to.wo, d * d);
    copy_tensor(from.rms_ffn, out, to.rms_ffn, d);
    copy_tensor(from.w1, out, to.w1, h * d);
    copy_tensor(from.w2, out, to.w2, d * h);
    copy_tensor(from.w3, out, to.w3, h * d);
    regroup({{from.wk, in_kv}, c.n_kv_heads}, writable(out, to.wk, out_kv), c.n_heads, c.head_dim(),
            c.dim);
    regroup({{from.wv, in_kv}, c.n_kv_heads}, writable(out, to.wv, out_kv), c.n_heads, c.head_dim(),
            c.dim);
  }
  return out;
}

}  // namespace kvc::ch03
