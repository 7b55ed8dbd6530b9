// CPU feature detection and the choice of kernel instruction set.
//
// Features are read once with cpuid, and a feature counts only when the OS also saves its register
// state (XGETBV: XMM/YMM for AVX2, opmask/ZMM for AVX-512, XTILECFG/XTILEDATA for AMX; on Linux
// the AMX tile state must additionally be requested with arch_prctl(ARCH_REQ_XCOMP_PERM), which is
// done here once). The kernel ISA is the best one the machine supports, unless the environment
// variable INSITU_ISA=generic|avx2|avx512 asks for another; asking for one the machine cannot run
// is an insitu::InvalidArgument naming the valid choices. Thread-safe (computed once).
// AMX is detected and logged, but no ISA uses it yet: there are no tile kernels (the development
// machine, an AVX-512 AMD EPYC, has no AMX to test them on).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace insitu {

struct CpuFeatures {
  bool sse3 = false, ssse3 = false, fma = false, f16c = false, avx = false, avx2 = false;
  bool bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false, avx512vbmi = false;
  bool avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool os_avx = false;     // XCR0 has SSE and AVX state
  bool os_avx512 = false;  // XCR0 has opmask and ZMM state
  bool os_amx = false;     // XCR0 has tile state and Linux granted permission to use it
  std::string vendor;

  std::string summary() const;  // "avx2 fma f16c avx512f ... amx-int8", for logs
};

enum class Isa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };
inline constexpr int kIsaCount = 3;

const char* isa_name(Isa isa);

// The detected features (cpuid + OS support), computed on first use.
const CpuFeatures& cpu_features();

// True when this machine can run kernels built for `isa`: kAvx2 needs AVX2+FMA+F16C with OS YMM
// support; kAvx512 additionally needs AVX-512 F/BW/VL/DQ/VNNI with OS ZMM support.
bool isa_supported(Isa isa);

// Every ISA this machine supports, generic first.
std::vector<Isa> supported_isas();

// Parses "generic" / "avx2" / "avx512" (case-insensitive). Throws InvalidArgument naming the valid
// choices for an unknown name, or naming the supported ones for an ISA this machine cannot run.
Isa parse_isa(std::string_view name);

// The ISA the kernels start with: INSITU_ISA if set (validated with parse_isa), else the best
// supported one. Logged once at info level.
Isa default_isa();

}  // namespace insitu
