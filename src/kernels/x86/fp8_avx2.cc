// FP8 weight kernels on AVX2 + FMA + F16C (see fp8_x86.inc).
#define INSITU_FP8_WIDTH 8
#define INSITU_FP8_ENTRY fp8_rows_avx2
#include "kernels/x86/fp8_x86.inc"
