// MXFP4 between ggml's blocks (our kMXFP4 rows, quant/blocks.h BlockMXFP4) and mistral.rs's /
// gpt-oss's split tensors (../shared/reference/mistralrs-quant.md §3.6, §4.2 format Mxfp4 = 6):
//   blocks u8 [N, K/2]: element k of a row in byte k/2, even k in the low nibble, odd k high;
//   scales u8 [N, K/32]: the E8M0 exponent of each 32-element block.
// ggml's block: e (the same E8M0 byte) then 16 bytes where byte j holds element j (low nibble)
// and element j + 16 (high nibble). The 4-bit codes are the same E2M1 values in both (ggml's
// table stores them doubled and halves the scale), so the conversion is a lossless reordering.
//
// ISQ to mxfp4 keeps ggml's quantizer: the OCP MX exponent floor(log2(amax)) - 2 puts the block
// maximum in [4, 8) before rounding to the E2M1 grid (top value 6), clipping by at most 8/6;
// mistral.rs's floor(log2(amax / 6)) puts it in [6, 12) and clips by up to 2x. Their bytes differ
// for such blocks, but either side reads the other's.
//
// n_per_row must be a multiple of 32; buffers are caller-owned: ggml rows n_rows * n_per_row / 32
// blocks of 17 bytes, blocks n_rows * n_per_row / 2 bytes, scales n_rows * n_per_row / 32 bytes.
// Thread-safe; throws InvalidArgument for a bad shape.
#pragma once

#include <cstdint>

namespace insitu {

void mxfp4_ggml_to_split(const uint8_t* ggml_rows, int64_t n_rows, int64_t n_per_row,
                         uint8_t* blocks, uint8_t* scales);

void mxfp4_split_to_ggml(const uint8_t* blocks, const uint8_t* scales, int64_t n_rows,
                         int64_t n_per_row, uint8_t* ggml_rows);

}  // namespace insitu
