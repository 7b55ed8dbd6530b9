// Streaming models (Model::load_streaming): layers prepared and released one at a time, so that
// work visiting the layers in order keeps about one layer's weights resident.
#include <fmt/format.h>

#include "insitu/error.h"
#include "model/hf_loader.h"
#include "model/model_internal.h"

namespace insitu {

std::vector<const Weight*> Model::layer_weights(int il) const {
  Layer L = layers_[il];
  std::vector<const Weight*> out;
  L.visit([&](const Weight*& w) {
    if (w != nullptr) out.push_back(w);
  });
  return out;
}

void Model::init_streaming(const std::vector<std::pair<size_t, int>>& deferred_permutations,
                           std::vector<std::pair<size_t, std::vector<Weight>>> deferred_stacks) {
  unprepared_.assign(layers_.size(), 1);
  auto defer = [&](size_t index, int heads, std::vector<Weight> experts) {
    Deferred d;
    d.weight = &weights_.at(index);
    for (size_t il = 0; il < layers_.size() && d.layer < 0; ++il)
      for (const Weight* w : layer_weights(static_cast<int>(il)))
        if (w == d.weight) d.layer = static_cast<int>(il);
    if (d.layer < 0) return;  // not used by the architecture: never run, never converted
    d.stored = *d.weight;
    d.permute_heads = heads;
    d.expert_sources = std::move(experts);
    deferred_.push_back(std::move(d));
  };
  for (const auto& [index, heads] : deferred_permutations) defer(index, heads, {});
  for (auto& [index, experts] : deferred_stacks) defer(index, 0, std::move(experts));
}

void Model::prepare_layer(int il) {
  if (il < 0 || il >= static_cast<int>(layers_.size()))
    throw InvalidArgument(
        fmt::format("Model::prepare_layer: layer {} out of range [0, {})", il, layers_.size()));
  if (unprepared_.empty() || !unprepared_[il]) return;
  for (Deferred& d : deferred_)
    if (d.layer == il) {
      if (d.permute_heads > 0) permute_rows_to_gguf(*d.weight, d.permute_heads);
      if (!d.expert_sources.empty()) stack_experts(*d.weight, d.expert_sources);
    }
  unprepared_[il] = 0;
}

void Model::release_layer(int il) {
  if (il < 0 || il >= static_cast<int>(layers_.size()))
    throw InvalidArgument(
        fmt::format("Model::release_layer: layer {} out of range [0, {})", il, layers_.size()));
  if (!unprepared_.empty()) {
    if (unprepared_[il]) return;
    for (Deferred& d : deferred_)
      if (d.layer == il) *d.weight = d.stored;  // drops the converted copy
    unprepared_[il] = 1;
  }
  for (const Weight* w : layer_weights(il))
    if (w->release_pages) w->release_pages();
}

}  // namespace insitu
