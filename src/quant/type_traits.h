// The run-time type table: one row per QuantType with its geometry and row functions.
//
// Tests, `tune`, the CLI's --help and error messages iterate this table, so lists never drift.
// Each format family (quant/legacy.cc, quant/k_quants.cc, quant/i_quants.cc, ...) fills in its
// rows' function pointers from a register_* function called once when the table is built.
// The table is immutable after construction and safe to read from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "insitu/quant_type.h"

namespace insitu {

namespace uqff {
enum class Format : uint8_t;  // mistral.rs QuantizedSerdeType (io/uqff.h)
}

// What a type costs a model's quality, as `tune` reports it (mistral.rs tuning.rs quality_tier);
// ordered best first, so a smaller tier is a better one.
enum class QualityTier : uint8_t {
  kBaseline,      // float weights: the reference
  kNearLossless,  // 8 bits a weight
  kGood,          // 5 to 6 bits, 8-bit floats
  kAcceptable,    // about 4 bits
  kDegraded,      // 2 to 3 bits
};

// "baseline", "near-lossless", "good", "acceptable", "degraded".
const char* quality_tier_name(QualityTier tier);

// Dequantizes n elements (a multiple of the block size) from packed blocks to floats.
using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);

// Quantizes nrows rows of n_per_row floats into consecutive packed rows; returns bytes written.
// `imatrix` is null or holds n_per_row non-negative importance weights shared by every row.
// Single-threaded and row-local: callers parallelise over rows.
using QuantizeFn = size_t (*)(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                              const float* imatrix);

// Quantizes one row of activations (the reference from_float of q8_0 / q8_1 / q8_K).
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n);

struct TypeTraits {
  QuantType type = QuantType::kF32;
  const char* name = "";       // frozen insitu name, lower case: "q4k"
  const char* ggml_name = "";  // ggml's spelling: "q4_K"
  int64_t block_size = 1;      // elements per block
  size_t type_size = 0;        // bytes per block
  bool is_quantized = false;
  bool requires_imatrix = false;  // refuses to quantize without one (ggml: iq2_xxs iq2_xs iq1_s)
  QuantType vec_dot_type = QuantType::kF32;  // activation format the kernels pair it with
  DequantizeRowFn dequantize_row = nullptr;
  QuantizeFn quantize = nullptr;          // null when the type cannot be produced (yet)
  QuantizeRowFn quantize_row_ref = nullptr;  // activation quantizer (q8_0, q8_1, q8_K)

  // Policy: how the tools treat the type. One row a type in quant/type_traits.cc, so ISQ, tune and
  // the exporters look the answer up instead of each keeping its own switch.
  //
  // ISQ can store weights in it: a float or quantized format with a quantizer and a dequantizer
  // (every matmul path can fall back on the latter). False for the integer types, f64 and q8_k
  // (an activation format only).
  bool isq_target = false;
  // What ISQ stores token embeddings and the output head in when this type is asked for (those
  // weights are the most sensitive to quantization error). mistral.rs's rule: at most 4 bits ->
  // q6_k, 5 to 8 bits -> q8_0; AFQ promotes within its group size; HQQ <= 4 bits -> hqq8; floats,
  // FP8 and MXFP4 stay as asked. Itself when the type is kept.
  QuantType isq_promoted = QuantType::kF32;
  // The type a row whose length is not a multiple of block_size is stored in: a type of about the
  // same size whose block size divides this one's (llama.cpp's llama_tensor_get_type fallback;
  // AFQ keeps its bits with groups of 32), or f16. When the fallback's block does not divide the
  // row either, the row is stored as f16 (isq_row_fallback). Itself for 1-element blocks.
  QuantType row_fallback = QuantType::kF32;
  // llama.cpp's llama_ftype for a file whose weights are all of this type (general.file_type);
  // k-quants give their _S variant. Empty for types llama.cpp has no file type for.
  std::optional<uint32_t> llama_ftype = std::nullopt;
  // The UQFF entry format a weight of this type is written as (weight.format); empty when the
  // type has no UQFF form.
  std::optional<uqff::Format> uqff_format = std::nullopt;
  QualityTier quality_tier = QualityTier::kAcceptable;  // as `tune` reports it

  double bits_per_weight() const { return 8.0 * static_cast<double>(type_size) / block_size; }
};

// The row for a type; throws InvalidArgument for an id outside the table.
const TypeTraits& type_traits(QuantType type);

// Every row, in table order.
std::span<const TypeTraits> all_type_traits();

// Called once while the table is built; each family sets the function pointers of its rows.
// Declared here, defined in the family's file.
void register_float_types(std::span<TypeTraits> table);
void register_legacy_types(std::span<TypeTraits> table);
void register_k_quant_types(std::span<TypeTraits> table);
void register_i_quant_types(std::span<TypeTraits> table);
void register_ternary_and_fp4_types(std::span<TypeTraits> table);

// Appends the rows of the insitu-only types (ids from kFirstInsituTypeId: HQQ, AFQ, FP8, F8Q8),
// geometry and functions, in id order (quant/insitu_types.cc).
void append_insitu_types(std::vector<TypeTraits>& table);

// Helper for the register_* functions: the mutable row of a type.
TypeTraits& table_row(std::span<TypeTraits> table, QuantType type);

}  // namespace insitu
