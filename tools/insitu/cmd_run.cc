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

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

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
  bool json = false;
  bool ctx_given = false;  // -c on the command line (else the model's trained context, <= 4096)
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
  if (!spdlog::should_log(spdlog::level::info)) return;  // --log-level warn/error/off
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
  c.n_ctx = a.ctx_given ? a.isq.ctx : 0;
  c.prompt.raw = a.raw;
  return c;
}

// --json: the whole answer as one object on stdout.
void print_json(const Model& model, const GenerateResult& r) {
  nlohmann::json j;
  j["model"] = model.config().name;
  j["text"] = r.text;
  j["tokens"] = r.tokens;
  j["finish_reason"] = finish_reason_name(r.stop_reason);
  j["stop_reason"] = stop_reason_name(r.stop_reason);
  if (!r.stop_string.empty()) j["stop_string"] = r.stop_string;
  j["usage"] = {{"prompt_tokens", r.stats.n_prompt},
                {"completion_tokens", r.stats.n_generated},
                {"total_tokens", r.stats.n_prompt + r.stats.n_generated}};
  j["timings"] = {{"prompt_seconds", r.stats.prefill_seconds},
                  {"prompt_tokens_per_second", r.stats.prefill_tokens_per_second()},
                  {"generation_seconds", r.stats.decode_seconds},
                  {"generation_tokens_per_second", r.stats.decode_tokens_per_second()}};
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void one_shot(const RunArgs& a, const std::shared_ptr<const Model>& model, Executor& executor,
              const std::string& prompt) {
  Chat chat(model, executor, chat_options(a));
  if (a.json) {
    print_json(*model, chat.send(prompt, generate_options(a)));
    return;
  }
  const GenerateResult r = chat.send(prompt, generate_options(a), print_event);
  if (!r.text.empty() && r.text.back() != '\n') print_text("\n");
  report(r);
}

// A model whose files carry no chat template is chatted with in its architecture's built-in
// format; it is often a base model, which continues text rather than answering.
void notice_builtin_template(const RunArgs& a, const Model& model) {
  if (a.raw || model.builtin_chat_format().empty()) return;
  spdlog::warn("{} has no chat template (a base model?); chatting in the built-in {} format. "
               "For plain text continuation use --raw", model.config().name,
               model.builtin_chat_format());
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
  notice_builtin_template(a, *model);
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
  cmd->add_flag("--json", a->json,
                "One-shot: print one JSON object (text, tokens, finish reason, usage, timings) "
                "instead of streaming text");
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
  cmd->callback([a, cmd] {
    a->ctx_given = cmd->count("--ctx") > 0;
    run(*a);
  });
}

}  // namespace insitu::cli
