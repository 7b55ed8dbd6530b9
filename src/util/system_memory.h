// How much memory this machine has for a model: system RAM (and the cgroup limit a container
// sets), and GPU memory through NVML when the NVIDIA driver's library is present. NVML is opened
// with dlopen at run time, so the build has no dependency on it and a machine without it simply
// reports no GPU.
#pragma once

#include <cstdint>
#include <string>

namespace insitu {

struct SystemMemory {
  uint64_t host_total = 0;      // MemTotal, or the cgroup's memory.max when lower
  uint64_t host_available = 0;  // MemAvailable, or what the cgroup still allows when lower
  int gpu_count = 0;            // devices NVML reports (0 without NVML)
  std::string gpu_name;         // the first device's name
  uint64_t gpu_total = 0;       // summed over the devices
  uint64_t gpu_available = 0;   // free memory, summed over the devices
};

// Reads /proc/meminfo, /sys/fs/cgroup/memory.{max,current} and NVML. Never throws: what cannot be
// read is left 0.
SystemMemory detect_system_memory();

// Parses a size: a number of bytes with an optional unit K M G T (powers of 1024, optional "iB"
// or "B": "512M", "1.5GiB", "8g"). Throws InvalidArgument naming `what` and the text.
uint64_t parse_memory_size(const std::string& text, const char* what);

// "1.23 GiB", "512.0 MiB", "900 B".
std::string format_memory_size(uint64_t bytes);

}  // namespace insitu
