#include "quant/type_traits.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <string>

#include "insitu/error.h"
#include "io/uqff.h"
#include "quant/blocks.h"

namespace insitu {
namespace {

using Q = QuantType;

// The policy columns (type_traits.h), one row a type. Promotion follows mistral.rs (at most 4 bits
// -> q6k, 5 to 8 bits -> q8_0, AFQ within its group size) except for HQQ, which mistral.rs leaves
// unpromoted: a 4-bit tied embedding/head costs SmolLM2 more than all its 4-bit linears
// (docs/accuracy.md). The i-quants and ternary types mistral.rs lacks store fewer than five bits a
// weight and follow the low-bit rule. Row fallbacks follow llama.cpp's llama_tensor_get_type (the
// k- and i-quants to a 32-element type of about their size); HQQ falls back to q4_1 (2 to 4 bits)
// or q8_0, AFQ to its own bits with groups of 32. File types are llama.h's llama_ftype values.
// Quality tiers are mistral.rs's (tuning.rs quality_tier); the types it lacks are "acceptable".
struct PolicyRow {
  QuantType type;
  bool isq_target;
  QuantType isq_promoted;
  QuantType row_fallback;
  std::optional<uint32_t> llama_ftype;
  uqff::Format uqff_format;
  QualityTier quality_tier;
};

void apply_policy(std::vector<TypeTraits>& table) {
  using F = uqff::Format;
  using T = QualityTier;
  constexpr std::optional<uint32_t> kNone = std::nullopt;
  static constexpr PolicyRow kRows[] = {
      // type, ISQ target, promoted to, row fallback, llama_ftype, UQFF format, quality tier
      {Q::kF32, true, Q::kF32, Q::kF32, 0, F::kUnquant, T::kBaseline},
      {Q::kF16, true, Q::kF16, Q::kF16, 1, F::kUnquant, T::kBaseline},
      {Q::kBF16, true, Q::kBF16, Q::kBF16, 32, F::kUnquant, T::kBaseline},
      {Q::kQ4_0, true, Q::kQ6K, Q::kF16, 2, F::kGguf, T::kAcceptable},
      {Q::kQ4_1, true, Q::kQ6K, Q::kF16, 3, F::kGguf, T::kAcceptable},
      {Q::kQ5_0, true, Q::kQ8_0, Q::kF16, 8, F::kGguf, T::kGood},
      {Q::kQ5_1, true, Q::kQ8_0, Q::kF16, 9, F::kGguf, T::kGood},
      {Q::kQ8_0, true, Q::kQ8_0, Q::kF16, 7, F::kGguf, T::kNearLossless},
      {Q::kQ8_1, true, Q::kQ8_0, Q::kF16, kNone, F::kGguf, T::kNearLossless},
      {Q::kQ2K, true, Q::kQ6K, Q::kQ4_0, 10, F::kGguf, T::kDegraded},
      {Q::kQ3K, true, Q::kQ6K, Q::kQ4_0, 11, F::kGguf, T::kDegraded},
      {Q::kQ4K, true, Q::kQ6K, Q::kQ5_0, 14, F::kGguf, T::kAcceptable},
      {Q::kQ5K, true, Q::kQ8_0, Q::kQ5_1, 16, F::kGguf, T::kGood},
      {Q::kQ6K, true, Q::kQ8_0, Q::kQ8_0, 18, F::kGguf, T::kGood},
      {Q::kQ8K, false, Q::kQ8_0, Q::kQ8_0, kNone, F::kGguf, T::kNearLossless},
      {Q::kIQ1_S, true, Q::kQ6K, Q::kIQ4_NL, 24, F::kGguf, T::kAcceptable},
      {Q::kIQ1_M, true, Q::kQ6K, Q::kIQ4_NL, 31, F::kGguf, T::kAcceptable},
      {Q::kIQ2_XXS, true, Q::kQ6K, Q::kIQ4_NL, 19, F::kGguf, T::kAcceptable},
      {Q::kIQ2_XS, true, Q::kQ6K, Q::kIQ4_NL, 20, F::kGguf, T::kAcceptable},
      {Q::kIQ2_S, true, Q::kQ6K, Q::kIQ4_NL, 28, F::kGguf, T::kAcceptable},
      {Q::kIQ3_XXS, true, Q::kQ6K, Q::kIQ4_NL, 23, F::kGguf, T::kAcceptable},
      {Q::kIQ3_S, true, Q::kQ6K, Q::kIQ4_NL, 26, F::kGguf, T::kAcceptable},
      {Q::kIQ4_NL, true, Q::kQ6K, Q::kF16, 25, F::kGguf, T::kAcceptable},
      {Q::kIQ4_XS, true, Q::kQ6K, Q::kIQ4_NL, 30, F::kGguf, T::kAcceptable},
      {Q::kTQ1_0, true, Q::kQ6K, Q::kQ4_0, 36, F::kGguf, T::kAcceptable},
      {Q::kTQ2_0, true, Q::kQ6K, Q::kQ4_0, 37, F::kGguf, T::kAcceptable},
      {Q::kMXFP4, true, Q::kMXFP4, Q::kF16, 38, F::kMxfp4, T::kAcceptable},
      {Q::kI8, false, Q::kI8, Q::kI8, kNone, F::kGguf, T::kAcceptable},
      {Q::kI16, false, Q::kI16, Q::kI16, kNone, F::kGguf, T::kAcceptable},
      {Q::kI32, false, Q::kI32, Q::kI32, kNone, F::kGguf, T::kAcceptable},
      {Q::kI64, false, Q::kI64, Q::kI64, kNone, F::kGguf, T::kAcceptable},
      {Q::kF64, false, Q::kF64, Q::kF64, kNone, F::kGguf, T::kAcceptable},
      {Q::kHQQ2, true, Q::kHQQ8, Q::kQ4_1, kNone, F::kHqq, T::kAcceptable},
      {Q::kHQQ3, true, Q::kHQQ8, Q::kQ4_1, kNone, F::kHqq, T::kAcceptable},
      {Q::kHQQ4, true, Q::kHQQ8, Q::kQ4_1, kNone, F::kHqq, T::kAcceptable},
      {Q::kHQQ8, true, Q::kHQQ8, Q::kQ8_0, kNone, F::kHqq, T::kNearLossless},
      {Q::kAFQ2, true, Q::kAFQ6, Q::kAFQ2_G32, kNone, F::kAfq, T::kDegraded},
      {Q::kAFQ3, true, Q::kAFQ6, Q::kAFQ3_G32, kNone, F::kAfq, T::kDegraded},
      {Q::kAFQ4, true, Q::kAFQ6, Q::kAFQ4_G32, kNone, F::kAfq, T::kAcceptable},
      {Q::kAFQ6, true, Q::kAFQ8, Q::kAFQ6_G32, kNone, F::kAfq, T::kGood},
      {Q::kAFQ8, true, Q::kAFQ8, Q::kAFQ8_G32, kNone, F::kAfq, T::kNearLossless},
      {Q::kAFQ2_G32, true, Q::kAFQ6_G32, Q::kF16, kNone, F::kAfq, T::kDegraded},
      {Q::kAFQ3_G32, true, Q::kAFQ6_G32, Q::kF16, kNone, F::kAfq, T::kDegraded},
      {Q::kAFQ4_G32, true, Q::kAFQ6_G32, Q::kF16, kNone, F::kAfq, T::kAcceptable},
      {Q::kAFQ6_G32, true, Q::kAFQ8_G32, Q::kF16, kNone, F::kAfq, T::kGood},
      {Q::kAFQ8_G32, true, Q::kAFQ8_G32, Q::kF16, kNone, F::kAfq, T::kNearLossless},
      {Q::kAFQ2_G128, true, Q::kAFQ6_G128, Q::kAFQ2_G32, kNone, F::kAfq, T::kDegraded},
      {Q::kAFQ3_G128, true, Q::kAFQ6_G128, Q::kAFQ3_G32, kNone, F::kAfq, T::kDegraded},
      {Q::kAFQ4_G128, true, Q::kAFQ6_G128, Q::kAFQ4_G32, kNone, F::kAfq, T::kAcceptable},
      {Q::kAFQ6_G128, true, Q::kAFQ8_G128, Q::kAFQ6_G32, kNone, F::kAfq, T::kGood},
      {Q::kAFQ8_G128, true, Q::kAFQ8_G128, Q::kAFQ8_G32, kNone, F::kAfq, T::kNearLossless},
      {Q::kFP8, true, Q::kFP8, Q::kFP8, kNone, F::kFp8, T::kGood},
      {Q::kFP8_B128, true, Q::kFP8_B128, Q::kFP8_B128, kNone, F::kFp8, T::kGood},
      {Q::kF8Q8, true, Q::kF8Q8, Q::kF16, kNone, F::kF8Q8, T::kNearLossless},
  };
  for (TypeTraits& row : table) {
    const PolicyRow* p = nullptr;
    for (const PolicyRow& r : kRows) {
      if (r.type == row.type) p = &r;
    }
    if (p == nullptr) {
      throw Error("quant: type table: no policy row for '" + std::string(row.name) + "'");
    }
    row.isq_target = p->isq_target;
    row.isq_promoted = p->isq_promoted;
    row.row_fallback = p->row_fallback;
    row.llama_ftype = p->llama_ftype;
    row.uqff_format = p->uqff_format;
    row.quality_tier = p->quality_tier;
  }
}

std::vector<TypeTraits> build_table() {
  // Geometry only; the families fill in the functions below.
  std::vector<TypeTraits> t{{
      {Q::kF32, "f32", "f32", 1, 4, false, false, Q::kF32},
      {Q::kF16, "f16", "f16", 1, 2, false, false, Q::kF16},
      {Q::kBF16, "bf16", "bf16", 1, 2, false, false, Q::kBF16},
      {Q::kQ4_0, "q4_0", "q4_0", kQK4_0, sizeof(BlockQ4_0), true, false, Q::kQ8_0},
      {Q::kQ4_1, "q4_1", "q4_1", kQK4_1, sizeof(BlockQ4_1), true, false, Q::kQ8_1},
      {Q::kQ5_0, "q5_0", "q5_0", kQK5_0, sizeof(BlockQ5_0), true, false, Q::kQ8_0},
      {Q::kQ5_1, "q5_1", "q5_1", kQK5_1, sizeof(BlockQ5_1), true, false, Q::kQ8_1},
      {Q::kQ8_0, "q8_0", "q8_0", kQK8_0, sizeof(BlockQ8_0), true, false, Q::kQ8_0},
      {Q::kQ8_1, "q8_1", "q8_1", kQK8_1, sizeof(BlockQ8_1), true, false, Q::kQ8_1},
      {Q::kQ2K, "q2k", "q2_K", kQK_K, sizeof(BlockQ2K), true, false, Q::kQ8K},
      {Q::kQ3K, "q3k", "q3_K", kQK_K, sizeof(BlockQ3K), true, false, Q::kQ8K},
      {Q::kQ4K, "q4k", "q4_K", kQK_K, sizeof(BlockQ4K), true, false, Q::kQ8K},
      {Q::kQ5K, "q5k", "q5_K", kQK_K, sizeof(BlockQ5K), true, false, Q::kQ8K},
      {Q::kQ6K, "q6k", "q6_K", kQK_K, sizeof(BlockQ6K), true, false, Q::kQ8K},
      {Q::kQ8K, "q8k", "q8_K", kQK_K, sizeof(BlockQ8K), true, false, Q::kQ8K},
      {Q::kIQ1_S, "iq1_s", "iq1_s", kQK_K, sizeof(BlockIQ1S), true, true, Q::kQ8K},
      {Q::kIQ1_M, "iq1_m", "iq1_m", kQK_K, sizeof(BlockIQ1M), true, false, Q::kQ8K},
      {Q::kIQ2_XXS, "iq2_xxs", "iq2_xxs", kQK_K, sizeof(BlockIQ2XXS), true, true, Q::kQ8K},
      {Q::kIQ2_XS, "iq2_xs", "iq2_xs", kQK_K, sizeof(BlockIQ2XS), true, true, Q::kQ8K},
      {Q::kIQ2_S, "iq2_s", "iq2_s", kQK_K, sizeof(BlockIQ2S), true, false, Q::kQ8K},
      {Q::kIQ3_XXS, "iq3_xxs", "iq3_xxs", kQK_K, sizeof(BlockIQ3XXS), true, false, Q::kQ8K},
      {Q::kIQ3_S, "iq3_s", "iq3_s", kQK_K, sizeof(BlockIQ3S), true, false, Q::kQ8K},
      {Q::kIQ4_NL, "iq4_nl", "iq4_nl", kQK4_NL, sizeof(BlockIQ4NL), true, false, Q::kQ8_0},
      {Q::kIQ4_XS, "iq4_xs", "iq4_xs", kQK_K, sizeof(BlockIQ4XS), true, false, Q::kQ8K},
      {Q::kTQ1_0, "tq1_0", "tq1_0", kQK_K, sizeof(BlockTQ1_0), true, false, Q::kQ8K},
      {Q::kTQ2_0, "tq2_0", "tq2_0", kQK_K, sizeof(BlockTQ2_0), true, false, Q::kQ8K},
      {Q::kMXFP4, "mxfp4", "mxfp4", kQK_MXFP4, sizeof(BlockMXFP4), true, false, Q::kQ8_0},
      {Q::kI8, "i8", "i8", 1, 1, false, false, Q::kI8},
      {Q::kI16, "i16", "i16", 1, 2, false, false, Q::kI16},
      {Q::kI32, "i32", "i32", 1, 4, false, false, Q::kI32},
      {Q::kI64, "i64", "i64", 1, 8, false, false, Q::kI64},
      {Q::kF64, "f64", "f64", 1, 8, false, false, Q::kF64},
  }};
  // Families whose rows are not ggml types append their own rows (geometry and functions).
  append_insitu_types(t);
  register_float_types(t);
  register_legacy_types(t);
  register_k_quant_types(t);
  register_i_quant_types(t);
  register_ternary_and_fp4_types(t);
  apply_policy(t);
  return t;
}

const std::vector<TypeTraits>& table() {
  static const std::vector<TypeTraits> t = build_table();
  return t;
}

const TypeTraits* find_row(uint32_t id) {
  for (const TypeTraits& row : table()) {
    if (static_cast<uint32_t>(row.type) == id) return &row;
  }
  return nullptr;
}

std::string normalize(std::string_view s) {
  // Case-insensitive, and "_" is optional between the letter groups: q4_k == Q4K == q4k.
  std::string out;
  for (char c : s) {
    if (c == '_' || c == '-') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

}  // namespace

TypeTraits& table_row(std::span<TypeTraits> t, QuantType type) {
  for (TypeTraits& row : t) {
    if (row.type == type) return row;
  }
  throw InvalidArgument("quant: type id " + std::to_string(static_cast<uint32_t>(type)) +
                        " is not in the type table");
}

const TypeTraits& type_traits(QuantType type) {
  const TypeTraits* row = find_row(static_cast<uint32_t>(type));
  if (row == nullptr) {
    throw InvalidArgument("quant: type id " + std::to_string(static_cast<uint32_t>(type)) +
                          " unknown; supported: " + quant_type_name_list());
  }
  return *row;
}

std::span<const TypeTraits> all_type_traits() { return table(); }

std::string quant_type_name(QuantType type) {
  const TypeTraits* row = find_row(static_cast<uint32_t>(type));
  return row ? row->name : "unknown(" + std::to_string(static_cast<uint32_t>(type)) + ")";
}

std::string quant_type_ggml_name(QuantType type) {
  const TypeTraits* row = find_row(static_cast<uint32_t>(type));
  return row ? row->ggml_name : "unknown(" + std::to_string(static_cast<uint32_t>(type)) + ")";
}

std::optional<QuantType> parse_quant_type(std::string_view name) {
  const std::string key = normalize(name);
  if (key.empty()) return std::nullopt;
  for (const TypeTraits& row : table()) {
    if (normalize(row.name) == key || normalize(row.ggml_name) == key) return row.type;
  }
  return std::nullopt;
}

std::vector<QuantType> all_quant_types() {
  std::vector<QuantType> out;
  for (const TypeTraits& row : table()) out.push_back(row.type);
  return out;
}

std::string quant_type_name_list() {
  std::string out;
  for (const TypeTraits& row : table()) {
    if (!out.empty()) out += ' ';
    out += row.name;
  }
  return out;
}

int64_t quant_block_size(QuantType type) { return type_traits(type).block_size; }
size_t quant_type_size(QuantType type) { return type_traits(type).type_size; }

size_t quant_row_size(QuantType type, int64_t n) {
  const TypeTraits& t = type_traits(type);
  if (n < 0 || n % t.block_size != 0) {
    throw InvalidArgument("quant: " + std::string(t.name) + " needs a multiple of " +
                          std::to_string(t.block_size) + " elements, got " + std::to_string(n));
  }
  const uint64_t blocks = static_cast<uint64_t>(n / t.block_size);
  if (blocks > std::numeric_limits<size_t>::max() / t.type_size) {
    throw InvalidArgument("quant: row of " + std::to_string(n) + " elements overflows");
  }
  return static_cast<size_t>(blocks * t.type_size);
}

bool is_known_quant_type(uint32_t id) { return find_row(id) != nullptr; }

const char* quality_tier_name(QualityTier tier) {
  switch (tier) {
    case QualityTier::kBaseline: return "baseline";
    case QualityTier::kNearLossless: return "near-lossless";
    case QualityTier::kGood: return "good";
    case QualityTier::kAcceptable: return "acceptable";
    case QualityTier::kDegraded: return "degraded";
  }
  return "?";
}

}  // namespace insitu
