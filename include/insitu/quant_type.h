// Quantization and storage types known to insitu.
//
// Values below 1000 are ggml's own type ids, so a QuantType can be written to and read from GGUF
// without a mapping table. Types that only insitu/mistral.rs know (HQQ, AFQ, FP8, ...) are
// numbered from 1000 and never appear in a GGUF file.
//
// Each type has one frozen lower-case name ("q4k", "iq4_xs", "bf16") used by the CLI, the HTTP and
// Python APIs and file metadata alike. Parsing is case-insensitive and also accepts ggml's
// spellings ("Q4_K", "q4_k") and mistral.rs's ("Q4K").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace insitu {

enum class QuantType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2K = 10,
  kQ3K = 11,
  kQ4K = 12,
  kQ5K = 13,
  kQ6K = 14,
  kQ8K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,

  // insitu / mistral.rs types (never in a GGUF file).
  // HQQ: half-quadratic quantization, groups of 64 along each row, f32 scale and zero per group.
  kHQQ2 = 1000,
  kHQQ3 = 1001,
  kHQQ4 = 1002,
  kHQQ8 = 1003,
  // AFQ: MLX's affine format, bf16 scale and bias per group along each row; group 64 by default.
  kAFQ2 = 1004,
  kAFQ3 = 1005,
  kAFQ4 = 1006,
  kAFQ6 = 1007,
  kAFQ8 = 1008,
  kAFQ2_G32 = 1009,
  kAFQ3_G32 = 1010,
  kAFQ4_G32 = 1011,
  kAFQ6_G32 = 1012,
  kAFQ8_G32 = 1013,
  kAFQ2_G128 = 1014,
  kAFQ3_G128 = 1015,
  kAFQ4_G128 = 1016,
  kAFQ6_G128 = 1017,
  kAFQ8_G128 = 1018,
  // FP8 E4M3 weights with one f32 scale per tensor, or per 128x128 tile.
  kFP8 = 1019,
  kFP8_B128 = 1020,
  // F8Q8: blocks of 32 int8 values with an E4M3 scale (mistral.rs's CPU format).
  kF8Q8 = 1021,
};

// The first id of the insitu-only types.
inline constexpr uint32_t kFirstInsituTypeId = 1000;

// The largest ggml id and the largest insitu id above: a type added to the enum moves one of them
// (quant/type_table_test checks them against the run-time table). Tables indexed by type
// (kernels/kernel_table.h) are sized from these.
inline constexpr QuantType kLastGgmlQuantType = QuantType::kMXFP4;
inline constexpr QuantType kLastQuantType = QuantType::kF8Q8;

// The frozen insitu name of a type ("q4k"); "unknown(N)" for a value outside the table.
std::string quant_type_name(QuantType type);

// ggml's spelling ("q4_K"), as used in GGUF tensor names of the golden file and llama.cpp tools.
std::string quant_type_ggml_name(QuantType type);

// Parses any accepted spelling, case-insensitively. Returns nullopt for an unknown name.
std::optional<QuantType> parse_quant_type(std::string_view name);

// Every type in the run-time table, in table order (for --help lists and error messages).
std::vector<QuantType> all_quant_types();

// Space-separated frozen names of every type, for error messages ("f32 f16 q4_0 ...").
std::string quant_type_name_list();

// Elements per block (1 for plain float/int types) and bytes per block.
int64_t quant_block_size(QuantType type);
size_t quant_type_size(QuantType type);

// Bytes needed for n elements of a type; throws InvalidArgument when n is not a multiple of the
// block size or the result overflows.
size_t quant_row_size(QuantType type, int64_t n);

// True when the value is a known type id (used to validate untrusted ids read from files).
bool is_known_quant_type(uint32_t id);

}  // namespace insitu
