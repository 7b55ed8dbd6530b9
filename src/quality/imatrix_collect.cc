#include "quality/imatrix_collect.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <map>

#include "insitu/error.h"
#include "model/hf_names.h"

namespace insitu {

void ImatrixStats::add(const Weight& w, int expert, const float* x, int64_t n_rows,
                       ThreadPool* pool, bool check_finite) {
  const int64_t n_in = w.ne.empty() ? 0 : w.ne[0];
  const int64_t n_mat = w.ne.size() >= 3 ? w.ne[2] : 1;
  const int64_t mat = expert < 0 ? 0 : expert;
  if (mat >= n_mat || (expert < 0 && n_mat > 1))
    throw InvalidArgument(
        fmt::format("imatrix: tensor '{}': expert {} of {}", w.name, expert, n_mat));
  Entry& e = entries_[w.name];
  if (e.sums.empty()) {
    e.n_cols = n_in;
    e.sums.assign(static_cast<size_t>(n_in * n_mat), 0.0);
    e.counts.assign(static_cast<size_t>(n_mat), 0);
  }
  double* s = e.sums.data() + mat * n_in;
  auto columns = [&](int64_t begin, int64_t end) {
    for (int64_t r = 0; r < n_rows; ++r) {
      const float* row = x + r * n_in;
      for (int64_t j = begin; j < end; ++j) s[j] += static_cast<double>(row[j]) * row[j];
    }
  };
  if (pool != nullptr) pool->parallel_for(n_in, [&](int, int64_t b, int64_t e) { columns(b, e); });
  else columns(0, n_in);
  e.counts[static_cast<size_t>(mat)] += n_rows;
  if (!check_finite) return;
  for (int64_t j = 0; j < n_in; ++j)
    if (!std::isfinite(s[j]))
      throw InvalidArgument(
          fmt::format("imatrix: non-finite activations in the input of '{}'", w.name));
}

Imatrix ImatrixStats::to_imatrix() const {
  Imatrix im;
  for (const auto& [name, a] : entries_) {
    ImatrixEntry e;
    e.n_cols = a.n_cols;
    e.n_mat = static_cast<int64_t>(a.counts.size());
    e.sums.assign(a.sums.begin(), a.sums.end());
    e.counts.assign(a.counts.begin(), a.counts.end());
    im.entries.emplace(name, std::move(e));
  }
  return im;
}

namespace {

// Accumulates the statistics of the weights llama.cpp's collector accepts.
class Accumulator : public LinearObserver {
 public:
  Accumulator(bool process_output, ThreadPool& pool)
      : process_output_(process_output), pool_(pool) {}

  void observe(const Weight& w, int expert, const float* x, int64_t n_rows) override {
    if (!(w.name.rfind("blk.", 0) == 0 || (process_output_ && w.name == "output.weight"))) return;
    stats_.add(w, expert, x, n_rows, &pool_, /*check_finite=*/true);
  }

  Imatrix result(const ImatrixCollectOptions& o, int n_chunk) const {
    Imatrix im = stats_.to_imatrix();
    if (!o.dataset.empty()) im.datasets.push_back(o.dataset);
    im.chunk_count = n_chunk;
    im.chunk_size = o.n_ctx;
    return im;
  }

 private:
  bool process_output_;
  ThreadPool& pool_;
  ImatrixStats stats_;
};

// Chunk c's tokens with the first replaced by BOS when the model adds one (as llama-imatrix).
std::vector<int32_t> chunk_tokens(const Model& model, std::span<const int32_t> tokens, int c,
                                  int n_ctx) {
  std::vector<int32_t> out(tokens.begin() + static_cast<int64_t>(c) * n_ctx,
                           tokens.begin() + static_cast<int64_t>(c + 1) * n_ctx);
  const Tokenizer& tok = model.tokenizer();
  if (tok.add_bos() && tok.bos_id() >= 0) out[0] = tok.bos_id();
  return out;
}

int checked_chunks(std::span<const int32_t> tokens, const ImatrixCollectOptions& o) {
  o.validate();
  const int n_chunk = imatrix_chunk_count(static_cast<int64_t>(tokens.size()), o);
  if (n_chunk < 1)
    throw InvalidArgument(
        fmt::format("imatrix: the calibration text has {} tokens, fewer than "
                    "one chunk of {} (--ctx)",
                    tokens.size(), o.n_ctx));
  return n_chunk;
}

// llama.cpp collects output.weight only under that name: a tied head (token_embd.weight) never.
bool output_collected(const Model& model, const ImatrixCollectOptions& o) {
  if (!o.process_output) return false;
  if (model.find_weight("output.weight") != nullptr) return true;
  spdlog::info(
      "imatrix: the output head is tied to token_embd.weight; as llama.cpp, it is not "
      "collected (--process-output has nothing to add)");
  return false;
}

}  // namespace

void ImatrixCollectOptions::validate() const {
  if (n_ctx < 1 || n_ctx > (1 << 20))
    throw InvalidArgument(fmt::format("imatrix: n_ctx {} out of range [1, {}]", n_ctx, 1 << 20));
  if (max_chunks == 0) throw InvalidArgument("imatrix: max_chunks is 0; nothing to collect");
}

std::vector<int32_t> imatrix_tokens(const Model& model, std::string_view text) {
  return model.tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/false);
}

int imatrix_chunk_count(int64_t n_tokens, const ImatrixCollectOptions& o) {
  const int64_t n = n_tokens / std::max(o.n_ctx, 1);
  return static_cast<int>(o.max_chunks < 0 ? n : std::min<int64_t>(n, o.max_chunks));
}

Imatrix collect_imatrix(const std::shared_ptr<Model>& model, std::span<const int32_t> tokens,
                        const ImatrixCollectOptions& o, ThreadPool& pool,
                        const ImatrixStepCallback& on_step) {
  if (!model) throw InvalidArgument("imatrix: null model");
  const int n_chunk = checked_chunks(tokens, o);
  const ModelConfig& c = model->config();
  const bool with_output = output_collected(*model, o);
  const int64_t total = static_cast<int64_t>(n_chunk) * (c.n_layer + (with_output ? 1 : 0));
  int64_t done = 0;
  auto step = [&] {
    ++done;
    if (on_step) on_step(done, total);
  };

  Session session(model, o.n_ctx, pool, o.kv_type);
  Accumulator acc(o.process_output, pool);
  session.set_linear_observer(&acc);

  // [n_chunk * n_ctx, n_embd] hidden states of the whole calibration set.
  const int64_t E = c.n_embd;
  const int64_t chunk_floats = static_cast<int64_t>(o.n_ctx) * E;
  std::vector<float> hidden(static_cast<size_t>(n_chunk * chunk_floats));
  const Weight* emb = model->find_weight("token_embd.weight");
  for (int ch = 0; ch < n_chunk; ++ch) {
    session.embed(chunk_tokens(*model, tokens, ch, o.n_ctx), hidden.data() + ch * chunk_floats);
    // Each row read maps the pages around it too (the kernel's fault-around): return them chunk
    // by chunk so the embedding table never becomes resident.
    if (emb && emb->release_pages) emb->release_pages();
  }

  for (int il = 0; il < c.n_layer; ++il) {
    model->prepare_layer(il);
    for (int ch = 0; ch < n_chunk; ++ch) {
      session.run_layer(il, hidden.data() + ch * chunk_floats, o.n_ctx, 0);
      step();
    }
    model->release_layer(il);
    session.release_layer_cache(il);
  }

  if (with_output) {
    std::vector<float> logits(static_cast<size_t>(o.n_ctx) * c.n_vocab);
    for (int ch = 0; ch < n_chunk; ++ch) {
      session.run_output(hidden.data() + ch * chunk_floats, o.n_ctx, logits.data());
      step();
    }
    if (const Weight* out = model->find_weight("output.weight"); out && out->release_pages)
      out->release_pages();
  }
  return acc.result(o, n_chunk);
}

Imatrix collect_imatrix(const LoadOptions& source, std::string_view text,
                        const ImatrixCollectOptions& o, ThreadPool& pool,
                        const ImatrixStepCallback& on_step) {
  o.validate();
  std::shared_ptr<Model> model = Model::load_streaming(source);
  const std::vector<int32_t> tokens = imatrix_tokens(*model, text);
  return collect_imatrix(model, tokens, o, pool, on_step);
}

Imatrix collect_imatrix_eval(const std::shared_ptr<const Model>& model,
                             std::span<const int32_t> tokens, const ImatrixCollectOptions& o,
                             ThreadPool& pool, const ImatrixStepCallback& on_step) {
  if (!model) throw InvalidArgument("imatrix: null model");
  const int n_chunk = checked_chunks(tokens, o);
  const bool with_output = output_collected(*model, o);
  Session session(model, o.n_ctx, pool, o.kv_type);
  Accumulator acc(o.process_output, pool);
  session.set_linear_observer(&acc);
  std::vector<float> logits;
  for (int ch = 0; ch < n_chunk; ++ch) {
    session.reset();
    // Every row's logits when the output head is collected (its input is observed for each row).
    session.eval(chunk_tokens(*model, tokens, ch, o.n_ctx), /*all_logits=*/with_output, logits);
    if (on_step) on_step(ch + 1, n_chunk);
  }
  return acc.result(o, n_chunk);
}

namespace {

Imatrix renamed(const Imatrix& in, const std::function<std::string(const std::string&)>& rename) {
  Imatrix out = in;
  out.entries.clear();
  for (const auto& [name, e] : in.entries) {
    const std::string key = rename(name);
    if (!out.entries.emplace(key, e).second)
      throw InvalidArgument(fmt::format("imatrix: two entries map to '{}'", key));
  }
  return out;
}

constexpr std::string_view kWeightSuffix = ".weight";

}  // namespace

Imatrix imatrix_with_module_keys(const Imatrix& imatrix, Arch arch) {
  return renamed(imatrix, [arch](const std::string& name) {
    const std::optional<std::string> hf = gguf_to_hf_name(name, arch);
    if (!hf || !hf->ends_with(kWeightSuffix))
      throw InvalidArgument(fmt::format("imatrix: entry '{}' has no module path in a {} model",
                                        name, arch_name(arch)));
    return hf->substr(0, hf->size() - kWeightSuffix.size());
  });
}

Imatrix imatrix_with_gguf_names(const Imatrix& imatrix, Arch arch) {
  return renamed(imatrix, [arch](const std::string& key) {
    const std::optional<std::string> gguf = hf_to_gguf_name(key + std::string(kWeightSuffix), arch);
    if (gguf) return *gguf;
    if (gguf_to_hf_name(key, arch)) return key;
    throw InvalidArgument(
        fmt::format("imatrix: entry '{}' is neither a module path nor a tensor "
                    "name of a {} model",
                    key, arch_name(arch)));
  });
}

}  // namespace insitu
