// Session: KV cache, micro-batching, embeddings, the output head and the shared attention.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "insitu/error.h"
#include "model/model_internal.h"
#include "model/session_memory.h"
#include "quant/float_convert.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"
#include "util/system_memory.h"

namespace insitu {

namespace detail {

void linear(const Weight& w, const Weight* bias, const float* x, int64_t n, float* y,
            ThreadPool& pool) {
  const WeightView v = w.view();
  matmul(v, x, n, y, pool);
  if (bias) {
    const float* b = reinterpret_cast<const float*>(bias->data);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = 0; o < v.n_out; ++o) y[t * v.n_out + o] += b[o];
  }
}

void rms_norm_rows(const float* x, const Weight* w, float* y, int64_t n, int64_t d, float eps,
                   ThreadPool& pool) {
  const float* wd = w ? reinterpret_cast<const float*>(w->data) : nullptr;
  // Rows are cheap: only split when there are enough of them to pay for waking the pool.
  if (n * d < (1 << 15)) {
    for (int64_t r = 0; r < n; ++r) ops::rms_norm(x + r * d, wd, y + r * d, d, eps);
    return;
  }
  pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) ops::rms_norm(x + r * d, wd, y + r * d, d, eps);
  });
}

void attention(const AttentionArgs& a, std::vector<std::vector<float>>& scores, ThreadPool& pool) {
  const int group = a.n_head / a.n_head_kv;
  const int64_t qw = static_cast<int64_t>(a.n_head) * a.head_dim;
  const int64_t kvw = static_cast<int64_t>(a.n_head_kv) * a.head_dim;
  const int64_t n_tasks = static_cast<int64_t>(a.n_tokens) * a.n_head;
  pool.parallel_for(n_tasks, [&](int thread, int64_t begin, int64_t end) {
    float* s = scores[thread].data();
    for (int64_t task = begin; task < end; ++task) {
      const int t = static_cast<int>(task / a.n_head);
      const int h = static_cast<int>(task % a.n_head);
      const int g = h / group;
      const int pos = a.pos0 + t;
      const int lo = a.window > 0 ? std::max(0, pos - a.window + 1) : 0;
      const float* q = a.q + t * qw + static_cast<int64_t>(h) * a.head_dim;
      float* out = a.out + t * qw + static_cast<int64_t>(h) * a.head_dim;
      const int64_t off = static_cast<int64_t>(g) * a.head_dim;
      const int n_keys = pos - lo + 1;
      float qh[kMaxHeadDim];
      if (a.k16) {
        // llama.cpp multiplies an f16 cache with q converted to f16 (the f16 vec_dot type).
        for (int i = 0; i < a.head_dim; ++i) qh[i] = round_to_fp16(q[i]);
        q = qh;
      }
      // Key j lives in row j % cache_rows; the rows of [lo, pos] wrap at most once.
      const int row0 = lo % a.cache_rows;
      for (int j = 0, row = row0; j < n_keys; ++j, row = row + 1 == a.cache_rows ? 0 : row + 1) {
        const float d = a.k16 ? ops::dot_f16(q, a.k16 + row * kvw + off, a.head_dim)
                              : ops::dot_f32(q, a.k32 + row * kvw + off, a.head_dim);
        s[j] = d * a.scale;
      }
      ops::softmax(s, n_keys);
      if (a.v16) {
        // ...and likewise converts the probabilities to f16 before multiplying the f16 V cache.
        for (int j = 0; j < n_keys; ++j) s[j] = round_to_fp16(s[j]);
      }
      std::fill(out, out + a.head_dim, 0.0f);
      for (int j = 0, row = row0; j < n_keys; ++j, row = row + 1 == a.cache_rows ? 0 : row + 1) {
        if (a.v16) ops::axpy_f16(s[j], a.v16 + row * kvw + off, out, a.head_dim);
        else ops::axpy_f32(s[j], a.v32 + row * kvw + off, out, a.head_dim);
      }
    }
  });
}

void store_kv(Session::State& st, int il, const float* k, const float* v, int n) {
  const int64_t w = st.kv_dim;
  const int rows = st.kv_positions[il];
  const size_t cache = static_cast<size_t>(rows) * st.kv_dim;
  // Rows [pos0 % rows, ...), wrapping to row 0 at most once (a batch is at most kMaxBatch tokens
  // and a ring holds more than that).
  const int row0 = st.pos0 % rows;
  const int64_t first = std::min(n, rows - row0);
  const int64_t off = static_cast<int64_t>(row0) * w;
  if (st.kv_type == KvCacheType::kF16) {
    if (st.k16[il].empty()) {
      st.k16[il].resize(cache);
      st.v16[il].resize(cache);
    }
    ops::store_f16(k, st.k16[il].data() + off, first * w);
    ops::store_f16(v, st.v16[il].data() + off, first * w);
    ops::store_f16(k + first * w, st.k16[il].data(), (n - first) * w);
    ops::store_f16(v + first * w, st.v16[il].data(), (n - first) * w);
  } else {
    if (st.k32[il].empty()) {
      st.k32[il].resize(cache);
      st.v32[il].resize(cache);
    }
    std::copy(k, k + first * w, st.k32[il].data() + off);
    std::copy(v, v + first * w, st.v32[il].data() + off);
    std::copy(k + first * w, k + n * w, st.k32[il].data());
    std::copy(v + first * w, v + n * w, st.v32[il].data());
  }
}

AttentionArgs cache_args(const Session::State& st, int il) {
  AttentionArgs a;
  if (st.kv_type == KvCacheType::kF16) {
    a.k16 = st.k16[il].data();
    a.v16 = st.v16[il].data();
  } else {
    a.k32 = st.k32[il].data();
    a.v32 = st.v32[il].data();
  }
  a.pos0 = st.pos0;
  a.cache_rows = st.kv_positions[il];
  return a;
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace detail

Session::Session(std::shared_ptr<const Model> model, int n_ctx, ThreadPool& pool,
                 KvCacheType kv_type)
    : model_(std::move(model)), pool_(pool) {
  if (!model_) throw InvalidArgument("Session: null model");
  if (model_->shapes_only())
    throw InvalidArgument(fmt::format("Session: {} was loaded for its shapes only (no weights)",
                                      model_->source_path()));
  const ModelConfig& c = model_->config();
  if (n_ctx <= 0) n_ctx = c.n_ctx_train > 0 ? std::min(c.n_ctx_train, 4096) : 4096;
  if (n_ctx > (1 << 24)) throw InvalidArgument(fmt::format("Session: n_ctx {} too large", n_ctx));
  // Positions past the trained context give the model rotations it never saw: refuse them unless
  // the configuration scales RoPE for a longer context.
  if (c.n_ctx_train > 0 && n_ctx > c.n_ctx_train && c.rope_scaling.kind == RopeScaling::Kind::kNone)
    throw InvalidArgument(fmt::format("Session: a context of {} tokens exceeds the {} tokens {} "
                                      "was trained with (and it configures no RoPE scaling)",
                                      n_ctx, c.n_ctx_train, model_->source_path()));
  // The KV cache is allocated as layers use it; refuse one that could never fit.
  const uint64_t kv_bytes = insitu::kv_cache_bytes(c, n_ctx, kv_type);
  if (kv_bytes > (uint64_t{256} << 20)) {
    const SystemMemory mem = detect_system_memory();
    if (mem.host_available > 0 && kv_bytes > mem.host_available)
      throw InvalidArgument(fmt::format("Session: a context of {} tokens needs {:.1f} GiB of KV "
                                        "cache; {:.1f} GiB of memory is available",
                                        n_ctx, kv_bytes / 1073741824.0,
                                        mem.host_available / 1073741824.0));
  }
  n_ctx_ = n_ctx;
  state_ = std::make_unique<State>();
  State& st = *state_;
  st.kv_type = kv_type;
  st.n_ctx = n_ctx_;
  st.kv_dim = c.n_head_kv * c.head_dim;
  st.kv_positions.resize(c.n_layer);
  for (int il = 0; il < c.n_layer; ++il)
    st.kv_positions[il] = kv_cache_layer_positions(c, il, n_ctx_);
  if (kv_type == KvCacheType::kF16) {
    st.k16.resize(c.n_layer);
    st.v16.resize(c.n_layer);
  } else {
    st.k32.resize(c.n_layer);
    st.v32.resize(c.n_layer);
  }
  st.scores.assign(pool_.size(), std::vector<float>(n_ctx_));
}

Session::~Session() = default;

int Session::truncate(int n) {
  n = std::clamp(n, 0, n_past_);
  // Position n's query needs keys [n - window + 1, n) of each sliding-window layer; its ring holds
  // [n_past - rows, n_past). When older ones were overwritten nothing before n is usable.
  const ModelConfig& c = model_->config();
  for (int il = 0; il < c.n_layer && n > 0; ++il) {
    if (!c.layer_is_sliding(il)) continue;
    const int oldest_needed = std::max(0, n - c.sliding_window + 1);
    if (oldest_needed < n_past_ - state_->kv_positions[il]) n = 0;
  }
  n_past_ = n;
  return n;
}

void Session::eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits) {
  const int n_vocab = model_->config().n_vocab;
  if (tokens.empty()) throw InvalidArgument("Session::eval: no tokens");
  if (static_cast<int64_t>(tokens.size()) > static_cast<int64_t>(n_ctx_) - n_past_)
    throw InvalidArgument(fmt::format("Session::eval: {} tokens at position {} overflow the "
                                      "context of {}", tokens.size(), n_past_, n_ctx_));
  for (int32_t id : tokens)
    if (id < 0 || id >= n_vocab)
      throw InvalidArgument(fmt::format("Session::eval: token id {} out of range [0, {})", id,
                                        n_vocab));
  for (int il = 0; il < model_->config().n_layer; ++il)
    if (!model_->layer_runnable(il))
      throw InvalidArgument(fmt::format("Session::eval: layer {} of {} is not prepared (a "
                                        "streaming model runs only prepared layers)", il,
                                        model_->source_path()));
  logits.resize(static_cast<size_t>(all_logits ? tokens.size() : 1) * n_vocab);
  for (size_t b = 0; b < tokens.size(); b += kMaxBatch) {
    const size_t n = std::min<size_t>(kMaxBatch, tokens.size() - b);
    const bool last = b + n == tokens.size();
    float* out = all_logits ? logits.data() + b * n_vocab : (last ? logits.data() : nullptr);
    eval_chunk(tokens.subspan(b, n), all_logits, out);
  }
}

void Session::eval_chunk(std::span<const int32_t> tokens, bool all_logits, float* logits_out) {
  const int64_t E = model_->config().n_embd;
  State& st = *state_;
  const int n = static_cast<int>(tokens.size());
  begin_batch(n, n_past_);
  embed(tokens, st.x.data());
  for (int il = 0; il < model_->config().n_layer; ++il) run_layer_batch(il, st.x.data(), n);
  // Positions are committed only after the whole batch went through every layer.
  n_past_ += n;

  if (!logits_out) return;
  // Output head on the rows asked for.
  const int first = all_logits ? 0 : n - 1;
  run_output(st.x.data() + first * E, n - first, logits_out);
}

void Session::begin_batch(int n, int pos0) {
  State& st = *state_;
  st.segments.assign(1, State::Segment{&st, 0, n, pos0});
  begin_segments(n);
}

void Session::begin_segments(int n) {
  const ModelConfig& c = model_->config();
  State& st = *state_;
  const int64_t E = c.n_embd;
  st.pos0 = st.segments.front().pos0;
  auto grow = [](std::vector<float>& v, size_t size) {
    if (v.size() < size) v.resize(size);
  };
  grow(st.x, n * E);
  grow(st.xn, n * E);
  grow(st.tmp, n * E);
  grow(st.q, static_cast<size_t>(n) * c.n_head * c.head_dim);
  grow(st.att, static_cast<size_t>(n) * c.n_head * c.head_dim);
  grow(st.k, static_cast<size_t>(n) * st.kv_dim);
  grow(st.v, static_cast<size_t>(n) * st.kv_dim);
  grow(st.gate, static_cast<size_t>(n) * c.n_ff);
  grow(st.up, static_cast<size_t>(n) * c.n_ff);
  if (c.is_moe()) {
    const size_t nk = static_cast<size_t>(n) * c.n_expert_used;
    grow(st.router, static_cast<size_t>(n) * c.n_expert);
    grow(st.moe_w, nk);
    grow(st.moe_x, n * E);
    grow(st.moe_y, nk * E);
    if (st.moe_ids.size() < nk) st.moe_ids.resize(nk);
    if (st.moe_rows.size() < nk) st.moe_rows.resize(nk);
  }
  grow(st.rope_cs, static_cast<size_t>(n) * c.head_dim);
  grow(st.rope_cs_local, static_cast<size_t>(n) * c.head_dim);
  st.row_pos.resize(n);
  int n_ctx = 0;
  for (const State::Segment& seg : st.segments) {
    for (int t = 0; t < seg.n; ++t) st.row_pos[seg.row0 + t] = seg.pos0 + t;
    n_ctx = std::max(n_ctx, seg.kv->n_ctx);
  }
  for (std::vector<float>& s : st.scores)
    if (s.size() < static_cast<size_t>(n_ctx)) s.resize(n_ctx);
  switch (c.arch) {
    case Arch::kLlama: prepare_llama(n); break;
    case Arch::kGemma3: prepare_gemma3(n); break;
  }
}

void Session::step(std::span<Session* const> sessions, std::span<const int32_t> tokens,
                   float* logits) {
  if (sessions.empty()) return;
  if (tokens.size() != sessions.size())
    throw InvalidArgument(fmt::format("Session::step: {} tokens for {} sessions", tokens.size(),
                                      sessions.size()));
  if (sessions.size() > static_cast<size_t>(kMaxBatch))
    throw InvalidArgument(fmt::format("Session::step: {} sessions; at most {} step together",
                                      sessions.size(), kMaxBatch));
  Session& lead = *sessions.front();
  const Model& m = *lead.model_;
  const ModelConfig& c = m.config();
  for (size_t i = 0; i < sessions.size(); ++i) {
    const Session& s = *sessions[i];
    if (s.model_.get() != &m)
      throw InvalidArgument("Session::step: the sessions run different models (a batched step "
                            "reads one model's weights once for all of them)");
    for (size_t j = 0; j < i; ++j)
      if (sessions[j] == &s) throw InvalidArgument("Session::step: a session appears twice");
    if (s.n_past_ >= s.n_ctx_)
      throw InvalidArgument(fmt::format("Session::step: session {} is full ({} tokens)", i,
                                        s.n_ctx_));
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab)
      throw InvalidArgument(fmt::format("Session::step: token id {} out of range [0, {})",
                                        tokens[i], c.n_vocab));
  }
  for (int il = 0; il < c.n_layer; ++il)
    if (!m.layer_runnable(il))
      throw InvalidArgument(fmt::format("Session::step: layer {} of {} is not prepared", il,
                                        m.source_path()));
  const int n = static_cast<int>(sessions.size());
  State& st = *lead.state_;
  st.segments.clear();
  for (int i = 0; i < n; ++i)
    st.segments.push_back(State::Segment{sessions[i]->state_.get(), i, 1, sessions[i]->n_past_});
  lead.begin_segments(n);
  lead.embed(tokens, st.x.data());
  for (int il = 0; il < c.n_layer; ++il) lead.run_layer_batch(il, st.x.data(), n);
  for (Session* s : sessions) ++s->n_past_;
  if (logits != nullptr) lead.run_output(st.x.data(), n, logits);
}

void Session::run_layer_batch(int il, float* x, int n) {
  switch (model_->config().arch) {
    case Arch::kLlama: layer_llama(il, x, n); break;
    case Arch::kGemma3: layer_gemma3(il, x, n); break;
  }
}

void Session::attend(int il, int n, int window, float scale) {
  const ModelConfig& c = model_->config();
  State& st = *state_;
  const int64_t qw = static_cast<int64_t>(c.n_head) * c.head_dim;
  for (const State::Segment& seg : st.segments) {
    State& kv = *seg.kv;
    kv.pos0 = seg.pos0;
    detail::store_kv(kv, il, st.k.data() + seg.row0 * st.kv_dim,
                     st.v.data() + seg.row0 * st.kv_dim, seg.n);
    detail::AttentionArgs a = detail::cache_args(kv, il);
    a.q = st.q.data() + seg.row0 * qw;
    a.out = st.att.data() + seg.row0 * qw;
    a.n_tokens = seg.n;
    a.n_head = c.n_head;
    a.n_head_kv = c.n_head_kv;
    a.head_dim = c.head_dim;
    a.window = window;
    a.scale = scale;
    detail::attention(a, st.scores, pool_);
  }
  (void)n;
}

void Session::linear(const Weight& w, const Weight* bias, const float* x, int n, float* y) {
  if (observer_) observer_->observe(w, -1, x, n);
  detail::linear(w, bias, x, n, y, pool_);
}

void Session::linear_expert(const Weight& w, int expert, const float* x, int n, float* y) {
  if (observer_) observer_->observe(w, expert, x, n);
  WeightView v = w.view();
  // Each expert's slab is a whole matrix (with its scale grid for fp8).
  v.data = static_cast<const uint8_t*>(v.data) +
           static_cast<size_t>(expert) * quant_tensor_size(v.type, v.n_out, v.n_in);
  matmul(v, x, n, y, pool_);
}

void Session::embed(std::span<const int32_t> tokens, float* x) const {
  const Model& m = *model_;
  const ModelConfig& c = m.config_;
  const int64_t E = c.n_embd;
  for (int32_t id : tokens)
    if (id < 0 || id >= c.n_vocab)
      throw InvalidArgument(fmt::format("Session::embed: token id {} out of range [0, {})", id,
                                        c.n_vocab));
  // Rows of token_embd, dequantized (as ggml_get_rows does); fp8's scales sit after the rows.
  const Weight& emb = *m.tok_embd_;
  for (size_t t = 0; t < tokens.size(); ++t)
    dequantize_rows(emb.type, emb.data, c.n_vocab, E, tokens[t], tokens[t] + 1, x + t * E);
  if (c.arch == Arch::kGemma3) {
    const float scale = std::sqrt(static_cast<float>(E));
    const int64_t total = static_cast<int64_t>(tokens.size()) * E;
    for (int64_t i = 0; i < total; ++i) x[i] *= scale;
  }
}

void Session::run_layer(int il, float* x, int n, int pos) {
  const Model& m = *model_;
  const ModelConfig& c = m.config_;
  if (il < 0 || il >= c.n_layer)
    throw InvalidArgument(fmt::format("Session::run_layer: layer {} out of range [0, {})", il,
                                      c.n_layer));
  if (n <= 0 || pos < 0 || static_cast<int64_t>(pos) + n > n_ctx_)
    throw InvalidArgument(fmt::format("Session::run_layer: {} tokens at position {} do not fit "
                                      "the context of {}", n, pos, n_ctx_));
  if (!m.layer_runnable(il))
    throw InvalidArgument(fmt::format("Session::run_layer: layer {} of {} is not prepared (a "
                                      "streaming model runs only prepared layers)", il,
                                      m.source_path_));
  const int64_t E = c.n_embd;
  for (int b = 0; b < n; b += kMaxBatch) {
    const int nb = std::min(kMaxBatch, n - b);
    begin_batch(nb, pos + b);
    run_layer_batch(il, x + static_cast<int64_t>(b) * E, nb);
  }
}

void Session::run_output(const float* x, int n, float* logits) {
  const Model& m = *model_;
  const ModelConfig& c = m.config_;
  State& st = *state_;
  const int64_t E = c.n_embd;
  if (st.xn.size() < static_cast<size_t>(n) * E) st.xn.resize(static_cast<size_t>(n) * E);
  detail::rms_norm_rows(x, m.output_norm_, st.xn.data(), n, E, c.rms_eps, pool_);
  linear(*m.output_, nullptr, st.xn.data(), n, logits);
  if (c.final_logit_softcap > 0) {
    // As llama.cpp: scale by 1/cap, tanh, scale by cap.
    const float cap = c.final_logit_softcap;
    const float inv = 1.0f / cap;
    const int64_t total = static_cast<int64_t>(n) * c.n_vocab;
    for (int64_t i = 0; i < total; ++i) logits[i] = std::tanh(logits[i] * inv) * cap;
  }
}

void Session::release_layer_cache(int il) {
  State& st = *state_;
  if (il < 0 || il >= model_->config().n_layer)
    throw InvalidArgument(fmt::format("Session::release_layer_cache: layer {} out of range", il));
  auto drop = [](auto& v) { std::decay_t<decltype(v)>().swap(v); };
  if (st.kv_type == KvCacheType::kF16) {
    drop(st.k16[il]);
    drop(st.v16[il]);
  } else {
    drop(st.k32[il]);
    drop(st.v32[il]);
  }
}

}  // namespace insitu
