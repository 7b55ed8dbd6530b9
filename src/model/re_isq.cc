// Model::re_isq: quantizing a loaded model again, to another type, from its original weights.
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <algorithm>
#include <system_error>

#include "insitu/error.h"
#include "model/hf_loader.h"
#include "model/model_internal.h"
#include "util/progress.h"

namespace insitu {

std::vector<Model::SourceStamp> Model::stamp_sources(const std::string& path) {
  namespace fs = std::filesystem;
  std::vector<SourceStamp> stamps;
  std::error_code ec;
  auto stamp = [&](const fs::path& p) {
    SourceStamp s;
    s.path = p.string();
    s.size = fs::file_size(p, ec);
    if (ec) return;
    s.mtime = fs::last_write_time(p, ec);
    if (ec) return;
    stamps.push_back(std::move(s));
  };
  if (fs::is_directory(path, ec)) {
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec))
      if (e.path().extension() == ".safetensors") stamp(e.path());
    std::sort(stamps.begin(), stamps.end(),
              [](const SourceStamp& a, const SourceStamp& b) { return a.path < b.path; });
  } else {
    stamp(path);
  }
  return stamps;
}

bool Model::sources_unchanged() const {
  if (source_stamps_.empty()) return false;
  return stamp_sources(source_path_).size() == source_stamps_.size() &&
         std::all_of(source_stamps_.begin(), source_stamps_.end(), [](const SourceStamp& s) {
           std::error_code ec;
           const auto size = std::filesystem::file_size(s.path, ec);
           if (ec || size != s.size) return false;
           const auto mtime = std::filesystem::last_write_time(s.path, ec);
           return !ec && mtime == s.mtime;
         });
}

std::shared_ptr<Model> Model::share_weights() const {
  if (!unprepared_.empty())
    throw InvalidArgument(fmt::format("Model: {} was loaded for streaming; it cannot be copied",
                                      source_path_));
  std::shared_ptr<Model> m(new Model());
  m->config_ = config_;
  m->tokenizer_ = tokenizer_;
  m->chat_template_ = chat_template_;
  m->source_path_ = source_path_;
  m->builtin_template_ = builtin_template_;
  m->weights_ = weights_;  // each Weight shares its bytes through `owner`
  auto rebind = [&](const Weight* w) -> const Weight* {
    return w == nullptr ? nullptr : &m->weights_[static_cast<size_t>(w - weights_.data())];
  };
  m->layers_ = layers_;
  for (Layer& L : m->layers_) L.visit([&](const Weight*& w) { w = rebind(w); });
  m->tok_embd_ = rebind(tok_embd_);
  m->output_norm_ = rebind(output_norm_);
  m->output_ = rebind(output_);
  m->rope_freq_factors_ = rope_freq_factors_;
  m->keepalive_ = keepalive_;
  m->shapes_only_ = shapes_only_;
  m->isq_options_ = isq_options_;
  m->isq_sources_ = isq_sources_;
  for (IsqSource& s : m->isq_sources_) s.weight = rebind(s.weight);
  m->source_stamps_ = source_stamps_;
  return m;
}

std::shared_ptr<const Model> Model::re_isq(QuantType type,
                                           std::vector<IsqDecision>* decisions) const {
  IsqOptions options;
  if (isq_options_) options = *isq_options_;
  options.type = type;
  options.mix.reset();
  options.topology_only = false;
  return re_isq(options, decisions);
}

std::shared_ptr<const Model> Model::re_isq(const IsqOptions& options,
                                           std::vector<IsqDecision>* decisions) const {
  if (!unprepared_.empty())
    throw InvalidArgument(fmt::format("Model::re_isq: {} was loaded for streaming; it cannot be "
                                      "re-quantized", source_path_));
  if (shapes_only_)
    throw InvalidArgument(fmt::format("Model::re_isq: {} was loaded for its shapes only (no "
                                      "weights)", source_path_));
  // Every check (types, imatrix coverage, topology) happens here, before anything is made.
  const std::vector<IsqDecision> plan = plan_isq(options);
  const bool from_source = sources_unchanged();
  bool warned = false;

  uint64_t total = 0;
  for (const IsqDecision& d : plan) total += d.bytes_before;
  Progress progress("re-isq " + isq_target_name(options), static_cast<int64_t>(plan.size()),
                    total, options.show_progress);
  IsqOptions quiet = options;
  quiet.show_progress = false;
  ThreadPool pool(0);
  // The new model starts as this one (every weight shared) and its planned weights are replaced
  // one by one; this model is never written.
  const std::shared_ptr<Model> next = share_weights();
  std::vector<IsqDecision> done;
  done.reserve(plan.size());
  for (IsqDecision d : plan) {
    Weight& live = next->weights_[static_cast<size_t>(d.weight - weights_.data())];
    auto rec = std::find_if(next->isq_sources_.begin(), next->isq_sources_.end(),
                            [&](const IsqSource& s) { return s.weight == &live; });
    // The weight to convert from: the original as loaded when it can still be read, else the
    // current bytes (a weight never converted is its own original).
    Weight src = live;
    int heads = 0;
    if (rec != next->isq_sources_.end()) {
      if (from_source) {
        src = rec->original;
        heads = rec->permute_heads;
      } else if (!warned) {
        spdlog::warn("re-isq: the source files of {} changed or are gone since loading; "
                     "re-quantizing from the current weights (quality compounds)", source_path_);
        warned = true;
      }
    }
    // A stack of experts loaded straight from per-expert sources is converted from them again.
    const std::vector<Weight>* experts =
        rec != next->isq_sources_.end() && from_source && !rec->experts.empty() ? &rec->experts
                                                                                : nullptr;
    d.from = src.type;
    d.bytes_before = src.nbytes;
    d.permute_heads = heads;
    d.expert_sources.clear();
    if (experts != nullptr)
      for (const Weight& e : *experts) d.expert_sources.push_back(&e);
    Weight out = src;
    d.weight = &out;
    if (d.converts()) {
      apply_isq({d}, quiet, pool);
    } else if (experts != nullptr) {
      stack_experts(out, *experts);
    } else if (heads > 0) {
      permute_rows_to_gguf(out, heads);
    }
    if (rec == next->isq_sources_.end() && out.data != live.data)
      next->isq_sources_.push_back({&live, src, 0, {}});
    live.type = out.type;
    live.data = out.data;
    live.nbytes = out.nbytes;
    live.owner = std::move(out.owner);
    live.release_pages = out.release_pages;
    d.weight = &live;
    done.push_back(std::move(d));
    progress.advance(1, src.nbytes);
  }
  progress.finish();
  next->isq_options_ = std::make_shared<const IsqOptions>(options);
  if (decisions != nullptr) *decisions = std::move(done);
  return next;
}

}  // namespace insitu
