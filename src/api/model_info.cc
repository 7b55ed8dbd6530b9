// model_info: what a front end shows about a loaded model.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "model/model.h"

namespace insitu {

ModelInfo model_info(const Model& model) {
  const ModelConfig& c = model.config();
  ModelInfo info;
  info.name = c.name;
  info.architecture = c.arch_name;
  info.path = model.source_path();
  info.n_layer = c.n_layer;
  info.n_embd = c.n_embd;
  info.n_vocab = c.n_vocab;
  info.n_ctx_train = c.n_ctx_train;
  info.has_chat_template = model.chat_template() != nullptr;
  std::map<QuantType, uint64_t> by_type;
  for (const Weight& w : model.weights()) {
    uint64_t n = 1;
    for (int64_t d : w.ne) n *= static_cast<uint64_t>(d);
    info.n_params += n;
    info.weight_bytes += w.nbytes;
    by_type[w.type] += w.nbytes;
  }
  std::vector<std::pair<uint64_t, QuantType>> sorted;
  for (const auto& [t, b] : by_type) sorted.emplace_back(b, t);
  std::sort(sorted.rbegin(), sorted.rend());
  for (const auto& [b, t] : sorted) {
    if (!info.weight_types.empty()) info.weight_types += ", ";
    info.weight_types += fmt::format("{} {:.0f}%", quant_type_name(t),
                                     info.weight_bytes ? 100.0 * b / info.weight_bytes : 0.0);
  }
  return info;
}

}  // namespace insitu
