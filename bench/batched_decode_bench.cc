// Aggregate decode throughput of N sessions stepped together (Session::step: one pass over the
// weights per step for all of them) against the same sessions decoding one after another.
//   batched_decode_bench MODEL [--isq TYPE] [-t THREADS] [-n TOKENS] [-r REPS] [--sessions 1,2,4,8]
// Prints a table: sessions, separate t/s, batched t/s (aggregate), batched / separate, and the
// speed-up over one session; medians of REPS alternated runs. Decode reads every weight once per
// step, so batching N sessions should approach N x the single-session rate until compute binds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "insitu/error.h"
#include "insitu/executor.h"
#include "insitu/model.h"
#include "model/model.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Prefills each session with a short prompt, then times `steps` decoding steps.
double run(const std::shared_ptr<const insitu::Model>& model, insitu::Executor& ex, int n,
           int steps, bool batched) {
  std::vector<std::unique_ptr<insitu::Session>> sessions;
  std::vector<insitu::Session*> ptrs;
  std::vector<float> logits;
  const std::vector<int32_t> prompt = model->tokenizer().encode("The history of", true, false);
  for (int i = 0; i < n; ++i) {
    sessions.push_back(std::make_unique<insitu::Session>(model, 64 + steps + 16, ex));
    sessions.back()->eval(prompt, false, logits);
    ptrs.push_back(sessions.back().get());
  }
  std::vector<int32_t> tokens(n);
  for (int i = 0; i < n; ++i) tokens[i] = 100 + i;  // fixed ids: timing only
  std::vector<float> out(static_cast<size_t>(n) * model->config().n_vocab);
  const auto t0 = Clock::now();
  for (int s = 0; s < steps; ++s) {
    if (batched) {
      insitu::Session::step(ptrs, tokens, out.data());
    } else {
      for (int i = 0; i < n; ++i)
        sessions[i]->eval(std::span<const int32_t>(&tokens[i], 1), false, logits);
    }
  }
  const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
  return n * steps / sec;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [--isq TYPE] [-t N] [-n TOKENS] [-r REPS] "
                         "[--sessions 1,2,4,8]\n", argv[0]);
    return 2;
  }
  std::string isq, sessions_list = "1,2,4,8";
  int threads = 0, steps = 32, reps = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--isq") isq = argv[i + 1];
    else if (flag == "-t") threads = std::atoi(argv[i + 1]);
    else if (flag == "-n") steps = std::atoi(argv[i + 1]);
    else if (flag == "-r") reps = std::atoi(argv[i + 1]);
    else if (flag == "--sessions") sessions_list = argv[i + 1];
  }
  try {
    insitu::ModelBuilder builder(argv[1]);
    builder.with_threads(threads).with_progress(false);
    if (!isq.empty()) builder.with_isq(isq);
    const auto model = builder.build();
    insitu::Executor ex(threads);
    std::vector<int> counts;
    std::stringstream ss(sessions_list);
    for (std::string c; std::getline(ss, c, ',');) counts.push_back(std::atoi(c.c_str()));
    std::printf("model: %s  threads: %d  steps: %d  reps: %d\n\n", model->config().name.c_str(),
                ex.n_threads(), steps, reps);
    std::printf("| sessions | separate t/s | batched t/s | batched/separate | vs 1 session |\n");
    std::printf("|---:|---:|---:|---:|---:|\n");
    double one = 0;
    for (int n : counts) {
      std::vector<double> sep, bat;
      for (int r = 0; r < reps; ++r) {  // alternated
        sep.push_back(run(model, ex, n, steps, false));
        bat.push_back(run(model, ex, n, steps, true));
      }
      const double s = median(sep), b = median(bat);
      if (one == 0) one = s;
      std::printf("| %d | %.1f | %.1f | %.2fx | %.2fx |\n", n, s, b, b / s, b / one);
      std::fflush(stdout);
    }
  } catch (const insitu::Error& e) {
    std::fprintf(stderr, "batched_decode_bench: %s\n", e.what());
    return 1;
  }
}
