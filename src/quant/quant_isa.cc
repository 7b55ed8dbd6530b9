#include "quant/quant_isa.h"

#include <strings.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <atomic>
#include <cstdlib>
#include <string>

#include "insitu/error.h"

namespace insitu {
namespace {

#if defined(__x86_64__) && defined(__GNUC__)
// F16C (CPUID.1:ECX bit 29) and BMI2 (CPUID.7.0:EBX bit 8), read directly: clang's
// __builtin_cpu_supports does not know these two names.
bool has_f16c_and_bmi2() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(1, 0, a, b, c, d);
  const bool f16c = (c >> 29) & 1u;
  __cpuid_count(7, 0, a, b, c, d);
  const bool bmi2 = (b >> 8) & 1u;
  return f16c && bmi2;
}
#endif

bool detect(QuantIsa isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  switch (isa) {
    case QuantIsa::kGeneric:
      return true;
    // Every extension the *_avx2.cc / *_avx512.cc translation units are compiled with (see
    // src/CMakeLists.txt), since the compiler may use any of them there.
    case QuantIsa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             has_f16c_and_bmi2();
    case QuantIsa::kAvx512:
      return detect(QuantIsa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vbmi");
  }
  return false;
#else
  return isa == QuantIsa::kGeneric;
#endif
}

QuantIsa initial() {
  const char* env = std::getenv("INSITU_ISA");
  if (env != nullptr) {
    for (const QuantIsa isa : {QuantIsa::kGeneric, QuantIsa::kAvx2, QuantIsa::kAvx512}) {
      if (strcasecmp(env, quant_isa_name(isa)) == 0 && detect(isa)) return isa;
    }
  }
  if (detect(QuantIsa::kAvx512)) return QuantIsa::kAvx512;
  if (detect(QuantIsa::kAvx2)) return QuantIsa::kAvx2;
  return QuantIsa::kGeneric;
}

std::atomic<QuantIsa>& active() {
  static std::atomic<QuantIsa> isa{initial()};
  return isa;
}

}  // namespace

bool quant_isa_supported(QuantIsa isa) { return detect(isa); }

QuantIsa quant_isa() { return active().load(std::memory_order_relaxed); }

void set_quant_isa(QuantIsa isa) {
  if (!detect(isa)) {
    throw InvalidArgument(std::string("quant: instruction set ") + quant_isa_name(isa) +
                          " is not supported by this machine");
  }
  active().store(isa, std::memory_order_relaxed);
}

const char* quant_isa_name(QuantIsa isa) {
  switch (isa) {
    case QuantIsa::kGeneric:
      return "generic";
    case QuantIsa::kAvx2:
      return "avx2";
    case QuantIsa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

}  // namespace insitu
