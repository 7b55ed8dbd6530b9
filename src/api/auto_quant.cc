#include "api/auto_quant.h"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "insitu/error.h"
#include "util/thread_pool.h"

namespace insitu {

TuneMemory tune_memory(const std::string& max_memory, SystemMemory* detected) {
  const SystemMemory sys = detect_system_memory();
  if (detected != nullptr) *detected = sys;
  TuneMemory m;
  m.device_bytes = max_memory.empty() ? sys.host_available
                                      : parse_memory_size(max_memory, "--max-memory");
  if (m.device_bytes == 0)
    throw InvalidArgument(max_memory.empty()
                              ? "cannot read the available memory (/proc/meminfo); give "
                                "--max-memory SIZE"
                              : "--max-memory: 0 bytes leaves no room for any model");
  return m;
}

int pool_threads(int threads) { return ThreadPool(threads).size(); }

std::shared_ptr<const Model> load_shapes(const std::string& path, int threads) {
  LoadOptions lo;
  lo.path = path;
  lo.n_threads = threads;
  lo.shapes_only = true;
  return Model::load(lo);
}

std::optional<IsqTarget> resolve_auto_quant(const std::string& path, const IsqOptions& base,
                                            TuneProfile profile, const std::string& max_memory,
                                            int n_ctx, int threads) {
  const std::shared_ptr<const Model> model = load_shapes(path, threads);
  TuneOptions o;
  o.profile = profile;
  o.isq = base;
  o.n_ctx = n_ctx;
  o.n_threads = pool_threads(threads);
  o.memory = tune_memory(max_memory);
  const TuneResult r = tune_model(*model, o);
  if (r.recommended < 0) {
    const TuneCandidate* smallest = nullptr;
    for (const TuneCandidate& c : r.candidates)
      if (!smallest || c.weight_bytes < smallest->weight_bytes) smallest = &c;
    throw InvalidArgument(fmt::format(
        "--quant auto: nothing fits in {} with a {}-token context{}; lower --ctx or free memory",
        format_memory_size(o.memory.device_bytes), n_ctx,
        smallest ? fmt::format(" (the smallest, {}, needs {})", smallest->name,
                               format_memory_size(smallest->weight_bytes +
                                                  smallest->session_bytes))
                 : ""));
  }
  const TuneCandidate& c = r.candidates[r.recommended];
  spdlog::info("--quant auto ({} profile, {} available, {}-token context): {} ({}, {:.1f}% of "
               "memory, room for {} tokens)",
               tune_profile_name(profile), format_memory_size(o.memory.device_bytes), n_ctx,
               c.target ? c.name : c.name + ": the weights fit as stored",
               format_memory_size(c.weight_bytes), c.memory_percent, c.max_context);
  return c.target;
}

}  // namespace insitu
