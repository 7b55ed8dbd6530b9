// A loaded language model: configuration, tokenizer, chat template and weights in one immutable
// object, shared by every Session and thread that runs it.
//
// Build one with ModelBuilder (the front door: quantization flags, UQFF, calibration) or
// Model::load (the loader alone). A Model is never changed after it is built: re_isq() returns a
// new Model that shares every weight it does not convert, and whoever serves the model swaps its
// pointer; sessions finish on the weights they started with.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "insitu/chat_template.h"
#include "insitu/config.h"
#include "insitu/options.h"
#include "insitu/quant_type.h"
#include "insitu/tokenizer.h"

namespace insitu {

struct Weight;       // a weight as held in memory (library-internal layout)
struct LoadOptions;  // the loader's options (ModelBuilder fills them)
struct IsqOptions;   // in-situ quantization options (ModelBuilder fills them)
struct IsqDecision;  // what in-situ quantization does to one weight

class Model {
 public:
  static std::shared_ptr<const Model> load(const LoadOptions& options);

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // The model's chat template: the one in its files, else the architecture's built-in format
  // (model/builtin_templates.h). Null only when neither parses.
  const ChatTemplate* chat_template() const { return chat_template_.get(); }
  // The built-in format's name ("chatml", "gemma") when the model files carry no template (a base
  // model, often: chatting with it may not go well); empty when the template is the model's own.
  const std::string& builtin_chat_format() const { return builtin_template_; }
  const std::string& source_path() const { return source_path_; }

  // Every weight by its GGUF name ("blk.0.attn_q.weight"), in load order.
  const std::vector<Weight>& weights() const { return weights_; }
  const Weight* find_weight(std::string_view name) const;

  // The decisions in-situ quantization with `options` would make for this model's weights, from
  // their shapes alone (nothing is converted; the decisions' weight pointers are for reading).
  // Throws as plan_isq (model/isq.h) does.
  std::vector<IsqDecision> plan_isq(const IsqOptions& options) const;

  // A new Model whose weights in-situ quantization considers are re-quantized to `type`, keeping
  // the rest of the options this model was loaded with (or defaults, when it was loaded without
  // --isq): roles, promotion, row-length fallbacks, the importance matrix and topology pins. Each
  // weight is converted from its original source when that is still available (the mapped file
  // unchanged since load: same size and modification time), else from its current bytes with a
  // warning (quality compounds). This model is never changed: the new one shares every weight it
  // does not convert (and the tokenizer, template and mappings), so Sessions on this model finish
  // on the weights they started with, and whoever serves the model swaps its pointer. The old
  // weights are freed when the last Session or pointer using them goes. Safe to call while
  // Sessions on other threads run. `decisions`, when given, receives the decisions made (their
  // weight pointers refer to the new model). Throws InvalidArgument for a type ISQ cannot produce
  // or a streaming model.
  std::shared_ptr<const Model> re_isq(QuantType type,
                                      std::vector<IsqDecision>* decisions = nullptr) const;
  std::shared_ptr<const Model> re_isq(const IsqOptions& options,
                                      std::vector<IsqDecision>* decisions = nullptr) const;
  // The ISQ options the weights were last quantized with; null for weights as stored.
  const IsqOptions* isq_options() const { return isq_options_.get(); }

  // True when loaded with LoadOptions::shapes_only (no weight data).
  bool shapes_only() const { return shapes_only_; }

  // Streaming use, for work that visits the layers one at a time so that only one layer's weights
  // need be resident (imatrix collection). load_streaming loads like load() but leaves conversions
  // that copy whole weights (the Hugging Face Q/K row permutation) for prepare_layer. Every layer
  // of such a model starts unprepared, and a Session runs only prepared layers (run_layer and eval
  // throw InvalidArgument otherwise). Not thread-safe: one user at a time.
  // Throws InvalidArgument when the options ask for conversions at load (isq, dequantize_to_f32).
  static std::shared_ptr<Model> load_streaming(const LoadOptions& options);
  // Makes layer il runnable: applies its deferred conversions into owned buffers.
  void prepare_layer(int il);
  // Undoes prepare_layer: frees the layer's converted buffers and returns the pages of its mapped
  // weights to the kernel; a streaming model's layer must be prepared again before it runs. On a
  // model loaded by load() it only returns the pages (they are read back if touched).
  void release_layer(int il);

  ~Model();

 private:
  friend class Session;
  friend class ModelLoader;
  Model() = default;
  struct Layer;
  struct Deferred;  // model_internal.h
  // deferred_stacks: (index into weights_, per-expert sources) of unassembled expert stacks.
  void init_streaming(const std::vector<std::pair<size_t, int>>& deferred_permutations,
                      std::vector<std::pair<size_t, std::vector<Weight>>> deferred_stacks = {});
  // A copy that shares every weight's bytes, the tokenizer, template and mappings, with its layer
  // pointers rebound to its own weights (re_isq converts in the copy). Not for streaming models.
  std::shared_ptr<Model> share_weights() const;
  bool layer_runnable(int il) const { return unprepared_.empty() || !unprepared_[il]; }
  std::vector<const Weight*> layer_weights(int il) const;  // non-null weights of layer il
  ModelConfig config_;
  std::shared_ptr<const Tokenizer> tokenizer_;         // shared with re_isq's models
  std::shared_ptr<const ChatTemplate> chat_template_;
  std::string source_path_;
  std::string builtin_template_;  // builtin_chat_format()
  std::vector<Weight> weights_;
  std::vector<Layer> layers_;
  const Weight* tok_embd_ = nullptr;
  const Weight* output_norm_ = nullptr;
  const Weight* output_ = nullptr;  // == tok_embd_ when tied
  std::vector<float> rope_freq_factors_;  // head_dim/2 llama3 factors, or empty
  std::shared_ptr<const void> keepalive_;  // mappings
  bool shapes_only_ = false;               // LoadOptions::shapes_only: no weight data
  // Streaming loads only: the deferred conversions, and per layer 1 while it is not prepared.
  std::vector<Deferred> deferred_;
  std::vector<uint8_t> unprepared_;
  // In-situ quantization (model/re_isq.cc): the options of the last quantization, each converted
  // weight's original (mapped) form, and the source files' stamps to tell whether they changed.
  struct IsqSource;
  struct SourceStamp;
  static std::vector<SourceStamp> stamp_sources(const std::string& path);
  bool sources_unchanged() const;
  std::shared_ptr<const IsqOptions> isq_options_;
  std::vector<IsqSource> isq_sources_;
  std::vector<SourceStamp> source_stamps_;
};

// Summary of a model for front ends: what it is and what it holds.
struct ModelInfo {
  std::string name;          // general.name or the directory name
  std::string architecture;  // "llama", "gemma3", ...
  std::string path;          // the file or directory it was loaded from
  int n_layer = 0;
  int n_embd = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;       // the context it was trained with (0: unknown)
  uint64_t n_params = 0;     // elements of every weight
  uint64_t weight_bytes = 0; // bytes of every weight as held
  std::string weight_types;  // the types held, most bytes first ("q4k 61%, q6k 22%, f32 17%")
  bool has_chat_template = false;
};
ModelInfo model_info(const Model& model);

// Loads a model the way `insitu run` does, from one description (options.h's BuildOptions):
//   auto model = ModelBuilder("HuggingFaceTB/SmolLM2-135M-Instruct").with_isq(QuantType::kQ4K)
//                    .build();
// The path is a .gguf file, a Hugging Face-style directory (safetensors or UQFF), or an org/name
// id looked up in the local Hugging Face cache (never the network). Every setter validates what
// it can at once (InvalidArgument naming the value and the valid ones); build() checks the
// combination, resolves --quant (a prebuilt UQFF beside the model, else ISQ), collects a
// calibration imatrix when asked, and loads. Throws insitu::Error subclasses naming the file.
class ModelBuilder {
 public:
  explicit ModelBuilder(std::string path);
  explicit ModelBuilder(BuildOptions options);

  // In-situ quantization to one type (its embeddings/output promotion as mistral.rs does).
  ModelBuilder& with_isq(QuantType type);
  // In-situ quantization by name: a type, bits ("4") or a llama.cpp mix ("q4k_m", "Q4_K_M").
  ModelBuilder& with_isq(std::string_view name);
  // In-situ quantization to the default type of that many bits (mistral.rs's IsqBits).
  ModelBuilder& with_auto_isq(Bits bits);
  // The --quant front door: "auto" (what tune recommends), bits or a type: a prebuilt UQFF of
  // that type beside the model when there is one, else in-situ quantization.
  ModelBuilder& with_quant(std::string_view spec);
  ModelBuilder& with_topology(std::string yaml_path);
  ModelBuilder& with_imatrix(std::string path);
  ModelBuilder& with_calibration_file(std::string text_path);
  // UQFF shards or a type/bits looked up in the model directory (';'-separated).
  ModelBuilder& with_from_uqff(std::string spec);
  ModelBuilder& with_isq_organization(IsqOrganization organization);
  ModelBuilder& with_pure(bool pure = true);
  ModelBuilder& with_threads(int n_threads);
  // --quant auto: the profile and the memory to fit in (e.g. "8G"; empty: RAM available now),
  // and the context the model must leave room for.
  ModelBuilder& with_auto_profile(std::string profile);
  ModelBuilder& with_max_memory(std::string size);
  ModelBuilder& with_context(int n_ctx);
  ModelBuilder& with_progress(bool show);

  const BuildOptions& options() const { return options_; }
  std::shared_ptr<const Model> build() const;

 private:
  BuildOptions options_;
};

}  // namespace insitu
