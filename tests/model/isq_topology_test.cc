// Topology files for in-situ quantization: mistral.rs's precedence (its topology/mod.rs tests
// highest_end_range_overrides_lower_end, later_range_with_same_end_wins and the regex order, plus
// regex over range and topology over promotion), parse errors with line numbers, regexes over
// SmolLM2's real Hugging Face names, and a load whose weight types follow a topology.
#include "model/isq_topology.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "insitu/error.h"
#include "model/isq.h"
#include "model/model.h"
#include "test_paths.h"

namespace insitu {
namespace {

using Q = QuantType;

std::shared_ptr<const IsqTopology> parse(const std::string& yaml) {
  return IsqTopology::parse(yaml, "topo.yml");
}

std::optional<Q> layer_type(const IsqTopology& t, int layer) {
  const IsqTopologyEntry* e = t.match_layer(layer);
  return e ? e->type : std::nullopt;
}

std::optional<Q> name_type(const IsqTopology& t, const std::string& name) {
  const IsqTopologyEntry* e = t.match_name(name);
  return e ? e->type : std::nullopt;
}

// The message of the InvalidArgument that parsing `yaml` throws.
std::string parse_error(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << yaml;
  return "";
}

TEST(IsqTopologyParse, HighestEndRangeOverridesLowerEnd) {
  const auto t = parse("0-4:\n  isq: Q4K\n2-6:\n  isq: Q6K\n");
  EXPECT_EQ(layer_type(*t, 0), Q::kQ4K);
  EXPECT_EQ(layer_type(*t, 2), Q::kQ6K);
  EXPECT_EQ(layer_type(*t, 5), Q::kQ6K);
  // Declaration order does not matter between different ends: the larger end is applied last.
  const auto r = parse("2-6:\n  isq: Q6K\n0-4:\n  isq: Q4K\n");
  EXPECT_EQ(layer_type(*r, 1), Q::kQ4K);
  EXPECT_EQ(layer_type(*r, 2), Q::kQ6K);
  EXPECT_EQ(layer_type(*r, 3), Q::kQ6K);
}

TEST(IsqTopologyParse, LaterRangeWithSameEndWins) {
  const auto t = parse("0-4:\n  isq: Q4K\n2-4:\n  isq: Q3K\n");
  EXPECT_EQ(layer_type(*t, 1), Q::kQ4K);
  EXPECT_EQ(layer_type(*t, 2), Q::kQ3K);
  EXPECT_EQ(layer_type(*t, 3), Q::kQ3K);
  const auto r = parse("2-4:\n  isq: Q3K\n0-4:\n  isq: Q4K\n");
  EXPECT_EQ(layer_type(*r, 2), Q::kQ4K);
}

TEST(IsqTopologyParse, RangesAreHalfOpenAndSingleIndicesCoverOneLayer) {
  const auto t = parse("0-4: {isq: q8_0}\n6: {isq: 4}\n");
  EXPECT_EQ(layer_type(*t, 3), Q::kQ8_0);
  EXPECT_EQ(layer_type(*t, 4), std::nullopt);
  EXPECT_EQ(t->match_layer(4), nullptr);
  EXPECT_EQ(t->match_layer(5), nullptr);
  EXPECT_EQ(layer_type(*t, 6), Q::kQ4K);  // numeric shorthand, resolved as on CPU
  EXPECT_EQ(t->match_layer(7), nullptr);
  EXPECT_EQ(t->match_layer(-1), nullptr);
  ASSERT_EQ(t->entries().size(), 2u);
  EXPECT_EQ(t->entries()[1].key, "6");
  EXPECT_EQ(t->entries()[1].line, 2);
}

TEST(IsqTopologyParse, LaterRegexWins) {
  const auto t = parse("'/mlp\\./':\n  isq: Q4K\n'/down_proj\\.weight$/':\n  isq: Q6K\n");
  EXPECT_EQ(name_type(*t, "model.layers.2.mlp.down_proj.weight"), Q::kQ6K);
  EXPECT_EQ(name_type(*t, "model.layers.2.mlp.up_proj.weight"), Q::kQ4K);
  EXPECT_EQ(name_type(*t, "model.layers.2.self_attn.q_proj.weight"), std::nullopt);
  // Reversed declarations: the broader regex, now last, wins everywhere it matches.
  const auto r = parse("'/down_proj\\.weight$/':\n  isq: Q6K\n'/mlp\\./':\n  isq: Q4K\n");
  EXPECT_EQ(name_type(*r, "model.layers.2.mlp.down_proj.weight"), Q::kQ4K);
}

TEST(IsqTopologyParse, RegexesSearchLikeRustsIsMatch) {
  // Unanchored, as mistral.rs's Regex::is_match: '/ffn\./' finds "model.layers.2.ffn.weight".
  const auto t = parse("'/ffn\\./': {isq: q4k}\n'/^lm_head\\.weight$/': {isq: q8_0}\n");
  EXPECT_EQ(name_type(*t, "model.layers.2.ffn.weight"), Q::kQ4K);
  EXPECT_EQ(name_type(*t, "lm_head.weight"), Q::kQ8_0);
  EXPECT_EQ(name_type(*t, "x.lm_head.weight"), std::nullopt);
}

TEST(IsqTopologyParse, RegexBeatsRange) {
  const auto t = parse("0-8: {isq: q8_0}\n'/q_proj/': {isq: q4k}\n");
  const std::vector<std::string> q = {"model.layers.3.self_attn.q_proj.weight"};
  const std::vector<std::string> k = {"model.layers.3.self_attn.k_proj.weight"};
  EXPECT_EQ(t->match(q, 3)->type, Q::kQ4K);
  EXPECT_EQ(t->match(k, 3)->type, Q::kQ8_0);
  EXPECT_EQ(t->match(k, 9), nullptr);
  // Declared before the range, the regex still wins: regexes are looked at first.
  const auto r = parse("'/q_proj/': {isq: q4k}\n0-8: {isq: q8_0}\n");
  EXPECT_EQ(r->match(q, 3)->type, Q::kQ4K);
}

TEST(IsqTopologyParse, EntriesWithoutTypeMatchWithTheDefaultAndDevicesAreChecked) {
  // Block style takes cuda[0] as a plain scalar; flow style needs quotes around the brackets.
  const auto t = parse(
      "0-2:\n4-6: {isq: null, device: cpu}\n6-8:\n  isq: q4k\n  device: cuda[0]\n"
      "'/lm_head/': {device: 'metal[1]'}\n");
  ASSERT_NE(t->match_layer(0), nullptr);
  EXPECT_EQ(t->match_layer(0)->type, std::nullopt);
  EXPECT_EQ(t->match_layer(5)->device, "cpu");
  EXPECT_EQ(t->match_layer(6)->device, "cuda[0]");
  EXPECT_EQ(t->first_untyped(), &t->entries()[0]);
  EXPECT_EQ(parse("0-2: {isq: q4k}\n'/x/': {isq: 8}\n")->first_untyped(), nullptr);
  const std::string e = parse_error("0-2:\n  device: gpu0\n");
  EXPECT_NE(e.find("topo.yml:2: '0-2': device 'gpu0' invalid"), std::string::npos) << e;
  EXPECT_NE(parse_error("0-2: {device: 'cuda[]'}\n").find("invalid"), std::string::npos);
}

TEST(IsqTopologyParse, TypesTakeEveryIsqSpelling) {
  const auto t = parse(
      "0: {isq: Q4K}\n1: {isq: q4_k}\n2: {isq: Q8_0}\n3: {isq: iq4_xs}\n"
      "4: {isq: 6}\n");
  EXPECT_EQ(layer_type(*t, 0), Q::kQ4K);
  EXPECT_EQ(layer_type(*t, 1), Q::kQ4K);
  EXPECT_EQ(layer_type(*t, 2), Q::kQ8_0);
  EXPECT_EQ(layer_type(*t, 3), Q::kIQ4_XS);
  EXPECT_EQ(layer_type(*t, 4), Q::kQ6K);
  // mistral.rs's serde name for fp8 means what "fp8" means here (a type, or the same refusal).
  std::optional<Q> fp8;
  std::string fp8_error;
  try {
    fp8 = layer_type(*parse("0: {isq: fp8}\n"), 0);
  } catch (const InvalidArgument& e) {
    fp8_error = e.what();
  }
  if (fp8) {
    EXPECT_EQ(layer_type(*parse("0: {isq: F8E4M3}\n"), 0), fp8);
  } else {
    EXPECT_FALSE(fp8_error.empty());
    EXPECT_NE(parse_error("0: {isq: F8E4M3}\n").find("fp8"), std::string::npos);
  }
}

TEST(IsqTopologyParse, ErrorsNameFileLineKeyAndReason) {
  std::string e = parse_error("0-4:\n  isq: q4k\n  bits: 4\n");
  EXPECT_NE(e.find("topo.yml:3: '0-4': unknown key 'bits'; valid: isq device"), std::string::npos)
      << e;
  e = parse_error("0-4: {isq: q4k}\n8-2: {isq: q4k}\n");
  EXPECT_NE(e.find("topo.yml:2: '8-2': range end must be > start"), std::string::npos) << e;
  e = parse_error("3-3: {isq: q4k}\n");
  EXPECT_NE(e.find("'3-3': range end must be > start"), std::string::npos) << e;
  e = parse_error("0-4: {isq: q4k}\n\nlayers: {isq: q4k}\n");
  EXPECT_NE(e.find("topo.yml:3: 'layers': not a selector"), std::string::npos) << e;
  EXPECT_NE(parse_error("-1-4: {isq: q4k}\n").find("not a selector"), std::string::npos);
  EXPECT_NE(parse_error("1-: {isq: q4k}\n").find("not a selector"), std::string::npos);
  e = parse_error("'/(q_proj/': {isq: q4k}\n");
  EXPECT_NE(e.find("topo.yml:1: '/(q_proj/': bad regex"), std::string::npos) << e;
  e = parse_error("0-4:\n  isq: q9k\n");
  EXPECT_NE(e.find("topo.yml:2: '0-4': isq: unknown type 'q9k'; valid: 2 3 4 5 6 8"),
            std::string::npos)
      << e;
  e = parse_error("0-4:\n  isq: q4k_m\n");  // a mix is a whole-model recipe, not a type
  EXPECT_NE(e.find("unknown type 'q4k_m'"), std::string::npos) << e;
  e = parse_error("0-4: {isq: q4k}\n0-4: {isq: q8_0}\n");
  EXPECT_NE(e.find("topo.yml:2: '0-4': selector given twice"), std::string::npos) << e;
  e = parse_error("0-4: q4k\n");
  EXPECT_NE(e.find("'0-4': expected a mapping with isq and/or device"), std::string::npos) << e;
  e = parse_error("- 0-4\n- 4-8\n");
  EXPECT_NE(e.find("expected a mapping of selectors"), std::string::npos) << e;
  EXPECT_NE(parse_error("").find("expected a mapping of selectors"), std::string::npos);
  e = parse_error("0-99999999: {isq: q4k}\n");
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
}

TEST(IsqTopologyParse, BadYamlGivesTheLineYamlCppReports) {
  std::string e = parse_error("0-4:\n  isq: q4k\n8-12: {isq: q8_0\n16-20: {isq: q6k}\n");
  EXPECT_NE(e.find("topology topo.yml:"), std::string::npos) << e;
  EXPECT_NE(e.find("bad YAML"), std::string::npos) << e;
  e = parse_error("0-4:\n  isq: q4k\n   device: cpu\n");
  EXPECT_NE(e.find("topo.yml:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("bad YAML"), std::string::npos) << e;
}

// Regression: the parser bound `const YAML::Node&` to yaml-cpp's iterator proxies, which died at
// once (stack-use-after-scope under ASan on the shipped example). The sanitizer build runs this.
TEST(IsqTopologyParse, ShippedTopologiesParseWithoutDanglingNodes) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::source_dir() + "/docs/topologies")) {
    if (e.path().extension() != ".yml") continue;
    const auto topo = IsqTopology::load(e.path().string());
    EXPECT_FALSE(topo->entries().empty()) << e.path();
    ++n;
  }
  EXPECT_GT(n, 0);
}

TEST(IsqTopologyParse, RefusesAFifo) {
  const std::string fifo = ::testing::TempDir() + "/topology-fifo-" + std::to_string(::getpid());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    IsqTopology::load(fifo);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(fifo), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  ::unlink(fifo.c_str());
}

TEST(IsqTopologyParse, LoadNamesTheMissingFile) {
  try {
    IsqTopology::load("/nonexistent/topo.yml");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/topo.yml"), std::string::npos) << e.what();
  }
}

// Plans and loads over SmolLM2-135M (30 layers, rows of 576 and 1536, tied embeddings).
class IsqTopologyModel : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = test::smollm2_path();
    if (!std::filesystem::exists(path_)) GTEST_SKIP() << "model not fetched: " << path_;
    if (!model_) {
      LoadOptions o;
      o.path = path_;
      model_ = Model::load(o);
    }
  }
  static IsqOptions options(Q type, const std::string& topology) {
    IsqOptions o;
    o.type = type;
    o.show_progress = false;
    if (!topology.empty()) o.topology = parse(topology);
    return o;
  }
  static std::map<std::string, IsqDecision> by_name(const std::vector<IsqDecision>& plan) {
    std::map<std::string, IsqDecision> out;
    for (const IsqDecision& d : plan) out[d.weight->name] = d;
    return out;
  }
  std::string path_;
  static inline std::shared_ptr<const Model> model_;
};

TEST_F(IsqTopologyModel, RegexesMatchTheHuggingFaceNamesOfTheRealWeights) {
  auto plan = by_name(model_->plan_isq(
      options(Q::kQ4K,
              "'/^model\\.layers\\.\\d+\\.self_attn\\.q_proj\\.weight$/': {isq: q8_0}\n"
              "'/^model\\.layers\\.1\\d\\.mlp\\.(gate|up)_proj\\.weight$/': {isq: q4_0}\n")));
  ASSERT_EQ(plan.size(), 1u + 30u * 7u);  // tied: the embedding is also the output head
  for (int il = 0; il < 30; ++il) {
    const IsqDecision& q = plan.at("blk." + std::to_string(il) + ".attn_q.weight");
    EXPECT_EQ(q.to, Q::kQ8_0) << il;
    EXPECT_TRUE(q.pinned);
    EXPECT_EQ(q.note,
              "pinned by topology (/^model\\.layers\\.\\d+\\.self_attn\\.q_proj\\.weight$/)");
    const IsqDecision& k = plan.at("blk." + std::to_string(il) + ".attn_k.weight");
    EXPECT_FALSE(k.pinned);
    EXPECT_EQ(k.to, Q::kQ5_0);  // q4k does not fit rows of 576
    const IsqDecision& up = plan.at("blk." + std::to_string(il) + ".ffn_up.weight");
    EXPECT_EQ(up.to, il >= 10 && il < 20 ? Q::kQ4_0 : Q::kQ5_0) << il;
  }
}

TEST_F(IsqTopologyModel, ATiedEmbeddingAnswersToBothNamesAndBeatsPromotion) {
  // Without a topology the tied embedding is promoted (q6k, which falls back to q8_0 on 576).
  EXPECT_EQ(by_name(model_->plan_isq(options(Q::kQ4K, ""))).at("token_embd.weight").to, Q::kQ8_0);
  for (const char* name : {"model\\.embed_tokens", "lm_head"}) {
    const std::string key = std::string("/^") + name + "\\.weight$/";
    auto plan = by_name(model_->plan_isq(options(Q::kQ4K, "'" + key + "': {isq: q4_0}\n")));
    const IsqDecision& d = plan.at("token_embd.weight");
    EXPECT_EQ(d.to, Q::kQ4_0) << name;
    EXPECT_TRUE(d.pinned);
    EXPECT_EQ(d.topology_key, key);
  }
  // --pure changes nothing for a pinned type, and an untyped entry keeps the promotion.
  IsqOptions pure = options(Q::kQ4K, "'/lm_head/': {isq: q4_1}\n");
  pure.pure = true;
  EXPECT_EQ(by_name(model_->plan_isq(pure)).at("token_embd.weight").to, Q::kQ4_1);
  const IsqDecision d = by_name(model_->plan_isq(options(Q::kQ4K, "'/lm_head/': {device: cpu}\n")))
                            .at("token_embd.weight");
  EXPECT_EQ(d.to, Q::kQ8_0);
  EXPECT_FALSE(d.pinned);
  EXPECT_EQ(d.topology_key, "/lm_head/");
}

TEST_F(IsqTopologyModel, PinnedTypesStillFallBackOnRowLength) {
  auto plan = by_name(model_->plan_isq(options(Q::kQ8_0, "0-30: {isq: q4k}\n")));
  const IsqDecision& q = plan.at("blk.0.attn_q.weight");  // rows of 576
  EXPECT_EQ(q.to, Q::kQ5_0);
  EXPECT_TRUE(q.pinned);
  EXPECT_EQ(q.note,
            "pinned by topology (0-30); rows of 576 do not fit q4k's 256-element blocks; "
            "q5_0 instead");
  EXPECT_EQ(plan.at("blk.29.ffn_down.weight").to, Q::kQ4K);  // rows of 1536
  EXPECT_EQ(plan.at("token_embd.weight").to, Q::kQ8_0);      // no layer: only regexes reach it
  EXPECT_FALSE(plan.at("token_embd.weight").pinned);
}

TEST_F(IsqTopologyModel, PinsOverrideAMix) {
  IsqOptions o = options(Q::kQ4K, "0-2: {isq: q8_0}\n'/down_proj/': {isq: q6k}\n");
  const IsqTarget mix = parse_isq_target("q4k_m");
  o.type = mix.type;
  o.mix = mix.mix;
  auto plain = o;
  plain.topology = nullptr;
  auto with = by_name(model_->plan_isq(o));
  auto without = by_name(model_->plan_isq(plain));
  for (const auto& [name, d] : with) {
    const bool in_range = name.rfind("blk.0.", 0) == 0 || name.rfind("blk.1.", 0) == 0;
    if (name.find("ffn_down") != std::string::npos) {
      EXPECT_EQ(d.to, Q::kQ6K) << name;
    } else if (in_range) {
      EXPECT_EQ(d.to, Q::kQ8_0) << name;
    } else {
      EXPECT_EQ(d.to, without.at(name).to) << name;
      EXPECT_FALSE(d.pinned) << name;
    }
  }
}

TEST_F(IsqTopologyModel, WithoutADefaultTypeUnmatchedWeightsKeepTheirStoredType) {
  IsqOptions o = options(Q::kQ4K, "0-4: {isq: q8_0}\n'/lm_head/': {isq: q4_0}\n");
  o.topology_only = true;
  auto plan = by_name(model_->plan_isq(o));
  EXPECT_EQ(plan.at("blk.3.ffn_up.weight").to, Q::kQ8_0);
  EXPECT_EQ(plan.at("token_embd.weight").to, Q::kQ4_0);
  const IsqDecision& kept = plan.at("blk.4.ffn_up.weight");
  EXPECT_EQ(kept.to, kept.from);
  EXPECT_FALSE(kept.converts());
  EXPECT_EQ(kept.bytes_after, kept.bytes_before);
  EXPECT_EQ(isq_target_name(o), "topology");
}

TEST_F(IsqTopologyModel, APinnedTypeThatNeedsAnImatrixSaysSo) {
  try {
    model_->plan_isq(options(Q::kQ4K, "'/down_proj/': {isq: iq2_xxs}\n"));
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("ffn_down.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("pinned by topology (/down_proj/)"), std::string::npos) << m;
  }
}

TEST_F(IsqTopologyModel, TheShippedExamplePlansAsItsCommentsSay) {
  IsqOptions o;
  o.type = Q::kQ4K;
  o.topology = IsqTopology::load(test::source_dir() + "/docs/topologies/smollm2-135m.yml");
  auto plan = by_name(model_->plan_isq(o));
  auto to = [&](const std::string& name) { return plan.at(name).to; };
  EXPECT_EQ(to("blk.0.attn_q.weight"), Q::kQ8_0);
  EXPECT_EQ(to("blk.29.ffn_up.weight"), Q::kQ8_0);
  EXPECT_EQ(to("blk.5.attn_q.weight"), Q::kQ5_0);   // q4k on rows of 576
  EXPECT_EQ(to("blk.13.ffn_up.weight"), Q::kQ8_0);  // q6k on rows of 576
  EXPECT_EQ(to("blk.5.ffn_down.weight"), Q::kQ6K);  // the regex beats 2-16
  EXPECT_EQ(to("blk.0.ffn_down.weight"), Q::kQ6K);  // and 0-2
  EXPECT_EQ(to("blk.20.attn_q.weight"), Q::kQ5_0);  // 16-28: --isq's q4k
  EXPECT_FALSE(plan.at("blk.20.attn_q.weight").pinned);
  EXPECT_EQ(plan.at("blk.20.attn_q.weight").topology_key, "16-28");
  EXPECT_EQ(to("token_embd.weight"), Q::kQ8_0);
  EXPECT_TRUE(plan.at("token_embd.weight").pinned);
}

TEST_F(IsqTopologyModel, LoadingAppliesTheTopology) {
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("insitu_topology_" + std::to_string(::getpid()) + ".yml");
  {
    std::ofstream out(file);
    out << "# layers 0-3 at 8 bits; embeddings (tied output head) at q4k\n"
           "0-4:\n  isq: q8_0\n"
           "'/^(model\\.embed_tokens|lm_head)\\.weight$/':\n  isq: Q4K\n";
  }
  LoadOptions lo;
  lo.path = path_;
  IsqOptions o;
  o.type = Q::kQ4_0;
  o.show_progress = false;
  o.topology = IsqTopology::load(file.string());
  lo.isq = o;
  const auto m = Model::load(lo);
  std::filesystem::remove(file);
  for (int il = 0; il < 30; ++il) {
    for (const char* role :
         {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
      const std::string name = "blk." + std::to_string(il) + "." + role + ".weight";
      EXPECT_EQ(m->find_weight(name)->type, il < 4 ? Q::kQ8_0 : Q::kQ4_0) << name;
    }
  }
  // q4k, pinned over promotion, falls back to q5_0 on rows of 576.
  EXPECT_EQ(m->find_weight("token_embd.weight")->type, Q::kQ5_0);
  EXPECT_EQ(m->find_weight("blk.0.attn_norm.weight")->type, Q::kF32);
}

}  // namespace
}  // namespace insitu
