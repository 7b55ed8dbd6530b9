// Internal interface between the i-quant translation units (not part of the library's API).
//
// i_quants.cc owns the type-table registration, the dequantizers and IQ4_NL / IQ4_XS; the
// grid-based quantizers live in iq2_quants.cc, iq3_quants.cc and iq1_quants.cc, all ports of
// ggml's src/ggml-quants.c at commit d99724f2.
//
// Each row quantizer writes n / 256 blocks for n input values (n a positive multiple of 256;
// callers check). `qw` is null or the importance weights of the row's n columns. The functions
// are reentrant: they keep no state beyond the immutable grid search tables.
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace insitu::iq {

// iq2_quants.cc. IQ2_XXS and IQ2_XS require qw (the caller enforces it).
void quantize_row_iq2_xxs(const float* x, BlockIQ2XXS* y, int64_t n, const float* qw);
void quantize_row_iq2_xs(const float* x, BlockIQ2XS* y, int64_t n, const float* qw);
void quantize_row_iq2_s(const float* x, BlockIQ2S* y, int64_t n, const float* qw);

// iq3_quants.cc.
void quantize_row_iq3_xxs(const float* x, BlockIQ3XXS* y, int64_t n, const float* qw);
void quantize_row_iq3_s(const float* x, BlockIQ3S* y, int64_t n, const float* qw);

// iq1_quants.cc. IQ1_S requires qw (the caller enforces it).
void quantize_row_iq1_s(const float* x, BlockIQ1S* y, int64_t n, const float* qw);
void quantize_row_iq1_m(const float* x, BlockIQ1M* y, int64_t n, const float* qw);

}  // namespace insitu::iq
