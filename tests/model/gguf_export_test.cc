// export_gguf: a written model reloads in insitu with identical weights (names, types, shapes,
// bytes), configuration, tokenizer and chat template, from a GGUF or a Hugging Face source, with
// or without in-situ quantization; general.file_type, general.quantization_version and
// quantize.imatrix.* are set; config_to_gguf inverts config_from_gguf. (llama.cpp's reading of
// the same files is checked by scripts/check_gguf_export.py.)
#include "export/gguf_export.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "insitu/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "export/convert.h"
#include "model/model.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

void expect_same_config(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.n_layer, b.n_layer);
  EXPECT_EQ(a.n_head, b.n_head);
  EXPECT_EQ(a.n_head_kv, b.n_head_kv);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.n_ff, b.n_ff);
  EXPECT_EQ(a.n_ctx_train, b.n_ctx_train);
  EXPECT_EQ(a.rms_eps, b.rms_eps);
  EXPECT_EQ(a.rope_freq_base, b.rope_freq_base);
  EXPECT_EQ(a.rope_freq_base_local, b.rope_freq_base_local);
  EXPECT_EQ(a.rope_scaling.kind, b.rope_scaling.kind);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.sliding_window_pattern, b.sliding_window_pattern);
  EXPECT_EQ(a.query_pre_attn_scalar, b.query_pre_attn_scalar);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.final_logit_softcap, b.final_logit_softcap);
}

void expect_same_model(const Model& a, const Model& b) {
  expect_same_config(a.config(), b.config());
  ASSERT_EQ(a.weights().size(), b.weights().size());
  for (const Weight& w : a.weights()) {
    const Weight* v = b.find_weight(w.name);
    ASSERT_NE(v, nullptr) << w.name;
    EXPECT_EQ(w.type, v->type) << w.name;
    EXPECT_EQ(w.ne, v->ne) << w.name;
    ASSERT_EQ(w.nbytes, v->nbytes) << w.name;
    EXPECT_EQ(0, std::memcmp(w.data, v->data, w.nbytes)) << w.name;
  }
  const Tokenizer& ta = a.tokenizer();
  const Tokenizer& tb = b.tokenizer();
  ASSERT_EQ(ta.n_vocab(), tb.n_vocab());
  for (int32_t id = 0; id < ta.n_vocab(); ++id) {
    ASSERT_EQ(ta.token_text(id), tb.token_text(id)) << id;
    ASSERT_EQ(ta.token_attr(id), tb.token_attr(id)) << id;
    ASSERT_EQ(ta.is_eog(id), tb.is_eog(id)) << id;
  }
  EXPECT_EQ(ta.bos_id(), tb.bos_id());
  EXPECT_EQ(ta.eos_id(), tb.eos_id());
  EXPECT_EQ(ta.add_bos(), tb.add_bos());
  EXPECT_EQ(ta.add_space_prefix(), tb.add_space_prefix());
  for (const char* text : {"Hello world! 12345 héllo\n\n  spaced   out", "<|im_start|>user\nhi",
                           "<start_of_turn>user\nwhat is 2+2?<end_of_turn>"}) {
    for (const bool special : {false, true}) {
      const std::vector<int32_t> ids = ta.encode(text, true, special);
      EXPECT_EQ(ids, tb.encode(text, true, special)) << text;
      EXPECT_EQ(ta.decode(ids, true), tb.decode(ids, true)) << text;
    }
  }
  ASSERT_EQ(a.chat_template() != nullptr, b.chat_template() != nullptr);
  if (a.chat_template()) {
    EXPECT_EQ(a.chat_template()->source(), b.chat_template()->source());
  }
}

class GgufExport : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("insitu_gguf_export_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  static std::shared_ptr<const Model> load(const std::string& path,
                                           std::optional<IsqOptions> isq = std::nullopt) {
    LoadOptions o;
    o.path = path;
    o.n_threads = 2;
    if (isq) isq->show_progress = false;
    o.isq = isq;
    return Model::load(o);
  }
  std::string out(const std::string& name) const { return (root_ / name).string(); }
  fs::path root_;
};

TEST_F(GgufExport, ShippedModelsRoundTrip) {
  for (const std::string& path : {test::smollm2_path(), test::gemma3_path()}) {
    if (!fs::exists(path)) continue;
    SCOPED_TRACE(path);
    const auto m = load(path);
    GgufExportOptions o;
    o.show_progress = false;
    o.general_metadata_from = path;
    const GgufExportReport r = export_gguf(*m, out("rt.gguf"), o);
    EXPECT_EQ(r.n_tensors, static_cast<int>(m->weights().size()));
    EXPECT_EQ(r.file_bytes, fs::file_size(out("rt.gguf")));
    const auto back = load(out("rt.gguf"));
    expect_same_model(*m, *back);

    // The source's own description and file type carry over (both are llama.cpp mixes).
    const auto src = gguf::GgufFile::open(path);
    const auto dst = gguf::GgufFile::open(out("rt.gguf"));
    EXPECT_EQ(dst->get_string("general.name"), src->get_string("general.name"));
    EXPECT_EQ(dst->get_string("general.license", ""), src->get_string("general.license", ""));
    EXPECT_EQ(dst->get_u64("general.quantization_version"), 2u);
    EXPECT_EQ(dst->get_string("tokenizer.ggml.pre"), src->get_string("tokenizer.ggml.pre"));
    // Unset file_type: the source's, as nothing was re-quantized.
    EXPECT_EQ(dst->get_u64("general.file_type"), src->get_u64("general.file_type"));
  }
}

TEST_F(GgufExport, InSituQuantizedModelRoundTripsWithItsMixAndImatrixProvenance) {
  const std::string path = test::smollm2_path();
  if (!fs::exists(path)) GTEST_SKIP() << "model not fetched: " << path;
  IsqOptions isq;
  isq.mix = IsqMix::kQ4K_M;
  isq.type = isq_mix_default_type(IsqMix::kQ4K_M);
  const auto m = load(path, isq);
  GgufExportOptions o;
  o.show_progress = false;
  o.file_type = static_cast<uint32_t>(IsqMix::kQ4K_M);
  o.imatrix_file = "calib.imatrix";
  o.imatrix_dataset = "eval.txt";
  o.imatrix_entries = 210;
  o.imatrix_chunks = 4;
  export_gguf(*m, out("q4k_m.gguf"), o);
  const auto back = load(out("q4k_m.gguf"));
  expect_same_model(*m, *back);
  EXPECT_EQ(back->find_weight("blk.0.ffn_down.weight")->type, QuantType::kQ6K);
  const auto f = gguf::GgufFile::open(out("q4k_m.gguf"));
  EXPECT_EQ(f->get_u64("general.file_type"), 15u);
  EXPECT_EQ(f->get_string("quantize.imatrix.file"), "calib.imatrix");
  EXPECT_EQ(f->get_string("quantize.imatrix.dataset"), "eval.txt");
  EXPECT_EQ(f->get_u64("quantize.imatrix.entries_count"), 210u);
  EXPECT_EQ(f->get_u64("quantize.imatrix.chunks_count"), 4u);
}

// A Hugging Face directory (the shipped GGUF converted back to full precision) exported after
// ISQ: the vocabulary read from tokenizer.json gets its llama.cpp pre-tokenizer name, the Q/K rows
// are in GGUF order (the reloaded GGUF runs the same weights), and the weights are what ISQ made.
TEST_F(GgufExport, HuggingFaceSourceExportsWithLlamaCppConventions) {
  const std::string path = test::smollm2_path();
  if (!fs::exists(path)) GTEST_SKIP() << "model not fetched: " << path;
  ConvertOptions c;
  c.input = path;
  c.output_dir = out("hf");
  c.show_progress = false;
  ThreadPool pool(2);
  convert_gguf_to_hf(c, pool);
  IsqOptions isq;
  isq.type = QuantType::kQ8_0;
  const auto hf = load(out("hf"), isq);
  GgufExportOptions o;
  o.show_progress = false;
  export_gguf(*hf, out("hf.gguf"), o);
  fs::remove_all(out("hf"));
  const auto back = load(out("hf.gguf"));
  expect_same_model(*hf, *back);
  const auto f = gguf::GgufFile::open(out("hf.gguf"));
  EXPECT_EQ(f->get_string("tokenizer.ggml.pre"), "smollm");
  EXPECT_EQ(f->get_u64("general.file_type"), 7u);       // unset: the type most bytes are in (q8_0)
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);  // tied

  // The Q/K rows the HF loader permuted into GGUF order equal the shipped file's, requantized.
  const auto shipped = load(path, isq);
  for (const char* name : {"blk.5.attn_q.weight", "blk.5.attn_k.weight"}) {
    const Weight* a = shipped->find_weight(name);
    const Weight* b = back->find_weight(name);
    ASSERT_EQ(a->nbytes, b->nbytes);
    EXPECT_EQ(0, std::memcmp(a->data, b->data, a->nbytes)) << name;
  }
}

ModelConfig round_trip(const ModelConfig& c, const std::string& path) {
  gguf::GgufWriter w;
  config_to_gguf(c, w);
  w.write(path);
  return config_from_gguf(*gguf::GgufFile::open(path));
}

TEST_F(GgufExport, ConfigToGgufInvertsConfigFromGguf) {
  ModelConfig llama;
  llama.arch = Arch::kLlama;
  llama.arch_name = "llama";
  llama.name = "tiny";
  llama.n_vocab = 320;
  llama.n_embd = 64;
  llama.n_layer = 3;
  llama.n_head = 4;
  llama.n_head_kv = 2;
  llama.head_dim = 16;
  llama.n_ff = 96;
  llama.n_ctx_train = 2048;
  llama.rms_eps = 1e-6f;
  llama.rope_freq_base = 500000.0f;
  llama.rope_scaling.kind = RopeScaling::Kind::kLinear;
  llama.rope_scaling.factor = 4.0f;
  llama.tied_embeddings = true;
  expect_same_config(llama, round_trip(llama, out("llama.gguf")));

  ModelConfig gemma = llama;
  gemma.arch = Arch::kGemma3;
  gemma.arch_name = "gemma3";
  gemma.rope_scaling = RopeScaling{};
  gemma.rope_freq_base_local = 20000.0f;
  gemma.sliding_window = 512;
  gemma.sliding_window_pattern = 2;  // not llama.cpp's default 6: written per layer
  gemma.query_pre_attn_scalar = 16.0f;
  gemma.final_logit_softcap = 30.0f;
  expect_same_config(gemma, round_trip(gemma, out("gemma.gguf")));
  gemma.sliding_window_pattern = 6;
  expect_same_config(gemma, round_trip(gemma, out("gemma6.gguf")));

  // What GGUF cannot say is refused rather than silently changed.
  gguf::GgufWriter w;
  gemma.query_pre_attn_scalar = 20.0f;
  EXPECT_THROW(config_to_gguf(gemma, w), Unsupported);
  llama.rope_scaling.kind = RopeScaling::Kind::kYarn;
  EXPECT_THROW(config_to_gguf(llama, w), Unsupported);
}

}  // namespace
}  // namespace insitu
