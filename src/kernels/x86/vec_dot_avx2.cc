// AVX2 + FMA + F16C kernels: the shared x86 code without VNNI.
#define INSITU_X86_NS avx2
#define INSITU_X86_VNNI 0
#include "kernels/x86/vec_dot_x86.inc"

namespace insitu {
void fill_avx2_kernels(KernelTable& t) {
  avx2::fill(t);
  t.isa = Isa::kAvx2;
}
}  // namespace insitu
