// `insitu tokenize (-f FILE.gguf | -m DIR) --text TEXT [--no-bos] [--parse-special] [--pieces]`:
// prints the token ids (and optionally each token's piece) a model's tokenizer produces, for
// debugging prompts and comparing with other implementations.
#include <cstdio>
#include <string>

#include "commands.h"
#include "insitu/error.h"
#include "io/gguf.h"
#include "insitu/tokenizer.h"

namespace insitu::cli {
namespace {

struct TokenizeArgs {
  std::string file;
  std::string model_dir;
  std::string format;
  std::string text;
  bool no_bos = false;
  bool parse_special = false;
  bool pieces = false;
};

// Printable form of a piece: control characters, quotes, backslashes and bytes that are not
// valid UTF-8 are escaped so every token fits on one line.
std::string escape_piece(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool valid = len > 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) valid = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    char buf[8];
    if (!valid) {
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
      ++i;
      continue;
    }
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.append(s, i, len);
    }
    i += len;
  }
  return out;
}

void run_tokenize(const TokenizeArgs& a) {
  if (a.file.empty() == a.model_dir.empty()) {
    throw InvalidArgument("tokenize: give exactly one of -f FILE.gguf or -m DIR");
  }
  if (!a.format.empty() && a.format != "gguf") {
    throw InvalidArgument("tokenize: --format '" + a.format + "' unknown; valid: gguf");
  }
  std::shared_ptr<const gguf::GgufFile> file;
  std::unique_ptr<Tokenizer> tok;
  if (!a.file.empty()) {
    file = gguf::GgufFile::open(a.file);
    tok = Tokenizer::from_gguf(*file);
  } else {
    tok = Tokenizer::from_hf_dir(a.model_dir);
  }
  const std::vector<int32_t> ids = tok->encode(a.text, !a.no_bos, a.parse_special);
  if (a.pieces) {
    for (const int32_t id : ids) {
      std::printf("%8d  \"%s\"\n", id, escape_piece(tok->token_to_piece(id, true)).c_str());
    }
  } else {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    std::printf("%s\n", line.c_str());
  }
  std::fprintf(stderr, "tokenize: %zu tokens\n", ids.size());
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids a model's tokenizer gives for a text");
  cmd->add_option("-f,--file", args->file, "GGUF model file");
  cmd->add_option("-m,--model", args->model_dir, "Directory with tokenizer.json (and tokenizer_config.json)");
  cmd->add_option("--format", args->format, "Model file format (gguf)");
  cmd->add_option("--text", args->text, "Text to tokenize")->required();
  cmd->add_flag("--no-bos", args->no_bos, "Do not add the BOS/EOS tokens the model's metadata asks for");
  cmd->add_flag("--parse-special", args->parse_special,
                "Recognise control-token strings such as <|im_start|> inside the text");
  cmd->add_flag("--pieces", args->pieces, "Print one token per line with its text");
  cmd->callback([args] { run_tokenize(*args); });
}

}  // namespace insitu::cli
