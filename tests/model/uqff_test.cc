// UQFF 1.2 written from an in-situ quantized model and loaded back: the same weight types and
// bytes as --isq from the same source (a full-precision SmolLM2 directory), the same logits,
// shards, the report, the directory forms and the resolution of --from-uqff / --quant names.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "insitu/error.h"
#include "io/imatrix_file.h"
#include "io/safetensors.h"
#include "io/uqff.h"
#include "export/convert.h"
#include "model/isq_topology.h"
#include "model/model.h"
#include "export/uqff_export.h"
#include "model/uqff_load.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

class Uqff : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(test::smollm2_path())) return;
    root_ = fs::temp_directory_path() / ("insitu_uqff_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    ThreadPool pool(2);
    ConvertOptions o;
    o.input = test::smollm2_path();
    o.output_dir = (root_ / "src").string();
    o.dtype = safetensors::Dtype::kBF16;
    o.show_progress = false;
    convert_gguf_to_hf(o, pool);
  }
  static void TearDownTestSuite() {
    if (!root_.empty()) fs::remove_all(root_);
  }
  void SetUp() override {
    if (root_.empty()) GTEST_SKIP() << "model not fetched: " << test::smollm2_path();
  }
  static std::string src() { return (root_ / "src").string(); }
  static std::string out(const std::string& name) { return (root_ / name).string(); }

  static std::shared_ptr<const Model> load(const std::string& path, std::optional<IsqOptions> isq,
                                           std::vector<std::string> uqff = {}) {
    LoadOptions o;
    o.path = path;
    o.n_threads = 2;
    o.isq = std::move(isq);
    o.uqff_files = std::move(uqff);
    if (o.isq) o.isq->show_progress = false;
    return Model::load(o);
  }

  // Quantizes the source with `isq`, writes it as UQFF to `output` and returns the ISQ model.
  static std::shared_ptr<const Model> write(const IsqOptions& isq, const std::string& output,
                                            uint64_t shard_bytes = uqff::kDefaultShardBytes) {
    auto m = load(src(), isq);
    UqffExportOptions o;
    o.output = output;
    o.stem = isq_target_name(isq);
    o.requested = o.stem;
    o.plan = m->plan_isq(isq);
    o.shard_bytes = shard_bytes;
    o.show_progress = false;
    export_uqff(*m, o);
    return m;
  }

  static std::vector<float> logits(const std::shared_ptr<const Model>& m) {
    ThreadPool pool(2);
    Session s(m, 64, pool);
    const std::vector<int32_t> ids = m->tokenizer().encode("The capital of France is", true, false);
    std::vector<float> out;
    s.eval(ids, false, out);
    return out;
  }

  // Every weight of `a` is in `b` with the same type, shape and bytes, and the logits agree.
  static void expect_same(const Model& a, const std::shared_ptr<const Model>& b_ptr,
                          const std::shared_ptr<const Model>& a_ptr) {
    const Model& b = *b_ptr;
    EXPECT_EQ(a.weights().size(), b.weights().size());
    for (const Weight& wa : a.weights()) {
      const Weight* wb = b.find_weight(wa.name);
      ASSERT_NE(wb, nullptr) << wa.name;
      EXPECT_EQ(wa.type, wb->type) << wa.name;
      EXPECT_EQ(wa.ne, wb->ne) << wa.name;
      ASSERT_EQ(wa.nbytes, wb->nbytes) << wa.name;
      EXPECT_EQ(0, std::memcmp(wa.data, wb->data, wa.nbytes)) << wa.name;
    }
    EXPECT_EQ(a.config().tied_embeddings, b.config().tied_embeddings);
    EXPECT_EQ(logits(a_ptr), logits(b_ptr));
  }

  static void round_trip(const IsqOptions& isq, const std::string& name) {
    const auto isq_model = write(isq, out(name));
    const auto back = load(out(name), std::nullopt);  // the directory alone
    expect_same(*isq_model, back, isq_model);
    ASSERT_NE(back->chat_template(), nullptr);
    EXPECT_EQ(back->chat_template()->source(), isq_model->chat_template()->source());
  }

  static fs::path root_;
};

fs::path Uqff::root_;

IsqOptions type(QuantType t) {
  IsqOptions o;
  o.type = t;
  return o;
}

TEST_F(Uqff, Q4KLoadsTheSameWeightsAsIsq) { round_trip(type(QuantType::kQ4K), "q4k"); }

TEST_F(Uqff, Q8_0LoadsTheSameWeightsAsIsq) { round_trip(type(QuantType::kQ8_0), "q8_0"); }

TEST_F(Uqff, MixLoadsTheSameWeightsAsIsq) {
  const IsqTarget t = parse_isq_target("q4k_m");
  IsqOptions o;
  o.type = t.type;
  o.mix = t.mix;
  round_trip(o, "q4k_m");
}

TEST_F(Uqff, IQuantWithImatrixLoadsTheSameWeightsAsIsq) {
  IsqOptions o = type(QuantType::kIQ4_XS);
  o.imatrix = imatrix_lookup(Imatrix::load(test::data_dir() + "/reference/smollm2.imatrix.gguf"));
  round_trip(o, "iq4_xs");
}

// The layout mistral.rs reads: version scalars, metadata, Hugging Face module keys, Gguf entries
// with their dtype and (out, in) shape, embeddings as an entry, norms in the residual file in the
// source's dtype, and a report with the plan's targets and fallbacks.
TEST_F(Uqff, LayoutAndReport) {
  const auto m = write(type(QuantType::kQ4K), out("layout"));
  const fs::path dir = out("layout");
  ASSERT_TRUE(fs::exists(dir / "q4k-0.uqff"));
  const auto f = safetensors::SafetensorsFile::open((dir / "q4k-0.uqff").string());
  EXPECT_EQ(f->metadata().at("uqff.producer"), "insitu");
  EXPECT_EQ(f->metadata().at("uqff.version"), "1.2.0");
  EXPECT_EQ(f->tensors().front().name, "uqff.version.major");  // first in the data
  const auto* dtype = f->find("model.layers.0.mlp.down_proj.weight.dtype");
  ASSERT_NE(dtype, nullptr);
  uint32_t id = 0;
  std::memcpy(&id, dtype->data, 4);
  EXPECT_EQ(id, 12u);  // Q4K
  const auto* shape = f->find("model.layers.0.mlp.down_proj.weight.shape");
  ASSERT_NE(shape, nullptr);
  uint32_t dims[2];
  std::memcpy(dims, shape->data, 8);
  EXPECT_EQ(dims[0], 576u);   // out
  EXPECT_EQ(dims[1], 1536u);  // in
  const auto* embd = f->find("model.embed_tokens.weight.format");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->data[0], 0);  // Gguf
  EXPECT_EQ(f->find("lm_head.weight"), nullptr);  // tied

  const auto residual = safetensors::SafetensorsFile::open((dir / "residual.safetensors").string());
  ASSERT_NE(residual->find("model.norm.weight"), nullptr);
  EXPECT_EQ(residual->find("model.norm.weight")->dtype, safetensors::Dtype::kBF16);
  EXPECT_EQ(residual->find("model.embed_tokens.weight"), nullptr);
  EXPECT_EQ(residual->find("model.layers.0.self_attn.q_proj.weight"), nullptr);

  std::ifstream in(dir / "uqff_report.json");
  const nlohmann::json rep = nlohmann::json::parse(in);
  EXPECT_EQ(rep["schema"], 1);
  EXPECT_EQ(rep["uqff_version"], "1.2.0");
  ASSERT_EQ(rep["outputs"].size(), 1u);
  const nlohmann::json& o = rep["outputs"][0];
  EXPECT_EQ(o["quant"], "q4k");
  EXPECT_EQ(o["shards"], nlohmann::json::array({"q4k-0.uqff"}));
  EXPECT_EQ(o["layers"], 30 * 7 + 1);
  // n_embd 576 does not fit q4k's 256-blocks: only down_proj (rows of 1536) stays q4k, the rest
  // falls back to q5_0, and the promoted embeddings (q6k) to q8_0.
  EXPECT_EQ(o["actual_counts"], nlohmann::json({{"q4k", 30}, {"q5_0", 180}, {"q8_0", 1}}));
  EXPECT_EQ(o["fallback_count"], 181);
  ASSERT_EQ(o["fallbacks"].size(), 181u);
  EXPECT_EQ(o["fallbacks"][0]["module"], "model.embed_tokens");
  EXPECT_EQ(o["fallbacks"][0]["from"], "q6k");
  EXPECT_EQ(o["fallbacks"][0]["to"], "q8_0");
  bool promoted = false;
  for (const auto& d : o["layer_details"]) {
    if (d["module"] == "model.embed_tokens") {
      promoted = d["default_target"] == "q4k" && d["resolved_target"] == "q6k" &&
                 d["stored"] == "q8_0" && d["shape"] == nlohmann::json({49152, 576});
    }
  }
  EXPECT_TRUE(promoted);
  const nlohmann::json cfg = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  EXPECT_FALSE(cfg.contains("quantization_config"));
  EXPECT_TRUE(fs::exists(dir / "tokenizer.json"));
  const nlohmann::json tok = nlohmann::json::parse(std::ifstream(dir / "tokenizer_config.json"));
  EXPECT_EQ(tok["chat_template"], m->chat_template()->source());
}

// A small shard cap splits the output; --from-uqff style resolution finds every shard from the
// type name or the first file, and the source directory with the shards loads the same weights.
TEST_F(Uqff, ShardsAndFromUqffResolution) {
  const auto m = write(type(QuantType::kQ8_0), out("sharded/x.uqff"), 16ull << 20);
  const UqffDirectory d = scan_uqff_directory(out("sharded"));
  ASSERT_EQ(d.types.size(), 1u);
  ASSERT_TRUE(d.types.contains("x"));
  const std::vector<std::string>& shards = d.types.at("x");
  EXPECT_GE(shards.size(), 5u);  // ~145 MB of q8_0 in 16 MiB shards
  EXPECT_EQ(resolve_uqff_files(shards.front(), ""), shards);
  EXPECT_EQ(resolve_uqff_files("x", out("sharded")), shards);  // the report's output
  EXPECT_EQ(resolve_uqff_files(fs::path(shards[0]).filename().string() + ";" +
                                   fs::path(shards[1]).filename().string(),
                               out("sharded")),
            shards);
  EXPECT_THROW(resolve_uqff_files("q4k", out("sharded")), InvalidArgument);
  const auto back = load(src(), std::nullopt, shards);
  expect_same(*m, back, m);
}

// Several types in one directory: the report keeps both, a bare load asks which, and the bits
// shorthand picks the CPU type.
TEST_F(Uqff, TwoTypesInOneDirectory) {
  write(type(QuantType::kQ8_0), out("two"));
  const auto q4 = write(type(QuantType::kQ4K), out("two"));
  const UqffDirectory d = scan_uqff_directory(out("two"));
  EXPECT_TRUE(d.has_report);
  EXPECT_TRUE(d.looks_like_artifact);
  EXPECT_FALSE(d.has_source_weights);
  EXPECT_EQ(d.type_list(), "q4k q8_0");
  EXPECT_THROW(load(out("two"), std::nullopt), InvalidArgument);
  EXPECT_EQ(find_uqff_type(d, "4"), d.types.at("q4k"));
  EXPECT_EQ(find_uqff_type(d, "Q8_0"), d.types.at("q8_0"));
  EXPECT_TRUE(find_uqff_type(d, "6").empty());
  expect_same(*q4, load(out("two"), std::nullopt, find_uqff_type(d, "4")), q4);
}

// Every UQFF format in one file: layers pinned by a topology to HQQ (2, axis 1), AFQ (4), FP8 (3,
// per tensor and with the 128x128 tile grid extension), F8Q8 (5), MXFP4 (6) and a ggml type (0);
// the rest stays bf16 (Unquant, 1). Loading gives the ISQ model's bytes.
TEST_F(Uqff, EveryFormatLoadsTheSameWeightsAsIsq) {
  IsqOptions o;
  o.topology_only = true;
  o.topology = IsqTopology::parse(
      "0:\n  isq: hqq4\n1:\n  isq: hqq3\n2:\n  isq: afq4\n3:\n  isq: fp8\n4:\n  isq: "
      "fp8_b128\n5:\n  isq: f8q8\n6:\n  isq: mxfp4\n7:\n  isq: q8_0\n",
      "test");
  const auto isq_model = write(o, out("formats"));
  const UqffDirectory d = scan_uqff_directory(out("formats"));
  ASSERT_EQ(d.types.size(), 1u);
  const auto f = safetensors::SafetensorsFile::open(d.types.begin()->second.front());
  auto format = [&](const std::string& key) {
    const auto* t = f->find(key + ".weight.format");
    return t == nullptr ? -1 : t->data[0];
  };
  EXPECT_EQ(format("model.layers.0.self_attn.q_proj"), 2);
  EXPECT_EQ(format("model.layers.1.mlp.up_proj"), 2);
  EXPECT_EQ(format("model.layers.2.self_attn.k_proj"), 4);
  EXPECT_EQ(format("model.layers.3.self_attn.q_proj"), 3);
  EXPECT_EQ(format("model.layers.4.self_attn.q_proj"), 3);
  EXPECT_NE(f->find("model.layers.4.self_attn.q_proj.weight.scale_grid"), nullptr);
  EXPECT_EQ(format("model.layers.5.mlp.down_proj"), 5);
  EXPECT_EQ(format("model.layers.6.mlp.gate_proj"), 6);
  EXPECT_EQ(format("model.layers.7.self_attn.v_proj"), 0);
  EXPECT_EQ(format("model.layers.8.self_attn.v_proj"), 1);
  EXPECT_EQ(format("model.embed_tokens"), 1);
  EXPECT_EQ(f->find("model.layers.8.self_attn.v_proj.weight")->dtype, safetensors::Dtype::kBF16);
  expect_same(*isq_model, load(out("formats"), std::nullopt), isq_model);
}

// A write that fails part way leaves the destination as it was: no partial shard, no staging
// directory.
TEST_F(Uqff, AFailedWriteLeavesNothingBehind) {
  const auto m = write(type(QuantType::kQ8_0), out("keep"));
  std::vector<std::string> before;
  for (const auto& e : fs::directory_iterator(out("keep"))) before.push_back(e.path().string());
  std::sort(before.begin(), before.end());
  Weight bad;  // a stacked AFQ weight: AFQ entries are 2-D only, refused after staging began
  bad.name = "blk.40.attn_q.weight";
  bad.type = QuantType::kAFQ4;
  bad.ne = {64, 2, 2};
  UqffExportOptions o;
  o.stem = "q4k";
  o.plan = m->plan_isq(type(QuantType::kQ8_0));
  o.plan.push_back(IsqDecision{});
  o.plan.back().weight = &bad;
  o.show_progress = false;
  for (const std::string& dest : {out("keep"), out("fresh")}) {
    o.output = dest;
    EXPECT_THROW(export_uqff(*m, o), Unsupported);
  }
  EXPECT_FALSE(fs::exists(out("fresh")));
  std::vector<std::string> after;
  for (const auto& e : fs::directory_iterator(out("keep"))) after.push_back(e.path().string());
  std::sort(after.begin(), after.end());
  EXPECT_EQ(before, after);
  for (const auto& e : fs::directory_iterator(root_))
    EXPECT_EQ(e.path().filename().string().find(".insitu-uqff"), std::string::npos) << e.path();
}

TEST_F(Uqff, ModuleKeys) {
  EXPECT_EQ(uqff_module_key("blk.3.attn_q.weight", Arch::kLlama), "model.layers.3.self_attn.q_proj");
  EXPECT_EQ(uqff_module_key("token_embd.weight", Arch::kLlama), "model.embed_tokens");
  EXPECT_EQ(uqff_module_key("output.weight", Arch::kLlama), "lm_head");
  EXPECT_EQ(uqff_module_key("blk.2.ffn_down_exps.weight", Arch::kLlama),
            "model.layers.2.block_sparse_moe.experts.down_proj");
  EXPECT_EQ(uqff_weight_name("model.layers.2.block_sparse_moe.experts.down_proj", Arch::kLlama),
            "blk.2.ffn_down_exps.weight");
  EXPECT_EQ(uqff_weight_name("lm_head", Arch::kLlama), "output.weight");
  EXPECT_EQ(uqff_module_key("blk.3.attn_norm.weight", Arch::kLlama),
            "model.layers.3.input_layernorm");
}

}  // namespace
}  // namespace insitu
