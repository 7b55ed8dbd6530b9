// Progress reporting for long work (quantizing, converting, loading).
//
// On a terminal (stderr is a TTY) it redraws one line: a bar, items, bytes, rate and ETA, at most
// ten times a second. Otherwise it writes a plain log line at every 10% step, so logs stay
// readable. Output goes to stderr only. Thread-safe: workers may call advance() concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace insitu {

class Progress {
 public:
  // total_items: e.g. tensors; total_bytes: the work's size for rate/ETA (0: not shown).
  Progress(std::string label, int64_t total_items, uint64_t total_bytes, bool enabled = true);
  ~Progress();  // finishes the line

  // Counts something other than bytes (e.g. "tok"): the amounts and the rate are then shown as
  // plain numbers with this unit ("1792 tok/3584 tok, 35.2 tok/s") instead of KiB/MiB.
  void set_unit(std::string unit);

  void advance(int64_t items, uint64_t bytes);
  void finish();

  // Formats a byte count as "12.3 MiB".
  static std::string format_bytes(double bytes);

 private:
  void draw(bool final);
  std::string format_amount(double amount) const;

  std::string label_;
  std::string unit_;  // empty: bytes
  int64_t total_items_;
  uint64_t total_bytes_;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  int64_t items_ = 0;
  uint64_t bytes_ = 0;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex mu_;
};

}  // namespace insitu
