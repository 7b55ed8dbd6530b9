// FP8 weight kernels on AVX-512 F (see fp8_x86.inc).
#define INSITU_FP8_WIDTH 16
#define INSITU_FP8_ENTRY fp8_rows_avx512
#include "kernels/x86/fp8_x86.inc"
