#include "util/system_memory.h"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "insitu/error.h"

namespace insitu {
namespace {

// "MemAvailable:   12345 kB" -> bytes; 0 when absent.
uint64_t meminfo_field(const std::string& meminfo, const std::string& key) {
  const size_t at = meminfo.find(key + ":");
  if (at == std::string::npos) return 0;
  std::istringstream in(meminfo.substr(at + key.size() + 1));
  uint64_t kib = 0;
  in >> kib;
  return kib * 1024;
}

// A cgroup v2 file holding a number ("max" or unreadable: 0).
uint64_t cgroup_value(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return 0;
  return std::stoull(text);
}

// The subset of NVML's C API used here (nvml.h, stable since driver 3xx).
struct NvmlMemory {
  unsigned long long total, free, used;
};
using NvmlInit = int (*)();
using NvmlShutdown = int (*)();
using NvmlCount = int (*)(unsigned int*);
using NvmlHandle = int (*)(unsigned int, void**);
using NvmlMemoryInfo = int (*)(void*, NvmlMemory*);
using NvmlName = int (*)(void*, char*, unsigned int);

void read_nvml(SystemMemory& m) {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return;
  auto init = reinterpret_cast<NvmlInit>(dlsym(lib, "nvmlInit_v2"));
  auto shutdown = reinterpret_cast<NvmlShutdown>(dlsym(lib, "nvmlShutdown"));
  auto count = reinterpret_cast<NvmlCount>(dlsym(lib, "nvmlDeviceGetCount_v2"));
  auto handle = reinterpret_cast<NvmlHandle>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  auto memory = reinterpret_cast<NvmlMemoryInfo>(dlsym(lib, "nvmlDeviceGetMemoryInfo"));
  auto name = reinterpret_cast<NvmlName>(dlsym(lib, "nvmlDeviceGetName"));
  if (init && shutdown && count && handle && memory && init() == 0) {
    unsigned int n = 0;
    if (count(&n) == 0) {
      for (unsigned int i = 0; i < n; ++i) {
        void* dev = nullptr;
        NvmlMemory mem{};
        if (handle(i, &dev) != 0 || memory(dev, &mem) != 0) continue;
        if (m.gpu_count == 0 && name) {
          char buf[96] = {};
          if (name(dev, buf, sizeof buf) == 0) m.gpu_name = buf;
        }
        ++m.gpu_count;
        m.gpu_total += mem.total;
        m.gpu_available += mem.free;
      }
    }
    shutdown();
  }
  dlclose(lib);
}

}  // namespace

SystemMemory detect_system_memory() {
  SystemMemory m;
  std::ifstream in("/proc/meminfo");
  std::stringstream all;
  all << in.rdbuf();
  m.host_total = meminfo_field(all.str(), "MemTotal");
  m.host_available = meminfo_field(all.str(), "MemAvailable");
  // A container's limit counts when it is lower than the machine's.
  if (const uint64_t max = cgroup_value("/sys/fs/cgroup/memory.max"); max > 0) {
    const uint64_t used = cgroup_value("/sys/fs/cgroup/memory.current");
    m.host_total = m.host_total > 0 ? std::min(m.host_total, max) : max;
    const uint64_t left = max > used ? max - used : 0;
    m.host_available = m.host_available > 0 ? std::min(m.host_available, left) : left;
  }
  read_nvml(m);
  return m;
}

uint64_t parse_memory_size(const std::string& text, const char* what) {
  auto bad = [&] {
    return InvalidArgument(fmt::format("{}: '{}' is not a size; give bytes or a number with K, M, "
                                       "G or T (powers of 1024), e.g. 512M or 1.5G",
                                       what, text));
  };
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw bad();
  }
  std::string unit = text.substr(used);
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (unit.ends_with("IB")) unit.resize(unit.size() - 2);
  else if (unit.ends_with("B")) unit.resize(unit.size() - 1);
  static constexpr std::pair<const char*, double> kUnits[] = {
      {"", 1.0}, {"K", 1024.0}, {"M", 1048576.0}, {"G", 1073741824.0}, {"T", 1099511627776.0}};
  for (const auto& [name, scale] : kUnits) {
    if (unit != name) continue;
    const double bytes = value * scale;
    if (!std::isfinite(bytes) || bytes < 0 || bytes > 1.8e19) throw bad();
    return static_cast<uint64_t>(bytes);
  }
  throw bad();
}

std::string format_memory_size(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1073741824.0) return fmt::format("{:.2f} GiB", b / 1073741824.0);
  if (b >= 1048576.0) return fmt::format("{:.1f} MiB", b / 1048576.0);
  if (b >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

}  // namespace insitu
