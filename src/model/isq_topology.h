// Topology files: per-layer and per-weight ISQ types, read as mistral.rs reads `--topology
// FILE.yml` (mistralrs-core/src/topology/mod.rs).
//
// A topology is a YAML mapping, in declaration order, from a selector to an entry:
//   0-8:                              # layers [0, 8): half-open, end > start
//     isq: q3k
//   12:                               # one layer
//     isq: 8                          # numeric shorthands as --isq takes them (8 -> q8_0)
//   '/mlp\.down_proj\.weight$/':      # a regex, slash-wrapped
//     isq: Q6K                        # any --isq spelling, mistral.rs's too (F8E4M3 = fp8)
//   24-28:                            # no isq (or isq: null): the default type (--isq's)
//     device: cpu
// An entry has at most the keys `isq` and `device`. `device` is cpu, cuda[N] or metal[N]; this
// build runs on the CPU only, so a GPU device is accepted, warned about once and ignored.
//
// Which entry decides a weight (mistral.rs's resolve_immediate_isq and Topology::from_str):
//   1. regexes are searched (unanchored, as Rust's Regex::is_match: anchor with ^ and $ yourself)
//      in the weight's Hugging Face name ("model.layers.3.self_attn.q_proj.weight",
//      "model.embed_tokens.weight", "lm_head.weight"); of those that match, the last declared wins.
//      A tied output head is the token embedding's tensor and answers to both of its names.
//      A weight without a Hugging Face name is matched by its GGUF name;
//   2. otherwise the weight's layer index selects a range: ranges are applied sorted by
//      (end, declaration index), so where they overlap the one with the larger end wins and, with
//      equal ends, the later declaration. Embeddings and the output head have no layer index, so
//      only regexes reach them.
// A matching regex therefore beats a range; a typed entry beats the promotion of embeddings and
// output head. plan_isq (model/isq.h) applies the result to the ISQ candidates only (linear
// weights, embeddings, output head); the row-length fallback still applies to a pinned type.
//
// Regexes use PCRE2 syntax (close to Rust's regex crate for what topology files use). An
// IsqTopology is immutable after parsing and safe to share between threads.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "insitu/quant_type.h"

namespace insitu {

struct IsqModelShape;   // model/isq_mix.h
enum class WeightRole;  // model/isq.h

// One selector and what it asks for.
struct IsqTopologyEntry {
  std::string key;                // the selector as written: "0-8", "12", "/regex/"
  int line = 0;                   // 1-based line of the selector in the file
  std::optional<QuantType> type;  // nullopt: the default type
  std::string device;             // "cpu", "cuda[0]", "metal[1]" or empty
};

class IsqTopology {
 public:
  ~IsqTopology();
  IsqTopology(IsqTopology&&) noexcept;

  // Reads and parses a topology file. Throws IoError when it cannot be read and InvalidArgument
  // naming the file, line, selector and reason for bad YAML, an unknown key inside an entry, a bad
  // range, a bad regex, an unknown type or a bad device.
  static std::shared_ptr<const IsqTopology> load(const std::string& path);
  // The same from text; `source` names it in messages.
  static std::shared_ptr<const IsqTopology> parse(std::string_view yaml, const std::string& source);

  const std::string& source() const { return source_; }
  // Every entry, in declaration order.
  const std::vector<IsqTopologyEntry>& entries() const { return entries_; }
  // The first entry without a type, or null when every entry names one (a topology used without
  // --isq must type every entry: there is no default type to fall back on).
  const IsqTopologyEntry* first_untyped() const;

  // The entry deciding a weight with these Hugging Face names (one, or two for a tied output
  // head) and layer index (-1: none), or null.
  const IsqTopologyEntry* match(std::span<const std::string> hf_names, int layer) const;
  // The last-declared regex entry matching `name`, or null.
  const IsqTopologyEntry* match_name(std::string_view name) const;
  // The range entry covering `layer`, or null.
  const IsqTopologyEntry* match_layer(int layer) const;

  // The entry deciding an ISQ candidate: its GGUF name is mapped to the Hugging Face name(s) of
  // `model.arch` (model/hf_names.h), the output head's name added for tied embeddings.
  const IsqTopologyEntry* match_weight(std::string_view gguf_name, WeightRole role, int layer,
                                       const IsqModelShape& model) const;

 private:
  struct Pattern;
  IsqTopology();

  std::string source_;
  std::vector<IsqTopologyEntry> entries_;
  std::vector<int> layer_entry_;   // per layer index: the deciding range entry, -1 for none
  std::vector<Pattern> patterns_;  // regex entries, declaration order
};

// The Hugging Face names a topology regex is matched against for an ISQ candidate (see
// IsqTopology::match_weight); the GGUF name itself when the architecture has no HF counterpart.
std::vector<std::string> isq_topology_names(std::string_view gguf_name, WeightRole role,
                                            const IsqModelShape& model);

struct IsqDecision;  // model/isq.h
struct Weight;       // model/model.h

// Logs, after plan_isq, the entries that decided no weight (a warning: a typo, or layers the model
// does not have) and, at debug level, each regex that matches a weight ISQ does not consider
// (norms, biases), which it leaves as it is.
void log_topology_coverage(const IsqTopology& topology, const std::vector<IsqDecision>& plan,
                           const std::vector<Weight>& weights, const IsqModelShape& model);

}  // namespace insitu
