// `insitu bench`: prompt-processing and generation throughput, measured and reported as
// llama-bench does, so that tools written for llama-bench's output read ours:
//   -p 512,1024 (pp: one batch of P tokens), -n 128 (tg: N tokens decoded one at a time),
//   -pg 512,128 (a prompt then generation, timed together), -d 0,4096 (each test runs with D
//   tokens already in the cache: evaluated once, untimed, kept between repetitions), -r 5,
//   -t 1,2 (thread counts), -o md|csv|json|jsonl. Every comma-separated value is one test.
// The table: model (architecture, size, type: the ISQ type for a quantized-in-situ load), size,
// params, backend, threads, test (pp512, tg128, pp512+tg128, "@ d4096"), t/s as mean ± standard
// deviation over the repetitions. JSON/CSV fields and their types are llama-bench's (n_prompt,
// n_gen, n_depth, avg_ts, stddev_ts, model_type, model_filename, samples_ts, ...).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "insitu/error.h"
#include "insitu/version.h"
#include "model_args.h"
#include "quant/gguf_quantize.h"
#include "quant/type_traits.h"

namespace insitu::cli {
namespace {

struct BenchArgs {
  ModelArgs model;
  IsqArgs isq;
  std::vector<int> n_prompt = {512};
  std::vector<int> n_gen = {128};
  std::vector<std::string> pg;  // "P,N" pairs
  std::vector<int> depth = {0};
  std::vector<int> threads;     // empty: every CPU this process may use
  int reps = 5;
  std::string output = "md";
  bool json = false;            // --json: -o json (kept for scripts written before -o)
};

struct Test {
  int n_prompt = 0, n_gen = 0, n_depth = 0, n_threads = 0;
  std::vector<int64_t> samples_ns;
  std::string time;  // ISO 8601, when the test started
  std::string name() const {
    std::string s = n_prompt > 0 && n_gen > 0 ? fmt::format("pp{}+tg{}", n_prompt, n_gen)
                    : n_prompt > 0            ? fmt::format("pp{}", n_prompt)
                                              : fmt::format("tg{}", n_gen);
    if (n_depth > 0) s += fmt::format(" @ d{}", n_depth);
    return s;
  }
  std::vector<double> samples_ts() const {
    std::vector<double> ts;
    for (int64_t ns : samples_ns) ts.push_back(1e9 * (n_prompt + n_gen) / ns);
    return ts;
  }
};

template <class T>
double mean(const std::vector<T>& v) {
  double s = 0;
  for (T x : v) s += static_cast<double>(x);
  return v.empty() ? 0 : s / v.size();
}

// Sample standard deviation (Bessel's correction), as llama-bench reports it.
template <class T>
double stddev(const std::vector<T>& v) {
  if (v.size() <= 1) return 0;
  const double m = mean(v);
  double s = 0;
  for (T x : v) s += (static_cast<double>(x) - m) * (static_cast<double>(x) - m);
  return std::sqrt(s / (v.size() - 1));
}

std::string now_iso8601() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string cpu_info() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

// "llama 135M Q4_1", or with in-situ quantization "llama 135M q4k (isq)": the type most weight
// bytes are held in.
std::string model_type(const Model& model, uint64_t params, bool isq) {
  std::map<QuantType, uint64_t> by_type;
  for (const Weight& w : model.weights()) by_type[w.type] += w.nbytes;
  QuantType main = QuantType::kF32;
  uint64_t most = 0;
  for (const auto& [t, b] : by_type)
    if (b > most && t != QuantType::kF32) {
      most = b;
      main = t;
    }
  const std::string size = params >= 1000000000 ? fmt::format("{:.1f}B", params / 1e9)
                                                : fmt::format("{:.0f}M", params / 1e6);
  const std::string type = isq ? quant_type_name(main) + " (isq)"
                               : [&] {
                                   std::string g = quant_type_ggml_name(main);
                                   for (char& c : g) c = static_cast<char>(std::toupper(c));
                                   return g;
                                 }();
  return fmt::format("{} {} {}", model.config().arch_name, size, type);
}

void run_tests(const Model& model, const std::shared_ptr<const Model>& ptr, Test& t, int reps) {
  ThreadPool pool(t.n_threads);
  const ModelConfig& cfg = model.config();
  // Random token ids, like llama-bench: timing must not depend on the text.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> dist(0, cfg.n_vocab - 1);
  std::vector<int32_t> prompt(static_cast<size_t>(t.n_prompt));
  for (int32_t& x : prompt) x = dist(rng);
  std::vector<int32_t> context(static_cast<size_t>(t.n_depth));
  for (int32_t& x : context) x = dist(rng);
  Session session(ptr, t.n_depth + t.n_prompt + t.n_gen + 8, pool);
  std::vector<float> logits;
  {  // Warm-up: page in the weights and size the buffers.
    const int32_t one[1] = {prompt.empty() ? 0 : prompt[0]};
    session.eval(one, false, logits);
    session.reset();
  }
  // Back to a cache holding exactly the depth's tokens (re-evaluated only when truncation cannot
  // keep them, as for a sliding-window ring that was overwritten).
  auto to_depth = [&] {
    if (t.n_depth == 0 || session.truncate(t.n_depth) != t.n_depth) {
      session.reset();
      if (t.n_depth > 0) session.eval(context, false, logits);
    }
  };
  t.time = now_iso8601();
  for (int r = 0; r < reps; ++r) {
    to_depth();
    const auto t0 = std::chrono::steady_clock::now();
    if (t.n_prompt > 0) session.eval(prompt, false, logits);
    int32_t tok[1] = {model.tokenizer().bos_id() >= 0 ? model.tokenizer().bos_id() : 0};
    for (int i = 0; i < t.n_gen; ++i) {
      session.eval(tok, false, logits);
      tok[0] = dist(rng);
    }
    t.samples_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now() - t0)
                               .count());
  }
}

void run_bench(BenchArgs a) {
  if (a.json) a.output = "json";
  if (a.output != "md" && a.output != "csv" && a.output != "json" && a.output != "jsonl")
    throw InvalidArgument("bench: -o '" + a.output + "' unknown; valid: md csv json jsonl");
  std::vector<std::pair<int, int>> pg;
  for (const std::string& s : a.pg) {
    int p = 0, n = 0;
    char tail = 0;
    if (std::sscanf(s.c_str(), "%d,%d%c", &p, &n, &tail) != 2 || p < 0 || n < 0)
      throw InvalidArgument("bench: -pg '" + s + "' invalid; expected PROMPT,GEN (e.g. 512,128)");
    pg.emplace_back(p, n);
  }
  for (int t : a.threads)
    if (t < 1 || t > 4096)
      throw InvalidArgument(fmt::format("bench: -t {} out of range; expected 1 to 4096", t));
  const std::shared_ptr<const Model> model = a.model.load(&a.isq);
  uint64_t bytes = 0, params = 0;
  for (const Weight& w : model->weights()) {
    bytes += w.nbytes;
    uint64_t n = 1;
    for (int64_t d : w.ne) n *= static_cast<uint64_t>(d);
    params += n;
  }
  const bool isq = !a.isq.isq.empty() || !a.isq.quant.empty();
  const std::string type = model_type(*model, params, isq);
  std::vector<int> threads = a.threads;
  if (threads.empty()) threads.push_back(ThreadPool::default_thread_count());

  std::vector<Test> tests;
  for (int nt : threads)
    for (int d : a.depth) {
      for (int p : a.n_prompt)
        if (p > 0) tests.push_back({p, 0, d, nt, {}, {}});
      for (int n : a.n_gen)
        if (n > 0) tests.push_back({0, n, d, nt, {}, {}});
      for (const auto& [p, n] : pg) tests.push_back({p, n, d, nt, {}, {}});
    }

  const std::string cpu = cpu_info();
  auto record = [&](const Test& t) {
    std::vector<double> ts = t.samples_ts();
    nlohmann::ordered_json j = {
        {"build_commit", INSITU_VERSION_STRING}, {"build_number", 0},
        {"cpu_info", cpu}, {"gpu_info", ""}, {"backends", "CPU"},
        {"model_filename", model->source_path()}, {"model_type", type},
        {"model_size", bytes}, {"model_n_params", params},
        {"n_batch", 512}, {"n_ubatch", 512}, {"n_threads", t.n_threads},
        {"cpu_mask", "0x0"}, {"cpu_strict", false}, {"poll", 50},
        {"type_k", "f16"}, {"type_v", "f16"}, {"n_gpu_layers", 0},
        {"split_mode", "layer"}, {"main_gpu", 0}, {"no_kv_offload", false},
        {"flash_attn", true}, {"tensor_split", "0.00"}, {"use_mmap", true},
        {"embeddings", false}, {"n_prompt", t.n_prompt}, {"n_gen", t.n_gen},
        {"n_depth", t.n_depth}, {"test_time", t.time},
        {"avg_ns", static_cast<uint64_t>(mean(t.samples_ns))},
        {"stddev_ns", static_cast<uint64_t>(stddev(t.samples_ns))},
        {"avg_ts", mean(ts)}, {"stddev_ts", stddev(ts)},
        {"samples_ns", t.samples_ns}, {"samples_ts", ts}};
    return j;
  };
  const int reps = a.reps;
  if (a.output == "md") {
    std::printf("| %-30s | %10s | %10s | %-7s | %7s | %16s | %20s |\n", "model", "size", "params",
                "backend", "threads", "test", "t/s");
    std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", std::string(30, '-').c_str(),
                std::string(9, '-').append(":").c_str(), std::string(9, '-').append(":").c_str(),
                std::string(7, '-').c_str(), std::string(6, '-').append(":").c_str(),
                std::string(15, '-').append(":").c_str(), std::string(19, '-').append(":").c_str());
  } else if (a.output == "csv") {
    const nlohmann::ordered_json fields = record(Test{});
    std::string header;
    for (const auto& [k, v] : fields.items()) header += (header.empty() ? "" : ",") + k;
    std::printf("%s\n", header.c_str());
  } else if (a.output == "json") {
    std::printf("[\n");
  }
  for (size_t i = 0; i < tests.size(); ++i) {
    Test& t = tests[i];
    run_tests(*model, model, t, reps);
    const nlohmann::ordered_json j = record(t);
    if (a.output == "md") {
      std::printf("| %-30.30s | %6.2f MiB | %8.2f M | %-7s | %7d | %16s | %20s |\n", type.c_str(),
                  bytes / 1048576.0, params / 1e6, "CPU", t.n_threads, t.name().c_str(),
                  fmt::format("{:.2f} ± {:.2f}", j["avg_ts"].get<double>(),
                              j["stddev_ts"].get<double>())
                      .c_str());
    } else if (a.output == "csv") {
      std::string line;
      for (const auto& [k, v] : j.items()) {
        std::string cell = v.is_string() ? v.get<std::string>() : v.dump();
        std::string q = "\"";
        for (char c : cell) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        line += (line.empty() ? "" : ",") + q + "\"";
      }
      std::printf("%s\n", line.c_str());
    } else if (a.output == "json") {
      std::printf("%s%s\n", j.dump(2).c_str(), i + 1 < tests.size() ? "," : "");
    } else {
      std::printf("%s\n", j.dump().c_str());
    }
    std::fflush(stdout);
  }
  if (a.output == "json") std::printf("]\n");
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure prompt processing and generation tokens/s (llama-bench's tests, flags "
               "and output formats)");
  args->model.add_to(*cmd, /*threads=*/false);
  args->isq.add_to(*cmd);
  cmd->add_option("-p,--n-prompt", args->n_prompt, "Prompt tokens per pp test (comma-separated)")
      ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("-n,--n-gen", args->n_gen, "Generated tokens per tg test (comma-separated)")
      ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
  // llama-bench spells it -pg, which main.cc passes on as --pg (CLI11 takes one-letter short
  // names only).
  cmd->add_option("--pg", args->pg, "A prompt then generation, timed together: PROMPT,GEN")
      ->allow_extra_args(false);
  cmd->add_option("-d,--n-depth", args->depth,
                  "Tokens already in the cache before each test (comma-separated)")
      ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("-r,--repetitions", args->reps, "Repetitions of each test")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("-t,--threads", args->threads,
                  "Thread counts (comma-separated; default: every CPU this process may use)")
      ->delimiter(',');
  cmd->add_option("-o,--output", args->output, "Output format: md csv json jsonl")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "The same as -o json");
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace insitu::cli
