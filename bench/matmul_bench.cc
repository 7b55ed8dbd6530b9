// matmul throughput at an FFN-like shape (ggml's test-backend-ops perf case m=4096, k=14336):
// GEMV (n=1, decode), small batches (n=4, 16) and GEMM (n=512, prefill) per weight type and
// kernel ISA (the scalar generic ISA only up to n=16).
//
//   build-*/bin/matmul_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Counters: GFLOPS = 2*m*n*k / time; GB/s = weight bytes / time (meaningful for n=1). The thread
// count is INSITU_BENCH_THREADS (default 2). Weights are real quantizer output: 64 quantized rows
// of Gaussian data repeated down the matrix (the kernels' speed does not depend on the values).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/kernel_table.h"
#include "kernels/matmul.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

constexpr int64_t kN_in = 14336;  // k
constexpr int64_t kN_out = 4096;  // m

int bench_threads() {
  const char* env = std::getenv("INSITU_BENCH_THREADS");
  return env != nullptr ? std::atoi(env) : 2;
}

ThreadPool& pool() {
  static ThreadPool p(bench_threads());
  return p;
}

const std::vector<uint8_t>& weights(QuantType t) {
  static std::map<QuantType, std::vector<uint8_t>> cache;
  auto it = cache.find(t);
  if (it != cache.end()) return it->second;
  const size_t row_bytes = quant_row_size(t, kN_in);
  // 128 distinct rows: one full row of fp8_b128 tiles, whose scales are repeated like the rows.
  constexpr int64_t kDistinct = 128;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> src(static_cast<size_t>(kDistinct * kN_in));
  for (float& v : src) v = dist(rng);
  ThreadPool one(1);
  std::vector<uint8_t> block(quant_tensor_size(t, kDistinct, kN_in));
  quantize_tensor(t, src.data(), block.data(), kDistinct, kN_in, nullptr, one);
  std::vector<uint8_t> w(quant_tensor_size(t, kN_out, kN_in));
  for (int64_t r = 0; r < kN_out; ++r) {
    std::memcpy(w.data() + r * row_bytes, block.data() + (r % kDistinct) * row_bytes, row_bytes);
  }
  const size_t tail = block.size() - row_bytes * kDistinct;  // fp8's scale grid
  for (size_t at = row_bytes * kN_out; tail > 0 && at < w.size(); at += tail) {
    std::memcpy(w.data() + at, block.data() + row_bytes * kDistinct, tail);
  }
  return cache.emplace(t, std::move(w)).first->second;
}

void bm_matmul(benchmark::State& state, QuantType t, int64_t n_tok, Isa isa) {
  if (!isa_supported(isa)) {
    state.SkipWithError("ISA not supported");
    return;
  }
  set_active_isa(isa);
  const std::vector<uint8_t>& w = weights(t);
  const WeightView view{t, kN_in, kN_out, w.data(), quant_row_size(t, kN_in)};
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tok * kN_in));
  for (float& v : x) v = dist(rng);
  std::vector<float> y(static_cast<size_t>(n_tok * kN_out));
  for (auto _ : state) {
    matmul(view, x.data(), n_tok, y.data(), pool());
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * kN_in * kN_out * static_cast<double>(n_tok);
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.size()) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

int register_all() {
  const QuantType types[] = {QuantType::kQ4_0, QuantType::kQ8_0, QuantType::kQ4K, QuantType::kQ6K,
                             QuantType::kIQ4_XS, QuantType::kQ4_1, QuantType::kQ5_0, QuantType::kQ5K,
                             QuantType::kF16, QuantType::kHQQ4, QuantType::kAFQ4,
                             QuantType::kAFQ8, QuantType::kFP8, QuantType::kFP8_B128,
                             QuantType::kF8Q8};
  for (Isa isa : supported_isas()) {
    for (QuantType t : types) {
      for (int64_t n : {int64_t{1}, int64_t{4}, int64_t{16}, int64_t{512}}) {
        if (isa == Isa::kGeneric && n > 16) continue;  // the scalar oracle needs minutes at n=512
        const std::string name = std::string("matmul/") + isa_name(isa) + "/" + quant_type_name(t) +
                                 "/n=" + std::to_string(n);
        auto* b = benchmark::RegisterBenchmark(name.c_str(), bm_matmul, t, n, isa);
        b->Unit(benchmark::kMillisecond)->UseRealTime();
        if (n > 1) b->MinTime(1.0);
      }
    }
  }
  return 0;
}

const int kRegistered = register_all();

}  // namespace
}  // namespace insitu

BENCHMARK_MAIN();
