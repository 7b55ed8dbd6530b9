// Options declared once. Each option that loading and quantizing a model takes is declared here,
// with its name, default, help and valid values, in one visitor (visit_build_options). Every front
// end is generated from it: the CLI's flags (--NAME), the TOML keys of `insitu from-config`, the
// server's JSON fields and Python's keyword arguments all use NAME, so they cannot drift apart.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace insitu {

// mistral.rs's IsqBits: in-situ quantization by bit width (each picks insitu's default type of
// that width: 2 q2k, 3 q3k, 4 q4k, 5 q5k, 6 q6k, 8 q8_0).
enum class Bits { kTwo = 2, kThree = 3, kFour = 4, kFive = 5, kSix = 6, kEight = 8 };

// Which weights in-situ quantization converts: every linear weight plus promoted embeddings and
// output head (default), or only the routed experts of a mixture-of-experts model (moqe).
enum class IsqOrganization { kDefault, kMoqe };
const char* isq_organization_name(IsqOrganization organization);  // "default" / "moqe"
// Parses "default" / "moqe" (case-insensitive); throws InvalidArgument listing the valid names.
IsqOrganization parse_isq_organization(std::string_view text);

// What ModelBuilder loads, one field per option. Strings left empty mean "not given".
struct BuildOptions {
  std::string path;              // default none; a .gguf file, a directory, or an org/name id
  std::string isq;               // default none; in-situ quantization: type, bits or mix
  std::string quant;             // default none; bits/type: prebuilt UQFF if any, else ISQ; auto
  std::string from_uqff;         // default none; UQFF shard file(s) or a type in the directory
  std::string imatrix;           // default none; importance matrix file for isq
  std::string calibration_file;  // default none; text to collect an importance matrix from
  std::string topology;          // default none; per-layer/per-weight types (YAML)
  std::string isq_organization = "default";  // default "default"; or "moqe"
  bool pure = false;             // default false; no embedding/output-head promotion
  std::string profile = "balanced";  // default "balanced"; quant auto: quality|balanced|fast
  std::string max_memory;        // default none (RAM available now); quant auto's budget ("8G")
  int threads = 0;               // default 0: every CPU this process may use
  int ctx = 4096;                // default 4096; the context quant auto must leave room for
  bool show_progress = true;     // default true; progress bars on a terminal (not an option)
};

// How an option's value is written and checked.
enum class OptionKind {
  kString,  // free text
  kPath,    // a file or directory (a config file's relative paths are resolved beside it)
  kChoice,  // one of `choices`
  kInt,     // an integer in [min, max]
  kBool,    // a flag
};

// One option's declaration.
struct OptionSpec {
  const char* name;         // --NAME on the CLI, NAME in TOML, JSON and Python
  const char* alias;        // another CLI spelling ("-t"), or "" when none
  const char* section;      // the TOML table it sits in: "model", "quantization" or "runtime"
  OptionKind kind;
  const char* default_text;  // the default as a user would write it ("" when none)
  const char* example;       // a value to show in documentation (TOML comments)
  const char* help;          // one line for --help and the TOML comment
  const char* choices;       // kChoice: the valid values, space-separated
  int64_t min = 0;           // kInt: the valid range
  int64_t max = 0;
};

// Calls visitor(spec, field) for every option of BuildOptions, in a fixed order; `field` is a
// std::string&, int& or bool& (the kind says which). Works on const options too (const fields).
template <class Options, class Visitor>
void visit_build_options(Options& o, Visitor&& visitor) {
  using K = OptionKind;
  visitor(OptionSpec{"isq", "", "quantization", K::kString, "", "q4k",
                     "Quantize the weights in situ while loading: a type name (q4k, iq4_xs, q8_0, "
                     "...), bits (2 3 4 5 6 8) or a llama.cpp mix (q4k_m, Q4_K_M, q3k_s, ...)",
                     ""},
          o.isq);
  visitor(OptionSpec{"quant", "", "quantization", K::kString, "", "auto",
                     "Bits (2 3 4 5 6 8), a type, or auto: load a prebuilt UQFF of that type from "
                     "the model directory or its sibling <model>-UQFF when there is one, else "
                     "quantize in situ; auto picks what `insitu tune` recommends",
                     ""},
          o.quant);
  visitor(OptionSpec{"profile", "", "quantization", K::kChoice, "balanced", "balanced",
                     "With --quant auto: prefer quality (q8_0 first), balanced (q6k first) or "
                     "fast (q4k first) when the weights as stored do not fit",
                     "quality balanced fast"},
          o.profile);
  visitor(OptionSpec{"max-memory", "", "quantization", K::kString, "", "8G",
                     "With --quant auto: fit in this much memory (e.g. 8G) instead of the RAM "
                     "available now",
                     ""},
          o.max_memory);
  visitor(OptionSpec{"imatrix", "", "quantization", K::kPath, "", "imatrix.gguf",
                     "Importance matrix for --isq (llama.cpp GGUF imatrix, legacy .dat, or "
                     ".cimatrix)",
                     ""},
          o.imatrix);
  visitor(OptionSpec{"calibration-file", "", "quantization", K::kPath, "", "calibration.txt",
                     "With --isq: collect an importance matrix from this text first (streaming, "
                     "as `insitu imatrix` does) and quantize with it",
                     ""},
          o.calibration_file);
  visitor(OptionSpec{"topology", "", "quantization", K::kPath, "", "topology.yml",
                     "YAML file of per-layer and per-weight ISQ types, as mistral.rs reads it "
                     "(layer ranges 'START-END', indices, '/regex/' on Hugging Face weight names); "
                     "its types beat --isq's. Without --isq every entry must name a type and the "
                     "other weights stay as stored",
                     ""},
          o.topology);
  visitor(OptionSpec{"isq-organization", "", "quantization", K::kChoice, "default", "default",
                     "With --isq: which weights to quantize: default (attention, MLP and experts, "
                     "plus promoted embeddings and output head) or moqe (only the routed experts "
                     "of a mixture-of-experts model)",
                     "default moqe"},
          o.isq_organization);
  visitor(OptionSpec{"from-uqff", "", "quantization", K::kString, "", "q4k",
                     "Load stored UQFF weights: shard file(s) (';'-separated; <stem>-0.uqff brings "
                     "-1, -2, ...), or a type / bits looked up in the model directory",
                     ""},
          o.from_uqff);
  visitor(OptionSpec{"pure", "", "quantization", K::kBool, "false", "false",
                     "With --isq: no promotion of token embeddings and output head", ""},
          o.pure);
  visitor(OptionSpec{"ctx", "-c", "runtime", K::kInt, "4096", "4096",
                     "Context size in tokens: the KV cache is allocated for this many", "", 1,
                     int64_t{1} << 24},
          o.ctx);
  visitor(OptionSpec{"threads", "-t", "runtime", K::kInt, "0", "0",
                     "Worker threads (0: every CPU this process may use)", "", 0, 4096},
          o.threads);
}

// The declarations alone, in visiting order (for help lists and documentation).
std::vector<OptionSpec> build_option_specs();

// Checks one value against its declaration: a choice among its choices (case-insensitive, the
// canonical spelling stored), an integer in range. Throws InvalidArgument "NAME: VALUE invalid;
// expected ..." naming the range or the valid values in words.
void check_option(const OptionSpec& spec, std::string& value);
void check_option(const OptionSpec& spec, int64_t value);

}  // namespace insitu
