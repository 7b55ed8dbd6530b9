#include "server/calibration.h"

#include <fmt/format.h>

#include "insitu/error.h"

namespace insitu::server {

void LiveImatrix::observe(const Weight& w, int expert, const float* x, int64_t n_rows) {
  if (w.name.rfind("blk.", 0) != 0 || w.ne.empty()) return;
  const int64_t n_mat = w.ne.size() >= 3 ? w.ne[2] : 1;
  const int64_t mat = expert < 0 ? 0 : expert;
  // A layout the collector does not know (never seen in practice) is skipped, not an error.
  if (mat >= n_mat || (expert < 0 && n_mat > 1)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  // On the scheduler thread, serially: serving must not stop for a non-finite activation.
  stats_.add(w, expert, x, n_rows, /*pool=*/nullptr, /*check_finite=*/false);
  if (first_.empty()) first_ = w.name;
  if (w.name == first_) rows_ += n_rows;
}

Imatrix LiveImatrix::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Imatrix im = stats_.to_imatrix();
  im.datasets.push_back("live traffic");
  im.chunk_count = 1;
  im.chunk_size = rows_;
  return im;
}

int64_t LiveImatrix::rows() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return rows_;
}

size_t LiveImatrix::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_.size();
}

}  // namespace insitu::server
