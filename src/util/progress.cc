#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

namespace insitu {

Progress::Progress(std::string label, int64_t total_items, uint64_t total_bytes, bool enabled)
    : label_(std::move(label)),
      total_items_(total_items),
      total_bytes_(total_bytes),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

std::string Progress::format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

void Progress::set_unit(std::string unit) {
  std::lock_guard<std::mutex> lock(mu_);
  unit_ = std::move(unit);
}

std::string Progress::format_amount(double amount) const {
  if (unit_.empty()) return format_bytes(amount);
  char buf[48];
  std::snprintf(buf, sizeof buf, amount >= 100 ? "%.0f %s" : "%.1f %s", amount, unit_.c_str());
  return buf;
}

void Progress::advance(int64_t items, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  items_ += items;
  bytes_ += bytes;
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ >= std::chrono::milliseconds(100) || items_ == total_items_) {
      last_draw_ = now;
      draw(false);
    }
  } else if (total_items_ > 0) {
    const int decile = static_cast<int>(10 * items_ / total_items_);
    if (decile != last_decile_ && decile < 10) {  // 100% is reported once, by finish()
      last_decile_ = decile;
      draw(false);
    }
  }
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void Progress::draw(bool final) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_items_ > 0 ? static_cast<double>(items_) / total_items_ : 1.0;
  const double rate = elapsed > 0 ? bytes_ / elapsed : 0.0;
  std::string eta = "--:--";
  if (total_bytes_ > 0 && rate > 0 && bytes_ <= total_bytes_) {
    const int s = static_cast<int>((total_bytes_ - bytes_) / rate);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%d:%02d", s / 60, s % 60);
    eta = buf;
  }
  char line[256];
  if (tty_) {
    constexpr int kWidth = 24;
    const int fill = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(fill), '#');
    bar.resize(kWidth, ' ');
    std::snprintf(line, sizeof line, "\r%s [%s] %lld/%lld %s/%s %s/s ETA %s", label_.c_str(),
                  bar.c_str(), static_cast<long long>(items_), static_cast<long long>(total_items_),
                  format_amount(bytes_).c_str(), format_amount(total_bytes_).c_str(),
                  format_amount(rate).c_str(), final ? "0:00" : eta.c_str());
    std::fputs(line, stderr);
    if (final) std::fputs("\n", stderr);
  } else {
    std::snprintf(line, sizeof line, "%s: %lld/%lld (%3.0f%%) %s, %s/s%s\n", label_.c_str(),
                  static_cast<long long>(items_), static_cast<long long>(total_items_), 100 * frac,
                  format_amount(bytes_).c_str(), format_amount(rate).c_str(),
                  final ? ", done" : "");
    std::fputs(line, stderr);
  }
  std::fflush(stderr);
}

}  // namespace insitu
