// llama.cpp's mixes as ISQ targets: every mix's per-tensor decisions for both shipped models equal
// llama-quantize's (tests/data/reference/isq_mixes.json, made by scripts/gen_isq_mix_reference.py),
// with and without an importance matrix; the shipped files are themselves such mixes; loading with
// a mix applies exactly those decisions; and the flag rules (names, --pure) hold.
#include "model/isq_mix.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "insitu/error.h"
#include "io/gguf.h"
#include "model/isq.h"
#include "model/model.h"
#include "quant/type_traits.h"
#include "test_paths.h"

namespace insitu {
namespace {

using Q = QuantType;

std::string fmt_layer(int il, const char* role) {
  return "blk." + std::to_string(il) + "." + role + ".weight";
}

// Expands "q5_0*3,q8_0" into {q5_0, q5_0, q5_0, q8_0}.
std::vector<std::string> expand(const std::string& rle) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= rle.size()) {
    const size_t comma = std::min(rle.find(',', at), rle.size());
    const std::string item = rle.substr(at, comma - at);
    const size_t star = item.find('*');
    const int n = star == std::string::npos ? 1 : std::stoi(item.substr(star + 1));
    for (int i = 0; i < n; ++i) out.push_back(item.substr(0, star));
    at = comma + 1;
  }
  return out;
}

// Expected type per tensor name, from one variant's record.
std::map<std::string, std::string> expected_types(const nlohmann::json& rec, int n_layer) {
  std::map<std::string, std::string> out;
  for (const char* whole : {"token_embd", "output"})
    if (rec.contains(whole)) out[std::string(whole) + ".weight"] = rec[whole];
  for (const char* role :
       {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
    const std::vector<std::string> types = expand(rec.at(role).get<std::string>());
    EXPECT_EQ(static_cast<int>(types.size()), n_layer) << role;
    for (int il = 0; il < static_cast<int>(types.size()); ++il)
      out[fmt_layer(il, role)] = types[il];
  }
  return out;
}

const nlohmann::json& reference() {
  static const nlohmann::json j = [] {
    std::ifstream in(test::data_dir() + "/reference/isq_mixes.json");
    EXPECT_TRUE(in.good()) << "missing tests/data/reference/isq_mixes.json";
    return in.good() ? nlohmann::json::parse(in) : nlohmann::json::object();
  }();
  return j;
}

// An importance matrix that has an entry for every tensor (only its presence matters to plans).
IsqImatrixLookup any_imatrix() {
  auto ones = std::make_shared<std::vector<float>>(1, 1.0f);
  return [ones](std::string_view) { return ones.get(); };
}

std::string model_path(const std::string& key) {
  return key == "smollm2" ? test::smollm2_path() : test::gemma3_path();
}

class IsqMixReference : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    path_ = model_path(GetParam());
    if (!std::filesystem::exists(path_)) GTEST_SKIP() << "model not fetched: " << path_;
    ASSERT_TRUE(reference()["models"].contains(GetParam()));
    ref_ = &reference()["models"][GetParam()];
    LoadOptions o;
    o.path = path_;
    o.n_threads = 2;
    model_ = Model::load(o);
  }
  std::string path_;
  const nlohmann::json* ref_ = nullptr;
  std::shared_ptr<const Model> model_;
};

TEST_P(IsqMixReference, EveryMixDecidesAsLlamaQuantize) {
  const int n_layer = (*ref_)["n_layer"];
  ASSERT_EQ(n_layer, model_->config().n_layer);
  int checked = 0;
  for (const IsqMix mix : all_isq_mixes()) {
    const std::string name = isq_mix_name(mix);
    ASSERT_TRUE((*ref_)["mixes"].contains(name)) << name;
    const nlohmann::json& rec = (*ref_)["mixes"][name];
    for (const bool with_imatrix : {false, true}) {
      IsqOptions o;
      o.type = isq_mix_default_type(mix);
      o.mix = mix;
      if (with_imatrix) o.imatrix = any_imatrix();
      if (!with_imatrix && rec.value("plain_requires_imatrix", false)) {
        EXPECT_THROW(model_->plan_isq(o), InvalidArgument) << name << " needs an imatrix";
        continue;
      }
      const auto want = expected_types(rec.at(with_imatrix ? "imatrix" : "plain"), n_layer);
      const std::vector<IsqDecision> plan = model_->plan_isq(o);
      ASSERT_EQ(plan.size(), want.size()) << name;
      for (const IsqDecision& d : plan) {
        const auto it = want.find(d.weight->name);
        ASSERT_NE(it, want.end()) << name << ": " << d.weight->name;
        EXPECT_EQ(parse_quant_type(it->second), d.to)
            << name << (with_imatrix ? " (imatrix) " : " ") << d.weight->name << ": llama.cpp "
            << it->second << ", insitu " << quant_type_name(d.to);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0);
}

// The shipped files were written by llama.cpp's quantizer with one of these mixes; their tensor
// types are that mix's decisions.
TEST_P(IsqMixReference, ShippedFileIsItsMix) {
  const auto file = gguf::GgufFile::open(path_);
  const IsqMix mix = static_cast<IsqMix>(file->get_u64("general.file_type"));
  const std::string name = isq_mix_name(mix);
  const auto want = expected_types((*ref_)["mixes"][name]["plain"], (*ref_)["n_layer"]);
  for (const auto& [tensor, type] : want) {
    const gguf::TensorInfo* t = file->find_tensor(tensor);
    ASSERT_NE(t, nullptr) << tensor;
    EXPECT_EQ(parse_quant_type(type), t->type) << name << ": " << tensor;
  }
}

// Loading with a mix converts each weight to exactly its planned type.
TEST_P(IsqMixReference, LoadAppliesThePlan) {
  const IsqMix mix = GetParam() == "smollm2" ? IsqMix::kQ4K_M : IsqMix::kQ3K_M;
  IsqOptions o;
  o.type = isq_mix_default_type(mix);
  o.mix = mix;
  o.show_progress = false;
  const auto want =
      expected_types((*ref_)["mixes"][isq_mix_name(mix)]["plain"], (*ref_)["n_layer"]);
  LoadOptions lo;
  lo.path = path_;
  lo.n_threads = 2;
  lo.isq = o;
  const auto m = Model::load(lo);
  for (const auto& [tensor, type] : want) {
    const Weight* w = m->find_weight(tensor);
    ASSERT_NE(w, nullptr) << tensor;
    EXPECT_EQ(parse_quant_type(type), w->type) << tensor;
  }
}

INSTANTIATE_TEST_SUITE_P(ShippedModels, IsqMixReference, ::testing::Values("smollm2", "gemma3"));

TEST(IsqMix, NamesRoundTripAndParseCaseInsensitively) {
  for (const IsqMix mix : all_isq_mixes()) {
    EXPECT_EQ(parse_isq_mix(isq_mix_name(mix)), mix);
    const IsqTarget t = parse_isq_target(isq_mix_name(mix));
    EXPECT_EQ(t.mix, mix);
    EXPECT_EQ(t.type, isq_mix_default_type(mix));
    EXPECT_EQ(t.name(), isq_mix_name(mix));
  }
  EXPECT_EQ(parse_isq_mix("Q4K_M"), IsqMix::kQ4K_M);
  EXPECT_EQ(static_cast<uint32_t>(IsqMix::kQ4K_M), 15u);  // llama_ftype
  // A plain type stays a type: "q4k" is not the Q4_K_M mix.
  EXPECT_FALSE(parse_isq_target("q4k").mix.has_value());
  EXPECT_FALSE(parse_isq_target("4").mix.has_value());
  try {
    parse_isq_target("q4k_x");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("q4k_m"), std::string::npos) << e.what();
  }
}

// The names users type: llama.cpp's own spellings of its mixes, in any case, with or without '_';
// a spelling that names a single type stays that type.
TEST(IsqMix, LlamaCppSpellingsOfMixes) {
  EXPECT_EQ(parse_isq_target("Q4_K_M").mix, IsqMix::kQ4K_M);
  EXPECT_EQ(parse_isq_target("q5_k_s").mix, IsqMix::kQ5K_S);
  EXPECT_EQ(parse_isq_target("Q4KM").mix, IsqMix::kQ4K_M);
  EXPECT_EQ(parse_isq_target("IQ3_M").mix, IsqMix::kIQ3_M);
  EXPECT_EQ(parse_isq_target("Q3_K_L").mix, IsqMix::kQ3K_L);
  EXPECT_EQ(parse_isq_target("q4k_m").mix, IsqMix::kQ4K_M);
  const IsqTarget q40 = parse_isq_target("Q4_0");
  EXPECT_FALSE(q40.mix.has_value());
  EXPECT_EQ(q40.type, QuantType::kQ4_0);
  EXPECT_FALSE(parse_isq_target("IQ2_XS").mix.has_value());
  EXPECT_THROW(parse_isq_target("Q4_K_Z"), InvalidArgument);
}

TEST(IsqMix, PureWithAMixIsAnError) {
  const std::string path = test::smollm2_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model not fetched: " << path;
  LoadOptions lo;
  lo.path = path;
  const auto m = Model::load(lo);
  IsqOptions o;
  o.type = Q::kQ4K;
  o.mix = IsqMix::kQ4K_M;
  o.pure = true;
  EXPECT_THROW(m->plan_isq(o), InvalidArgument);
}

TEST(IsqMix, RecipeRulesOnALargeLlama) {
  // An 80-layer llama with grouped KV (llama.cpp's 70B rule) and 4096-wide rows.
  const IsqModelShape m{Arch::kLlama, 80, 64, 8, 0, false};
  using R = WeightRole;
  // q3k_m: attention v of the first two layers q5k, later q4k, lifted to q5k by the 70B rule.
  EXPECT_EQ(isq_mix_tensor_type(IsqMix::kQ3K_M, m, R::kAttnV, 0, 8192, false), Q::kQ5K);
  EXPECT_EQ(isq_mix_tensor_type(IsqMix::kQ3K_M, m, R::kAttnV, 5, 8192, false), Q::kQ5K);
  const IsqModelShape small{Arch::kLlama, 32, 32, 8, 0, false};
  EXPECT_EQ(isq_mix_tensor_type(IsqMix::kQ3K_M, small, R::kAttnV, 5, 4096, false), Q::kQ4K);
  // Untied embeddings keep the mix's type; the output head gets q6k.
  EXPECT_EQ(isq_mix_tensor_type(IsqMix::kQ4K_M, small, R::kTokenEmbedding, -1, 4096, false),
            Q::kQ4K);
  EXPECT_EQ(isq_mix_tensor_type(IsqMix::kQ4K_M, small, R::kOutput, -1, 4096, false), Q::kQ6K);
  // q4k_m ffn_down: use_more_bits layers (first/last eighth, every third between) get q6k.
  std::string pattern;
  for (int il = 0; il < 32; ++il)
    pattern += isq_mix_tensor_type(IsqMix::kQ4K_M, small, R::kFfnDown, il, 14336, false) == Q::kQ6K
                   ? '6'
                   : '4';
  EXPECT_EQ(pattern, "66664464464464464464464464466666");
  EXPECT_TRUE(isq_mix_requires_imatrix(IsqMix::kQ2K_S, R::kFfnUp, Q::kQ2K));
  EXPECT_FALSE(isq_mix_requires_imatrix(IsqMix::kQ2K_S, R::kOutput, Q::kQ2K));
  EXPECT_FALSE(isq_mix_requires_imatrix(IsqMix::kQ3K_M, R::kFfnUp, Q::kQ3K));
}

}  // namespace
}  // namespace insitu
