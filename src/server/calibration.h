// Online calibration for `insitu serve`: importance statistics (Σx² per input column of every
// linear weight, as llama.cpp's imatrix collects them) gathered from live traffic, for
// re-quantizing with an importance matrix (POST /calibration/start, GET /calibration/status,
// POST /calibration/apply).
//
// Thread safety: observe() runs on the scheduler thread (inside Session::eval / Session::step);
// snapshot() and the counters may be read from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "io/imatrix_file.h"
#include "model/model.h"
#include "quality/imatrix_collect.h"

namespace insitu::server {

class LiveImatrix : public LinearObserver {
 public:
  // Takes the weights named "blk.*" (llama-imatrix's default; the output head is left out).
  void observe(const Weight& weight, int expert, const float* x, int64_t n_rows) override;
  // The statistics so far in the imatrix file form (datasets: "live traffic").
  Imatrix snapshot() const;
  int64_t rows() const;     // activation rows seen by the first weight (about tokens evaluated)
  size_t entries() const;   // weights with statistics

 private:
  mutable std::mutex mutex_;
  ImatrixStats stats_;
  int64_t rows_ = 0;
  std::string first_;  // the weight whose rows are counted
};

}  // namespace insitu::server
