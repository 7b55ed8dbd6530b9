// A Mixtral-style mixture of experts: a small synthetic checkpoint regenerated here bit for bit as
// bench/make_synthetic_checkpoint.py --arch mixtral writes it (hidden 64, 2 layers, 8 experts,
// top-2, SmolLM2's vocabulary), checked against llama.cpp's logits on the GGUF insitu exports
// (scripts/gen_moe_reference.py), and the ISQ organizations, mixes and per-expert imatrix on it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "quality/imatrix_collect.h"
#include "insitu/error.h"
#include "io/gguf.h"
#include "export/gguf_export.h"
#include "model/model.h"
#include "model/reference_data.h"
#include "model/synthetic_checkpoint.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

constexpr int kHidden = 64, kLayers = 2, kExperts = 8, kUsed = 2, kFf = 128, kHeads = 4,
              kKvHeads = 2;
using test::exact_bf16;

void write_synthetic_mixtral(const fs::path& dir) {
  test::SyntheticShape shape;
  shape.hidden = kHidden;
  shape.layers = kLayers;
  shape.ff = kFf;
  shape.heads = kHeads;
  shape.kv_heads = kKvHeads;
  shape.experts = kExperts;
  shape.used = kUsed;
  test::write_synthetic_checkpoint(dir, shape);
}

class SyntheticMixtral : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(test::smollm2_path())) return;
    dir_ = (fs::temp_directory_path() / ("insitu_moe_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    write_synthetic_mixtral(dir_);
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (dir_.empty()) GTEST_SKIP() << "model not fetched: " << test::smollm2_path();
  }
  static LoadOptions source(std::optional<IsqOptions> isq = std::nullopt) {
    LoadOptions o;
    o.path = dir_;
    o.n_threads = 2;
    o.isq = std::move(isq);
    return o;
  }
  static IsqOptions isq(QuantType type, IsqOrganization org = IsqOrganization::kDefault) {
    IsqOptions o;
    o.type = type;
    o.organization = org;
    o.show_progress = false;
    return o;
  }
  static std::vector<float> logits(const std::shared_ptr<const Model>& m,
                                   const std::vector<int32_t>& ids) {
    ThreadPool pool(2);
    Session s(m, 1024, pool);
    std::vector<float> out;
    s.eval(ids, true, out);
    return out;
  }
  static std::string dir_;
};

std::string SyntheticMixtral::dir_;

TEST_F(SyntheticMixtral, LoadsAsMixtureOfExperts) {
  const auto m = Model::load(source());
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.n_expert, kExperts);
  EXPECT_EQ(c.n_expert_used, kUsed);
  const Weight* gate = m->find_weight("blk.1.ffn_gate_exps.weight");
  ASSERT_NE(gate, nullptr);
  EXPECT_EQ(gate->ne, (std::vector<int64_t>{kHidden, kFf, kExperts}));
  EXPECT_EQ(gate->type, QuantType::kBF16);
  // Expert 5's slab holds model.layers.1.block_sparse_moe.experts.5.w1.weight.
  const std::vector<uint16_t> w1 =
      exact_bf16("model.layers.1.block_sparse_moe.experts.5.w1.weight", kFf * kHidden);
  EXPECT_EQ(std::memcmp(gate->data + 5 * w1.size() * 2, w1.data(), w1.size() * 2), 0);
  const Weight* down = m->find_weight("blk.0.ffn_down_exps.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->ne, (std::vector<int64_t>{kFf, kHidden, kExperts}));
  const Weight* router = m->find_weight("blk.0.ffn_gate_inp.weight");
  ASSERT_NE(router, nullptr);
  EXPECT_EQ(router->ne, (std::vector<int64_t>{kHidden, kExperts}));
  EXPECT_EQ(m->find_weight("blk.0.ffn_gate.weight"), nullptr);
}

// llama.cpp on the GGUF insitu exported from the same checkpoint (the script also checked that
// llama.cpp agrees with a NumPy forward pass written from the Hugging Face definition). Random
// routers have near-ties, so where llama.cpp's arithmetic and ours part at one of them a token
// is routed differently and later positions attend to a different value; the bounds allow that.
TEST_F(SyntheticMixtral, ForwardMatchesLlamaCpp) {
  const test::ModelReference ref = test::load_model_reference("mixtral_synthetic");
  ASSERT_FALSE(ref.text_ids.empty());
  const auto m = Model::load(source());
  for (const test::ReferencePrompt& p : ref.prompts)
    EXPECT_EQ(m->tokenizer().encode(p.text, true, false), p.ids);
  const std::vector<int32_t> ids(ref.text_ids.begin(), ref.text_ids.begin() + ref.positions);
  const std::vector<float> out = logits(m, ids);
  const test::LogitAgreement a = test::compare_logits(ref, out, m->config().n_vocab);
  std::printf("[ mixtral_synthetic ] %d positions: mean KL %.6f, max KL %.5f, top-1 %.2f%%\n",
              a.positions, a.mean_kl, a.max_kl, 100 * a.top1);
  EXPECT_LE(a.mean_kl, 0.02);
  EXPECT_GE(a.top1, 0.93);
}

// Prompt processing groups tokens by expert; one token at a time must give the same logits.
TEST_F(SyntheticMixtral, BatchedEqualsTokenByToken) {
  const auto m = Model::load(source());
  const std::vector<int32_t> ids =
      m->tokenizer().encode("A hacker is a person who enjoys", true, false);
  const std::vector<float> batched = logits(m, ids);
  ThreadPool pool(2);
  Session s(m, 1024, pool);
  const int V = m->config().n_vocab;
  std::vector<float> one;
  for (size_t t = 0; t < ids.size(); ++t) {
    s.eval(std::span<const int32_t>(&ids[t], 1), false, one);
    for (int v = 0; v < V; ++v)
      ASSERT_NEAR(one[v], batched[t * V + v], 1e-3) << "token " << t << " id " << v;
  }
}

// The GGUF export holds the stacked experts as llama.cpp names them and loads back to the same
// logits.
TEST_F(SyntheticMixtral, GgufExportRoundTrip) {
  const auto m = Model::load(source());
  const fs::path path =
      fs::path(dir_).parent_path() / ("insitu_moe_" + std::to_string(::getpid()) + ".gguf");
  GgufExportOptions eo;
  eo.show_progress = false;
  export_gguf(*m, path.string(), eo);
  {
    const auto f = gguf::GgufFile::open(path.string());
    EXPECT_EQ(f->get_u64("llama.expert_count"), static_cast<uint64_t>(kExperts));
    EXPECT_EQ(f->get_u64("llama.expert_used_count"), static_cast<uint64_t>(kUsed));
    const gguf::TensorInfo* t = f->find_tensor("blk.0.ffn_up_exps.weight");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->ne, (std::vector<int64_t>{kHidden, kFf, kExperts}));
  }
  LoadOptions o;
  o.path = path.string();
  const std::vector<int32_t> ids = m->tokenizer().encode("The capital of France is", true, false);
  EXPECT_EQ(logits(Model::load(o), ids), logits(m, ids));
  fs::remove(path);
}

// MoQE converts every routed expert weight and nothing else.
TEST_F(SyntheticMixtral, MoqeQuantizesExactlyTheExperts) {
  // q4_0: its 32-element blocks fit this model's 64- and 128-wide rows (k-quants would fall back).
  const auto m = Model::load(source(isq(QuantType::kQ4_0, IsqOrganization::kMoqe)));
  const auto stored = Model::load(source());
  int experts = 0;
  for (const Weight& w : m->weights()) {
    const bool expert = w.name.find("_exps.weight") != std::string::npos;
    if (expert) {
      ++experts;
      EXPECT_EQ(w.type, QuantType::kQ4_0) << w.name;
    } else {
      EXPECT_EQ(w.type, stored->find_weight(w.name)->type) << w.name;
    }
  }
  EXPECT_EQ(experts, 3 * kLayers);
  // The plan says the same, by role.
  for (const IsqDecision& d : stored->plan_isq(isq(QuantType::kQ4_0, IsqOrganization::kMoqe)))
    EXPECT_EQ(d.converts(), is_expert_role(d.role)) << d.weight->name;
  // Slab by slab from the per-expert sources gives the bytes of quantizing the stacked weight.
  const auto g = m->find_weight("blk.1.ffn_down_exps.weight");
  const auto s = stored->find_weight("blk.1.ffn_down_exps.weight");
  std::vector<uint8_t> expect(g->nbytes);
  const TypeTraits& tt = type_traits(QuantType::kQ4_0);
  const int64_t rows = kHidden * kExperts;
  std::vector<float> row(kFf);
  for (int64_t r = 0; r < rows; ++r) {
    type_traits(s->type).dequantize_row(s->data + r * kFf * 2, row.data(), kFf);
    tt.quantize(row.data(), expect.data() + r * quant_row_size(QuantType::kQ4_0, kFf), 1, kFf,
                nullptr);
  }
  EXPECT_EQ(std::memcmp(expect.data(), g->data, g->nbytes), 0);
}

// Re-quantizing converts the expert stacks from their per-expert sources again (no compounding):
// the weights equal a fresh load at the new type, and the stored type reassembles the source.
TEST_F(SyntheticMixtral, ReIsqConvertsExpertsFromTheirSources) {
  std::shared_ptr<const Model> m = Model::load(source(isq(QuantType::kQ4_0)));
  auto same_as = [&](const Model& fresh) {
    for (const Weight& w : fresh.weights()) {
      const Weight* v = m->find_weight(w.name);
      ASSERT_NE(v, nullptr) << w.name;
      EXPECT_EQ(v->type, w.type) << w.name;
      ASSERT_EQ(v->nbytes, w.nbytes) << w.name;
      EXPECT_EQ(0, std::memcmp(v->data, w.data, w.nbytes)) << w.name;
    }
  };
  m = m->re_isq(QuantType::kQ8_0);
  same_as(*Model::load(source(isq(QuantType::kQ8_0))));
  m = m->re_isq(QuantType::kBF16);
  same_as(*Model::load(source()));
}

TEST_F(SyntheticMixtral, MoqeRefusesADenseModel) {
  LoadOptions o;
  o.path = test::smollm2_path();
  const auto m = Model::load(o);
  EXPECT_THROW(m->plan_isq(isq(QuantType::kQ4K, IsqOrganization::kMoqe)), InvalidArgument);
}

// The default organization: attention and experts at the type, embeddings and head promoted, the
// router kept as stored (llama.cpp never quantizes ffn_gate_inp).
TEST_F(SyntheticMixtral, DefaultOrganizationDecisions) {
  const auto m = Model::load(source());
  std::map<WeightRole, int> seen;
  for (const IsqDecision& d : m->plan_isq(isq(QuantType::kQ4_0))) {
    ++seen[d.role];
    const int64_t n = d.weight->ne[0];
    switch (d.role) {
      case WeightRole::kFfnRouter:
        EXPECT_EQ(d.to, QuantType::kBF16) << d.weight->name;
        break;
      case WeightRole::kTokenEmbedding:
      case WeightRole::kOutput:  // q6k, whose 256-element blocks do not fit rows of 64
        EXPECT_EQ(d.to, isq_row_fallback(QuantType::kQ6K, n)) << d.weight->name;
        break;
      default:
        EXPECT_EQ(d.to, QuantType::kQ4_0) << d.weight->name;
        break;
    }
  }
  EXPECT_EQ(seen[WeightRole::kFfnRouter], kLayers);
  EXPECT_EQ(seen[WeightRole::kFfnGateExp], kLayers);
  EXPECT_EQ(seen[WeightRole::kFfnUpExp], kLayers);
  EXPECT_EQ(seen[WeightRole::kFfnDownExp], kLayers);
  EXPECT_EQ(seen[WeightRole::kAttnQ], kLayers);
  EXPECT_EQ(seen[WeightRole::kFfnGate], 0);
  // A quantized MoE model still runs.
  const auto q = Model::load(source(isq(QuantType::kQ4_0)));
  const std::vector<int32_t> ids = q->tokenizer().encode("The capital of France is", true, false);
  for (float v : logits(q, ids)) ASSERT_TRUE(std::isfinite(v));
}

// llama.cpp's recipe treats ffn_*_exps as the dense ffn tensors of their layer, and with 8 experts
// keeps attention v and k at q8_0.
TEST_F(SyntheticMixtral, MixFollowsLlamaCppForExperts) {
  const auto m = Model::load(source());
  IsqOptions o = isq(QuantType::kQ4K);
  o.mix = IsqMix::kQ4K_M;
  for (const IsqDecision& d : m->plan_isq(o)) {
    const bool last_layer = d.weight->name.rfind("blk.1.", 0) == 0;
    // The recipe's types, then the row-length fallback (rows of 64 and 128 here).
    const auto fit = [&](QuantType t) { return isq_row_fallback(t, d.weight->ne[0]); };
    if (d.role == WeightRole::kFfnDownExp) {
      // use_more_bits(layer, 2): only the last eighth, i.e. layer 1.
      EXPECT_EQ(d.to, fit(last_layer ? QuantType::kQ6K : QuantType::kQ4K)) << d.weight->name;
    } else if (d.role == WeightRole::kFfnGateExp || d.role == WeightRole::kFfnUpExp) {
      EXPECT_EQ(d.to, fit(QuantType::kQ4K)) << d.weight->name;
    } else if (d.role == WeightRole::kAttnV || d.role == WeightRole::kAttnK) {
      EXPECT_EQ(d.to, QuantType::kQ8_0) << d.weight->name;
    } else if (d.role == WeightRole::kFfnRouter) {
      EXPECT_FALSE(d.converts()) << d.weight->name;
    }
  }
}

// Per-expert statistics: each expert's rows are the tokens routed to it (k per token per layer),
// identical between the streaming pass (experts stacked in prepare_layer) and plain evaluation,
// and an ISQ with them uses each expert's own row.
TEST_F(SyntheticMixtral, ImatrixPerExpert) {
  std::ifstream in(test::data_dir() + "/text/eval.txt");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ImatrixCollectOptions co;
  co.n_ctx = 128;
  co.max_chunks = 2;
  ThreadPool pool(2);
  const auto streaming = Model::load_streaming(source());
  const std::vector<int32_t> tokens = imatrix_tokens(*streaming, text);
  const Imatrix a = collect_imatrix(streaming, tokens, co, pool);
  const Imatrix b = collect_imatrix_eval(Model::load(source()), tokens, co, pool);
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (const auto& [name, e] : a.entries) {
    const ImatrixEntry& f = b.entries.at(name);
    EXPECT_EQ(e.counts, f.counts) << name;
    EXPECT_EQ(std::memcmp(e.sums.data(), f.sums.data(), e.sums.size() * 4), 0) << name;
  }
  for (int il = 0; il < kLayers; ++il) {
    for (const char* kind : {"gate", "up", "down"}) {
      const std::string name = "blk." + std::to_string(il) + ".ffn_" + kind + "_exps.weight";
      const ImatrixEntry& e = a.entries.at(name);
      EXPECT_EQ(e.n_mat, kExperts);
      float rows = 0;
      int used = 0;
      for (float c : e.counts) {
        rows += c;
        used += c > 0;
      }
      EXPECT_EQ(rows, 2.0f * co.n_ctx * kUsed) << name;
      EXPECT_GE(used, 2) << name;
    }
    EXPECT_EQ(a.entries.at("blk." + std::to_string(il) + ".ffn_gate_inp.weight").n_mat, 1);
  }
  IsqOptions o = isq(QuantType::kIQ4_XS, IsqOrganization::kMoqe);
  o.imatrix = imatrix_lookup(a);
  const auto q = Model::load(source(o));
  // iq4_xs falls back to iq4_nl on rows of 64; both take the per-expert importance rows.
  EXPECT_EQ(q->find_weight("blk.0.ffn_up_exps.weight")->type, QuantType::kIQ4_NL);
}

// fp8's scales belong to one matrix: each expert's slab carries its own grid, and the expert
// matmul finds slab e at e whole matrices in.
TEST_F(SyntheticMixtral, Fp8ExpertsKeepAGridPerSlab) {
  const std::vector<float> ref = logits(Model::load(source()), {1, 200, 300, 400, 500});
  for (QuantType type : {QuantType::kFP8, QuantType::kFP8_B128}) {
    const auto m = Model::load(source(isq(type)));
    const Weight* gate = m->find_weight("blk.1.ffn_gate_exps.weight");
    ASSERT_EQ(gate->type, type);
    EXPECT_EQ(gate->nbytes, kExperts * quant_tensor_size(type, kFf, kHidden));
    const std::vector<float> got = logits(m, {1, 200, 300, 400, 500});
    ASSERT_EQ(got.size(), ref.size());
    double err = 0.0, mag = 0.0;
    for (size_t i = 0; i < ref.size(); ++i) {
      err += (got[i] - ref[i]) * (got[i] - ref[i]);
      mag += ref[i] * ref[i];
    }
    EXPECT_LT(std::sqrt(err / mag), 0.15) << quant_type_name(type);  // a wrong slab gives ~1
  }
}

}  // namespace
}  // namespace insitu
