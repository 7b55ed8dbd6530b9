#include "server/calibration.h"

#include <fmt/format.h>

#include "insitu/error.h"

namespace insitu::server {

void LiveImatrix::observe(const Weight& w, int expert, const float* x, int64_t n_rows) {
  if (w.name.rfind("blk.", 0) != 0 || w.ne.empty()) return;
  const int64_t n_in = w.ne[0];
  const int64_t n_mat = w.ne.size() >= 3 ? w.ne[2] : 1;
  const int64_t mat = expert < 0 ? 0 : expert;
  if (mat >= n_mat) return;  // not a layout this collector knows; never seen in practice
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& e = entries_[w.name];
  if (e.sums.empty()) {
    e.n_cols = n_in;
    e.sums.assign(static_cast<size_t>(n_in * n_mat), 0.0);
    e.counts.assign(static_cast<size_t>(n_mat), 0);
  }
  double* s = e.sums.data() + mat * n_in;
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = x + r * n_in;
    for (int64_t j = 0; j < n_in; ++j) s[j] += static_cast<double>(row[j]) * row[j];
  }
  e.counts[static_cast<size_t>(mat)] += n_rows;
  if (first_.empty()) first_ = w.name;
  if (w.name == first_) rows_ += n_rows;
}

Imatrix LiveImatrix::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Imatrix im;
  for (const auto& [name, a] : entries_) {
    ImatrixEntry e;
    e.n_cols = a.n_cols;
    e.n_mat = static_cast<int64_t>(a.counts.size());
    e.sums.assign(a.sums.begin(), a.sums.end());
    e.counts.assign(a.counts.begin(), a.counts.end());
    im.entries.emplace(name, std::move(e));
  }
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
  return entries_.size();
}

}  // namespace insitu::server
