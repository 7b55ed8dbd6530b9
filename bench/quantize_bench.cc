// Quantization throughput (weights/s) of every quantizable type through quantize_tensor.
//
// Default: Google Benchmark over a 64 x 4096 weight-like matrix (N(0, 0.02^2) with 0.2% outliers),
// per type, without and with an imatrix, on 1 and 2 threads. Reported as items_per_second
// (= weights/s) and GB=x/s (GB/s of f32 source). For one family, e.g. HQQ and the grid i-quants:
//   quantize_bench --benchmark_filter='quantize/(hqq|iq[123]|q4k)' --benchmark_repetitions=5
//
// Raw mode, used by bench/quantize_vs_ggml.py to compare against ggml on identical data:
//   quantize_bench --raw SRC.f32 --rows R --cols C --type NAME [--imatrix IM.f32]
//                  [--threads N] [--reps K] [--inner M] [--clock wall|cpu] [--out DST.bin]
// reads R*C little-endian floats (and C imatrix floats), quantizes one row untimed (one-time
// table setup), takes K samples of M back-to-back quantizations each (M makes a sample long enough
// to time on a busy machine), prints one line
// "median_s=<seconds per quantization> bytes=<n>" and optionally writes the quantized bytes.
// --clock cpu times the calling thread's CPU time (meaningful with --threads 1 only, where the
// work runs on that thread); it keeps figures stable on a machine shared with other jobs.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"

namespace {

using insitu::QuantType;

std::vector<float> weight_like(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.f, 0.02f);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng) * (uni(rng) < 0.002f ? 40.f : 1.f);
  return x;
}

void bm_quantize(benchmark::State& state, QuantType type, bool with_imatrix) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t nrows = 64;
  const int64_t n_per_row = 4096;
  static const std::vector<float> src = weight_like(static_cast<size_t>(nrows * n_per_row), 1);
  static const std::vector<float> imatrix = [] {
    std::vector<float> im(4096);
    std::mt19937 rng(2);
    std::uniform_real_distribution<float> uni(0.05f, 5.f);
    for (float& v : im) v = uni(rng);
    return im;
  }();
  insitu::ThreadPool pool(threads);
  std::vector<uint8_t> dst(insitu::quant_row_size(type, n_per_row) * nrows);
  for (auto _ : state) {
    insitu::quantize_tensor(type, src.data(), dst.data(), nrows, n_per_row,
                            with_imatrix ? imatrix.data() : nullptr, pool);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * nrows * n_per_row);
  // Throughput over the f32 source, 10^9 bytes per second of wall time (printed "GB=x/s").
  state.counters["GB"] = benchmark::Counter(
      static_cast<double>(state.iterations() * nrows * n_per_row) * sizeof(float) * 1e-9,
      benchmark::Counter::kIsRate);
}

double now_s(const std::string& clock) {
  if (clock == "cpu") {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool read_floats(const std::string& path, std::vector<float>& out, size_t n) {
  std::ifstream f(path, std::ios::binary);
  out.resize(n);
  f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n * sizeof(float)));
  return static_cast<size_t>(f.gcount()) == n * sizeof(float);
}

int raw_mode(int argc, char** argv) {
  std::string src_path, imatrix_path, out_path, type_name, clock = "wall";
  int64_t rows = 0, cols = 0;
  int threads = 1, reps = 5, inner = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const std::string v = argv[i + 1];
    if (k == "--raw") src_path = v;
    else if (k == "--rows") rows = std::stoll(v);
    else if (k == "--cols") cols = std::stoll(v);
    else if (k == "--type") type_name = v;
    else if (k == "--imatrix") imatrix_path = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--reps") reps = std::stoi(v);
    else if (k == "--inner") inner = std::stoi(v);
    else if (k == "--out") out_path = v;
    else if (k == "--clock") clock = v;
    else {
      std::fprintf(stderr, "quantize_bench: unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  const auto type = insitu::parse_quant_type(type_name);
  if (clock != "wall" && !(clock == "cpu" && threads == 1)) {
    std::fprintf(stderr, "quantize_bench: --clock is wall, or cpu with --threads 1\n");
    return 2;
  }
  if (!type || rows <= 0 || cols <= 0 || reps <= 0 || inner <= 0) {
    std::fprintf(stderr, "quantize_bench: need --raw, --rows, --cols, a valid --type; types: %s\n",
                 insitu::quant_type_name_list().c_str());
    return 2;
  }
  std::vector<float> src, imatrix;
  if (!read_floats(src_path, src, static_cast<size_t>(rows * cols))) {
    std::fprintf(stderr, "quantize_bench: %s: fewer than %lld floats\n", src_path.c_str(),
                 static_cast<long long>(rows * cols));
    return 2;
  }
  if (!imatrix_path.empty() && !read_floats(imatrix_path, imatrix, static_cast<size_t>(cols))) {
    std::fprintf(stderr, "quantize_bench: %s: fewer than %lld floats\n", imatrix_path.c_str(),
                 static_cast<long long>(cols));
    return 2;
  }
  try {
    insitu::ThreadPool pool(threads);
    std::vector<uint8_t> dst(insitu::quant_row_size(*type, cols) * rows);
    // One row first, untimed: the one-time setup (the i-quants' grid search tables) is then done,
    // as the Python side's ggml_quantize_init does it outside its timing.
    insitu::quantize_tensor(*type, src.data(), dst.data(), 1, cols,
                            imatrix.empty() ? nullptr : imatrix.data(), pool);
    std::vector<double> times;
    size_t bytes = 0;
    for (int r = 0; r < reps; ++r) {
      const double t0 = now_s(clock);
      for (int m = 0; m < inner; ++m) {
        bytes = insitu::quantize_tensor(*type, src.data(), dst.data(), rows, cols,
                                        imatrix.empty() ? nullptr : imatrix.data(), pool);
      }
      times.push_back((now_s(clock) - t0) / inner);
    }
    std::sort(times.begin(), times.end());
    if (!out_path.empty()) {
      std::ofstream f(out_path, std::ios::binary);
      f.write(reinterpret_cast<const char*>(dst.data()), static_cast<std::streamsize>(bytes));
    }
    std::printf("median_s=%.9f bytes=%zu\n", times[times.size() / 2], bytes);
  } catch (const insitu::Error& e) {
    std::fprintf(stderr, "quantize_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--raw") == 0) return raw_mode(argc, argv);
  for (const insitu::TypeTraits& t : insitu::all_type_traits()) {
    if (t.quantize == nullptr || !t.is_quantized) continue;
    for (const bool im : {false, true}) {
      if (t.requires_imatrix && !im) continue;
      const std::string name = std::string("quantize/") + t.name + (im ? "/imatrix" : "");
      benchmark::RegisterBenchmark(name.c_str(), bm_quantize, t.type, im)
          ->Arg(1)
          ->Arg(2)
          ->ArgName("threads")
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
