// A loaded language model and the sessions that run it.
//
// Model::load reads a GGUF file or a Hugging Face-style directory (config.json, *.safetensors,
// tokenizer.json) into one immutable object: configuration, tokenizer, chat template and weights.
// After load a Model is never mutated and may be shared by many threads/sessions.
// A Session owns one KV cache and evaluates tokens against a Model; it is not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "insitu/quant_type.h"
#include "kernels/matmul.h"
#include "model/config.h"
#include "model/isq.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/thread_pool.h"

namespace insitu {

// A weight as held in memory: packed in its own type (or dequantized to f32), row-major
// [n_out, n_in]. Owns its bytes or points into a mapping the Model keeps alive.
struct Weight {
  std::string name;
  QuantType type = QuantType::kF32;
  std::vector<int64_t> ne;  // ggml order
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<const void> owner;  // keeps `data` alive
  // Set when `data` points into a file mapping: drops those pages from the resident set once the
  // weight has been converted (the bytes stay readable; the kernel re-reads them on access).
  std::function<void()> release_pages;

  WeightView view() const;  // 2-D view for matmul
};

struct LoadOptions {
  std::string path;          // a .gguf file or a Hugging Face-style directory
  int n_threads = 0;         // 0: hardware threads
  bool dequantize_to_f32 = false;  // keep native types by default
  // In-situ quantization of the linear weights, embeddings and output head while loading
  // (model/isq.h); unset: weights keep their stored types.
  std::optional<IsqOptions> isq;
};

class Model {
 public:
  static std::shared_ptr<const Model> load(const LoadOptions& options);

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // The model's chat template: the one in its files, else the architecture's built-in format
  // (model/builtin_templates.h). Null only when neither parses.
  const ChatTemplate* chat_template() const { return chat_template_.get(); }
  const std::string& source_path() const { return source_path_; }

  // Every weight by its GGUF name ("blk.0.attn_q.weight"), in load order.
  const std::vector<Weight>& weights() const { return weights_; }
  const Weight* find_weight(std::string_view name) const;

  // The decisions in-situ quantization with `options` would make for this model's weights, from
  // their shapes alone (nothing is converted; the decisions' weight pointers are for reading).
  // Throws as plan_isq (model/isq.h) does.
  std::vector<IsqDecision> plan_isq(const IsqOptions& options) const;

  ~Model();

 private:
  friend class Session;
  friend class ModelLoader;
  Model() = default;
  struct Layer;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ChatTemplate> chat_template_;
  std::string source_path_;
  std::vector<Weight> weights_;
  std::vector<Layer> layers_;
  const Weight* tok_embd_ = nullptr;
  const Weight* output_norm_ = nullptr;
  const Weight* output_ = nullptr;  // == tok_embd_ when tied
  std::vector<float> rope_freq_factors_;  // head_dim/2 llama3 factors, or empty
  std::shared_ptr<const void> keepalive_;  // mappings
};

// Element type of a Session's KV cache. f16 halves its memory and matches llama.cpp's default.
enum class KvCacheType { kF16, kF32 };

class Session {
 public:
  // n_ctx: KV cache capacity in tokens (<= 0: the model's training context, capped at 4096).
  Session(std::shared_ptr<const Model> model, int n_ctx, ThreadPool& pool,
          KvCacheType kv_type = KvCacheType::kF16);
  ~Session();

  // Appends `tokens` at position n_past(), processing them as one batch (prompt processing).
  // When all_logits, `logits` receives [tokens.size(), n_vocab]; otherwise [n_vocab] for the last
  // token. Throws InvalidArgument when the cache would overflow or an id is out of range.
  void eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits);

  int n_past() const { return n_past_; }
  int n_ctx() const { return n_ctx_; }
  void reset() { n_past_ = 0; }
  // Drops cached positions >= n (to reuse a common prompt prefix).
  void truncate(int n);

  const Model& model() const { return *model_; }

  struct State;  // opaque: KV cache and scratch (defined in model_internal.h)

 private:
  // One micro-batch (at most kMaxBatch tokens) through the architecture's layers; leaves the
  // final hidden states in the state's buffer.
  void forward_llama(int n_tokens);
  void forward_gemma3(int n_tokens);
  void eval_chunk(std::span<const int32_t> tokens, bool all_logits, float* logits_out);
  std::shared_ptr<const Model> model_;
  ThreadPool& pool_;
  int n_ctx_ = 0;
  int n_past_ = 0;
  std::unique_ptr<State> state_;
};

}  // namespace insitu
