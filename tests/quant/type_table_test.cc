// The run-time type table's policy columns (quant/type_traits.h): walks every row and checks that
// the columns agree with each other and with the formats, so a row added or edited later cannot
// promote to a type ISQ cannot write, fall back to a block that fits fewer rows, or reuse a UQFF or
// llama.cpp code.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "insitu/quant_type.h"
#include "io/uqff.h"
#include "quant/fp8.h"
#include "quant/group_affine.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

using Q = QuantType;

bool is_float(QuantType t) { return t == Q::kF32 || t == Q::kF16 || t == Q::kBF16; }

// kLast*QuantType bound the enum from above; the kernels size their per-type arrays from them.
TEST(TypeTable, LastTypeIdsAreTheLargestInTheTable) {
  uint32_t last_ggml = 0, last = 0;
  for (const TypeTraits& t : all_type_traits()) {
    const auto id = static_cast<uint32_t>(t.type);
    if (id < kFirstInsituTypeId) last_ggml = std::max(last_ggml, id);
    last = std::max(last, id);
  }
  EXPECT_EQ(last_ggml, static_cast<uint32_t>(kLastGgmlQuantType));
  EXPECT_EQ(last, static_cast<uint32_t>(kLastQuantType));
}

// ISQ writes only what it can also read back: a float or quantized weight format with both a
// quantizer and a dequantizer. Integers and q8_k (an activation format) are not targets.
TEST(TypeTable, IsqTargetsCanBeQuantizedAndDequantized) {
  int targets = 0;
  for (const TypeTraits& t : all_type_traits()) {
    if (!t.isq_target) continue;
    ++targets;
    EXPECT_TRUE(t.is_quantized || is_float(t.type)) << t.name;
    EXPECT_TRUE(quant_type_can_quantize(t.type)) << t.name;
    EXPECT_TRUE(quant_type_can_dequantize(t.type)) << t.name;
  }
  EXPECT_GT(targets, 40);
  for (Q t : {Q::kI8, Q::kI16, Q::kI32, Q::kI64, Q::kF64, Q::kQ8K})
    EXPECT_FALSE(type_traits(t).isq_target) << quant_type_name(t);
}

// Promotion never lowers the quality tier (q8_1 -> q8_0 drops a scale but stays near-lossless),
// and what it promotes to ISQ can write.
TEST(TypeTable, PromotionTargetsAreIsqTargetsOfNoWorseTier) {
  for (const TypeTraits& t : all_type_traits()) {
    const TypeTraits& p = type_traits(t.isq_promoted);
    if (!t.isq_target) {
      if (!t.is_quantized) {
        EXPECT_EQ(p.type, t.type) << t.name;  // integers stay as they are
      }
      continue;
    }
    EXPECT_TRUE(p.isq_target) << t.name << " -> " << p.name;
    EXPECT_LE(p.quality_tier, t.quality_tier) << t.name << " -> " << p.name;
    if (is_float(t.type)) {
      EXPECT_EQ(p.type, t.type) << t.name;
    }
    // A group-affine type is promoted within its family (HQQ to hqq8, AFQ keeping its groups).
    if (const GroupAffineFormat* f = group_affine_format(t.type)) {
      const GroupAffineFormat* pf = group_affine_format(p.type);
      ASSERT_NE(pf, nullptr) << t.name << " -> " << p.name;
      EXPECT_EQ(pf->header, f->header) << t.name;
      if (f->header == AffineHeader::kAfq) {
        EXPECT_EQ(pf->group, f->group) << t.name;
      }
    }
  }
}

// A fallback accepts every row the type accepts and more: its block strictly divides the type's.
// Types with 1-element blocks never need one and name themselves.
TEST(TypeTable, RowFallbacksHaveSmallerBlocksThatDivideTheTypes) {
  for (const TypeTraits& t : all_type_traits()) {
    const TypeTraits& f = type_traits(t.row_fallback);
    if (t.block_size == 1) {
      EXPECT_EQ(f.type, t.type) << t.name;
      continue;
    }
    EXPECT_LT(f.block_size, t.block_size) << t.name << " -> " << f.name;
    EXPECT_EQ(t.block_size % f.block_size, 0) << t.name << " -> " << f.name;
    if (t.isq_target) {
      EXPECT_TRUE(f.isq_target) << t.name << " -> " << f.name;
    }
  }
}

// The llama_ftype values of llama.cpp's include/llama.h (enum llama_ftype), spelled out here so the
// table is checked against llama.cpp rather than against itself. K-quants give their _S variant.
TEST(TypeTable, FileTypesAreLlamaCppValues) {
  const std::map<Q, uint32_t> llama_h = {
      {Q::kF32, 0},       // LLAMA_FTYPE_ALL_F32
      {Q::kF16, 1},       // LLAMA_FTYPE_MOSTLY_F16
      {Q::kQ4_0, 2},      // LLAMA_FTYPE_MOSTLY_Q4_0
      {Q::kQ4_1, 3},      // LLAMA_FTYPE_MOSTLY_Q4_1
      {Q::kQ8_0, 7},      // LLAMA_FTYPE_MOSTLY_Q8_0
      {Q::kQ5_0, 8},      // LLAMA_FTYPE_MOSTLY_Q5_0
      {Q::kQ5_1, 9},      // LLAMA_FTYPE_MOSTLY_Q5_1
      {Q::kQ2K, 10},      // LLAMA_FTYPE_MOSTLY_Q2_K
      {Q::kQ3K, 11},      // LLAMA_FTYPE_MOSTLY_Q3_K_S
      {Q::kQ4K, 14},      // LLAMA_FTYPE_MOSTLY_Q4_K_S
      {Q::kQ5K, 16},      // LLAMA_FTYPE_MOSTLY_Q5_K_S
      {Q::kQ6K, 18},      // LLAMA_FTYPE_MOSTLY_Q6_K
      {Q::kIQ2_XXS, 19},  // LLAMA_FTYPE_MOSTLY_IQ2_XXS
      {Q::kIQ2_XS, 20},   // LLAMA_FTYPE_MOSTLY_IQ2_XS
      {Q::kIQ3_XXS, 23},  // LLAMA_FTYPE_MOSTLY_IQ3_XXS
      {Q::kIQ1_S, 24},    // LLAMA_FTYPE_MOSTLY_IQ1_S
      {Q::kIQ4_NL, 25},   // LLAMA_FTYPE_MOSTLY_IQ4_NL
      {Q::kIQ3_S, 26},    // LLAMA_FTYPE_MOSTLY_IQ3_S
      {Q::kIQ2_S, 28},    // LLAMA_FTYPE_MOSTLY_IQ2_S
      {Q::kIQ4_XS, 30},   // LLAMA_FTYPE_MOSTLY_IQ4_XS
      {Q::kIQ1_M, 31},    // LLAMA_FTYPE_MOSTLY_IQ1_M
      {Q::kBF16, 32},     // LLAMA_FTYPE_MOSTLY_BF16
      {Q::kTQ1_0, 36},    // LLAMA_FTYPE_MOSTLY_TQ1_0
      {Q::kTQ2_0, 37},    // LLAMA_FTYPE_MOSTLY_TQ2_0
      {Q::kMXFP4, 38},    // LLAMA_FTYPE_MOSTLY_MXFP4_MOE
  };
  std::set<uint32_t> seen;
  for (const TypeTraits& t : all_type_traits()) {
    const auto it = llama_h.find(t.type);
    if (it == llama_h.end()) {
      EXPECT_FALSE(t.llama_ftype.has_value()) << t.name;
      continue;
    }
    ASSERT_TRUE(t.llama_ftype.has_value()) << t.name;
    EXPECT_EQ(*t.llama_ftype, it->second) << t.name;
    EXPECT_TRUE(seen.insert(*t.llama_ftype).second) << t.name << ": file type used twice";
    EXPECT_LT(static_cast<uint32_t>(t.type), kFirstInsituTypeId) << t.name;
  }
  EXPECT_EQ(seen.size(), llama_h.size());
}

// Every type has a UQFF form, and a reader can tell the type back from the entry: the format plus
// what the entry stores beside it (the ggml id in weight.dtype, the safetensors dtype, HQQ's bits,
// AFQ's bits and group size, FP8's tile grid) is unique to one type.
TEST(TypeTable, UqffFormatsIdentifyTheType) {
  using F = uqff::Format;
  std::set<std::tuple<int, uint32_t, int, int>> keys;
  for (const TypeTraits& t : all_type_traits()) {
    ASSERT_TRUE(t.uqff_format.has_value()) << t.name;
    const F f = *t.uqff_format;
    const auto id = static_cast<uint32_t>(t.type);
    int bits = 0, group = 0;
    switch (f) {
      case F::kGguf: EXPECT_LT(id, kFirstInsituTypeId) << t.name; break;
      case F::kUnquant: EXPECT_TRUE(is_float(t.type)) << t.name; break;
      case F::kHqq:
      case F::kAfq: {
        const GroupAffineFormat* g = group_affine_format(t.type);
        ASSERT_NE(g, nullptr) << t.name;
        EXPECT_EQ(g->header, f == F::kHqq ? AffineHeader::kHqq : AffineHeader::kAfq) << t.name;
        bits = g->bits;
        group = g->group;
        break;
      }
      case F::kFp8: EXPECT_TRUE(is_fp8_type(t.type)) << t.name; break;
      case F::kF8Q8: EXPECT_EQ(t.type, Q::kF8Q8); break;
      case F::kMxfp4: EXPECT_EQ(t.type, Q::kMXFP4); break;
    }
    // Formats whose entries carry the type's id (gguf, unquant) or a flag (fp8) key on the id.
    const uint32_t key_id = f == F::kHqq || f == F::kAfq ? 0 : id;
    EXPECT_TRUE(keys.emplace(static_cast<int>(f), key_id, bits, group).second)
        << t.name << ": another type has the same UQFF form";
  }
  // The types the UQFF reader builds from their own formats (io/uqff.h).
  EXPECT_EQ(type_traits(Q::kHQQ4).uqff_format, F::kHqq);
  EXPECT_EQ(type_traits(Q::kAFQ4_G128).uqff_format, F::kAfq);
  EXPECT_EQ(type_traits(Q::kFP8_B128).uqff_format, F::kFp8);
  EXPECT_EQ(type_traits(Q::kQ4K).uqff_format, F::kGguf);
  EXPECT_EQ(type_traits(Q::kBF16).uqff_format, F::kUnquant);
}

// Floats are the baseline; a near-lossless type spends at least 8 bits a weight; the tier names
// are the ones `tune` prints.
TEST(TypeTable, QualityTiers) {
  for (const TypeTraits& t : all_type_traits()) {
    if (!t.isq_target) continue;
    EXPECT_EQ(t.quality_tier == QualityTier::kBaseline, is_float(t.type)) << t.name;
    if (t.quality_tier == QualityTier::kNearLossless) {
      EXPECT_GE(t.bits_per_weight(), 8.0) << t.name;
    }
    if (t.quality_tier == QualityTier::kDegraded) {
      EXPECT_LE(t.bits_per_weight(), 4.0) << t.name;
    }
  }
  EXPECT_STREQ(quality_tier_name(QualityTier::kBaseline), "baseline");
  EXPECT_STREQ(quality_tier_name(QualityTier::kNearLossless), "near-lossless");
  EXPECT_STREQ(quality_tier_name(QualityTier::kGood), "good");
  EXPECT_STREQ(quality_tier_name(QualityTier::kAcceptable), "acceptable");
  EXPECT_STREQ(quality_tier_name(QualityTier::kDegraded), "degraded");
}

}  // namespace
}  // namespace insitu
