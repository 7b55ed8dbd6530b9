// `insitu bench`: prompt-processing and generation throughput, measured like llama-bench
// (pp: one batch of -p tokens into an empty cache; tg: -n tokens decoded one at a time), repeated
// -r times, reported as the median with the spread. With -d N each test runs at depth N: the cache
// first holds N tokens (evaluated once, untimed, and kept between repetitions by truncating back to
// them), as llama-bench's -d does.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "commands.h"
#include "model_args.h"
#include "quant/type_traits.h"

namespace insitu::cli {
namespace {

struct BenchArgs {
  ModelArgs model;
  IsqArgs isq;
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 3;
  int depth = 0;
  bool json = false;
};

struct Stat {
  double median = 0, min = 0, max = 0;
};

Stat stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stat s;
  s.min = v.front();
  s.max = v.back();
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run_bench(const BenchArgs& a) {
  const std::shared_ptr<const Model> model = a.model.load(&a.isq);
  ThreadPool pool(a.model.threads);
  const ModelConfig& cfg = model->config();
  // Random token ids, like llama-bench: timing must not depend on the text.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> dist(0, cfg.n_vocab - 1);
  std::vector<int32_t> prompt(static_cast<size_t>(a.n_prompt));
  for (int32_t& t : prompt) t = dist(rng);

  std::vector<int32_t> context(static_cast<size_t>(a.depth));
  for (int32_t& t : context) t = dist(rng);

  Session session(model, a.depth + std::max(a.n_prompt, a.n_gen) + 8, pool);
  std::vector<float> logits;
  {  // Warm-up: page in the weights and size the buffers.
    const int32_t one[1] = {prompt.empty() ? 0 : prompt[0]};
    session.eval(one, false, logits);
    session.reset();
  }
  // Back to a cache holding exactly the depth's tokens (re-evaluated only when truncation cannot
  // keep them, as for a sliding-window ring that was overwritten).
  auto to_depth = [&] {
    if (a.depth == 0 || session.truncate(a.depth) != a.depth) {
      session.reset();
      if (a.depth > 0) session.eval(context, false, logits);
    }
  };
  std::vector<double> pp, tg;
  for (int r = 0; r < a.reps; ++r) {
    if (a.n_prompt > 0) {
      to_depth();
      const auto t0 = std::chrono::steady_clock::now();
      session.eval(prompt, false, logits);
      pp.push_back(a.n_prompt / seconds_since(t0));
    }
    if (a.n_gen > 0) {
      to_depth();
      int32_t tok[1] = {model->tokenizer().bos_id() >= 0 ? model->tokenizer().bos_id() : 0};
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < a.n_gen; ++i) {
        session.eval(tok, false, logits);
        tok[0] = dist(rng);
      }
      tg.push_back(a.n_gen / seconds_since(t0));
    }
  }

  size_t bytes = 0;
  int64_t params = 0;
  for (const Weight& w : model->weights()) {
    bytes += w.nbytes;
    int64_t n = 1;
    for (int64_t d : w.ne) n *= d;
    params += n;
  }
  const int threads = pool.size();
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    auto add = [&](const char* test, int n, const std::vector<double>& v) {
      if (v.empty()) return;
      const Stat s = stats(v);
      out.push_back({{"model", cfg.name}, {"model_size", bytes}, {"model_n_params", params},
                     {"n_threads", threads}, {"test", test}, {"n_tokens", n},
                     {"n_depth", a.depth},
                     {"avg_ts", s.median}, {"min_ts", s.min}, {"max_ts", s.max},
                     {"samples_ts", v}});
    };
    add("pp", a.n_prompt, pp);
    add("tg", a.n_gen, tg);
    std::printf("%s\n", out.dump(1).c_str());
    return;
  }
  std::printf("| %-28s | %10s | %8s | %7s | %8s | %22s |\n", "model", "size", "params", "threads",
              "test", "t/s (median, min-max)");
  std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(12, '-').c_str(),
              std::string(10, '-').c_str(), std::string(9, '-').c_str(),
              std::string(10, '-').c_str(), std::string(24, '-').c_str());
  auto row = [&](const char* kind, int n, const std::vector<double>& v) {
    if (v.empty()) return;
    const Stat s = stats(v);
    char test[48];
    if (a.depth > 0) std::snprintf(test, sizeof test, "%s%d@d%d", kind, n, a.depth);
    else std::snprintf(test, sizeof test, "%s%d", kind, n);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%.2f (%.2f-%.2f)", s.median, s.min, s.max);
    std::printf("| %-28.28s | %6.1f MiB | %6.1f M | %7d | %8s | %22s |\n", cfg.name.c_str(),
                bytes / 1048576.0, params / 1e6, threads, test, ts);
  };
  row("pp", a.n_prompt, pp);
  row("tg", a.n_gen, tg);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prompt processing and generation tokens/s");
  args->model.add_to(*cmd);
  args->isq.add_to(*cmd);
  cmd->add_option("-p,--n-prompt", args->n_prompt, "Prompt tokens per pp run")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("-n,--n-gen", args->n_gen, "Generated tokens per tg run")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("-r,--repetitions", args->reps, "Repetitions (median reported)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-d,--depth", args->depth,
                  "Tokens already in the cache before each test (evaluated once, untimed)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "Print results as JSON");
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace insitu::cli
