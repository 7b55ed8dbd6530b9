// The Executor: shared worker threads, batched decoding steps and batched generation.
#include "insitu/executor.h"

#include <algorithm>
#include <chrono>
#include <map>

#include <fmt/format.h>

#include "insitu/error.h"
#include "model/model_internal.h"
#include "runtime/generator.h"
#include "util/thread_pool.h"

namespace insitu {

// Defined here rather than beside the other constructors so that the model layer never refers
// to the runtime layer above it.
Session::Session(std::shared_ptr<const Model> model, int n_ctx, Executor& executor,
                 KvCacheType kv_type)
    : Session(std::move(model), n_ctx, executor.pool(), kv_type) {}

Executor::Executor(int n_threads) : pool_(std::make_unique<ThreadPool>(n_threads)) {}
Executor::~Executor() = default;

int Executor::n_threads() const { return pool_->size(); }

void Executor::step(std::span<Session* const> sessions, std::span<const int32_t> tokens,
                    float* logits) {
  if (tokens.size() != sessions.size())
    throw InvalidArgument(fmt::format("Executor::step: {} tokens for {} sessions", tokens.size(),
                                      sessions.size()));
  if (sessions.empty()) return;
  // One group per model, in order of first appearance; rows go back to the callers' order.
  std::vector<const Model*> order;
  std::map<const Model*, std::vector<size_t>> groups;
  for (size_t i = 0; i < sessions.size(); ++i) {
    const Model* m = &sessions[i]->model();
    if (!groups.count(m)) order.push_back(m);
    groups[m].push_back(i);
  }
  if (order.size() == 1) return Session::step(sessions, tokens, logits);
  std::vector<float> rows;
  for (const Model* m : order) {
    const std::vector<size_t>& idx = groups[m];
    std::vector<Session*> s;
    std::vector<int32_t> t;
    for (size_t i : idx) {
      s.push_back(sessions[i]);
      t.push_back(tokens[i]);
    }
    const size_t n_vocab = static_cast<size_t>(m->config().n_vocab);
    if (logits != nullptr) rows.resize(idx.size() * n_vocab);
    Session::step(s, t, logits != nullptr ? rows.data() : nullptr);
    if (logits != nullptr)
      for (size_t j = 0; j < idx.size(); ++j)
        std::copy_n(rows.data() + j * n_vocab, n_vocab, logits + idx[j] * n_vocab);
  }
}

std::vector<GenerateResult> Executor::generate_batch(std::span<Request> requests) {
  using Clock = std::chrono::steady_clock;
  const size_t n = requests.size();
  for (size_t i = 0; i < n; ++i) {
    const Request& r = requests[i];
    if (r.session == nullptr) throw InvalidArgument("generate_batch: a request has no session");
    for (size_t j = 0; j < i; ++j)
      if (requests[j].session == r.session)
        throw InvalidArgument("generate_batch: a session appears in two requests");
    if (r.prompt.empty()) throw InvalidArgument("generate_batch: empty prompt");
    const int remaining = r.session->n_ctx() - r.session->n_past();
    if (static_cast<int64_t>(r.prompt.size()) > remaining)
      throw InvalidArgument(fmt::format("generate_batch: prompt of {} tokens does not fit the {} "
                                        "tokens left in the context", r.prompt.size(), remaining));
    r.options.validate();
  }
  std::vector<Generation> gens;
  gens.reserve(n);
  std::vector<std::vector<float>> logits(n);
  for (size_t i = 0; i < n; ++i) {
    Request& r = requests[i];
    std::vector<int32_t> context = r.history;
    context.insert(context.end(), r.prompt.begin(), r.prompt.end());
    gens.emplace_back(r.session->model().tokenizer(), r.options, context);
    const auto t0 = Clock::now();
    r.session->eval(r.prompt, false, logits[i]);
    gens[i].result().stats.n_prompt = static_cast<int>(r.prompt.size());
    gens[i].result().stats.prefill_seconds =
        std::chrono::duration<double>(Clock::now() - t0).count();
  }
  std::vector<Clock::time_point> started(n, Clock::now());
  std::vector<Session*> active;
  std::vector<size_t> which;
  std::vector<int32_t> tokens;
  std::vector<float> step_logits;
  for (;;) {
    active.clear();
    which.clear();
    tokens.clear();
    for (size_t i = 0; i < n; ++i) {
      if (gens[i].finished()) continue;
      Session& s = *requests[i].session;
      const std::optional<int32_t> next =
          gens[i].advance(logits[i], s.n_ctx() - s.n_past(), requests[i].on_event);
      if (!next) {
        gens[i].result().stats.decode_seconds =
            std::chrono::duration<double>(Clock::now() - started[i]).count();
        continue;
      }
      active.push_back(&s);
      which.push_back(i);
      tokens.push_back(*next);
    }
    if (active.empty()) break;
    // One batched step per model (sessions of a re-quantized model step apart from the old
    // one's), at most kMaxBatch sessions at a time; each row goes back to its sequence.
    std::vector<bool> done(active.size(), false);
    for (size_t first = 0; first < active.size(); ++first) {
      if (done[first]) continue;
      const Model* m = &active[first]->model();
      std::vector<Session*> group;
      std::vector<int32_t> group_tokens;
      std::vector<size_t> rows;
      for (size_t j = first; j < active.size() && group.size() < static_cast<size_t>(kMaxBatch);
           ++j) {
        if (done[j] || &active[j]->model() != m) continue;
        done[j] = true;
        group.push_back(active[j]);
        group_tokens.push_back(tokens[j]);
        rows.push_back(which[j]);
      }
      const size_t n_vocab = static_cast<size_t>(m->config().n_vocab);
      step_logits.resize(group.size() * n_vocab);
      Session::step(group, group_tokens, step_logits.data());
      for (size_t j = 0; j < group.size(); ++j)
        logits[rows[j]].assign(step_logits.begin() + j * n_vocab,
                               step_logits.begin() + (j + 1) * n_vocab);
    }
  }
  std::vector<GenerateResult> out;
  out.reserve(n);
  for (Generation& g : gens) out.push_back(std::move(g.result()));
  return out;
}

}  // namespace insitu
