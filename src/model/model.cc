// Model loading: GGUF files and Hugging Face-style directories into one immutable Model.
#include "model/model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "insitu/error.h"
#include "io/gguf.h"
#include "model/builtin_templates.h"
#include "model/hf_loader.h"
#include "model/isq_topology.h"
#include "model/model_internal.h"
#include "model/uqff_load.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"

namespace insitu {

WeightView Weight::view() const {
  WeightView v;
  v.type = type;
  v.n_in = ne.empty() ? 0 : ne[0];
  v.n_out = ne.size() < 2 ? 1 : ne[1];
  v.data = data;
  v.row_bytes = v.n_in > 0 ? quant_row_size(type, v.n_in) : 0;
  return v;
}

Model::~Model() = default;

const Weight* Model::find_weight(std::string_view name) const {
  for (const Weight& w : weights_)
    if (w.name == name) return &w;
  return nullptr;
}

namespace {

// Dequantizes a whole weight into an owned f32 buffer, rows in parallel.
void to_f32(Weight& w, ThreadPool& pool) {
  if (w.type == QuantType::kF32) return;
  if (!quant_type_can_dequantize(w.type))
    throw Unsupported(fmt::format("tensor '{}': type {} cannot be dequantized", w.name,
                                  quant_type_name(w.type)));
  const int64_t n_in = w.ne.empty() ? 0 : w.ne[0];
  int64_t n_rows = 1;
  for (size_t i = 1; i < w.ne.size(); ++i) n_rows *= w.ne[i];
  auto buf = std::make_shared<std::vector<float>>(static_cast<size_t>(n_in * n_rows));
  const uint8_t* src = w.data;
  float* dst = buf->data();
  pool.parallel_for(n_rows, [&](int, int64_t begin, int64_t end) {
    dequantize_rows(w.type, src, n_rows, n_in, begin, end, dst + begin * n_in);
  });
  w.type = QuantType::kF32;
  w.data = reinterpret_cast<const uint8_t*>(buf->data());
  w.nbytes = buf->size() * sizeof(float);
  w.owner = std::shared_ptr<const void>(buf, buf->data());
}

// What to_f32 makes of a weight, without reading it (LoadOptions::shapes_only).
void as_f32_shape(Weight& w) {
  int64_t n = 1;
  for (int64_t d : w.ne) n *= d;
  w.type = QuantType::kF32;
  w.nbytes = static_cast<size_t>(n) * sizeof(float);
}

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

}  // namespace

// Builds Models; a friend of Model so it can fill the private members.
class ModelLoader {
 public:
  // streaming: Model::load_streaming (conversions deferred, layers start unprepared).
  static std::shared_ptr<Model> load(const LoadOptions& o, bool streaming) {
    std::error_code ec;
    ThreadPool pool(o.n_threads);
    const bool dir = std::filesystem::is_directory(o.path, ec);
    if (!dir && !std::filesystem::exists(o.path, ec))
      throw IoError(fmt::format("{}: no such file or directory", o.path));
    std::vector<Model::SourceStamp> stamps = Model::stamp_sources(o.path);
    if (o.isq && !o.uqff_files.empty())
      throw InvalidArgument("load: UQFF weights are loaded as stored; in-situ quantization of them "
                            "cannot be asked for at the same time");
    if (o.shapes_only && (o.isq || !o.uqff_files.empty() || o.dequantize_to_f32 || streaming))
      throw InvalidArgument(fmt::format("{}: a shapes-only load reads no weights; it cannot "
                                        "quantize, dequantize, stream or load UQFF weights",
                                        o.path));
    LoadOptions lo = o;  // a UQFF artifact directory given alone loads its only type
    if (dir && lo.uqff_files.empty()) lo.uqff_files = default_uqff_files(o.path);
    if (o.shapes_only && !lo.uqff_files.empty())
      throw Unsupported(fmt::format("{}: a UQFF artifact directory has no shapes-only load; give "
                                    "the model it was made from", o.path));
    std::shared_ptr<Model> m = dir ? load_hf(lo, streaming, pool) : load_gguf(lo, streaming, pool);
    m->source_stamps_ = std::move(stamps);
    return m;
  }

  // Model::plan_isq.
  static std::vector<IsqDecision> plan_isq(const Model& m, const IsqOptions& isq) {
    std::vector<IsqDecision> plan = insitu::plan_isq(isq_candidates(m), isq, isq_shape(m));
    if (isq.topology) log_topology_coverage(*isq.topology, plan, m.weights_, isq_shape(m));
    return plan;
  }

 private:
  static std::shared_ptr<Model> load_gguf(const LoadOptions& o, bool streaming, ThreadPool& pool) {
    std::shared_ptr<const gguf::GgufFile> file = gguf::GgufFile::open(o.path);
    auto m = std::shared_ptr<Model>(new Model());
    m->source_path_ = o.path;
    m->config_ = config_from_gguf(*file);
    if (m->config_.name.empty()) m->config_.name = std::filesystem::path(o.path).stem().string();
    m->keepalive_ = file;
    m->shapes_only_ = o.shapes_only;
    m->weights_.reserve(file->tensors().size());
    for (const gguf::TensorInfo& t : file->tensors()) {
      Weight w;
      w.name = t.name;
      w.type = t.type;
      w.ne = t.ne;
      w.data = t.data;
      w.nbytes = t.nbytes;
      w.owner = std::shared_ptr<const void>(file, t.data);
      w.release_pages = [file, &t] { file->release(t); };
      m->weights_.push_back(std::move(w));
    }
    m->tokenizer_ = Tokenizer::from_gguf(*file);
    if (const gguf::Value* v = file->find("tokenizer.chat_template"))
      set_chat_template(*m, v->as_string("tokenizer.chat_template"),
                        o.path + " (tokenizer.chat_template)");
    use_builtin_template_if_missing(*m);
    finish(*m, o, pool);
    if (streaming) m->init_streaming({});
    return m;
  }

  static std::shared_ptr<Model> load_hf(const LoadOptions& o, bool streaming, ThreadPool& pool) {
    // With ISQ the permutation waits for conversion, so no full-precision copy of Q/K is made.
    HfCheckpoint ck =
        load_hf_checkpoint(o.path, /*defer=*/streaming || o.isq || o.shapes_only, o.shapes_only);
    std::vector<std::pair<size_t, int>> deferred;
    for (const auto& d : ck.deferred_permutations) deferred.emplace_back(d.index, d.n_head);
    auto m = std::shared_ptr<Model>(new Model());
    m->source_path_ = o.path;
    m->config_ = std::move(ck.config);
    m->keepalive_ = ck.keepalive;
    m->shapes_only_ = o.shapes_only;
    m->weights_ = std::move(ck.weights);
    m->tokenizer_ = Tokenizer::from_hf_dir(o.path);
    if (!ck.chat_template.empty())
      set_chat_template(*m, ck.chat_template, o.path + "/tokenizer_config.json (chat_template)");
    use_builtin_template_if_missing(*m);
    finish(*m, o, pool, o.isq ? deferred : std::vector<std::pair<size_t, int>>{},
           &ck.deferred_stacks);
    if (streaming) {
      std::vector<std::pair<size_t, std::vector<Weight>>> stacks;
      for (auto& s : ck.deferred_stacks) stacks.emplace_back(s.index, std::move(s.experts));
      m->init_streaming(deferred, std::move(stacks));
    }
    return m;
  }

  // The weights ISQ considers: those the layer structure names, by role and layer. A tied output
  // head is the token embedding and is listed once.
  static std::vector<IsqCandidate> isq_candidates(const Model& m) {
    std::vector<IsqCandidate> candidates;
    auto add = [&](const Weight* w, WeightRole role, int layer) {
      if (w == nullptr) return;
      for (const IsqCandidate& c : candidates)
        if (c.weight == w) return;
      candidates.push_back({const_cast<Weight*>(w), role, layer});
    };
    add(m.tok_embd_, WeightRole::kTokenEmbedding, -1);
    for (int il = 0; il < static_cast<int>(m.layers_.size()); ++il) {
      const Model::Layer& L = m.layers_[il];
      add(L.wq, WeightRole::kAttnQ, il);
      add(L.wk, WeightRole::kAttnK, il);
      add(L.wv, WeightRole::kAttnV, il);
      add(L.wo, WeightRole::kAttnOutput, il);
      add(L.ffn_gate, WeightRole::kFfnGate, il);
      add(L.ffn_up, WeightRole::kFfnUp, il);
      add(L.ffn_down, WeightRole::kFfnDown, il);
      add(L.ffn_gate_inp, WeightRole::kFfnRouter, il);
      add(L.ffn_gate_exps, WeightRole::kFfnGateExp, il);
      add(L.ffn_up_exps, WeightRole::kFfnUpExp, il);
      add(L.ffn_down_exps, WeightRole::kFfnDownExp, il);
    }
    add(m.output_, WeightRole::kOutput, -1);
    return candidates;
  }

  static IsqModelShape isq_shape(const Model& m) {
    const ModelConfig& c = m.config_;
    return {c.arch, c.n_layer, c.n_head, c.n_head_kv, c.n_expert, m.output_ == m.tok_embd_};
  }

  // deferred: weights (index into weights_, head count) whose rows are still in Hugging Face
  // order. A weight ISQ converts is permuted after conversion (no full-precision copy); any other
  // is permuted now.
  // stacks: expert weights not yet assembled (Hugging Face, data null). One ISQ converts is
  // converted expert by expert from the sources, so no full-precision stack is ever made; any
  // other is assembled now.
  static void quantize_in_situ(Model& m, const IsqOptions& isq,
                               const std::vector<std::pair<size_t, int>>& deferred,
                               std::vector<HfCheckpoint::DeferredStack>* stacks,
                               ThreadPool& pool) {
    std::vector<IsqDecision> plan = plan_isq(m, isq);
    for (size_t i = 0; stacks != nullptr && i < stacks->size(); ++i) {
      const HfCheckpoint::DeferredStack& s = (*stacks)[i];
      Weight* w = &m.weights_.at(s.index);
      auto d = std::find_if(plan.begin(), plan.end(),
                            [&](const IsqDecision& x) { return x.weight == w; });
      if (d != plan.end() && d->converts()) {
        for (const Weight& e : s.experts) d->expert_sources.push_back(&e);
      } else {
        stack_experts(*w, s.experts);
      }
    }
    for (const auto& [index, heads] : deferred) {
      Weight* w = &m.weights_.at(index);
      auto d = std::find_if(plan.begin(), plan.end(),
                            [&](const IsqDecision& x) { return x.weight == w; });
      if (d != plan.end() && d->converts()) {
        d->permute_heads = heads;
      } else {
        permute_rows_to_gguf(*w, heads);
      }
    }
    // What Model::re_isq needs to convert again from the source: the weights as loaded.
    for (const IsqDecision& d : plan) {
      if (!d.converts()) continue;
      Model::IsqSource source{d.weight, *d.weight, d.permute_heads, {}};
      for (const Weight* e : d.expert_sources) source.experts.push_back(*e);
      m.isq_sources_.push_back(std::move(source));
    }
    m.isq_options_ = std::make_shared<const IsqOptions>(isq);
    apply_isq(plan, isq, pool);
  }

  // origin names where the template came from in its errors (a template is untrusted input).
  static void set_chat_template(Model& m, const std::string& source, const std::string& origin) {
    const Tokenizer& tok = *m.tokenizer_;
    const std::string bos = tok.bos_id() >= 0 ? tok.token_text(tok.bos_id()) : "";
    const std::string eos = tok.eos_id() >= 0 ? tok.token_text(tok.eos_id()) : "";
    try {
      m.chat_template_ = std::make_unique<ChatTemplate>(source, bos, eos, origin);
    } catch (const Error& e) {
      // A template we cannot parse should not make the model unusable for plain completion.
      spdlog::warn("{}: chat template not usable: {}", m.source_path_, e.what());
    }
  }

  // Files without a usable template (the PyPI Gemma 3 GGUF has none) get the architecture's own
  // chat format, so chat works the same from every front end.
  static void use_builtin_template_if_missing(Model& m) {
    if (m.chat_template_) return;
    std::string name;
    std::string source = builtin_chat_template(m.config_.arch, &name);
    spdlog::debug("{}: no chat template in the model files; using the built-in {} format",
                  m.source_path_, name);
    set_chat_template(m, source, "the built-in " + name + " chat format");
    if (m.chat_template_) m.builtin_template_ = name;
  }

  // Resolves per-layer weights, checks every shape and type, converts norms to f32 and, when
  // asked, every weight.
  // deferred: as quantize_in_situ takes it (only with o.isq).
  // stacks: expert weights left unassembled by a deferred Hugging Face load (with o.isq only, for
  // quantize_in_situ; a streaming load assembles them in prepare_layer).
  static void finish(Model& m, const LoadOptions& o, ThreadPool& pool,
                     const std::vector<std::pair<size_t, int>>& deferred = {},
                     std::vector<HfCheckpoint::DeferredStack>* stacks = nullptr) {
    if (!o.uqff_files.empty()) apply_uqff_weights(o.uqff_files, m.config_, m.weights_);
    const ModelConfig& c = m.config_;
    const std::string& src = m.source_path_;
    for (Weight& w : m.weights_) {
      if (!is_known_quant_type(static_cast<uint32_t>(w.type)) ||
          !quant_type_can_dequantize(w.type)) {
        // Only an error when the tensor is used; checked in want() below.
        continue;
      }
      if (o.shapes_only) {
        if (w.ne.size() == 1) as_f32_shape(w);
      } else if (o.dequantize_to_f32 || w.ne.size() == 1) {
        to_f32(w, pool);
      }
    }
    if (o.shapes_only)
      for (Weight& w : m.weights_) {  // nothing may read them: no bytes were meant to be touched
        w.data = nullptr;
        w.owner.reset();
        w.release_pages = nullptr;
      }

    auto find = [&](const std::string& name) -> Weight* {
      for (Weight& w : m.weights_)
        if (w.name == name) return &w;
      return nullptr;
    };
    auto want = [&](const std::string& name, std::vector<int64_t> ne, bool required) -> const Weight* {
      Weight* w = find(name);
      if (!w) {
        if (required) throw FormatError(fmt::format("{}: tensor '{}' missing", src, name));
        return nullptr;
      }
      if (w->ne != ne)
        throw FormatError(fmt::format("{}: tensor '{}': shape {} expected {}", src, name,
                                      shape_str(w->ne), shape_str(ne)));
      if (!is_known_quant_type(static_cast<uint32_t>(w->type)) ||
          !quant_type_can_dequantize(w->type))
        throw Unsupported(fmt::format("{}: tensor '{}': type {} has no kernel", src, name,
                                      quant_type_name(w->type)));
      if (ne.size() == 1 && w->type != QuantType::kF32)
        throw FormatError(fmt::format("{}: tensor '{}': 1-D tensor not converted to f32", src, name));
      return w;
    };

    const int64_t E = c.n_embd, V = c.n_vocab, F = c.n_ff, D = c.head_dim;
    const int64_t QD = static_cast<int64_t>(c.n_head) * D, KD = static_cast<int64_t>(c.n_head_kv) * D;
    m.tok_embd_ = want("token_embd.weight", {E, V}, true);
    m.output_norm_ = want("output_norm.weight", {E}, true);
    m.output_ = want("output.weight", {E, V}, false);
    if (!m.output_) m.output_ = m.tok_embd_;
    if (const Weight* rf = want("rope_freqs.weight", {D / 2}, false); rf && !o.shapes_only) {
      const float* f = reinterpret_cast<const float*>(rf->data);
      m.rope_freq_factors_.assign(f, f + D / 2);
    } else {
      m.rope_freq_factors_ = llama3_rope_freq_factors(c);
    }
    for (float f : m.rope_freq_factors_)
      if (!(f > 0) || !std::isfinite(f))
        throw FormatError(fmt::format("{}: tensor 'rope_freqs.weight': factor {} invalid", src, f));

    const bool gemma = c.arch == Arch::kGemma3;
    m.layers_.resize(c.n_layer);
    for (int il = 0; il < c.n_layer; ++il) {
      Model::Layer& L = m.layers_[il];
      auto n = [&](const char* s) { return fmt::format("blk.{}.{}", il, s); };
      L.attn_norm = want(n("attn_norm.weight"), {E}, true);
      L.wq = want(n("attn_q.weight"), {E, QD}, true);
      L.wk = want(n("attn_k.weight"), {E, KD}, true);
      L.wv = want(n("attn_v.weight"), {E, KD}, true);
      L.wo = want(n("attn_output.weight"), {QD, E}, true);
      L.bq = want(n("attn_q.bias"), {QD}, false);
      L.bk = want(n("attn_k.bias"), {KD}, false);
      L.bv = want(n("attn_v.bias"), {KD}, false);
      L.bo = want(n("attn_output.bias"), {E}, false);
      L.ffn_norm = want(n("ffn_norm.weight"), {E}, true);
      if (c.is_moe()) {
        const int64_t X = c.n_expert;
        L.ffn_gate_inp = want(n("ffn_gate_inp.weight"), {E, X}, true);
        L.ffn_gate_exps = want(n("ffn_gate_exps.weight"), {E, F, X}, true);
        L.ffn_up_exps = want(n("ffn_up_exps.weight"), {E, F, X}, true);
        L.ffn_down_exps = want(n("ffn_down_exps.weight"), {F, E, X}, true);
      } else {
        L.ffn_gate = want(n("ffn_gate.weight"), {E, F}, true);
        L.ffn_up = want(n("ffn_up.weight"), {E, F}, true);
        L.ffn_down = want(n("ffn_down.weight"), {F, E}, true);
      }
      if (gemma) {
        L.q_norm = want(n("attn_q_norm.weight"), {D}, true);
        L.k_norm = want(n("attn_k_norm.weight"), {D}, true);
        L.post_attn_norm = want(n("post_attention_norm.weight"), {E}, true);
        L.post_ffw_norm = want(n("post_ffw_norm.weight"), {E}, true);
      }
    }
    if (o.isq) quantize_in_situ(m, *o.isq, deferred, stacks, pool);
    if (m.tokenizer_->n_vocab() > c.n_vocab)
      throw FormatError(fmt::format("{}: tokenizer has {} tokens but the model only {} embeddings",
                                    src, m.tokenizer_->n_vocab(), c.n_vocab));
  }
};

std::vector<IsqDecision> Model::plan_isq(const IsqOptions& options) const {
  return ModelLoader::plan_isq(*this, options);
}

std::shared_ptr<const Model> Model::load(const LoadOptions& options) {
  return ModelLoader::load(options, false);
}

std::shared_ptr<Model> Model::load_streaming(const LoadOptions& options) {
  if (options.isq || options.dequantize_to_f32)
    throw InvalidArgument(fmt::format("{}: a streaming load keeps the weights as stored; it cannot "
                                      "quantize or dequantize them at load", options.path));
  return ModelLoader::load(options, true);
}

}  // namespace insitu
