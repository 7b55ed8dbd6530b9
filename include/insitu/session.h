// A Session: one sequence's KV cache, evaluating tokens against a Model.
//
// A Session is not thread-safe: one thread uses it at a time. Many Sessions (on one Model or
// several) run concurrently through one Executor, and Session::step evaluates one token for each
// of several Sessions in one pass over the weights.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace insitu {

class Model;
class Executor;
class ThreadPool;
class LinearObserver;
struct Weight;

// Element type of a Session's KV cache. f16 halves its memory and matches llama.cpp's default.
enum class KvCacheType { kF16, kF32 };

class Session {
 public:
  // n_ctx: KV cache capacity in tokens (<= 0: the model's training context, capped at 4096).
  // The session computes on the executor's threads, taking turns with the executor's other
  // sessions (include/insitu/executor.h); the executor must outlive it.
  // Throws InvalidArgument for a model loaded with LoadOptions::shapes_only.
  Session(std::shared_ptr<const Model> model, int n_ctx, Executor& executor,
          KvCacheType kv_type = KvCacheType::kF16);
  // The same on a thread pool of the library's own (quality tools and tests).
  Session(std::shared_ptr<const Model> model, int n_ctx, ThreadPool& pool,
          KvCacheType kv_type = KvCacheType::kF16);
  ~Session();

  // Appends `tokens` at position n_past(), processing them as one batch (prompt processing).
  // When all_logits, `logits` receives [tokens.size(), n_vocab]; otherwise [n_vocab] for the last
  // token. Throws InvalidArgument when the cache would overflow or an id is out of range.
  void eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits);

  // One decoding step for several sessions at once: appends tokens[i] to sessions[i] for every i,
  // reading the model's weights once for all of them (the matrix products run on N rows), with
  // each session attending over its own cache. logits (when not null) receives [N, n_vocab], row i
  // for session i. The results equal N separate eval() calls within the kernels' batch-size
  // tolerance. The scratch used is the first session's. Every session must run the same Model
  // object, have room for one more token and appear once; throws InvalidArgument otherwise
  // (nothing is changed then). No session may be used by another thread meanwhile.
  static void step(std::span<Session* const> sessions, std::span<const int32_t> tokens,
                   float* logits);

  int n_past() const { return n_past_; }
  int n_ctx() const { return n_ctx_; }
  void reset() { n_past_ = 0; }
  // Drops cached positions >= n (to reuse a common prompt prefix) and returns the positions kept:
  // min(n, n_past()), or 0 when a sliding-window layer's ring (model/session_memory.h) has already
  // overwritten keys position n would attend to (the prefix must then be evaluated again).
  int truncate(int n);

  const Model& model() const { return *model_; }
  const std::shared_ptr<const Model>& model_ptr() const { return model_; }

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
  // The same for the segments already in the state (State::segments), n rows in all.
  void begin_segments(int n);
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
  std::shared_ptr<const Model> model_;
  ThreadPool& pool_;
  int n_ctx_ = 0;
  int n_past_ = 0;
  LinearObserver* observer_ = nullptr;
  std::unique_ptr<State> state_;
};

}  // namespace insitu
