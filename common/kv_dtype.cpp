#include "common/kv_dtype.hpp"

#include <array>

#include "common/check.hpp"
#include "common/checked_math.hpp"

namespace kvc {

namespace {

constexpr std::array<const char*, 7> kNames = {"fp32", "fp16",       "bf16", "int8",
                                               "fp8",  "int4-token", "int4"};

// Every KV size below is 64-bit; a product or sum that does not fit is an error.
std::int64_t checked_mul(std::int64_t a, std::int64_t b) {
  return kvc::checked_mul(a, b, "the KV size");
}

std::int64_t checked_add(std::int64_t a, std::int64_t b) {
  return kvc::checked_add(a, b, "the KV size");
}

void check_shape(const KvPoolShape& s) {
  KVC_CHECK(s.n_layers > 0 && s.n_kv_heads > 0 && s.head_dim > 0 && s.block_size > 0,
            "KV pool shape needs positive layers, KV heads, head_dim and block size (got ",
            s.n_layers, ", ", s.n_kv_heads, ", ", s.head_dim, ", ", s.block_size, ")");
}

}  // namespace

std::string KvDtype::name() const {
  if (format == NumberFormat::int4 && key_scales != ScaleLayout::per_channel) return "int4-token";
  return format_name(format);
}

std::span<const char* const> kv_dtype_names() {
  return kNames;
}

KvDtype parse_kv_dtype(const std::string& name, int head_dim, int group_size) {
  KVC_CHECK(head_dim > 0, "KV dtype: head_dim must be positive, got ", head_dim);
  KVC_CHECK(group_size == 0 || name.starts_with("int4"),
            "--kv-group-size applies to int4 only, not ", name);
  const auto same_scales = [](NumberFormat format, ScaleLayout scales) {
    return KvDtype{format, scales, scales, 0};
  };
  if (name == "fp32") return same_scales(NumberFormat::fp32, ScaleLayout::none);
  if (name == "fp16") return same_scales(NumberFormat::fp16, ScaleLayout::none);
  if (name == "bf16") return same_scales(NumberFormat::bf16, ScaleLayout::none);
  if (name == "int8") return same_scales(NumberFormat::int8, ScaleLayout::per_token_head);
  if (name == "fp8") return same_scales(NumberFormat::fp8_e4m3, ScaleLayout::per_token_head);
  if (name == "int4" || name == "int4-token") {
    const int group = group_size > 0 ? group_size : (head_dim < 32 ? head_dim : 32);
    KVC_CHECK(group_size >= 0, "--kv-group-size must be positive, got ", group_size);
    KVC_CHECK(head_dim % group == 0 && group % 2 == 0, "--kv-group-size ", group,
              " must be even and divide head_dim ", head_dim, " (int4 packs two values a byte)");
    const ScaleLayout keys =
        name == "int4" ? ScaleLayout::per_channel : ScaleLayout::per_token_group;
    return KvDtype{NumberFormat::int4, keys, ScaleLayout::per_token_group, group};
  }
  KVC_FAIL("unknown KV dtype '", name,
           "' (expected fp32, fp16, bf16, int8, fp8, int4-token or int4)");
}

std::int64_t kv_row_bytes(const KvDtype& dtype, int head_dim) {
  return checked_mul(head_dim, dtype.bits()) / 8;
}

std::int64_t kv_scale_floats_per_block(ScaleLayout layout, const KvDtype& dtype,
                                       const KvPoolShape& s) {
  check_shape(s);
  const std::int64_t heads = s.n_kv_heads;
  switch (layout) {
    case ScaleLayout::none:
      return 0;
    case ScaleLayout::per_token_head:
      return checked_mul(s.block_size, heads);
    case ScaleLayout::per_token_group:
      return checked_mul(checked_mul(s.block_size, heads), s.head_dim / dtype.group_size);
    case ScaleLayout::per_channel:
      return checked_mul(heads, s.head_dim);
  }
  KVC_FAIL("unknown ScaleLayout ", static_cast<int>(layout));
}

std::int64_t kv_bytes_per_block(const KvDtype& dtype, const KvPoolShape& s) {
  check_shape(s);
  const std::int64_t values_one_side =
      checked_mul(checked_mul(s.block_size, s.n_kv_heads), kv_row_bytes(dtype, s.head_dim));
  const std::int64_t scale_floats =
      checked_add(kv_scale_floats_per_block(dtype.key_scales, dtype, s),
                  kv_scale_floats_per_block(dtype.value_scales, dtype, s));
  const std::int64_t per_layer =
      checked_add(checked_mul(2, values_one_side), checked_mul(scale_floats, 4));
  return checked_mul(per_layer, s.n_layers);
}

double kv_bytes_per_token(const KvDtype& dtype, const KvPoolShape& shape) {
  return static_cast<double>(kv_bytes_per_block(dtype, shape)) / shape.block_size;
}

}  // namespace kvc
