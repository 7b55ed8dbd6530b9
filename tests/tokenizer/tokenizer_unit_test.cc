// Unit tests for the tokenizer layer: UTF-8 helpers, the GPT-2 byte map, stream decoding at
// character boundaries, and the errors malformed vocabularies give.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <fstream>

#include "insitu/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "test_paths.h"
#include "insitu/tokenizer.h"
#include "tokenizer/unicode.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;
using gguf::Value;
using gguf::ValueType;

TEST(Utf8, MalformedBytesDecodeToReplacementOneByteAtATime) {
  const std::vector<uint32_t> cpts = unicode::decode("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\xA6\x99\xFF\xC3(\xE2\x82");
  const std::vector<uint32_t> want = {'a', 0xE9, 0x20AC, 0x1F999, 0xFFFD, 0xFFFD, '(', 0xFFFD, 0xFFFD};
  EXPECT_EQ(cpts, want);
}

TEST(Utf8, CompletePrefixHoldsBackOnlyUnfinishedCharacters) {
  EXPECT_EQ(unicode::complete_prefix_len("abc"), 3u);
  EXPECT_EQ(unicode::complete_prefix_len("ab\xE2\x82"), 2u);
  EXPECT_EQ(unicode::complete_prefix_len("ab\xE2\x82\xAC"), 5u);
  EXPECT_EQ(unicode::complete_prefix_len("\xF0\x9F\xA6"), 0u);
  EXPECT_EQ(unicode::complete_prefix_len("x\xFF"), 2u);  // never completes: not held back
  EXPECT_EQ(unicode::sanitize_utf8("a\xFF\xC3\xA9"), "a\xEF\xBF\xBD\xC3\xA9");
}

TEST(Utf8, Gpt2ByteMapIsABijection) {
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string& s = unicode::byte_to_unicode(static_cast<uint8_t>(b));
    size_t off = 0;
    const uint32_t cpt = unicode::decode_one(s, off);
    EXPECT_EQ(off, s.size());
    EXPECT_EQ(unicode::unicode_to_byte(cpt), b);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(unicode::byte_to_unicode(' '), "\xC4\xA0");  // 'Ġ'
  EXPECT_EQ(unicode::byte_to_unicode('A'), "A");
}

TEST(Utf8, CategoryFlags) {
  EXPECT_TRUE(unicode::flags_of('a').is_letter());
  EXPECT_TRUE(unicode::flags_of(0x65E5).is_letter());  // 日
  EXPECT_TRUE(unicode::flags_of('7').is_number());
  EXPECT_TRUE(unicode::flags_of(0x0663).is_number());  // Arabic-Indic three
  EXPECT_TRUE(unicode::flags_of(0x0301).is_mark());
  EXPECT_TRUE(unicode::flags_of(0x3000).is_whitespace());
  EXPECT_FALSE(unicode::flags_of(0x200B).is_whitespace());  // zero width space is Cf
  EXPECT_TRUE(unicode::flags_of(0x0378).bits & unicode::kUndefined);
}

std::shared_ptr<const gguf::GgufFile> gemma() {
  if (!fs::exists(test::gemma3_path())) return nullptr;
  return gguf::GgufFile::open(test::gemma3_path());
}

TEST(StreamDecoder, HoldsBackPartialCharactersUntilComplete) {
  const auto file = gemma();
  if (!file) GTEST_SKIP() << "gemma3 not in cache";
  const auto tok = Tokenizer::from_gguf(*file);
  auto byte_id = [&](const char* t) {
    for (int32_t id = 0; id < tok->n_vocab(); ++id) {
      if (tok->token_text(id) == t) return id;
    }
    return -1;
  };
  const int32_t e2 = byte_id("<0xE2>"), x82 = byte_id("<0x82>"), xac = byte_id("<0xAC>");
  ASSERT_GE(e2, 0);
  StreamDecoder sd(*tok);
  EXPECT_EQ(sd.push(e2), "");
  EXPECT_EQ(sd.push(x82), "");
  EXPECT_EQ(sd.push(xac), "\xE2\x82\xAC");
  EXPECT_EQ(sd.push(e2), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");  // an unfinished character at the end becomes U+FFFD
  EXPECT_EQ(sd.flush(), "");
  // A lead byte followed by a non-continuation is emitted (replaced) at once, not held.
  StreamDecoder sd2(*tok);
  EXPECT_EQ(sd2.push(e2), "");
  const std::vector<int32_t> a = tok->encode("A", false, false);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(sd2.push(a[0]), "\xEF\xBF\xBD" "A");
}

TEST(Tokenizer, ControlTokensRenderOnlyWhenAsked) {
  const auto file = gemma();
  if (!file) GTEST_SKIP() << "gemma3 not in cache";
  const auto tok = Tokenizer::from_gguf(*file);
  const std::vector<int32_t> ids = tok->encode("<start_of_turn>user\nhi<end_of_turn>", true, true);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], tok->bos_id());
  EXPECT_EQ(tok->token_text(ids[1]), "<start_of_turn>");
  EXPECT_EQ(tok->token_attr(ids[1]), TokenAttr::kControl);
  EXPECT_TRUE(tok->is_eog(ids.back()));  // <end_of_turn> ends generation
  EXPECT_EQ(tok->decode(ids, false), "user\nhi");
  EXPECT_EQ(tok->decode(ids, true), "<bos><start_of_turn>user\nhi<end_of_turn>");
  EXPECT_THROW(tok->token_to_piece(tok->n_vocab(), false), InvalidArgument);
}

// A small GGUF with a byte-level vocabulary, written to a temp file, for error tests.
class VocabErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("insitu_tok_err_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::vector<Value> toks, types;
    for (int b = 0; b < 256; ++b) {
      toks.push_back(Value::string(unicode::byte_to_unicode(static_cast<uint8_t>(b))));
      types.push_back(Value::i32(1));
    }
    toks.push_back(Value::string("ab"));
    types.push_back(Value::i32(1));
    w_.set("general.architecture", Value::string("llama"));
    w_.set("tokenizer.ggml.model", Value::string("gpt2"));
    w_.set("tokenizer.ggml.pre", Value::string("gpt-2"));
    w_.set("tokenizer.ggml.tokens", Value::array(ValueType::kString, toks));
    w_.set("tokenizer.ggml.token_type", Value::array(ValueType::kI32, types));
    w_.set("tokenizer.ggml.merges", Value::array(ValueType::kString, {Value::string("a b")}));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Tokenizer> load() {
    const std::string path = (dir_ / "v.gguf").string();
    w_.write(path);
    const auto f = gguf::GgufFile::open(path);
    return Tokenizer::from_gguf(*f);
  }
  // Runs load() and returns the error message (empty when it did not throw `E`).
  template <typename E>
  std::string error_of() {
    try {
      load();
    } catch (const E& e) {
      return e.what();
    }
    return {};
  }

  fs::path dir_;
  gguf::GgufWriter w_;
};

TEST_F(VocabErrors, ValidSmallVocabularyMerges) {
  const auto tok = load();
  EXPECT_EQ(tok->encode("ab ab", false, false), (std::vector<int32_t>{256, 32, 256}));
  EXPECT_EQ(tok->decode(tok->encode("xab\xFF", false, false), false), "xab\xEF\xBF\xBD");
}

TEST_F(VocabErrors, UnknownModelNamesFileAndSupportedModels) {
  w_.set("tokenizer.ggml.model", Value::string("bogus"));
  const std::string msg = error_of<Unsupported>();
  EXPECT_NE(msg.find("v.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'bogus'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gpt2"), std::string::npos) << msg;
}

TEST_F(VocabErrors, UnknownPreTokenizerListsKnownOnes) {
  w_.set("tokenizer.ggml.pre", Value::string("nonesuch"));
  const std::string msg = error_of<Unsupported>();
  EXPECT_NE(msg.find("'nonesuch'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("llama3"), std::string::npos) << msg;
}

TEST_F(VocabErrors, MissingMergesAndShortTypesAreFormatErrors) {
  w_.remove("tokenizer.ggml.merges");
  EXPECT_NE(error_of<FormatError>().find("tokenizer.ggml.merges"), std::string::npos);
  w_.set("tokenizer.ggml.merges", Value::array(ValueType::kString, {Value::string("a b")}));
  w_.set("tokenizer.ggml.token_type", Value::array(ValueType::kI32, {Value::i32(1)}));
  EXPECT_NE(error_of<FormatError>().find("token_type"), std::string::npos);
}

TEST_F(VocabErrors, DuplicateTokenTextIsRejected) {
  std::vector<Value> toks;
  for (int b = 0; b < 256; ++b) toks.push_back(Value::string(unicode::byte_to_unicode(static_cast<uint8_t>(b))));
  toks.push_back(Value::string("a"));
  w_.set("tokenizer.ggml.tokens", Value::array(ValueType::kString, toks));
  EXPECT_NE(error_of<FormatError>().find("appears twice"), std::string::npos);
}

TEST(HfDir, ErrorsNameTheFile) {
  const fs::path dir = fs::temp_directory_path() / ("insitu_tok_hf_err_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  EXPECT_THROW(Tokenizer::from_hf_dir(dir.string()), IoError);
  std::ofstream(dir / "tokenizer.json") << "{ not json";
  try {
    Tokenizer::from_hf_dir(dir.string());
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos);
  }
  std::ofstream(dir / "tokenizer.json", std::ios::trunc) << R"({"model": {"type": "Unigram", "vocab": []}})";
  EXPECT_THROW(Tokenizer::from_hf_dir(dir.string()), Unsupported);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace insitu
