#include "kernels/matmul.h"

#include <algorithm>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "kernels/fp8_matmul.h"
#include "kernels/generic/decode.h"
#include "kernels/kernel_table.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

// Below this many tokens the per-call cost of decoding weight panels outweighs their reuse, and
// the GEMM runs as tiles of vec_dot calls instead.
constexpr int64_t kPanelMinTokens = 8;

// Weight rows per tile of the vec_dot GEMM: their bytes stay in L2 while every token passes.
constexpr int64_t kTileRows = 16;

void check_shape(const WeightView& w, const TypeTraits& tt, int64_t n_tokens) {
  if (w.n_in <= 0 || w.n_out <= 0 || n_tokens < 0 || w.n_in % tt.block_size != 0 ||
      w.row_bytes < quant_row_size(w.type, w.n_in)) {
    throw InvalidArgument("matmul: bad weight shape for " + std::string(tt.name) + ": n_in " +
                          std::to_string(w.n_in) + ", n_out " + std::to_string(w.n_out) +
                          ", row_bytes " + std::to_string(w.row_bytes) + ", n_tokens " +
                          std::to_string(n_tokens));
  }
}

// Dequantizes one weight row at a time and takes float dot products: for types without a kernel.
void matmul_dequant(const WeightView& w, const TypeTraits& tt, const float* x, int64_t n_tokens,
                    float* y, ThreadPool& pool) {
  if (tt.dequantize_row == nullptr) {
    throw Unsupported("matmul: no kernel and no dequantizer for type " + std::string(tt.name));
  }
  pool.parallel_for(w.n_out, [&](int, int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(w.n_in));
    for (int64_t o = begin; o < end; ++o) {
      tt.dequantize_row(static_cast<const uint8_t*>(w.data) + o * w.row_bytes, row.data(), w.n_in);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * w.n_in;
        float sum = 0.0f;
        for (int64_t i = 0; i < w.n_in; ++i) sum += row[i] * xt[i];
        y[t * w.n_out + o] = sum;
      }
    }
  });
}

template <class T>
T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// Decoded weight panel storage, one per worker thread, reused across calls.
struct PanelBuffer {
  std::vector<uint8_t> q;
  std::vector<float> scale, min;

  PackedPanel bind(int64_t n, int sub, bool has_min) {
    const size_t n_sub = static_cast<size_t>(n / sub);
    PackedPanel p;
    p.sub = sub;
    p.n_sub = static_cast<int64_t>(n_sub);
    p.q = grow(q, static_cast<size_t>(n) * kPanelRows);
    p.scale = grow(scale, n_sub * kPanelRows);
    p.min = has_min ? grow(min, n_sub * kPanelRows) : nullptr;
    return p;
  }
};

void gemm_panels(const WeightView& w, const DecodeInfo& info, const KernelTable& k,
                 QuantType act, const uint8_t* act_rows, size_t act_row_bytes, int64_t n_tokens,
                 float* y, ThreadPool& pool) {
  const int sub = info.sub;
  const int64_t n = w.n_in;
  const int64_t n_sub = n / sub;
  // Activations in the kernel's form (PackedActs), tiles of kActTile tokens.
  static thread_local std::vector<int8_t> aq;
  static thread_local std::vector<int32_t> acomp;
  static thread_local std::vector<float> ascale, asum;
  const int64_t n_tiles = (n_tokens + kActTile - 1) / kActTile;
  int8_t* q = grow(aq, static_cast<size_t>(n_tiles * kActTile * n));
  int32_t* cp = grow(acomp, static_cast<size_t>(n_tiles * kActTile * n_sub));
  float* sc = grow(ascale, static_cast<size_t>(n_tiles * kActTile * n_sub));
  float* sm = info.has_min ? grow(asum, static_cast<size_t>(n_tiles * kActTile * n_sub)) : nullptr;
  pool.parallel_for(n_tokens, [&](int, int64_t begin, int64_t end) {
    pack_acts(act, sub, act_rows, act_row_bytes, begin, end, n, q, cp, sc, sm);
  });
  PackedActs acts;
  acts.sub = sub;
  acts.n = n;
  acts.n_sub = n_sub;
  acts.q = q;
  acts.comp = cp;
  acts.scale = sc;
  acts.sum = sm;

  // Blocking: a group of kGroupPanels panels is decoded once, then the input dimension is walked
  // in chunks of kChunk elements; within a chunk every token tile meets every panel of the group,
  // so a chunk of activations is read from cache once per group instead of once per panel, and
  // the group's chunk of weights stays in L2 while all tiles pass. Chunk boundaries are fixed,
  // so the float summation order (and the result) never depends on the thread count.
  constexpr int64_t kGroupPanels = 8;
  constexpr int64_t kChunk = 1024;
  const int64_t n_panels = (w.n_out + kPanelRows - 1) / kPanelRows;
  const int64_t chunk_sub = std::max<int64_t>(1, kChunk / sub);
  const auto* wdata = static_cast<const uint8_t*>(w.data);
  const DecodeBlockFn decode =
      k.decode[type_slot(w.type)] != nullptr ? k.decode[type_slot(w.type)] : info.decode;
  pool.parallel_for(n_panels, [&](int, int64_t begin, int64_t end) {
    static thread_local std::vector<PanelBuffer> bufs(kGroupPanels);
    static thread_local std::vector<float> out;
    PackedPanel panels[kGroupPanels];
    for (int64_t g0 = begin; g0 < end; g0 += kGroupPanels) {
      const int64_t gn = std::min(kGroupPanels, end - g0);
      float* acc = grow(out, static_cast<size_t>(gn * n_tiles * kActTile * kPanelRows));
      for (int64_t j = 0; j < gn; ++j) {
        const int64_t row0 = (g0 + j) * kPanelRows;
        const int rows = static_cast<int>(std::min<int64_t>(kPanelRows, w.n_out - row0));
        panels[j] = bufs[j].bind(n, sub, info.has_min);
        pack_panel(info, decode, wdata + row0 * w.row_bytes, w.row_bytes, rows, n, panels[j]);
      }
      for (int64_t s0 = 0; s0 < n_sub; s0 += chunk_sub) {
        const int64_t s1 = std::min(n_sub, s0 + chunk_sub);
        for (int64_t tile = 0; tile < n_tiles; ++tile) {
          const int nt = static_cast<int>(std::min<int64_t>(kActTile, n_tokens - tile * kActTile));
          for (int64_t j = 0; j < gn; ++j) {
            float* yj = acc + (j * n_tiles + tile) * kActTile * kPanelRows;
            k.panel_gemm(panels[j], acts, tile, nt, s0, s1, s0 > 0, yj);
          }
        }
      }
      for (int64_t j = 0; j < gn; ++j) {
        const int64_t row0 = (g0 + j) * kPanelRows;
        const int64_t rows = std::min<int64_t>(kPanelRows, w.n_out - row0);
        for (int64_t t = 0; t < n_tokens; ++t) {
          const float* src = acc + (j * n_tiles * kActTile + t) * kPanelRows;
          std::copy_n(src, rows, y + t * w.n_out + row0);
        }
      }
    }
  });
}

}  // namespace

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const TypeTraits& tt = type_traits(w.type);
  check_shape(w, tt, n_tokens);
  if (n_tokens == 0) return;
  if (w.type == QuantType::kFP8 || w.type == QuantType::kFP8_B128) {
    matmul_fp8(w, x, n_tokens, y, pool);  // scales per tensor / tile: a path of its own
    return;
  }
  const KernelTable& k = active_kernels();
  const int slot = type_slot(w.type);
  const VecDotFn dot = slot < kTypeSlots ? k.vec_dot[slot] : nullptr;
  const QuantType act = tt.vec_dot_type;
  const bool float_act = !tt.is_quantized;
  const QuantizeActFn quantize = float_act ? nullptr : k.quantize_act[type_slot(act)];
  if (dot == nullptr || (!float_act && quantize == nullptr)) {
    matmul_dequant(w, tt, x, n_tokens, y, pool);
    return;
  }

  // Activations in the paired format, quantized once for all output rows.
  const uint8_t* act_rows;
  size_t act_row_bytes;
  static thread_local std::vector<uint8_t> act_buf;
  if (float_act) {
    act_rows = reinterpret_cast<const uint8_t*>(x);
    act_row_bytes = static_cast<size_t>(w.n_in) * sizeof(float);
  } else {
    act_row_bytes = quant_row_size(act, w.n_in);
    uint8_t* buf = grow(act_buf, act_row_bytes * static_cast<size_t>(n_tokens));
    pool.parallel_for(n_tokens, [&](int, int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) quantize(x + t * w.n_in, buf + t * act_row_bytes, w.n_in);
    });
    act_rows = buf;
  }

  const auto* wdata = static_cast<const uint8_t*>(w.data);
  if (n_tokens == 1) {
    pool.parallel_for(w.n_out, [&](int, int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) y[o] = dot(w.n_in, wdata + o * w.row_bytes, act_rows);
    });
    return;
  }

  const DecodeInfo* info = decode_info(w.type);
  if (k.panel_gemm != nullptr && info != nullptr && n_tokens >= kPanelMinTokens) {
    gemm_panels(w, *info, k, act, act_rows, act_row_bytes, n_tokens, y, pool);
    return;
  }

  // Tiles of kTileRows weight rows: each tile's rows stay cached while every token visits them.
  const int64_t n_tiles = (w.n_out + kTileRows - 1) / kTileRows;
  pool.parallel_for(n_tiles, [&](int, int64_t begin, int64_t end) {
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t o0 = tile * kTileRows, o1 = std::min(w.n_out, o0 + kTileRows);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const uint8_t* a = act_rows + t * act_row_bytes;
        for (int64_t o = o0; o < o1; ++o) y[t * w.n_out + o] = dot(w.n_in, wdata + o * w.row_bytes, a);
      }
    }
  });
}

}  // namespace insitu
