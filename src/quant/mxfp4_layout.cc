#include "quant/mxfp4_layout.h"

#include <string>

#include "insitu/error.h"
#include "quant/blocks.h"

namespace insitu {
namespace {

int64_t checked_blocks(int64_t n_rows, int64_t n_per_row) {
  if (n_rows < 0 || n_per_row <= 0 || n_per_row % kQK_MXFP4 != 0) {
    throw InvalidArgument("mxfp4 layout: shape " + std::to_string(n_rows) + " x " +
                          std::to_string(n_per_row) + " needs rows of a positive multiple of 32");
  }
  return n_rows * (n_per_row / kQK_MXFP4);
}

}  // namespace

void mxfp4_ggml_to_split(const uint8_t* ggml_rows, int64_t n_rows, int64_t n_per_row,
                         uint8_t* blocks, uint8_t* scales) {
  const int64_t nb = checked_blocks(n_rows, n_per_row);
  const auto* in = reinterpret_cast<const BlockMXFP4*>(ggml_rows);
  for (int64_t b = 0; b < nb; ++b) {
    scales[b] = in[b].e;
    uint8_t q[kQK_MXFP4];
    for (int j = 0; j < 16; ++j) {
      q[j] = in[b].qs[j] & 0x0F;
      q[j + 16] = in[b].qs[j] >> 4;
    }
    uint8_t* out = blocks + b * (kQK_MXFP4 / 2);
    for (int k = 0; k < 16; ++k) out[k] = static_cast<uint8_t>(q[2 * k] | (q[2 * k + 1] << 4));
  }
}

void mxfp4_split_to_ggml(const uint8_t* blocks, const uint8_t* scales, int64_t n_rows,
                         int64_t n_per_row, uint8_t* ggml_rows) {
  const int64_t nb = checked_blocks(n_rows, n_per_row);
  auto* out = reinterpret_cast<BlockMXFP4*>(ggml_rows);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* in = blocks + b * (kQK_MXFP4 / 2);
    uint8_t q[kQK_MXFP4];
    for (int k = 0; k < 16; ++k) {
      q[2 * k] = in[k] & 0x0F;
      q[2 * k + 1] = in[k] >> 4;
    }
    out[b].e = scales[b];
    for (int j = 0; j < 16; ++j) out[b].qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
  }
}

}  // namespace insitu
