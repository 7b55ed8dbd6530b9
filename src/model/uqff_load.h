// Finding and loading UQFF artifacts (io/uqff.h): which files hold a type, and turning their layer
// entries into the Model's weights.
//
// An artifact directory holds `<stem>-<i>.uqff` shards (one stem per type: q4k-0.uqff, ...),
// residual.safetensors with every tensor that is not a layer entry (norms), config.json, the
// tokenizer files and uqff_report.json. When the report is present its outputs are authoritative
// (quant name -> shard list, names relative to the directory); otherwise types are read from the
// shard names (`<stem>-0.uqff`, `-1`, ... while they exist).
//
// Loading keeps every stored weight as it is: a UQFF of type T loads to the same types and bytes
// as --isq T from the same source. Stored rows are in Hugging Face order; llama Q/K rows are moved
// to GGUF order as the safetensors loader does (rows move whole, so quantized rows move too).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "model/model.h"

namespace insitu {

// What a directory holds in UQFF terms.
struct UqffDirectory {
  std::string dir;
  // Type (file stem or report quant name) -> shard paths, in order.
  std::map<std::string, std::vector<std::string>> types;
  bool has_report = false;
  bool has_residual = false;
  // Full-precision or pickled source weights: a *.safetensors other than residual.safetensors,
  // model.safetensors.index.json, or *.bin / *.pt / *.pth.
  bool has_source_weights = false;
  // mistral.rs's test: the name ends in "-uqff" (any case), or it has uqff_report.json or
  // residual.safetensors, or it has .uqff files and no source weights.
  bool looks_like_artifact = false;

  std::string type_list() const;  // "q4k q8_0", or "none"
};

// Scans `dir` (not recursive). Throws FormatError for an invalid uqff_report.json.
UqffDirectory scan_uqff_directory(const std::string& dir);

// The UQFF file names a type spec can have, preferred first: a type or mix name gives its
// canonical name ("Q4K" -> "q4k"); bits give the CPU type first (4 -> q4k, afq4) as mistral.rs's
// IsqBits::expand does on a non-Metal build. Throws InvalidArgument for neither.
std::vector<std::string> uqff_type_candidates(std::string_view spec);

// The shard paths of the type named exactly `spec` (a report's quant or a file stem), else of the
// first candidate type `dir` holds; empty when it holds none.
std::vector<std::string> find_uqff_type(const UqffDirectory& dir, std::string_view spec);

// --from-uqff: `spec` is a ';'-separated list of files (as given, or relative to model_dir) or
// type names / bits looked up in model_dir. A shard "<stem>-0.uqff" brings its siblings -1, -2, ...
// Throws InvalidArgument naming what was tried when an item resolves to nothing.
std::vector<std::string> resolve_uqff_files(const std::string& spec, const std::string& model_dir);

// The UQFF files `Model::load` uses for a directory given without any: those of its only type when
// the directory holds UQFF shards and no source weights; empty otherwise. Throws InvalidArgument
// when it holds several types (naming them).
std::vector<std::string> default_uqff_files(const std::string& dir);

// Replaces (or adds) the weights the UQFF files store, by GGUF name, and sets
// config.tied_embeddings from whether an output head is present afterwards. Throws FormatError /
// Unsupported naming the file and entry for entries the architecture has no tensor for in a way
// that matters (a known module with a bad shape), and formats this build cannot hold.
void apply_uqff_weights(const std::vector<std::string>& files, ModelConfig& config,
                        std::vector<Weight>& weights);

// The module key a GGUF weight name is stored under ("blk.0.attn_q.weight" ->
// "model.layers.0.self_attn.q_proj"), or nullopt. Stacked experts use mistral.rs's canonical
// keys ("blk.3.ffn_gate_exps.weight" -> "model.layers.3.block_sparse_moe.experts.gate_proj").
std::optional<std::string> uqff_module_key(std::string_view gguf_name, Arch arch);
// The inverse for weights ("<key>.weight"); nullopt for a key the architecture does not have.
std::optional<std::string> uqff_weight_name(std::string_view key, Arch arch);

// True when the Q/K row permutation (within heads of rows / heads rows) keeps every row inside its
// 128-row FP8 tile, so a kFP8_B128 scale grid stays valid when rows are reordered.
bool fp8_tiles_keep_heads(int64_t rows, int heads);

}  // namespace insitu
