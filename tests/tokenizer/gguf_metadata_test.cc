// The tokenizer as GGUF metadata: written keys read back to the same vocabulary, and a
// tokenizer.json pre-tokenizer named by the llama.cpp type with the same steps and switches.
#include "tokenizer/gguf_metadata.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "test_paths.h"
#include "tokenizer/pretokenizer.h"

namespace insitu {
namespace {

TEST(PreTypeFor, NamesTheTypeWithTheSameStepsAndSwitches) {
  const std::string gpt2 =
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
  // Hugging Face's spelling of the GPT-2 pattern ends with an extra |\s+.
  const std::string gpt2_hf = gpt2 + "|\\s+";
  EXPECT_EQ(tok::pre_type_for({"\\p{N}", gpt2}, false, false), "smollm");
  EXPECT_EQ(tok::pre_type_for({"\\p{N}", gpt2_hf}, false, false), "smollm");
  EXPECT_EQ(tok::pre_type_for({"\\p{N}", gpt2}, true, false), "starcoder");
  EXPECT_EQ(tok::pre_type_for({gpt2_hf}, true, false), "gpt-2");
  EXPECT_EQ(tok::pre_type_for({"[a-z]+"}, true, false), "");
  for (const char* name : {"llama3", "qwen2", "default", "tekken", "falcon"}) {
    const auto pre = tok::PreTokenizer::for_type(name, "test");
    const tok::PreTypeTraits t = tok::pre_type_traits(name);
    EXPECT_EQ(tok::pre_type_for(pre->regexes(), t.clean_spaces, t.ignore_merges), name);
  }
}

TEST(GgufTokenizerMetadata, ShippedVocabulariesReadBackTheSame) {
  const std::string tmp = (std::filesystem::temp_directory_path() /
                           ("insitu_tok_meta_" + std::to_string(::getpid()) + ".gguf"))
                              .string();
  for (const std::string& path : {test::smollm2_path(), test::gemma3_path()}) {
    if (!std::filesystem::exists(path)) continue;
    SCOPED_TRACE(path);
    const auto src = gguf::GgufFile::open(path);
    const auto a = Tokenizer::from_gguf(*src);
    gguf::GgufWriter w;
    write_gguf_tokenizer(*a, w);
    w.write(tmp);
    const auto file = gguf::GgufFile::open(tmp);
    const auto b = Tokenizer::from_gguf(*file);
    EXPECT_EQ(file->get_string("tokenizer.ggml.pre"), src->get_string("tokenizer.ggml.pre"));
    ASSERT_EQ(a->n_vocab(), b->n_vocab());
    for (int32_t id = 0; id < a->n_vocab(); ++id) {
      ASSERT_EQ(a->token_text(id), b->token_text(id));
      ASSERT_EQ(a->token_attr(id), b->token_attr(id));
    }
    for (const char* text :
         {"Hello world, 2024!", " leading  spaces\tand\ttabs\n", "<eos><|im_end|>"}) {
      EXPECT_EQ(a->encode(text, true, true), b->encode(text, true, true)) << text;
      EXPECT_EQ(a->encode(text, true, false), b->encode(text, true, false)) << text;
    }
    EXPECT_EQ(a->bos_id(), b->bos_id());
    EXPECT_EQ(a->eos_id(), b->eos_id());
    EXPECT_EQ(a->add_bos(), b->add_bos());
    EXPECT_EQ(a->add_space_prefix(), b->add_space_prefix());
  }
  std::filesystem::remove(tmp);
}

}  // namespace
}  // namespace insitu
