#include "quant/quant_isa.h"

#include <atomic>
#include <string>

#include "insitu/error.h"
#include "util/cpu_features.h"

namespace insitu {
namespace {

Isa to_isa(QuantIsa isa) { return static_cast<Isa>(static_cast<int>(isa)); }

QuantIsa initial() {
  // The kernels' choice (INSITU_ISA or the best supported); an invalid INSITU_ISA is the kernel
  // layer's error to report, so the quantizers fall back to the best supported path.
  Isa isa = supported_isas().back();
  try {
    isa = default_isa();
  } catch (const InvalidArgument&) {
  }
  return static_cast<QuantIsa>(static_cast<int>(isa));
}

std::atomic<QuantIsa>& active() {
  static std::atomic<QuantIsa> isa{initial()};
  return isa;
}

}  // namespace

static_assert(static_cast<int>(QuantIsa::kAvx2) == static_cast<int>(Isa::kAvx2) &&
              static_cast<int>(QuantIsa::kAvx512) == static_cast<int>(Isa::kAvx512));

bool quant_isa_supported(QuantIsa isa) { return isa_supported(to_isa(isa)); }

QuantIsa quant_isa() { return active().load(std::memory_order_relaxed); }

void set_quant_isa(QuantIsa isa) {
  if (!quant_isa_supported(isa)) {
    throw InvalidArgument(std::string("quant: instruction set ") + quant_isa_name(isa) +
                          " is not supported by this machine");
  }
  active().store(isa, std::memory_order_relaxed);
}

const char* quant_isa_name(QuantIsa isa) { return isa_name(to_isa(isa)); }

}  // namespace insitu
