// Importance matrices (imatrix): per weight tensor, the mean squared input activation E[x²] of
// each input column, which imatrix-aware quantizers use as weights.
//
// Formats read (load() picks by content/extension):
//  - llama.cpp GGUF imatrix (the default since 2025): general.type = "imatrix", imatrix.datasets,
//    imatrix.chunk_count, imatrix.chunk_size; per entry <name> the F32 tensors <name>.in_sum2
//    [ne0, n_mat] (Σx² per column, per expert) and <name>.counts [1, n_mat] (rows accumulated);
//    an optional <name>.in_sum is ignored. See ../shared/reference/ggml-formats.md §6.2.
//  - llama.cpp legacy .dat: i32 n_entries; per entry i32 len, name, i32 ncall, i32 nval,
//    f32 values[nval] (= (Σx²/count)·ncall); then optional i32 last_chunk, i32 len + dataset name
//    (§6.3). Stored here as sums = values, counts = {ncall} (1 when ncall <= 0), one matrix of nval
//    columns, so importance() = values / ncall as llama-quantize computes it.
//  - mistral.rs .cimatrix: u64 n_entries; per entry u64 key_len, key, u64 n_values, f32 values
//    (already E[x²]·ncalls; keys are module paths such as "model.layers.3.mlp.down_proj", not
//    GGUF names). Stored as sums = values, counts = {1}. (mistralrs-quant.md §5.5.)
// Written, atomically, in each of the three forms:
//  - GGUF, exactly as llama.cpp's imatrix tool lays it out (tensors sorted by entry name, in_sum2
//    then counts);
//  - legacy .dat as llama.cpp's save_imatrix_legacy: entries with no rows at all skipped, sorted by
//    name; ncall = ceil(max(counts) / chunk_size) (chunk_size <= 0 counts as 1, which writes back a
//    legacy or .cimatrix file's values unchanged); values (sums / count) * ncall in float, and 1 /
//    count 1 for a matrix without rows; trailer chunk_count and the last dataset name;
//  - .cimatrix as mistral.rs's CollectedImatrixData::save: values (sums / count) * ncalls in
//    float with ncalls = max(chunk_count, 1) (mistral.rs counts one call per calibration chunk),
//    0 for a matrix without rows, all matrices of an entry flattened; keys are the entry names as
//    they are (rename GGUF names to module paths first: engine/imatrix_collect.h).
//
// Files are untrusted: every count and length is checked against the bytes present before
// allocating, values must be finite and non-negative, entry names unique; violations throw one
// FormatError naming the file, the entry and the reason.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace insitu {

struct ImatrixEntry {
  int64_t n_cols = 0;         // ne0 of the weight (input features)
  int64_t n_mat = 1;          // matrices: 1 for a dense weight, the expert count for MoE
  std::vector<float> sums;    // [n_mat][n_cols] Σx² per column
  std::vector<float> counts;  // [n_mat] activation rows accumulated per matrix

  // E[x²] per column: sums / count per matrix, or 1 where a matrix saw no rows (llama-quantize's
  // rule). Size n_mat * n_cols, row-major by matrix.
  std::vector<float> importance() const;
};

struct Imatrix {
  std::map<std::string, ImatrixEntry> entries;  // by tensor name (or module key for .cimatrix)
  std::vector<std::string> datasets;
  int64_t chunk_count = 0;
  int64_t chunk_size = 0;  // 0 when unknown (legacy and .cimatrix files)

  // Reads any supported format: GGUF when the file starts with "GGUF", .cimatrix by extension,
  // otherwise legacy .dat. Throws IoError / FormatError.
  static Imatrix load(const std::string& path);
  static Imatrix load_gguf(const std::string& path);
  static Imatrix load_legacy(const std::string& path);
  static Imatrix load_cimatrix(const std::string& path);
  // The same from an in-memory image (fuzzer, tests); `name` appears in errors and its extension
  // selects .cimatrix. The result does not refer to `bytes` after return.
  static Imatrix parse(std::span<const uint8_t> bytes, const std::string& name);

  // name -> importance() for every entry.
  std::map<std::string, std::vector<float>> importance() const;

  // Writes the GGUF imatrix form atomically. Throws InvalidArgument for an inconsistent entry
  // (sums.size() != n_cols * n_mat, counts.size() != n_mat, a name too long for GGUF) and IoError.
  void save_gguf(const std::string& path) const;
  // The legacy .dat and .cimatrix forms (see the top of this file); the same checks and errors.
  void save_dat(const std::string& path) const;
  void save_cimatrix(const std::string& path) const;
};

}  // namespace insitu
