// `insitu run`: chat with a model (interactive on a terminal), or answer one prompt.
//   insitu run --format gguf -f FILE.gguf [--prompt TEXT] [--raw] [sampling flags]
//   insitu run -m DIR ...
// Generated text streams to stdout; timing goes to stderr. Without --prompt and with stdin not a
// terminal, stdin's whole content is the prompt.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "commands.h"
#include "insitu/chat.h"
#include "insitu/error.h"
#include "insitu/executor.h"
#include "insitu/generate.h"
#include "model_args.h"

namespace insitu::cli {
namespace {

struct RunArgs {
  ModelArgs model;
  IsqArgs isq;
  std::string prompt;
  std::string system;
  bool raw = false;
  bool greedy = false;
  int max_tokens = 512;
  int64_t seed = -1;
  std::vector<std::string> stop;
  SamplerOptions sampling;
};

bool print_text(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return true;
}

void report(const GenerateResult& r) {
  std::fprintf(stderr, "\n[prompt %d tokens, %.1f t/s | generated %d tokens, %.1f t/s | stop: %s]\n",
               r.stats.n_prompt, r.stats.prefill_tokens_per_second(), r.stats.n_generated,
               r.stats.decode_tokens_per_second(), stop_reason_name(r.stop_reason));
}

GenerateOptions generate_options(const RunArgs& a) {
  GenerateOptions g;
  g.max_tokens = a.max_tokens;
  g.sampling = a.sampling;
  if (a.greedy) g.sampling.temperature = 0.0f;
  g.sampling.seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : std::random_device{}();
  g.stop = a.stop;
  g.sampling.validate();
  return g;
}

// Prints each event's text as it becomes final.
bool print_event(const TokenEvent& e) { return print_text(e.text); }

ChatOptions chat_options(const RunArgs& a) {
  ChatOptions c;
  c.system = a.system;
  c.n_ctx = a.isq.ctx;
  c.prompt.raw = a.raw;
  return c;
}

void one_shot(const RunArgs& a, const std::shared_ptr<const Model>& model, Executor& executor,
              const std::string& prompt) {
  Chat chat(model, executor, chat_options(a));
  const GenerateResult r = chat.send(prompt, generate_options(a), print_event);
  if (!r.text.empty() && r.text.back() != '\n') print_text("\n");
  report(r);
}

void interactive(const RunArgs& a, const std::shared_ptr<const Model>& model,
                 Executor& executor) {
  if (!a.raw && model->chat_template() == nullptr)
    chat_prompt_text(*model, {});  // throws: no template, suggesting --raw
  Chat chat(model, executor, chat_options(a));
  const GenerateOptions options = generate_options(a);
  std::fprintf(stderr, "insitu chat with %s. Type a message; /reset clears, /exit or Ctrl-D quits.\n",
               model->config().name.c_str());
  std::string line;
  while (true) {
    std::fputs("> ", stderr);
    std::fflush(stderr);
    if (!std::getline(std::cin, line) || line == "/exit" || line == "/quit") break;
    if (line.empty()) continue;
    if (line == "/reset") {
      chat.reset();
      continue;
    }
    GenerateResult r;
    try {
      r = chat.send(line, options, print_event);
    } catch (const InvalidArgument& e) {
      std::fprintf(stderr, "insitu: %s\n", e.what());
      continue;
    }
    print_text("\n");
    report(r);
  }
}

void run(RunArgs a) {
  const std::shared_ptr<const Model> model = a.model.load(&a.isq);
  Executor executor(a.model.threads);
  if (!a.prompt.empty()) {
    one_shot(a, model, executor, a.prompt);
  } else if (::isatty(STDIN_FILENO) == 1) {
    interactive(a, model, executor);
  } else {
    const std::string input((std::istreambuf_iterator<char>(std::cin)), {});
    if (input.empty()) throw InvalidArgument("run: no --prompt and nothing on stdin");
    one_shot(a, model, executor, input);
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Chat with a model, or answer one --prompt");
  a->model.add_to(*cmd);
  a->isq.add_to(*cmd);
  cmd->add_option("-p,--prompt", a->prompt, "One-shot prompt (default: interactive chat)");
  cmd->add_option("--system", a->system, "System prompt for chat mode");
  cmd->add_flag("--raw", a->raw, "No chat template: the prompt is plain text to continue");
  cmd->add_option("-n,--max-tokens", a->max_tokens, "Maximum tokens to generate (<= 0: no limit)")
      ->capture_default_str();
  add_build_options(*cmd, a->isq, {"ctx"});
  cmd->add_option("--temperature,--temp", a->sampling.temperature, "Sampling temperature (0: greedy)")
      ->capture_default_str();
  cmd->add_flag("--greedy", a->greedy, "Always pick the most likely token");
  cmd->add_option("--top-k", a->sampling.top_k, "Keep the k most likely tokens (0: off)")
      ->capture_default_str();
  cmd->add_option("--top-p", a->sampling.top_p, "Nucleus sampling mass (1: off)")
      ->capture_default_str();
  cmd->add_option("--min-p", a->sampling.min_p, "Drop tokens below min-p x the top probability")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", a->sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", a->sampling.repeat_last_n,
                  "Tokens the repetition penalty looks back over")->capture_default_str();
  cmd->add_option("--seed", a->seed, "Random seed (-1: random)")->capture_default_str();
  cmd->add_option("--stop", a->stop, "Stop when this text is generated (repeatable)");
  cmd->callback([a] { run(*a); });
}

}  // namespace insitu::cli
