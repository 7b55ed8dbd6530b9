// A tokenizer's vocabulary as GGUF tokenizer.ggml.* metadata: the inverse of reading one
// (tok::vocab_from_gguf), so that Tokenizer::from_gguf on the written keys encodes and decodes as
// `tokenizer` does and llama.cpp reads the same vocabulary.
//
// Written: tokenizer.ggml.model ("llama" or "gpt2"), .pre (a vocabulary read from tokenizer.json
// has none: it is named from its pre-tokenizer's steps, see tok::pre_type_for; SentencePiece-style
// vocabularies get "default" as llama.cpp's converter writes), .tokens, .token_type, .scores
// ("llama" only), .merges ("gpt2" only), the special-token ids that are set (bos, eos, eot, eom,
// unknown, seperator, padding, mask, fim_*), .add_bos_token, .add_eos_token, .add_sep_token when
// set, and .add_space_prefix. The chat template is the model's to write (tokenizer.chat_template).
// Per-token lstrip/rstrip flags from tokenizer.json have no GGUF key and are not written.
#pragma once

#include "insitu/tokenizer.h"

namespace insitu::gguf {
class GgufWriter;
}

namespace insitu {

// Throws Unsupported for a tokenizer that is not one of the library's llama.cpp-compatible
// vocabularies, or a tokenizer.json pre-tokenizer that matches no llama.cpp pre-tokenizer type
// (llama.cpp would split text differently).
void write_gguf_tokenizer(const Tokenizer& tokenizer, gguf::GgufWriter& writer);

}  // namespace insitu
