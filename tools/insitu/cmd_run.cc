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
#include "engine/generator.h"
#include "insitu/error.h"
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
  int n_ctx = 4096;
  int64_t seed = -1;
  std::vector<std::string> stop;
  SamplerOptions sampling;
};

std::string render_chat(const Model& model, const std::vector<ChatMessage>& messages) {
  const ChatTemplate* tmpl = model.chat_template();
  if (tmpl == nullptr) {
    throw InvalidArgument("model '" + model.config().name +
                          "' has no usable chat template; use --raw for plain text continuation");
  }
  std::string text = tmpl->apply(messages, /*add_generation_prompt=*/true);
  // Templates that print bos_token themselves would get a second BOS from the tokenizer; drop the
  // rendered one, as llama.cpp does.
  const Tokenizer& tok = model.tokenizer();
  if (tok.add_bos() && tok.bos_id() >= 0) {
    const std::string bos = tok.token_text(tok.bos_id());
    if (!bos.empty() && text.starts_with(bos)) text.erase(0, bos.size());
  }
  return text;
}

std::vector<int32_t> tokenize_prompt(const Model& model, const std::string& text, bool chat) {
  // Chat prompts carry the template's control tokens as text: parse them as special tokens.
  return model.tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/chat);
}

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

void one_shot(const RunArgs& a, const std::shared_ptr<const Model>& model, ThreadPool& pool,
              const std::string& prompt) {
  std::vector<int32_t> ids;
  if (a.raw) {
    ids = tokenize_prompt(*model, prompt, false);
  } else {
    std::vector<ChatMessage> messages;
    if (!a.system.empty()) messages.push_back({"system", a.system});
    messages.push_back({"user", prompt});
    ids = tokenize_prompt(*model, render_chat(*model, messages), true);
  }
  Session session(model, a.n_ctx, pool);
  const GenerateResult r = generate(session, ids, generate_options(a), print_text);
  if (!r.text.empty() && r.text.back() != '\n') print_text("\n");
  report(r);
}

void interactive(const RunArgs& a, const std::shared_ptr<const Model>& model, ThreadPool& pool) {
  Session session(model, a.n_ctx, pool);
  std::vector<ChatMessage> messages;
  if (!a.system.empty()) messages.push_back({"system", a.system});
  std::vector<int32_t> cached;  // the tokens whose keys/values the session holds
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
      messages.resize(a.system.empty() ? 0 : 1);
      continue;
    }
    messages.push_back({"user", line});
    std::vector<int32_t> ids;
    if (a.raw) {
      std::string all;
      for (const ChatMessage& m : messages) all += m.content;
      ids = tokenize_prompt(*model, all, false);
    } else {
      ids = tokenize_prompt(*model, render_chat(*model, messages), true);
    }
    // Reuse the cached prefix; evaluate at least one token so there are logits to sample from.
    size_t common = 0;
    while (common < cached.size() && common < ids.size() && cached[common] == ids[common]) ++common;
    common = std::min(common, ids.size() - 1);
    common = static_cast<size_t>(session.truncate(static_cast<int>(common)));
    if (static_cast<int>(ids.size()) >= session.n_ctx()) {
      std::fprintf(stderr, "insitu: the conversation no longer fits the context (%d tokens); "
                           "/reset to start again\n", session.n_ctx());
      messages.pop_back();
      continue;
    }
    const std::span<const int32_t> prompt(ids.data() + common, ids.size() - common);
    const std::span<const int32_t> history(ids.data(), common);
    const GenerateResult r = generate(session, prompt, options, print_text, history);
    print_text("\n");
    report(r);
    messages.push_back({"assistant", r.text});
    cached = ids;
    cached.insert(cached.end(), r.tokens.begin(), r.tokens.end());
    cached.resize(std::min(cached.size(), static_cast<size_t>(session.n_past())));
  }
}

void run(RunArgs a) {
  a.isq.auto_ctx = a.n_ctx;  // --quant auto leaves room for this context
  const std::shared_ptr<const Model> model = a.model.load(&a.isq);
  ThreadPool pool(a.model.threads);
  if (!a.prompt.empty()) {
    one_shot(a, model, pool, a.prompt);
  } else if (::isatty(STDIN_FILENO) == 1) {
    interactive(a, model, pool);
  } else {
    const std::string input((std::istreambuf_iterator<char>(std::cin)), {});
    if (input.empty()) throw InvalidArgument("run: no --prompt and nothing on stdin");
    one_shot(a, model, pool, input);
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
  cmd->add_option("-c,--ctx", a->n_ctx, "Context size in tokens")->capture_default_str()
      ->check(CLI::PositiveNumber);
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
