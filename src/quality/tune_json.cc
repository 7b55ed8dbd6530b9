#include "quality/tune_json.h"

namespace insitu {

nlohmann::json tune_json(const TuneResult& r, const Model& model, const SystemMemory& sys,
                         const std::string& max_memory,
                         const std::optional<TuneMeasureInfo>& measured,
                         const std::string& command) {
  using nlohmann::json;
  const ModelConfig& c = model.config();
  json out;
  out["model"] = {{"name", r.model_name},
                  {"path", r.model_path},
                  {"architecture", c.arch_name},
                  {"n_layer", c.n_layer},
                  {"n_ctx_train", r.n_ctx_train}};
  out["profile"] = tune_profile_name(r.profile);
  out["backend"] = "cpu";
  out["context_tokens"] = r.n_ctx;
  out["kv_cache_type"] = r.kv_type == KvCacheType::kF16 ? "f16" : "f32";
  out["kv_bytes_per_token"] = r.kv_bytes_per_token;
  json gpu = nullptr;
  if (sys.gpu_count > 0)
    gpu = {{"count", sys.gpu_count}, {"name", sys.gpu_name}, {"total_bytes", sys.gpu_total},
           {"available_bytes", sys.gpu_available}, {"used", false}};
  out["memory"] = {{"device", "cpu"},
                   {"available_bytes", r.memory.device_bytes},
                   {"source", max_memory.empty() ? "system" : "max-memory"},
                   {"system_total_bytes", sys.host_total},
                   {"system_available_bytes", sys.host_available},
                   {"gpu", gpu}};
  json list = json::array();
  for (const TuneCandidate& k : r.candidates) {
    list.push_back({{"isq", k.target ? json(k.target->name()) : json(nullptr)},
                    {"name", k.name},
                    {"estimated_size_bytes", k.weight_bytes},
                    {"session_bytes", k.session_bytes},
                    {"memory_percent", k.memory_percent},
                    {"max_context_tokens", k.max_context},
                    {"context_is_model_max", k.context_is_model_max},
                    {"quality", k.quality},
                    {"kld", k.kld ? json(*k.kld) : json(nullptr)},
                    {"top1_agreement", k.top1 ? json(*k.top1) : json(nullptr)},
                    {"fit_status", fit_status_name(k.status)},
                    {"recommended", k.recommended}});
  }
  out["candidates"] = list;
  out["measure"] = measured ? json{{"text", measured->text},
                                   {"tokens", measured->tokens},
                                   {"positions", measured->positions}}
                            : json(nullptr);
  const TuneCandidate* rec = r.recommended >= 0 ? &r.candidates[r.recommended] : nullptr;
  out["recommended_isq"] = rec && rec->target ? json(rec->target->name()) : json(nullptr);
  out["recommended_name"] = rec ? json(rec->name) : json(nullptr);
  out["recommended_command"] = rec ? json(command) : json(nullptr);
  out["warnings"] = r.warnings;
  return out;
}

}  // namespace insitu
