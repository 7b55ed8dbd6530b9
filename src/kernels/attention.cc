#include "kernels/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/kernel_table.h"
#include "quant/float_convert.h"

namespace insitu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Query rows a task aims for: enough to amortise converting a K/V tile, few enough that the
// rows' accumulators and a tile stay in L1/L2.
constexpr int kBlockRows = 32;

// Keys per tile (a multiple of 16): a K and a V tile of f32 are each about 16 KiB.
int key_tile(int dp) { return std::clamp(4096 / dp / 16 * 16, 16, 64); }

// Per-thread buffers, grown as needed.
struct Scratch {
  std::vector<float> q;      // [R, dp] the block's query rows (f16-rounded for an f16 cache)
  std::vector<float> k, v;   // [bk, dp] one tile of keys / values in f32
  std::vector<float> s;      // [R, bk] scores, then probabilities
  std::vector<float> acc;    // [R, dp]
  std::vector<float> m, l, alpha;  // [R]
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

template <typename V>
void grow(std::vector<V>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

struct Plan {
  int group = 1;    // query heads per KV head
  int bt = 1;       // query tokens per block
  int n_qb = 1;     // query blocks
  int n_split = 1;  // key ranges per (KV head, query block)
  int dp = 0;       // head_dim rounded up to 16 (zero padded)
  int bk = 16;      // keys per tile
};

// Key positions [lo, hi) of the block of tokens [t0, t1): the visible ones, with lo rounded down
// to a multiple of the tile so that tiles sit at fixed positions whatever the block (the extra
// keys are masked), which keeps a row's summation order independent of its batch.
void block_keys(const AttentionArgs& a, int bk, int t0, int t1, int64_t* lo, int64_t* hi) {
  const int64_t first = static_cast<int64_t>(a.pos0) + t0;
  *lo = a.window > 0 ? std::max<int64_t>(0, first - a.window + 1) / bk * bk : 0;
  *hi = static_cast<int64_t>(a.pos0) + t1;
}

// Runs KV head g's rows for tokens [t0, t1) over key positions [k_lo, k_hi), leaving the
// online-softmax state (m, l, acc) of the R = (t1 - t0) * group rows in sc.
void run_block(const AttentionArgs& a, const OpsKernels& ops, const Plan& p, int g, int t0,
               int t1, int64_t k_lo, int64_t k_hi, Scratch& sc) {
  const int D = a.head_dim, dp = p.dp, bk = p.bk;
  const int R = (t1 - t0) * p.group;
  const int64_t qw = static_cast<int64_t>(a.n_head) * D;
  const int64_t kvw = static_cast<int64_t>(a.n_head_kv) * D;
  const int64_t off = static_cast<int64_t>(g) * D;
  grow(sc.q, static_cast<size_t>(R) * dp);
  grow(sc.k, static_cast<size_t>(bk) * dp);
  grow(sc.v, static_cast<size_t>(bk) * dp);
  grow(sc.s, static_cast<size_t>(R) * bk);
  grow(sc.acc, static_cast<size_t>(R) * dp);
  grow(sc.m, R);
  grow(sc.l, R);
  grow(sc.alpha, R);
  for (int r = 0; r < R; ++r) {
    const int t = t0 + r / p.group;
    const int h = g * p.group + r % p.group;
    const float* src = a.q + t * qw + static_cast<int64_t>(h) * D;
    float* dst = sc.q.data() + static_cast<int64_t>(r) * dp;
    if (a.k16) {
      for (int i = 0; i < D; ++i) dst[i] = round_to_fp16(src[i]);
    } else {
      std::copy(src, src + D, dst);
    }
    std::fill(dst + D, dst + dp, 0.0f);
  }
  std::fill(sc.acc.begin(), sc.acc.begin() + static_cast<int64_t>(R) * dp, 0.0f);
  std::fill(sc.m.begin(), sc.m.begin() + R, kNegInf);
  std::fill(sc.l.begin(), sc.l.begin() + R, 0.0f);
  // Padding columns stay zero for the whole block; rows past a short last tile are zeroed.
  if (dp > D) {
    std::fill(sc.k.begin(), sc.k.begin() + static_cast<int64_t>(bk) * dp, 0.0f);
    std::fill(sc.v.begin(), sc.v.begin() + static_cast<int64_t>(bk) * dp, 0.0f);
  }
  const int64_t qp0 = static_cast<int64_t>(a.pos0) + t0;
  const int64_t qp1 = static_cast<int64_t>(a.pos0) + t1 - 1;
  for (int64_t j0 = k_lo; j0 < k_hi; j0 += bk) {
    const int nk = static_cast<int>(std::min<int64_t>(bk, k_hi - j0));
    // Position j lives in row j % cache_rows; a tile wraps at most once.
    int64_t row = j0 % a.cache_rows;
    for (int i = 0; i < nk; ++i, row = row + 1 == a.cache_rows ? 0 : row + 1) {
      float* kd = sc.k.data() + static_cast<int64_t>(i) * dp;
      float* vd = sc.v.data() + static_cast<int64_t>(i) * dp;
      if (a.k16) {
        ops.load_f16(a.k16 + row * kvw + off, kd, D);
        ops.load_f16(a.v16 + row * kvw + off, vd, D);
      } else {
        std::copy_n(a.k32 + row * kvw + off, D, kd);
        std::copy_n(a.v32 + row * kvw + off, D, vd);
      }
    }
    if (nk < bk) {
      std::fill(sc.k.begin() + static_cast<int64_t>(nk) * dp,
                sc.k.begin() + static_cast<int64_t>(bk) * dp, 0.0f);
      std::fill(sc.v.begin() + static_cast<int64_t>(nk) * dp,
                sc.v.begin() + static_cast<int64_t>(bk) * dp, 0.0f);
    }
    ops.attn_qk(sc.q.data(), R, sc.k.data(), bk, dp, sc.s.data());
    // Mask keys after a row's position, before its window, and past the tile's end; a tile
    // every row sees whole needs none of it.
    const bool whole = nk == bk && j0 + bk - 1 <= qp0 && (a.window <= 0 || j0 > qp1 - a.window);
    if (!whole) {
      for (int r = 0; r < R; ++r) {
        const int64_t qp = qp0 + r / p.group;
        float* s = sc.s.data() + static_cast<int64_t>(r) * bk;
        for (int i = 0; i < bk; ++i) {
          const int64_t pos = j0 + i;
          if (i >= nk || pos > qp || (a.window > 0 && pos <= qp - a.window)) s[i] = kNegInf;
        }
      }
    }
    for (int r = 0; r < R; ++r)
      sc.alpha[r] = ops.attn_softmax(sc.s.data() + static_cast<int64_t>(r) * bk, bk, a.scale,
                                     &sc.m[r], &sc.l[r]);
    ops.attn_pv(sc.s.data(), R, sc.v.data(), bk, dp, sc.alpha.data(), sc.acc.data());
  }
}

// out rows of the block from finished (or merged) states.
void write_out(const AttentionArgs& a, const Plan& p, int g, int t0, int t1, const float* acc,
               const float* l) {
  const int D = a.head_dim;
  const int64_t qw = static_cast<int64_t>(a.n_head) * D;
  const int R = (t1 - t0) * p.group;
  for (int r = 0; r < R; ++r) {
    const int t = t0 + r / p.group;
    const int h = g * p.group + r % p.group;
    float* dst = a.out + t * qw + static_cast<int64_t>(h) * D;
    const float* src = acc + static_cast<int64_t>(r) * p.dp;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    for (int i = 0; i < D; ++i) dst[i] = src[i] * inv;
  }
}

}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  if (a.n_tokens <= 0) return;
  const OpsKernels& ops = active_kernels().ops;
  Plan p;
  p.group = a.n_head / a.n_head_kv;
  p.bt = std::clamp(kBlockRows / p.group, 1, a.n_tokens);
  p.n_qb = (a.n_tokens + p.bt - 1) / p.bt;
  p.dp = (a.head_dim + 15) / 16 * 16;
  p.bk = key_tile(p.dp);
  const int G = a.n_head_kv;
  const int n_pairs = G * p.n_qb;
  const int n_threads = pool.size();
  {
    // Single-token decode with too few KV heads for the threads: split the keys too, into
    // ranges of at least 4 tiles. Prefill never splits, so a row's result does not depend on the
    // batch it came in (prefix reuse re-evaluates tokens and expects the same logits).
    int64_t lo = 0, hi = 0;
    block_keys(a, p.bk, (p.n_qb - 1) * p.bt, a.n_tokens, &lo, &hi);
    const int64_t max_split = std::max<int64_t>(1, (hi - lo) / (4 * p.bk));
    if (a.n_tokens == 1 && n_pairs < 4 * n_threads)
      p.n_split = static_cast<int>(
          std::min<int64_t>((4 * n_threads + n_pairs - 1) / n_pairs, max_split));
  }
  const int R_max = p.bt * p.group;
  const int64_t part_stride = static_cast<int64_t>(R_max) * (p.dp + 2);
  std::vector<float> parts;  // [n_pairs * n_split][R_max * (dp + 2)]: acc, then m, then l
  if (p.n_split > 1) parts.resize(static_cast<size_t>(n_pairs) * p.n_split * part_stride);

  // Tasks in order of decreasing work (later query blocks see more keys), taken dynamically.
  const int64_t n_tasks = static_cast<int64_t>(n_pairs) * p.n_split;
  std::atomic<int64_t> next{0};
  pool.parallel_for(n_threads, [&](int, int64_t, int64_t) {
    Scratch& sc = scratch();
    for (int64_t task = next.fetch_add(1); task < n_tasks; task = next.fetch_add(1)) {
      const int split = static_cast<int>(task % p.n_split);
      const int pair = static_cast<int>(task / p.n_split);
      const int qb = p.n_qb - 1 - pair / G;
      const int g = pair % G;
      const int t0 = qb * p.bt;
      const int t1 = std::min(a.n_tokens, t0 + p.bt);
      int64_t lo = 0, hi = 0;
      block_keys(a, p.bk, t0, t1, &lo, &hi);
      if (p.n_split == 1) {
        run_block(a, ops, p, g, t0, t1, lo, hi, sc);
        write_out(a, p, g, t0, t1, sc.acc.data(), sc.l.data());
        continue;
      }
      const int64_t tiles = (hi - lo + p.bk - 1) / p.bk;
      const int64_t per = (tiles + p.n_split - 1) / p.n_split * p.bk;
      const int64_t s_lo = std::min(hi, lo + split * per);
      const int64_t s_hi = std::min(hi, s_lo + per);
      run_block(a, ops, p, g, t0, t1, s_lo, s_hi, sc);
      const int R = (t1 - t0) * p.group;
      float* part = parts.data() + task * part_stride;
      std::copy_n(sc.acc.data(), static_cast<int64_t>(R) * p.dp, part);
      std::copy_n(sc.m.data(), R, part + static_cast<int64_t>(R_max) * p.dp);
      std::copy_n(sc.l.data(), R, part + static_cast<int64_t>(R_max) * (p.dp + 1));
    }
  });
  if (p.n_split == 1) return;

  // Merge each pair's partial states: rescale to the common max, then add.
  std::vector<float> acc(static_cast<size_t>(R_max) * p.dp), l(R_max);
  for (int pair = 0; pair < n_pairs; ++pair) {
    const int qb = p.n_qb - 1 - pair / G;
    const int g = pair % G;
    const int t0 = qb * p.bt;
    const int t1 = std::min(a.n_tokens, t0 + p.bt);
    const int R = (t1 - t0) * p.group;
    for (int r = 0; r < R; ++r) {
      float m = kNegInf;
      for (int s = 0; s < p.n_split; ++s) {
        const float* part = parts.data() + (static_cast<int64_t>(pair) * p.n_split + s) * part_stride;
        m = std::max(m, part[static_cast<int64_t>(R_max) * p.dp + r]);
      }
      float* ar = acc.data() + static_cast<int64_t>(r) * p.dp;
      std::fill(ar, ar + p.dp, 0.0f);
      l[r] = 0.0f;
      for (int s = 0; s < p.n_split; ++s) {
        const float* part = parts.data() + (static_cast<int64_t>(pair) * p.n_split + s) * part_stride;
        const float ms = part[static_cast<int64_t>(R_max) * p.dp + r];
        if (ms == kNegInf) continue;
        const float w = std::exp(ms - m);
        l[r] += w * part[static_cast<int64_t>(R_max) * (p.dp + 1) + r];
        ops.axpy_f32(w, part + static_cast<int64_t>(r) * p.dp, ar, p.dp);
      }
    }
    write_out(a, p, g, t0, t1, acc.data(), l.data());
  }
}

void attention_reference(const AttentionArgs& a, ThreadPool& pool) {
  const OpsKernels& ops = active_kernels().ops;
  const int group = a.n_head / a.n_head_kv;
  const int64_t qw = static_cast<int64_t>(a.n_head) * a.head_dim;
  const int64_t kvw = static_cast<int64_t>(a.n_head_kv) * a.head_dim;
  const int64_t n_tasks = static_cast<int64_t>(a.n_tokens) * a.n_head;
  pool.parallel_for(n_tasks, [&](int, int64_t begin, int64_t end) {
    thread_local std::vector<float> scores, qh;
    for (int64_t task = begin; task < end; ++task) {
      const int t = static_cast<int>(task / a.n_head);
      const int h = static_cast<int>(task % a.n_head);
      const int g = h / group;
      const int pos = a.pos0 + t;
      const int lo = a.window > 0 ? std::max(0, pos - a.window + 1) : 0;
      const float* q = a.q + t * qw + static_cast<int64_t>(h) * a.head_dim;
      float* out = a.out + t * qw + static_cast<int64_t>(h) * a.head_dim;
      const int64_t off = static_cast<int64_t>(g) * a.head_dim;
      const int n_keys = pos - lo + 1;
      grow(scores, n_keys);
      float* s = scores.data();
      if (a.k16) {
        // llama.cpp multiplies an f16 cache with q converted to f16 (the f16 vec_dot type).
        grow(qh, a.head_dim);
        for (int i = 0; i < a.head_dim; ++i) qh[i] = round_to_fp16(q[i]);
        q = qh.data();
      }
      // Key j lives in row j % cache_rows; the rows of [lo, pos] wrap at most once.
      const int row0 = lo % a.cache_rows;
      for (int j = 0, row = row0; j < n_keys; ++j, row = row + 1 == a.cache_rows ? 0 : row + 1) {
        const float d = a.k16 ? ops.dot_f16(q, a.k16 + row * kvw + off, a.head_dim)
                              : ops.dot_f32(q, a.k32 + row * kvw + off, a.head_dim);
        s[j] = d * a.scale;
      }
      ops.softmax(s, n_keys);
      if (a.v16) {
        // ...and likewise converts the probabilities to f16 before multiplying the f16 V cache.
        for (int j = 0; j < n_keys; ++j) s[j] = round_to_fp16(s[j]);
      }
      std::fill(out, out + a.head_dim, 0.0f);
      for (int j = 0, row = row0; j < n_keys; ++j, row = row + 1 == a.cache_rows ? 0 : row + 1) {
        if (a.v16) ops.axpy_f16(s[j], a.v16 + row * kvw + off, out, a.head_dim);
        else ops.axpy_f32(s[j], a.v32 + row * kvw + off, out, a.head_dim);
      }
    }
  });
}

}  // namespace insitu
