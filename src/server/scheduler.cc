#include "server/scheduler.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "model/model_internal.h"

namespace insitu::server {

using Clock = std::chrono::steady_clock;

// ---- Job ----

bool Job::take(std::vector<Piece>& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return !pieces_.empty() || n_left_ == 0; });
  while (!pieces_.empty()) {
    out.push_back(std::move(pieces_.front()));
    pieces_.pop_front();
  }
  return !(n_left_ == 0 && out.empty());
}

void Job::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return n_left_ == 0; });
}

void Job::push(int index, const TokenEvent& event) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pieces_.push_back(Piece{index, event});
  }
  cv_.notify_all();
}

void Job::finish(int index, GenerateResult result, const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    results_[static_cast<size_t>(index)] = std::move(result);
    if (!error.empty() && error_.empty()) error_ = error;
    --n_left_;
  }
  cv_.notify_all();
}

// ---- Scheduler ----

struct Scheduler::Seq {
  std::shared_ptr<Job> job;
  int index = 0;
  std::shared_ptr<const Model> model;
  std::vector<int32_t> prompt;  // the whole prompt, including any prefix reused from the cache
  GenerateOptions options;
  int slot = -1;
  size_t prefilled = 0;         // prompt tokens in the slot's cache
  std::optional<Generation> gen;
  std::vector<float> logits;    // [n_vocab] after the last evaluated token, when has_logits
  bool has_logits = false;
  int32_t pending = -1;         // the token to evaluate in this step's batch
  Clock::time_point started;
};

struct Scheduler::Slot {
  std::unique_ptr<Session> session;
  std::vector<int32_t> cached;  // the tokens whose keys and values the session holds
  Seq* seq = nullptr;
  uint64_t last_used = 0;
};

Scheduler::Scheduler(const SchedulerOptions& options, Executor& executor)
    : options_(options), executor_(executor) {
  if (options_.n_slots < 1 || options_.n_slots > 1024)
    throw InvalidArgument(fmt::format("parallel: {} invalid; expected 1 to 1024", options_.n_slots));
  if (options_.n_ctx < 8)
    throw InvalidArgument(fmt::format("ctx-size: {} invalid; expected at least 8", options_.n_ctx));
  options_.prefill_chunk = std::clamp(options_.prefill_chunk, 1, kMaxBatch);
  slots_.resize(static_cast<size_t>(options_.n_slots));
  stats_.n_slots = options_.n_slots;
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { shutdown(std::chrono::milliseconds(0)); }

std::shared_ptr<Job> Scheduler::submit(std::shared_ptr<const Model> model,
                                       std::vector<int32_t> prompt,
                                       const GenerateOptions& options, int n) {
  if (prompt.empty()) throw InvalidArgument("the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) >= options_.n_ctx)
    throw InvalidArgument(fmt::format("the prompt has {} tokens; the context holds {} (prompt and "
                                      "completion together)",
                                      prompt.size(), options_.n_ctx));
  if (n < 1 || n > options_.n_slots)
    throw InvalidArgument(fmt::format("n: {} invalid; expected 1 to {} (the server's --parallel)",
                                      n, options_.n_slots));
  options.validate();
  auto job = std::make_shared<Job>(n);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (draining_) throw Saturated("the server is shutting down");
    if (static_cast<int>(queue_.size()) + n > options_.max_queued)
      throw Saturated(fmt::format("the server is busy: {} requests are waiting", queue_.size()));
    for (int i = 0; i < n; ++i) {
      auto seq = std::make_unique<Seq>();
      seq->job = job;
      seq->index = i;
      seq->model = model;
      seq->prompt = prompt;
      seq->options = options;
      seq->options.sampling.seed = options.sampling.seed + static_cast<uint64_t>(i);
      queue_.push_back(std::move(seq));
    }
    stats_.queued = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return job;
}

void Scheduler::shutdown(std::chrono::milliseconds grace) {
  std::deque<std::unique_ptr<Seq>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!thread_.joinable()) return;
    draining_ = true;
    dropped.swap(queue_);
    stats_.queued = 0;
  }
  for (auto& seq : dropped) {
    GenerateResult r;
    r.stop_reason = StopReason::kCancelled;
    seq->job->finish(seq->index, std::move(r), "the server is shutting down");
  }
  {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, grace, [&] { return stats_.slots_busy == 0; });
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Scheduler::set_observer(LinearObserver* observer) {
  std::unique_lock<std::mutex> lock(mutex_);
  observer_ = observer;
  // The loop applies the observer when an iteration begins (under the mutex); waiting for the
  // next iteration to begin means the previous one, which may still use the old observer, is over.
  const uint64_t seen = loops_;
  if (thread_.joinable() && !stop_ && (stats_.slots_busy > 0 || !queue_.empty()))
    cv_.wait(lock, [&] { return loops_ > seen || stop_; });
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SchedulerStats s = stats_;
  if (recent_.size() >= 2) {
    const double seconds =
        std::chrono::duration<double>(recent_.back().first - recent_.front().first).count();
    int tokens = 0;
    for (size_t i = 1; i < recent_.size(); ++i) tokens += recent_[i].second;
    if (seconds > 0) s.decode_tokens_per_second = tokens / seconds;
  }
  return s;
}

void Scheduler::admit_locked() {
  while (!queue_.empty()) {
    std::unique_ptr<Seq>& front = queue_.front();
    if (front->job->cancelled()) {
      GenerateResult r;
      r.stop_reason = StopReason::kCancelled;
      front->job->finish(front->index, std::move(r), {});
      queue_.pop_front();
      continue;
    }
    // The free slot sharing the longest prefix with the prompt; then the least recently used.
    int best = -1;
    size_t best_common = 0;
    for (size_t i = 0; i < slots_.size(); ++i) {
      const Slot& s = slots_[i];
      if (s.seq != nullptr) continue;
      size_t common = 0;
      if (s.session && &s.session->model() == front->model.get()) {
        const size_t limit = std::min(s.cached.size(), front->prompt.size());
        while (common < limit && s.cached[common] == front->prompt[common]) ++common;
      }
      if (best < 0 || common > best_common ||
          (common == best_common && s.last_used < slots_[static_cast<size_t>(best)].last_used)) {
        best = static_cast<int>(i);
        best_common = common;
      }
    }
    if (best < 0) break;
    std::unique_ptr<Seq> seq = std::move(front);
    queue_.pop_front();
    Slot& slot = slots_[static_cast<size_t>(best)];
    if (!slot.session || &slot.session->model() != seq->model.get()) {
      // A slot last used by another model (before a re_isq swap) starts a fresh cache; the old
      // session's weights are released with it.
      slot.session = std::make_unique<Session>(seq->model, options_.n_ctx, executor_);
      slot.cached.clear();
      best_common = 0;
    }
    // At least the prompt's last token is evaluated again: its logits start the generation.
    const size_t keep = std::min(best_common, seq->prompt.size() - 1);
    const int kept = slot.session->truncate(static_cast<int>(keep));
    slot.cached.resize(static_cast<size_t>(kept));
    seq->prefilled = static_cast<size_t>(kept);
    seq->job->reused_ += kept;
    stats_.reused_tokens += static_cast<uint64_t>(kept);
    seq->slot = best;
    slot.seq = seq.get();
    slot.last_used = ++clock_;
    seq->started = Clock::now();
    try {
      seq->gen.emplace(seq->model->tokenizer(), seq->options, seq->prompt);
    } catch (const std::exception& e) {
      slot.seq = nullptr;
      seq->job->finish(seq->index, GenerateResult{}, e.what());
      continue;
    }
    ++stats_.slots_busy;
    active_.push_back(std::move(seq));
  }
  stats_.queued = static_cast<int>(queue_.size());
}

void Scheduler::finish(Seq& seq, const std::string& error) {
  GenerateResult result;
  if (seq.gen) result = std::move(seq.gen->result());
  result.stats.n_prompt = static_cast<int>(seq.prompt.size());
  result.stats.decode_seconds = std::chrono::duration<double>(Clock::now() - seq.started).count();
  if (!error.empty()) result.stop_reason = StopReason::kCancelled;
  Slot& slot = slots_[static_cast<size_t>(seq.slot)];
  slot.seq = nullptr;
  if (!error.empty()) {
    // The cache may hold a half-evaluated batch; do not offer it for reuse.
    slot.session->reset();
    slot.cached.clear();
  }
  seq.job->finish(seq.index, std::move(result), error);
}

void Scheduler::decode_step() {
  // Sample one token for every sequence that has logits.
  for (auto& seq : active_) {
    if (!seq->has_logits) continue;
    seq->has_logits = false;
    if (seq->job->cancelled()) continue;  // dropped below
    Session& session = *slots_[static_cast<size_t>(seq->slot)].session;
    Job& job = *seq->job;
    const int index = seq->index;
    const std::optional<int32_t> next = seq->gen->advance(
        seq->logits, session.n_ctx() - session.n_past(), [&job, index](const TokenEvent& e) {
          job.push(index, e);
          return !job.cancelled();
        });
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.generated_tokens += 1;
    }
    if (next) seq->pending = *next;
  }
  // One batched evaluation per model, at most kMaxBatch rows at a time.
  std::vector<Seq*> batch;
  for (auto& seq : active_)
    if (seq->pending >= 0) batch.push_back(seq.get());
  int stepped = 0;
  std::vector<bool> done(batch.size(), false);
  std::vector<float> rows;
  for (size_t first = 0; first < batch.size(); ++first) {
    if (done[first]) continue;
    const Model* model = batch[first]->model.get();
    std::vector<Seq*> group;
    std::vector<Session*> sessions;
    std::vector<int32_t> tokens;
    for (size_t j = first; j < batch.size() && group.size() < static_cast<size_t>(kMaxBatch); ++j) {
      if (done[j] || batch[j]->model.get() != model) continue;
      done[j] = true;
      group.push_back(batch[j]);
      sessions.push_back(slots_[static_cast<size_t>(batch[j]->slot)].session.get());
      tokens.push_back(batch[j]->pending);
    }
    const size_t n_vocab = static_cast<size_t>(model->config().n_vocab);
    rows.resize(group.size() * n_vocab);
    try {
      Session::step(sessions, tokens, rows.data());
    } catch (const std::exception& e) {
      spdlog::error("serve: batched step failed: {}", e.what());
      for (Seq* s : group) {
        s->pending = -1;
        s->job->cancel();
        std::lock_guard<std::mutex> lock(s->job->mutex_);
        if (s->job->error_.empty()) s->job->error_ = e.what();
      }
      continue;
    }
    for (size_t j = 0; j < group.size(); ++j) {
      Seq& s = *group[j];
      slots_[static_cast<size_t>(s.slot)].cached.push_back(s.pending);
      s.pending = -1;
      s.logits.assign(rows.begin() + static_cast<std::ptrdiff_t>(j * n_vocab),
                      rows.begin() + static_cast<std::ptrdiff_t>((j + 1) * n_vocab));
      s.has_logits = true;
    }
    stepped += static_cast<int>(group.size());
  }
  if (stepped > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.steps;
    const auto now = Clock::now();
    recent_.emplace_back(now, stepped);
    while (!recent_.empty() && now - recent_.front().first > std::chrono::seconds(10))
      recent_.pop_front();
  }
}

void Scheduler::prefill_step() {
  int budget = options_.prefill_chunk;
  for (auto& seq : active_) {
    if (budget <= 0) break;
    if (seq->gen->finished() || seq->job->cancelled() || seq->prefilled >= seq->prompt.size())
      continue;
    Slot& slot = slots_[static_cast<size_t>(seq->slot)];
    const size_t n = std::min(static_cast<size_t>(budget), seq->prompt.size() - seq->prefilled);
    const std::span<const int32_t> chunk(seq->prompt.data() + seq->prefilled, n);
    try {
      slot.session->eval(chunk, false, seq->logits);
    } catch (const std::exception& e) {
      seq->job->cancel();
      std::lock_guard<std::mutex> lock(seq->job->mutex_);
      if (seq->job->error_.empty()) seq->job->error_ = e.what();
      continue;
    }
    slot.cached.insert(slot.cached.end(), chunk.begin(), chunk.end());
    seq->prefilled += n;
    budget -= static_cast<int>(n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.prompt_tokens += n;
    }
    if (seq->prefilled == seq->prompt.size()) seq->has_logits = true;
  }
}

void Scheduler::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] {
        if (stop_ || !active_.empty()) return true;
        if (queue_.empty()) return false;
        return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.seq; });
      });
      if (stop_) {
        for (auto& seq : active_) seq->job->cancel();
      } else {
        admit_locked();
      }
      for (Slot& slot : slots_)
        if (slot.session) slot.session->set_linear_observer(observer_);
      ++loops_;
    }
    cv_.notify_all();  // set_observer waits for an iteration to begin
    // Drop the sequences whose clients went away (or that failed), then those that ended.
    bool freed = false;
    for (auto& seq : active_) {
      if (!seq->job->cancelled()) continue;
      if (seq->gen && !seq->gen->finished()) seq->gen->cancel();
      std::string error;
      {
        std::lock_guard<std::mutex> lock(seq->job->mutex_);
        error = seq->job->error_;
      }
      finish(*seq, error);
      seq.reset();
      freed = true;
    }
    active_.erase(std::remove(active_.begin(), active_.end(), nullptr), active_.end());
    decode_step();
    for (auto& seq : active_) {
      if (!seq->gen->finished() || seq->pending >= 0) continue;
      finish(*seq);
      seq.reset();
      freed = true;
    }
    if (freed) {
      active_.erase(std::remove(active_.begin(), active_.end(), nullptr), active_.end());
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.slots_busy = static_cast<int>(active_.size());
      uint64_t kv = 0;
      for (const Slot& s : slots_)
        if (s.session) kv += s.session->kv_cache_bytes();
      stats_.kv_bytes = kv;
    }
    if (freed) cv_.notify_all();  // shutdown() waits for the slots to empty
    prefill_step();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_ && active_.empty()) break;
    }
  }
}

}  // namespace insitu::server
