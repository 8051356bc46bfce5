// The number formats the course stores values in, on either device: one
// host-side list (no CUDA headers) read by the weights (--weights-dtype), the
// KV caches (--kv-dtype, common/kv_dtype.hpp adds their scales), the kernels
// of both devices and the byte counts.
//
//   format     bits  stored as                          --*-dtype spelling
//   fp32        32   the value                          fp32
//   fp16        16   the value, IEEE binary16           fp16
//   bf16        16   the value, top half of an fp32     bf16
//   int8         8   a code, times a scale              int8
//   fp8_e4m3     8   a code (E4M3, max 448), x scale    fp8
//   int4         4   a code, two a byte, x scale        int4
//
// Conversions here round to nearest even, bit for bit as the GPU's
// __float2half_rn and __float2bfloat16_rn do, so a CPU reference sees the
// values a kernel reading that storage sees.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kvc {

enum class NumberFormat { fp32, fp16, bf16, int8, fp8_e4m3, int4 };

int format_bits(NumberFormat format);          // 32, 16, 16, 8, 8, 4
const char* format_name(NumberFormat format);  // the spelling in the table above
// fp32, fp16, bf16: the values are the numbers themselves (no scales, whole bytes).
bool is_float_format(NumberFormat format);
// Bytes of one value of a float format: 4, 2, 2. Throws kvc::Error for a scaled format.
std::size_t float_format_bytes(NumberFormat format);

// The spellings of the float formats, in the table's order: what a flag that
// stores plain values accepts (CLI11's IsMember takes this list).
std::vector<std::string> float_format_names();

// The float format called `name` (fp32, fp16 or bf16), for a flag that stores
// plain values (--weights-dtype, a GPU cache): `flag` names it in the error.
// Throws kvc::Error for anything else, a known scaled format included.
NumberFormat parse_float_format(const std::string& name, const std::string& flag);

// ---- host conversions, round to nearest even ---------------------------------------
// fp16 (IEEE binary16): overflow -> inf, NaN -> quiet NaN, like __float2half_rn.
std::uint16_t fp16_from_float(float x);
float fp16_to_float(std::uint16_t h);
// bf16: the top 16 bits of a float, rounded, like __float2bfloat16_rn.
std::uint16_t bf16_from_float(float x);
inline float bf16_to_float(std::uint16_t h) {
  return std::bit_cast<float>(std::uint32_t(h) << 16);
}
// FP8 E4M3 (OCP FP8, NVIDIA's __nv_fp8_e4m3): bias 7, no infinities, max 448,
// NaN = S.1111.111. Saturating like __nv_cvt_float_to_fp8(x, __NV_SATFINITE,
// __NV_E4M3): |x| beyond 448 (inf included) gives +-448, NaN gives 0x7F.
std::uint8_t fp8_e4m3_from_float(float x);
float fp8_e4m3_to_float(std::uint8_t code);

// What a float becomes after a round trip through a float format.
float round_to_format(float value, NumberFormat format);
// `count` floats stored in a float format, as raw bytes (count * float_format_bytes).
std::vector<std::byte> convert_from_f32(const float* values, std::size_t count,
                                        NumberFormat format);

}  // namespace kvc
