// Chat with a model quantized in situ, streaming the answer: what an embedder writes.
//   chat MODEL [PROMPT] [TYPE]
// MODEL is a .gguf file, a Hugging Face-style directory or an org/name id in the local Hugging
// Face cache; TYPE is any --isq name (default q4k). Uses only the installed headers.
#include <insitu/chat.h>
#include <insitu/error.h>
#include <insitu/executor.h>
#include <insitu/model.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [PROMPT] [TYPE]\n", argv[0]);
    return 2;
  }
  const std::string prompt = argc > 2 ? argv[2] : "What is the capital of France?";
  try {
    // Load and quantize in situ.
    std::shared_ptr<const insitu::Model> model =
        insitu::ModelBuilder(argv[1]).with_isq(argc > 3 ? argv[3] : "q4k").build();
    const insitu::ModelInfo info = insitu::model_info(*model);
    std::fprintf(stderr, "%s (%s): %.1f MiB of weights: %s\n", info.name.c_str(),
                 info.architecture.c_str(), info.weight_bytes / 1048576.0,
                 info.weight_types.c_str());

    // Chat, streaming each token's text as it becomes final.
    insitu::Executor executor;
    insitu::Chat chat(model, executor, {.system = "You are a helpful assistant."});
    insitu::GenerateOptions options;
    options.max_tokens = 64;
    options.sampling.temperature = 0;  // greedy
    const insitu::GenerateResult r =
        chat.send(prompt, options, [](const insitu::TokenEvent& e) {
          std::fputs(e.text.c_str(), stdout);
          std::fflush(stdout);
          return true;
        });
    std::printf("\n");
    std::fprintf(stderr, "[%d tokens, %.1f t/s, finish: %s]\n", r.stats.n_generated,
                 r.stats.decode_tokens_per_second(), insitu::finish_reason_name(r.stop_reason));
    return r.tokens.empty() ? 1 : 0;
  } catch (const insitu::Error& e) {
    std::fprintf(stderr, "chat: %s\n", e.what());
    return 1;
  }
}
