#include <atomic>
#include <string>

#include "insitu/error.h"
#include "kernels/kernel_table.h"

namespace insitu {
namespace {

KernelTable build(Isa isa) {
  KernelTable t;
  fill_generic_kernels(t);
  if (isa == Isa::kAvx2 || isa == Isa::kAvx512) fill_avx2_kernels(t);
  if (isa == Isa::kAvx512) fill_avx512_kernels(t);
  t.isa = isa;
  return t;
}

std::atomic<const KernelTable*> g_active{nullptr};

}  // namespace

const KernelTable& kernel_table(Isa isa) {
  if (!isa_supported(isa)) {
    throw InvalidArgument(std::string("kernels: instruction set ") + isa_name(isa) +
                          " is not supported by this CPU");
  }
  static const KernelTable generic = build(Isa::kGeneric);
  if (isa == Isa::kGeneric) return generic;
  static const KernelTable avx2 = build(Isa::kAvx2);
  if (isa == Isa::kAvx2) return avx2;
  static const KernelTable avx512 = build(Isa::kAvx512);
  return avx512;
}

const KernelTable& active_kernels() {
  const KernelTable* t = g_active.load(std::memory_order_acquire);
  if (t == nullptr) {
    t = &kernel_table(default_isa());
    const KernelTable* expected = nullptr;
    if (!g_active.compare_exchange_strong(expected, t)) t = expected;
  }
  return *t;
}

void set_active_isa(Isa isa) { g_active.store(&kernel_table(isa), std::memory_order_release); }

}  // namespace insitu
