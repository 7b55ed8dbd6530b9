// Token ids against llama.cpp for the two shipped models, on ~220 KB of real English text and an
// adversarial set, from GGUF metadata and from an exported tokenizer.json directory.
//
// Reference data (written by scripts/gen_tokenizer_reference.py with llama-cpp-python):
//   tests/data/tokenizer/corpus.txt   real English excerpts (Debian jargon-text, gnu-standards,
//                                     debian-reference-common)
//   tests/data/tokenizer/cases.json   cases: {"name", "corpus": [offset, length] | "hex": bytes}
//   tests/data/tokenizer/MODEL.json   runs: {"case", "add_bos", "parse_special", "n" (id count),
//                                     "detok", "detok_special"}: llama_detokenize output with
//                                     unparse_special false/true; null = the text itself,
//                                     "space+text" / "bos+text" / "bos+space+text" = the text
//                                     after a space and/or the BOS text, "detok" / "bos+detok"
//                                     (detok_special only) = detok / BOS text + detok, else hex
//   tests/data/tokenizer/MODEL.ids    the runs' ids, concatenated, LEB128 varints
//   tests/data/tokenizer/variant_NAME.{json,ids}  the same for the other families' behaviour:
//                                     a shipped model's vocabulary with the metadata that selects
//                                     pre-tokenizer / BOS / space rules overridden ("base",
//                                     "overrides"), on a subset of the cases
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "test_paths.h"
#include "tokenizer/hf_export.h"
#include "insitu/tokenizer.h"
#include "tokenizer/unicode.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

struct RefRun {
  std::string name;
  std::string text;
  bool add_bos;
  bool parse_special;
  std::vector<int32_t> ids;
  json detok;
  json detok_special;
};

struct Reference {
  std::vector<RefRun> runs;
  size_t text_bytes = 0;
  size_t n_ids = 0;
};

Reference load_reference(const std::string& model_key) {
  const std::string dir = test::data_dir() + "/tokenizer/";
  const json cases = json::parse(read_file(dir + "cases.json"));
  const std::string corpus = read_file(dir + cases["corpus"].get<std::string>());
  const json model = json::parse(read_file(dir + model_key + ".json"));
  const std::string blob = read_file(dir + model_key + ".ids");
  Reference ref;
  size_t pos = 0;
  for (const json& r : model["runs"]) {
    const json& c = cases["cases"][r["case"].get<size_t>()];
    RefRun run;
    run.name = c["name"].get<std::string>();
    if (c.contains("corpus")) {
      run.text = corpus.substr(c["corpus"][0].get<size_t>(), c["corpus"][1].get<size_t>());
    } else {
      run.text = from_hex(c["hex"].get<std::string>());
    }
    run.add_bos = r["add_bos"].get<bool>();
    run.parse_special = r["parse_special"].get<bool>();
    const size_t n = r["n"].get<size_t>();
    for (size_t i = 0; i < n; ++i) {
      uint32_t v = 0;
      for (int shift = 0;; shift += 7) {
        const uint8_t b = static_cast<uint8_t>(blob.at(pos++));
        v |= static_cast<uint32_t>(b & 0x7F) << shift;
        if (!(b & 0x80)) break;
      }
      run.ids.push_back(static_cast<int32_t>(v));
    }
    run.detok = r["detok"];
    run.detok_special = r["detok_special"];
    ref.text_bytes += run.text.size();
    ref.n_ids += n;
    ref.runs.push_back(std::move(run));
  }
  EXPECT_EQ(pos, blob.size()) << model_key << ".ids has trailing bytes";
  return ref;
}

std::string expected_detok(const RefRun& run, const json& d, const Tokenizer& tok) {
  if (d.is_null()) return run.text;
  const std::string s = d.get<std::string>();
  const std::string bos = run.add_bos ? tok.token_text(tok.bos_id()) : std::string();
  if (s == "space+text") return " " + run.text;
  if (s == "bos+text") return bos + run.text;
  if (s == "bos+space+text") return bos + " " + run.text;
  if (s == "detok") return expected_detok(run, run.detok, tok);
  if (s == "bos+detok") return bos + expected_detok(run, run.detok, tok);
  return from_hex(s);
}

std::string show_ids(const std::vector<int32_t>& ids, size_t from) {
  std::string s;
  for (size_t i = from; i < ids.size() && i < from + 12; ++i) s += std::to_string(ids[i]) + " ";
  return s;
}

// Compares every run; reports the first few differences in detail.
void check_ids(const Tokenizer& tok, const Reference& ref, const std::string& what) {
  size_t bad = 0;
  for (const RefRun& run : ref.runs) {
    const std::vector<int32_t> got = tok.encode(run.text, run.add_bos, run.parse_special);
    if (got == run.ids) continue;
    if (++bad <= 5) {
      size_t i = 0;
      while (i < got.size() && i < run.ids.size() && got[i] == run.ids[i]) ++i;
      ADD_FAILURE() << what << ": case '" << run.name << "' add_bos=" << run.add_bos
                    << " parse_special=" << run.parse_special << ": first difference at id " << i
                    << "\n  llama.cpp: " << show_ids(run.ids, i) << "\n  insitu:    " << show_ids(got, i);
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << ref.runs.size() << " runs differ";
  std::printf("[ info ] %s: %zu runs, %zu text bytes, %zu ids compared, %zu differ\n", what.c_str(),
              ref.runs.size(), ref.text_bytes, ref.n_ids, bad);
}

class TokenizerReference : public ::testing::TestWithParam<std::string> {
 protected:
  std::string model_path() const {
    return GetParam() == "smollm2" ? test::smollm2_path() : test::gemma3_path();
  }
};

TEST_P(TokenizerReference, GgufIdsMatchLlamaCpp) {
  if (!fs::exists(model_path())) GTEST_SKIP() << "model not in cache: " << model_path();
  const auto file = gguf::GgufFile::open(model_path());
  const auto tok = Tokenizer::from_gguf(*file);
  check_ids(*tok, load_reference(GetParam()), GetParam() + " (gguf)");
}

TEST_P(TokenizerReference, DecodeMatchesLlamaCppDetokenize) {
  if (!fs::exists(model_path())) GTEST_SKIP() << "model not in cache: " << model_path();
  const auto file = gguf::GgufFile::open(model_path());
  const auto tok = Tokenizer::from_gguf(*file);
  const Reference ref = load_reference(GetParam());
  size_t roundtrips = 0, bad = 0;
  for (const RefRun& run : ref.runs) {
    for (const bool special : {false, true}) {
      const std::string want = expected_detok(run, special ? run.detok_special : run.detok, *tok);
      const std::string got = tok->decode(run.ids, special);
      if (got != want && ++bad <= 5) {
        ADD_FAILURE() << GetParam() << ": decode of case '" << run.name << "' (render_special="
                      << special << ") differs from llama.cpp";
      }
      // Where llama.cpp round-trips, so do we: decode(encode(x)) == x.
      if (!special && run.detok.is_null()) {
        ++roundtrips;
        EXPECT_EQ(tok->decode(tok->encode(run.text, run.add_bos, run.parse_special), false), run.text)
            << "case " << run.name;
      }
    }
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(roundtrips, ref.runs.size() / 2);
}

// Concatenated stream output equals the decoded text with malformed bytes replaced, and no
// push() ever ends inside a UTF-8 character.
TEST_P(TokenizerReference, StreamDecoderNeverSplitsCharacters) {
  if (!fs::exists(model_path())) GTEST_SKIP() << "model not in cache: " << model_path();
  const auto file = gguf::GgufFile::open(model_path());
  const auto tok = Tokenizer::from_gguf(*file);
  const Reference ref = load_reference(GetParam());
  for (const RefRun& run : ref.runs) {
    StreamDecoder sd(*tok);
    std::string all;
    for (const int32_t id : run.ids) {
      const std::string part = sd.push(id);
      ASSERT_EQ(unicode::sanitize_utf8(part), part) << "invalid UTF-8 emitted in case " << run.name;
      all += part;
    }
    all += sd.flush();
    // Clean-up of spaces is a whole-text rule that a stream cannot apply; these vocabularies
    // (smollm, spm) do not use it.
    EXPECT_EQ(all, unicode::sanitize_utf8(tok->decode(run.ids, false))) << "case " << run.name;
  }
}

TEST_P(TokenizerReference, HfExportRoundTripGivesSameIds) {
  if (!fs::exists(model_path())) GTEST_SKIP() << "model not in cache: " << model_path();
  const auto file = gguf::GgufFile::open(model_path());
  const fs::path dir = fs::temp_directory_path() / ("insitu_tok_hf_" + GetParam() + "_" +
                                                    std::to_string(::getpid()));
  fs::create_directories(dir);
  write_hf_tokenizer_files(*file, dir.string());
  ASSERT_TRUE(fs::exists(dir / "tokenizer.json"));
  ASSERT_TRUE(fs::exists(dir / "tokenizer_config.json"));
  const auto tok = Tokenizer::from_hf_dir(dir.string());
  const auto ref_tok = Tokenizer::from_gguf(*file);
  EXPECT_EQ(tok->n_vocab(), ref_tok->n_vocab());
  EXPECT_EQ(tok->bos_id(), ref_tok->bos_id());
  EXPECT_EQ(tok->eos_id(), ref_tok->eos_id());
  EXPECT_EQ(tok->add_bos(), ref_tok->add_bos());
  for (int32_t id = 0; id < ref_tok->n_vocab(); ++id) {
    ASSERT_EQ(tok->token_attr(id), ref_tok->token_attr(id)) << "token " << id;
    ASSERT_EQ(tok->is_eog(id), ref_tok->is_eog(id)) << "token " << id;
  }
  check_ids(*tok, load_reference(GetParam()), GetParam() + " (tokenizer.json)");
  fs::remove_all(dir);
}

// Another family's tokenizer behaviour on a shipped vocabulary: the GGUF is rewritten with the
// overrides the generator used, then compared with llama.cpp's ids for that file, from GGUF and
// through the tokenizer.json export.
class TokenizerVariant : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVariant, IdsMatchLlamaCpp) {
  const std::string key = "variant_" + GetParam();
  const json meta = json::parse(read_file(test::data_dir() + "/tokenizer/" + key + ".json"));
  const std::string base = meta["base"].get<std::string>();
  const std::string base_path = base == "smollm2" ? test::smollm2_path() : test::gemma3_path();
  if (!fs::exists(base_path)) GTEST_SKIP() << "model not in cache: " << base_path;
  const auto base_file = gguf::GgufFile::open(base_path);
  gguf::GgufWriter w;
  for (const auto& [k, v] : base_file->metadata()) {
    if (k != "general.alignment") w.set(k, v);
  }
  for (const auto& [k, v] : meta["overrides"].items()) {
    if (v.is_object()) {  // renames inside a string array: {"id": "new text"}
      gguf::Value arr = *base_file->find(k);
      for (const auto& [id, t] : v.items()) {
        std::get<gguf::Array>(arr.v).items.at(std::stoul(id)) = gguf::Value::string(t.get<std::string>());
      }
      w.set(k, arr);
    } else {
      w.set(k, v.is_boolean() ? gguf::Value::boolean(v.get<bool>()) : gguf::Value::string(v.get<std::string>()));
    }
  }
  const fs::path dir = fs::temp_directory_path() / ("insitu_tok_" + key + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  w.write((dir / "v.gguf").string());
  const auto file = gguf::GgufFile::open((dir / "v.gguf").string());
  const auto tok = Tokenizer::from_gguf(*file);
  const Reference ref = load_reference(key);
  check_ids(*tok, ref, key + " (gguf)");
  size_t bad = 0;
  for (const RefRun& run : ref.runs) {
    for (const bool special : {false, true}) {
      const std::string want = expected_detok(run, special ? run.detok_special : run.detok, *tok);
      if (tok->decode(run.ids, special) != want && ++bad <= 5) {
        ADD_FAILURE() << key << ": decode of case '" << run.name << "' (render_special=" << special
                      << ") differs from llama.cpp";
      }
    }
  }
  EXPECT_EQ(bad, 0u);
  write_hf_tokenizer_files(*file, (dir / "hf").string());
  check_ids(*Tokenizer::from_hf_dir((dir / "hf").string()), ref, key + " (tokenizer.json)");
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Families, TokenizerVariant,
                         ::testing::Values("llama3", "llama3_bos", "qwen2", "qwen35", "gpt2",
                                           "default", "falcon", "tekken", "spm_space_prefix", "spm_prefix_eos", "phi3"),
                         [](const auto& info) { return info.param; });

INSTANTIATE_TEST_SUITE_P(Models, TokenizerReference, ::testing::Values("smollm2", "gemma3"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace insitu
