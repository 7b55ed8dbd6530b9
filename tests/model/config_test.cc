// ModelConfig readers (GGUF metadata, HF config.json), the GGUF<->HF name map and Q/K permutation.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "insitu/error.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/hf_names.h"
#include "test_paths.h"

namespace insitu {
namespace {

nlohmann::json llama_json() {
  return nlohmann::json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
    "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
    "num_attention_heads": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0, "max_position_embeddings": 131072, "tie_word_embeddings": true,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}})");
}

TEST(Config, HfLlama) {
  const ModelConfig c = config_from_hf_json(llama_json(), "config.json");
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.n_embd, 2048);
  EXPECT_EQ(c.n_head_kv, 8);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_FLOAT_EQ(c.rope_freq_base, 500000.0f);
  EXPECT_EQ(c.rope_scaling.kind, RopeScaling::Kind::kLlama3);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FLOAT_EQ(c.attention_scale(), 1.0f / 8.0f);
}

TEST(Config, Llama3FreqFactorsFollowTheConverterFormula) {
  const ModelConfig c = config_from_hf_json(llama_json(), "config.json");
  const std::vector<float> f = llama3_rope_freq_factors(c);
  ASSERT_EQ(f.size(), 32u);
  for (int i = 0; i < 32; ++i) {
    const double freq = 1.0 / std::pow(500000.0, 2.0 * i / 64);
    const double wavelen = 2 * M_PI / freq;
    double want;
    if (wavelen < 8192.0 / 4) want = 1;
    else if (wavelen > 8192.0 / 1) want = 32;
    else {
      const double smooth = (8192.0 / wavelen - 1) / (4 - 1);
      want = 1 / ((1 - smooth) / 32 + smooth);
    }
    EXPECT_NEAR(f[i], want, 1e-4 * want) << i;
  }
  EXPECT_EQ(f.front(), 1.0f);
  EXPECT_EQ(f.back(), 32.0f);
}

TEST(Config, HfGemma3LayerTypesAndDefaults) {
  nlohmann::json j = nlohmann::json::parse(R"({
    "architectures": ["Gemma3ForCausalLM"], "vocab_size": 262144, "hidden_size": 640,
    "intermediate_size": 2048, "num_hidden_layers": 18, "num_attention_heads": 4,
    "num_key_value_heads": 1, "head_dim": 256, "query_pre_attn_scalar": 256,
    "sliding_window": 512, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0})");
  j["layer_types"] = nlohmann::json::array();
  for (int i = 0; i < 18; ++i) j["layer_types"].push_back((i + 1) % 6 == 0 ? "full_attention" : "sliding_attention");
  const ModelConfig c = config_from_hf_json(j, "config.json");
  EXPECT_EQ(c.arch, Arch::kGemma3);
  EXPECT_EQ(c.sliding_window_pattern, 6);
  EXPECT_TRUE(c.layer_is_sliding(0));
  EXPECT_FALSE(c.layer_is_sliding(5));
  EXPECT_TRUE(c.tied_embeddings);  // gemma3's default
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-6f);
  // A non-periodic pattern is refused rather than silently misread.
  j["layer_types"][2] = "full_attention";
  EXPECT_THROW(config_from_hf_json(j, "config.json"), Unsupported);
}

TEST(Config, HfRoundTrip) {
  for (const nlohmann::json& j : {llama_json()}) {
    const ModelConfig a = config_from_hf_json(j, "a");
    const ModelConfig b = config_from_hf_json(config_to_hf_json(a), "b");
    EXPECT_EQ(a.n_embd, b.n_embd);
    EXPECT_EQ(a.n_head_kv, b.n_head_kv);
    EXPECT_EQ(a.rope_scaling.kind, b.rope_scaling.kind);
    EXPECT_FLOAT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
    EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  }
}

TEST(Config, ErrorsNameTheProblem) {
  nlohmann::json j = llama_json();
  j.erase("hidden_size");
  try {
    config_from_hf_json(j, "dir/config.json");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("dir/config.json"), std::string::npos);
  }
  j = llama_json();
  j["architectures"] = {"BertModel"};
  EXPECT_THROW(config_from_hf_json(j, "c"), Unsupported);
  j = llama_json();
  j["num_key_value_heads"] = 5;  // 32 heads do not group into 5
  EXPECT_THROW(config_from_hf_json(j, "c"), FormatError);
  j = llama_json();
  j["hidden_size"] = "big";
  EXPECT_THROW(config_from_hf_json(j, "c"), FormatError);
}

TEST(Config, FromShippedGgufFiles) {
  if (!std::filesystem::exists(test::smollm2_path())) GTEST_SKIP() << "models not fetched";
  const ModelConfig s = config_from_gguf(*gguf::GgufFile::open(test::smollm2_path()));
  EXPECT_EQ(s.arch, Arch::kLlama);
  EXPECT_EQ(s.n_layer, 30);
  EXPECT_EQ(s.n_embd, 576);
  EXPECT_EQ(s.n_head, 9);
  EXPECT_EQ(s.n_head_kv, 3);
  EXPECT_EQ(s.head_dim, 64);
  EXPECT_EQ(s.n_vocab, 49152);
  EXPECT_FLOAT_EQ(s.rope_freq_base, 100000.0f);
  EXPECT_TRUE(s.tied_embeddings);
  const ModelConfig g = config_from_gguf(*gguf::GgufFile::open(test::gemma3_path()));
  EXPECT_EQ(g.arch, Arch::kGemma3);
  EXPECT_EQ(g.n_layer, 18);
  EXPECT_EQ(g.head_dim, 256);
  EXPECT_EQ(g.sliding_window, 512);
  EXPECT_EQ(g.sliding_window_pattern, 6);
  EXPECT_FLOAT_EQ(g.rope_freq_base, 1000000.0f);
  EXPECT_FLOAT_EQ(g.rope_freq_base_local, 10000.0f);
  EXPECT_FLOAT_EQ(g.attention_scale(), 1.0f / 16.0f);
}

TEST(HfNames, MapBothWays) {
  struct Case {
    Arch arch;
    const char* gguf;
    const char* hf;
  };
  const Case cases[] = {
      {Arch::kLlama, "token_embd.weight", "model.embed_tokens.weight"},
      {Arch::kLlama, "output.weight", "lm_head.weight"},
      {Arch::kLlama, "blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight"},
      {Arch::kLlama, "blk.0.ffn_norm.weight", "model.layers.0.post_attention_layernorm.weight"},
      {Arch::kLlama, "blk.3.attn_k.bias", "model.layers.3.self_attn.k_proj.bias"},
      {Arch::kGemma3, "blk.0.ffn_norm.weight", "model.layers.0.pre_feedforward_layernorm.weight"},
      {Arch::kGemma3, "blk.7.post_attention_norm.weight", "model.layers.7.post_attention_layernorm.weight"},
      {Arch::kGemma3, "blk.7.post_ffw_norm.weight", "model.layers.7.post_feedforward_layernorm.weight"},
      {Arch::kGemma3, "blk.1.attn_k_norm.weight", "model.layers.1.self_attn.k_norm.weight"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(gguf_to_hf_name(c.gguf, c.arch).value_or("?"), c.hf);
    EXPECT_EQ(hf_to_gguf_name(c.hf, c.arch).value_or("?"), c.gguf);
  }
  EXPECT_FALSE(gguf_to_hf_name("rope_freqs.weight", Arch::kLlama));
  EXPECT_FALSE(hf_to_gguf_name("model.layers.x.self_attn.q_proj.weight", Arch::kLlama));
  EXPECT_FALSE(hf_to_gguf_name("vision_tower.blocks.0.weight", Arch::kGemma3));
}

TEST(HfNames, Transforms) {
  ModelConfig llama;
  llama.arch = Arch::kLlama;
  llama.n_head = 9;
  llama.n_head_kv = 3;
  EXPECT_EQ(hf_transform("blk.2.attn_q.weight", llama).permute_heads, 9);
  EXPECT_EQ(hf_transform("blk.2.attn_k.weight", llama).permute_heads, 3);
  EXPECT_EQ(hf_transform("blk.2.attn_v.weight", llama).permute_heads, 0);
  EXPECT_EQ(hf_transform("blk.2.attn_norm.weight", llama).norm_shift, 0.0f);
  ModelConfig gemma = llama;
  gemma.arch = Arch::kGemma3;
  EXPECT_EQ(hf_transform("blk.2.attn_q.weight", gemma).permute_heads, 0);
  EXPECT_EQ(hf_transform("blk.2.attn_q_norm.weight", gemma).norm_shift, 1.0f);
  EXPECT_EQ(hf_transform("output_norm.weight", gemma).norm_shift, 1.0f);
  EXPECT_EQ(hf_transform("blk.2.ffn_up.weight", gemma).norm_shift, 0.0f);
}

TEST(HfNames, PermutationIsTheConvertersAndInvertible) {
  // 2 heads of 6 rows, each row one int: the converter's reshape(n_head, 2, hd/2).swapaxes(1, 2)
  // turns HF rows [h0: 0 1 2 | 3 4 5] into [0 3 1 4 2 5].
  const int n_head = 2, rows = 12;
  std::vector<int32_t> hf(rows), gg(rows), back(rows);
  for (int i = 0; i < rows; ++i) hf[i] = i;
  permute_qk_rows(hf.data(), gg.data(), rows, sizeof(int32_t), n_head, true);
  EXPECT_EQ(gg, (std::vector<int32_t>{0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11}));
  permute_qk_rows(gg.data(), back.data(), rows, sizeof(int32_t), n_head, false);
  EXPECT_EQ(back, hf);
  EXPECT_THROW(permute_qk_rows(hf.data(), gg.data(), 10, 4, 3, true), InvalidArgument);
}

}  // namespace
}  // namespace insitu
