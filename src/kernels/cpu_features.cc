#include "kernels/cpu_features.h"

#include <cpuid.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "insitu/error.h"

namespace insitu {
namespace {

struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(uint32_t leaf, uint32_t subleaf) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool bit(uint32_t v, int b) { return (v >> b) & 1u; }

// Linux keeps AMX tile data disabled per process until it is requested (kernel 5.16+).
bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  const Regs r0 = cpuid(0, 0);
  const uint32_t max_leaf = r0.eax;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &r0.ebx, 4);
  std::memcpy(vendor + 4, &r0.edx, 4);
  std::memcpy(vendor + 8, &r0.ecx, 4);
  f.vendor = vendor;
  if (max_leaf < 1) return f;
  const Regs r1 = cpuid(1, 0);
  f.sse3 = bit(r1.ecx, 0);
  f.ssse3 = bit(r1.ecx, 9);
  f.fma = bit(r1.ecx, 12);
  const bool osxsave = bit(r1.ecx, 27);
  f.avx = bit(r1.ecx, 28);
  f.f16c = bit(r1.ecx, 29);
  uint64_t xcr0 = 0;
  if (osxsave) xcr0 = xgetbv0();
  f.os_avx = (xcr0 & 0x6) == 0x6;
  f.os_avx512 = f.os_avx && (xcr0 & 0xE0) == 0xE0;
  if (max_leaf >= 7) {
    const Regs r7 = cpuid(7, 0);
    f.avx2 = bit(r7.ebx, 5);
    f.bmi2 = bit(r7.ebx, 8);
    f.avx512f = bit(r7.ebx, 16);
    f.avx512dq = bit(r7.ebx, 17);
    f.avx512bw = bit(r7.ebx, 30);
    f.avx512vl = bit(r7.ebx, 31);
    f.avx512vbmi = bit(r7.ecx, 1);
    f.avx512vnni = bit(r7.ecx, 11);
    f.amx_bf16 = bit(r7.edx, 22);
    f.amx_tile = bit(r7.edx, 24);
    f.amx_int8 = bit(r7.edx, 25);
    if (r7.eax >= 1) {
      const Regs r71 = cpuid(7, 1);
      f.avx_vnni = bit(r71.eax, 4);
      f.avx512bf16 = bit(r71.eax, 5);
    }
  }
  if (f.amx_tile && (xcr0 & 0x60000) == 0x60000) f.os_amx = request_amx_permission();
  return f;
}

std::string lower(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

std::string isa_list(const std::vector<Isa>& isas) {
  std::string out;
  for (Isa isa : isas) {
    if (!out.empty()) out += ' ';
    out += isa_name(isa);
  }
  return out;
}

}  // namespace

std::string CpuFeatures::summary() const {
  std::string out = vendor;
  auto add = [&](bool on, const char* name) {
    if (on) out += std::string(" ") + name;
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx_vnni, "avx-vnni");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512dq, "avx512dq");
  add(avx512vnni, "avx512vnni");
  add(avx512bf16, "avx512bf16");
  add(avx512vbmi, "avx512vbmi");
  add(amx_tile, "amx-tile");
  add(amx_int8, "amx-int8");
  add(amx_bf16, "amx-bf16");
  out += os_avx512 ? " (os: zmm)" : os_avx ? " (os: ymm)" : " (os: no avx state)";
  if (amx_tile) out += os_amx ? " (amx permitted)" : " (amx not permitted)";
  return out;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kGeneric:
      return "generic";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.os_avx && f.avx && f.avx2 && f.fma && f.f16c;
  switch (isa) {
    case Isa::kGeneric:
      return true;
    case Isa::kAvx2:
      return avx2;
    case Isa::kAvx512:
      return avx2 && f.os_avx512 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq &&
             f.avx512vnni;
  }
  return false;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (int i = 0; i < kIsaCount; ++i) {
    if (isa_supported(static_cast<Isa>(i))) out.push_back(static_cast<Isa>(i));
  }
  return out;
}

Isa parse_isa(std::string_view name) {
  const std::string key = lower(name);
  for (int i = 0; i < kIsaCount; ++i) {
    const Isa isa = static_cast<Isa>(i);
    if (key != isa_name(isa)) continue;
    if (!isa_supported(isa)) {
      throw InvalidArgument("INSITU_ISA: '" + std::string(name) +
                            "' is not supported by this CPU; supported: " +
                            isa_list(supported_isas()));
    }
    return isa;
  }
  throw InvalidArgument("INSITU_ISA: unknown instruction set '" + std::string(name) +
                        "'; valid: generic avx2 avx512 (this CPU supports: " +
                        isa_list(supported_isas()) + ")");
}

Isa default_isa() {
  static const Isa chosen = [] {
    const char* env = std::getenv("INSITU_ISA");
    Isa isa = supported_isas().back();
    if (env != nullptr && *env != '\0') isa = parse_isa(env);
    spdlog::info("kernels: cpu {}; using {} kernels{}", cpu_features().summary(), isa_name(isa),
                 env != nullptr && *env != '\0' ? " (INSITU_ISA)" : "");
    return isa;
  }();
  return chosen;
}

}  // namespace insitu
