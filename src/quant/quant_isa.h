// Which SIMD code path the quantizers use for the searches that have hand-written AVX2 / AVX-512
// versions (the i-quants). Every path writes the same bytes as the generic one, which stays
// built and is what the golden tests pin to ggml; tests/quant compare the paths byte for byte, so
// the choice only changes speed.
//
// The quant layer sits below src/kernels, so it cannot use kernels/cpu_features.h: it reads the
// CPU through GCC's __builtin_cpu_supports (cpuid plus the OS's XSAVE state, as libgcc checks it)
// and honours the same override, INSITU_ISA=generic|avx2|avx512 (an unknown or unsupported value
// is ignored here; the kernel layer reports it). Thread-safe: the choice is made once, and
// set_quant_isa only swaps an atomic.
#pragma once

namespace insitu {

enum class QuantIsa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

// Whether this machine (and build) can run the path.
bool quant_isa_supported(QuantIsa isa);

// The path in use: INSITU_ISA's when set and supported, else the best supported one.
QuantIsa quant_isa();

// Switches the path (tests and benchmarks compare them). Throws InvalidArgument for a path this
// machine cannot run. Quantizations already running may finish on either path.
void set_quant_isa(QuantIsa isa);

const char* quant_isa_name(QuantIsa isa);

}  // namespace insitu
