// Loading a model for ISQ tests: as stored, or quantized in situ to one type without a progress bar.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "model/model.h"

namespace insitu::test {

inline std::shared_ptr<const Model> load_isq(const std::string& path,
                                             std::optional<QuantType> type, int threads = 2) {
  LoadOptions o;
  o.path = path;
  o.n_threads = threads;
  if (type) {
    IsqOptions isq;
    isq.type = *type;
    isq.show_progress = false;
    o.isq = isq;
  }
  return Model::load(o);
}

}  // namespace insitu::test
