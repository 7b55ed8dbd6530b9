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

std::vector<IsqDecision> Model::re_isq(QuantType type) const {
  IsqOptions options;
  {
    std::lock_guard lock(re_isq_mu_);
    if (isq_options_) options = *isq_options_;
  }
  options.type = type;
  options.mix.reset();
  options.topology_only = false;
  return re_isq(options);
}

std::vector<IsqDecision> Model::re_isq(const IsqOptions& options) const {
  std::lock_guard one_at_a_time(re_isq_mu_);
  if (!unprepared_.empty())
    throw InvalidArgument(fmt::format("Model::re_isq: {} was loaded for streaming; it cannot be "
                                      "re-quantized", source_path_));
  // Every check (types, imatrix coverage, topology) happens here, before anything changes.
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
  // Weights are only ever replaced here, under the exclusive lock, and Sessions read them under
  // the shared one; the Model was created non-const (ModelLoader), so writing through it is sound.
  Model& self = const_cast<Model&>(*this);
  std::vector<IsqDecision> done;
  done.reserve(plan.size());
  for (IsqDecision d : plan) {
    const Weight* target = d.weight;
    auto rec = std::find_if(self.isq_sources_.begin(), self.isq_sources_.end(),
                            [&](const IsqSource& s) { return s.weight == target; });
    // The weight to convert from: the original as loaded when it can still be read, else the
    // current bytes (a weight never converted is its own original).
    Weight src = *target;
    int heads = 0;
    if (rec != self.isq_sources_.end()) {
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
        rec != self.isq_sources_.end() && from_source && !rec->experts.empty() ? &rec->experts
                                                                               : nullptr;
    d.from = src.type;
    d.bytes_before = src.nbytes;
    d.permute_heads = heads;
    d.expert_sources.clear();
    if (experts != nullptr)
      for (const Weight& e : *experts) d.expert_sources.push_back(&e);
    Weight next = src;
    d.weight = &next;
    if (d.converts()) {
      apply_isq({d}, quiet, pool);
    } else if (experts != nullptr) {
      stack_experts(next, *experts);
    } else if (heads > 0) {
      permute_rows_to_gguf(next, heads);
    }
    if (rec == self.isq_sources_.end() && next.data != target->data)
      self.isq_sources_.push_back({target, src, 0, {}});
    // Swap under the exclusive lock; the old bytes are freed after it is released.
    Weight& live = const_cast<Weight&>(*target);
    std::shared_ptr<const void> old_owner;
    {
      std::unique_lock swap(weights_mu_);
      old_owner = std::move(live.owner);
      live.type = next.type;
      live.data = next.data;
      live.nbytes = next.nbytes;
      live.owner = std::move(next.owner);
      live.release_pages = next.release_pages;
    }
    d.weight = const_cast<Weight*>(target);
    done.push_back(std::move(d));
    progress.advance(1, src.nbytes);
  }
  progress.finish();
  isq_options_ = options;
  return done;
}

}  // namespace insitu
