// AVX-512 (F/BW/VL/DQ/VNNI) kernels: the shared x86 code with vpdpbusd/vpdpwssd and opmask bit
// expansion, plus the panel GEMM (gemm_avx512.cc).
#define INSITU_X86_NS avx512
#define INSITU_X86_VNNI 1
#include "kernels/x86/vec_dot_x86.inc"

namespace insitu {
void panel_gemm_avx512(const PackedPanel& w, const PackedActs& a, int64_t tile, int n_tok,
                       int64_t s0, int64_t s1, bool acc, float* y);  // gemm_avx512.cc

void fill_avx512_kernels(KernelTable& t) {
  avx512::fill(t);
  t.panel_gemm = panel_gemm_avx512;
  t.isa = Isa::kAvx512;
}
}  // namespace insitu
