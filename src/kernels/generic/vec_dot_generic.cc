// Scalar reference kernels: always built, used when no SIMD path applies and as the oracle the
// SIMD paths are tested against. Each quantized dot product decodes a weight block into int8
// values with per-sub-block scale/min (decode.h) and takes exact integer sums against the paired
// activation's int8 values, as ggml's *_generic vec_dots do (ggml-cpu/quants.c at d99724f2).
#include <cstring>

#include "kernels/generic/decode.h"
#include "kernels/kernel_table.h"
#include "quant/blocks.h"
#include "quant/float_convert.h"

namespace insitu {
namespace {

// The int8 values, scale and value-sum (scale * sum of values) of sub-block `s` of an activation
// row in the paired format.
struct ActSub {
  const int8_t* q;
  float scale;
  float sum;
};

ActSub act_sub(QuantType act, const void* a, int64_t s, int sub) {
  if (act == QuantType::kQ8K) {
    const auto& b = static_cast<const BlockQ8K*>(a)[s * sub / kQK_K];
    const int off = static_cast<int>((s * sub) % kQK_K);
    int bs = 0;
    for (int g = off / 16; g < (off + sub) / 16; ++g) bs += b.bsums[g];
    return {b.qs + off, b.d, b.d * static_cast<float>(bs)};
  }
  if (act == QuantType::kQ8_1) {
    const auto& b = static_cast<const BlockQ8_1*>(a)[s];
    return {b.qs, fp16_to_fp32(b.d), fp16_to_fp32(b.s)};
  }
  const auto& b = static_cast<const BlockQ8_0*>(a)[s];
  int bs = 0;
  for (int i = 0; i < 32; ++i) bs += b.qs[i];
  const float d = fp16_to_fp32(b.d);
  return {b.qs, d, d * static_cast<float>(bs)};
}

template <QuantType kType>
float vec_dot_decoded(int64_t n, const void* w, const void* a) {
  static const DecodeInfo& info = *decode_info(kType);
  const auto* wb = static_cast<const uint8_t*>(w);
  const int subs = info.block / info.sub;
  int8_t v[256];
  float scale[16], min[16];
  float sum = 0.0f;
  for (int64_t b = 0; b < n / info.block; ++b) {
    info.decode(wb + b * info.block_bytes, v, scale, min);
    for (int j = 0; j < subs; ++j) {
      const ActSub as = act_sub(info.act, a, b * subs + j, info.sub);
      int32_t isum = 0;
      for (int i = 0; i < info.sub; ++i) isum += v[j * info.sub + i] * as.q[i];
      sum += scale[j] * as.scale * static_cast<float>(isum);
      if (info.has_min) sum += min[j] * as.sum;
    }
  }
  return sum;
}

float vec_dot_f32(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const float*>(w);
  const auto* y = static_cast<const float*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

float vec_dot_f16(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const float*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += fp16_to_fp32(x[i]) * y[i];
  return sum;
}

float vec_dot_bf16(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const float*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += bf16_to_fp32(x[i]) * y[i];
  return sum;
}

template <QuantType kType>
void set_decoded(KernelTable& t) {
  t.vec_dot[type_slot(kType)] = vec_dot_decoded<kType>;
  t.decode[type_slot(kType)] = decode_info(kType)->decode;
}

template <QuantType... kTypes>
void set_all_decoded(KernelTable& t) {
  (set_decoded<kTypes>(t), ...);
}

}  // namespace

void fill_generic_kernels(KernelTable& t) {
  t.isa = Isa::kGeneric;
  t.vec_dot[type_slot(QuantType::kF32)] = vec_dot_f32;
  t.vec_dot[type_slot(QuantType::kF16)] = vec_dot_f16;
  t.vec_dot[type_slot(QuantType::kBF16)] = vec_dot_bf16;
  set_decoded<QuantType::kQ4_0>(t);
  set_decoded<QuantType::kQ4_1>(t);
  set_decoded<QuantType::kQ5_0>(t);
  set_decoded<QuantType::kQ5_1>(t);
  set_decoded<QuantType::kQ8_0>(t);
  set_decoded<QuantType::kIQ4_NL>(t);
  set_decoded<QuantType::kMXFP4>(t);
  set_decoded<QuantType::kF8Q8>(t);
  set_decoded<QuantType::kQ2K>(t);
  set_decoded<QuantType::kQ3K>(t);
  set_decoded<QuantType::kQ4K>(t);
  set_decoded<QuantType::kQ5K>(t);
  set_decoded<QuantType::kQ6K>(t);
  set_decoded<QuantType::kIQ4_XS>(t);
  set_decoded<QuantType::kTQ2_0>(t);
  set_decoded<QuantType::kIQ1_S>(t);
  set_decoded<QuantType::kIQ1_M>(t);
  set_decoded<QuantType::kIQ2_XXS>(t);
  set_decoded<QuantType::kIQ2_XS>(t);
  set_decoded<QuantType::kIQ2_S>(t);
  set_decoded<QuantType::kIQ3_XXS>(t);
  set_decoded<QuantType::kIQ3_S>(t);
  set_decoded<QuantType::kTQ1_0>(t);
  {
    using Q = QuantType;  // the group-affine formats (kernels/generic/decode_group_affine.h)
    set_all_decoded<Q::kHQQ2, Q::kHQQ3, Q::kHQQ4, Q::kHQQ8, Q::kAFQ2, Q::kAFQ3, Q::kAFQ4, Q::kAFQ6,
                    Q::kAFQ8, Q::kAFQ2_G32, Q::kAFQ3_G32, Q::kAFQ4_G32, Q::kAFQ6_G32, Q::kAFQ8_G32,
                    Q::kAFQ2_G128, Q::kAFQ3_G128, Q::kAFQ4_G128, Q::kAFQ6_G128, Q::kAFQ8_G128>(t);
  }
  t.quantize_act[type_slot(QuantType::kQ8_0)] = quantize_act_q8_0_ref;
  t.quantize_act[type_slot(QuantType::kQ8_1)] = quantize_act_q8_1_ref;
  t.quantize_act[type_slot(QuantType::kQ8K)] = quantize_act_q8_k_ref;
  t.panel_gemm = nullptr;
}

}  // namespace insitu
