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
#include <mutex>
#include <optional>
#include <shared_mutex>
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
  // UQFF shards (model/uqff_load.h) whose layer entries replace the source's weights as stored, no
  // requantization; not with `isq`. Empty for a directory that holds UQFF shards and no source
  // weights: the shards of its only type.
  std::vector<std::string> uqff_files;
  // Resolve the configuration, tokenizer and layer structure but read no weight data: every
  // weight keeps the type, shape and nbytes a plain load() would give it (1-D norms as f32) with
  // its data null. Such a model answers config(), weights() and plan_isq() (what `insitu tune`
  // needs); a Session refuses it. Not with isq, uqff_files or dequantize_to_f32.
  bool shapes_only = false;
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

  // Re-quantizes every weight in-situ quantization considers to `type`, keeping the rest of the
  // options the model was loaded with (or defaults, when it was loaded without --isq): roles,
  // promotion, row-length fallbacks, the importance matrix and topology pins. Each weight is
  // converted from its original source when that is still available (the mapped file unchanged
  // since load: same size and modification time), else from its current bytes with a warning
  // (quality compounds). Each converted weight is swapped in while no forward pass runs: a pass
  // (Session::eval and the layer-at-a-time calls) sees every weight either before or after its
  // swap, never a mix within one weight; passes between swaps may see some weights converted.
  // Safe to call while Sessions on other threads run. Returns the decisions made. Throws
  // InvalidArgument for a type ISQ cannot produce or a streaming model; nothing is changed then.
  std::vector<IsqDecision> re_isq(QuantType type) const;
  std::vector<IsqDecision> re_isq(const IsqOptions& options) const;

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
  bool layer_runnable(int il) const { return unprepared_.empty() || !unprepared_[il]; }
  std::vector<const Weight*> layer_weights(int il) const;  // non-null weights of layer il
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
  mutable std::optional<IsqOptions> isq_options_;
  std::vector<IsqSource> isq_sources_;
  std::vector<SourceStamp> source_stamps_;
  mutable std::mutex re_isq_mu_;           // one re-quantization at a time
  mutable std::shared_mutex weights_mu_;  // shared by forward passes, exclusive for a swap
};

// Sees the input of every linear layer a Session applies (importance-matrix collection). Called on
// the Session's thread just before the weight is applied; a Session without an observer pays one
// null check per matrix product, and an observer never changes results.
class LinearObserver {
 public:
  virtual ~LinearObserver() = default;
  // weight: the matrix applied (weight.name is its GGUF name, weight.ne[0] = n_in).
  // expert: for a mixture-of-experts weight [n_expert, n_out, n_in], the expert these rows were
  //   routed to; -1 for a dense weight.
  // x: [n_rows, n_in] row-major inputs, valid only during the call.
  virtual void observe(const Weight& weight, int expert, const float* x, int64_t n_rows) = 0;
};

// Element type of a Session's KV cache. f16 halves its memory and matches llama.cpp's default.
enum class KvCacheType { kF16, kF32 };

class Session {
 public:
  // n_ctx: KV cache capacity in tokens (<= 0: the model's training context, capped at 4096).
  // Throws InvalidArgument for a model loaded with LoadOptions::shapes_only.
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
  // Drops cached positions >= n (to reuse a common prompt prefix) and returns the positions kept:
  // min(n, n_past()), or 0 when a sliding-window layer's ring (model/session_memory.h) has already
  // overwritten keys position n would attend to (the prefix must then be evaluated again).
  int truncate(int n);

  const Model& model() const { return *model_; }

  // Bytes held now by the KV cache (layers that have stored keys so far) and by the scratch
  // buffers; model/session_memory.h computes the same from the configuration alone.
  uint64_t kv_cache_bytes() const;
  uint64_t scratch_bytes() const;

  // Every linear layer's input goes to `observer` from now on (null: none). Not owned; it must
  // outlive its use.
  void set_linear_observer(LinearObserver* observer) { observer_ = observer; }

  // Layer-at-a-time evaluation, for work that runs many sequences through one layer before the
  // next (streaming imatrix collection). The caller holds the hidden states; each step computes
  // exactly what eval() does between the same points.
  // embed: x[n, n_embd] = the tokens' embeddings, scaled as the architecture does. Throws
  //   InvalidArgument for an id out of range.
  void embed(std::span<const int32_t> tokens, float* x) const;
  // Runs layer il over x[n, n_embd] in place at positions [pos, pos + n): writes those positions of
  // the layer's KV cache and attends over [0, pos + n) of it. n_past() is not changed. Throws
  // InvalidArgument when the positions overflow the context or the layer is not runnable (a
  // streaming model's layer that is not prepared).
  void run_layer(int il, float* x, int n, int pos);
  // The final norm and output head: logits[n, n_vocab] from x[n, n_embd] (x is not changed).
  void run_output(const float* x, int n, float* logits);
  // Frees layer il's KV cache; it is allocated again, empty, when the layer next runs.
  void release_layer_cache(int il);

  struct State;  // opaque: KV cache and scratch (defined in model_internal.h)

 private:
  // Scratch for a micro-batch of n tokens (at most kMaxBatch) at positions [pos0, pos0 + n), and
  // the architecture's per-batch tables (RoPE).
  void begin_batch(int n, int pos0);
  // Layer il of the architecture over the micro-batch's hidden states x[n, n_embd], in place.
  void run_layer_batch(int il, float* x, int n);
  void prepare_llama(int n);
  void layer_llama(int il, float* x, int n);
  // Mixtral's sparse MLP over xn[n, n_embd] into out[n, n_embd]: router softmax, top-k experts
  // with renormalised weights, each expert applied once to the rows routed to it.
  void moe_llama(int il, const float* xn, int n, float* out);
  void prepare_gemma3(int n);
  void layer_gemma3(int il, float* x, int n);
  // Stores the batch's keys and values (state k, v) in layer il's cache and attends with the
  // batch's queries (state q, RoPE applied) into state att; window > 0: sliding window.
  void attend(int il, int n, int window, float scale);
  // y[n, n_out] = x @ w^T (+ bias), shown to the observer first.
  void linear(const Weight& w, const Weight* bias, const float* x, int n, float* y);
  // The same with expert `expert` of a stacked expert weight [n_expert, n_out, n_in].
  void linear_expert(const Weight& w, int expert, const float* x, int n, float* y);
  void eval_chunk(std::span<const int32_t> tokens, bool all_logits, float* logits_out);
  // embed and run_output without taking the model's weight lock (the caller holds it).
  void embed_locked(std::span<const int32_t> tokens, float* x) const;
  void run_output_locked(const float* x, int n, float* logits);
  std::shared_ptr<const Model> model_;
  ThreadPool& pool_;
  int n_ctx_ = 0;
  int n_past_ = 0;
  LinearObserver* observer_ = nullptr;
  std::unique_ptr<State> state_;
};

}  // namespace insitu
