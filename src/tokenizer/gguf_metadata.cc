#include "tokenizer/gguf_metadata.h"

#include "insitu/error.h"
#include "io/gguf_writer.h"
#include "tokenizer/llama_tokenizer.h"
#include "tokenizer/pretokenizer.h"

namespace insitu {

void write_gguf_tokenizer(const Tokenizer& tokenizer, gguf::GgufWriter& w) {
  using gguf::Value;
  using gguf::ValueType;
  const auto* lt = dynamic_cast<const tok::LlamaTokenizer*>(&tokenizer);
  if (lt == nullptr) throw Unsupported("gguf export: the tokenizer has no GGUF vocabulary form");
  const tok::Vocab& v = lt->vocab();
  const bool spm = v.type == tok::VocabType::kSpm;

  std::string pre = v.pre;
  if (pre.empty() && spm) pre = "default";
  if (pre.empty()) {
    pre = tok::pre_type_for(lt->pre_tokenizer()->regexes(), v.clean_spaces, v.ignore_merges);
    if (pre.empty()) {
      std::string steps;
      for (const std::string& re : lt->pre_tokenizer()->regexes()) steps += "\n  " + re;
      throw Unsupported("gguf export: " + v.source +
                        ": the pre-tokenizer matches no llama.cpp "
                        "tokenizer.ggml.pre type (llama.cpp would split text differently); its "
                        "steps:" +
                        steps);
    }
  }
  w.set("tokenizer.ggml.model", Value::string(v.model));
  w.set("tokenizer.ggml.pre", Value::string(pre));

  const size_t n = v.text.size();
  std::vector<Value> tokens, types, scores;
  tokens.reserve(n);
  types.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    tokens.push_back(Value::string(v.text[i]));
    types.push_back(Value::i32(tok::gguf_type_from_attr(v.attrs[i])));
  }
  w.set("tokenizer.ggml.tokens", Value::array(ValueType::kString, std::move(tokens)));
  w.set("tokenizer.ggml.token_type", Value::array(ValueType::kI32, std::move(types)));
  if (spm) {
    scores.reserve(n);
    for (float s : v.score) scores.push_back(Value::f32(s));
    w.set("tokenizer.ggml.scores", Value::array(ValueType::kF32, std::move(scores)));
  } else {
    std::vector<Value> merges;
    merges.reserve(v.merges.size());
    for (const std::string& m : v.merges) merges.push_back(Value::string(m));
    w.set("tokenizer.ggml.merges", Value::array(ValueType::kString, std::move(merges)));
  }

  const struct {
    const char* key;
    int32_t id;
  } ids[] = {
      {"tokenizer.ggml.bos_token_id", v.bos},
      {"tokenizer.ggml.eos_token_id", v.eos},
      {"tokenizer.ggml.eot_token_id", v.eot},
      {"tokenizer.ggml.eom_token_id", v.eom},
      {"tokenizer.ggml.unknown_token_id", v.unk},
      {"tokenizer.ggml.seperator_token_id", v.sep},
      {"tokenizer.ggml.padding_token_id", v.pad},
      {"tokenizer.ggml.mask_token_id", v.mask},
      {"tokenizer.ggml.fim_pre_token_id", v.fim_pre},
      {"tokenizer.ggml.fim_suf_token_id", v.fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", v.fim_mid},
      {"tokenizer.ggml.fim_pad_token_id", v.fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", v.fim_rep},
      {"tokenizer.ggml.fim_sep_token_id", v.fim_sep},
  };
  for (const auto& [key, id] : ids)
    if (id >= 0) w.set(key, Value::u32(static_cast<uint32_t>(id)));
  w.set("tokenizer.ggml.add_bos_token", Value::boolean(v.add_bos));
  w.set("tokenizer.ggml.add_eos_token", Value::boolean(v.add_eos));
  if (v.add_sep) w.set("tokenizer.ggml.add_sep_token", Value::boolean(true));
  w.set("tokenizer.ggml.add_space_prefix", Value::boolean(v.add_space_prefix));
}

}  // namespace insitu
