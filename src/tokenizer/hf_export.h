// Writes a Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json) from a GGUF
// file's tokenizer metadata, such that Tokenizer::from_hf_dir(dir) encodes exactly like
// Tokenizer::from_gguf(file).
//
// Byte-level BPE ("gpt2") vocabularies become a BPE model with the GGUF merges, the pre-tokenizer's
// regexes as Split steps and a ByteLevel step. SentencePiece-style ("llama") vocabularies become a
// byte-fallback BPE model whose merges list every way each token splits into two tokens, ordered
// by the token's score (the order SentencePiece merging follows), with the Replace/Prepend
// normalizer and the matching decoder. Control, user-defined and unknown tokens are added tokens
// (special = control or unknown). tokenizer_config.json carries bos/eos/unk/pad tokens,
// add_bos_token/add_eos_token, clean_up_tokenization_spaces and the chat template.
//
// Throws IoError when the directory or a file cannot be written, Unsupported/FormatError for
// vocabularies the tokenizer itself rejects.
#pragma once

#include <string>

namespace insitu::gguf {
class GgufFile;
}

namespace insitu {

void write_hf_tokenizer_files(const gguf::GgufFile& file, const std::string& dir);

}  // namespace insitu
