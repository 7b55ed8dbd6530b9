#include "export/uqff_export.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "insitu/error.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "model/hf_names.h"
#include "model/uqff_load.h"
#include "quant/afq.h"
#include "quant/float_convert.h"
#include "quant/fp8.h"
#include "quant/hqq.h"
#include "quant/mxfp4_layout.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"
#include "tokenizer/hf_export.h"
#include "util/progress.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;
namespace st = safetensors;
using Json = nlohmann::json;

void write_json(const fs::path& path, const Json& j) {
  AtomicFile out(path.string());
  const std::string text = j.dump(2) + "\n";
  out.write(text.data(), text.size());
  out.commit();
}

Json read_json(const fs::path& path) {
  const std::string text = read_regular_file(path.string(), size_t{64} << 20, "JSON file");
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    throw FormatError(fmt::format("{}: invalid JSON: {}", path.string(), e.what()));
  }
}

// Removes every "quantization_config" key, at any depth (mistral.rs
// sanitize_quantized_weight_source_config): the stored weights are what they are.
void drop_quantization_config(Json& j) {
  if (j.is_object()) {
    j.erase("quantization_config");
    for (auto& [k, v] : j.items()) drop_quantization_config(v);
  } else if (j.is_array()) {
    for (Json& v : j) drop_quantization_config(v);
  }
}

std::optional<st::Dtype> float_dtype(QuantType t) {
  switch (t) {
    case QuantType::kF32: return st::Dtype::kF32;
    case QuantType::kF16: return st::Dtype::kF16;
    case QuantType::kBF16: return st::Dtype::kBF16;
    default: return std::nullopt;
  }
}

std::vector<int64_t> dims_of(const Weight& w) { return {w.ne.rbegin(), w.ne.rend()}; }

// Rows of `w` in Hugging Face order: its own bytes, or the GGUF permutation undone.
void write_rows(ByteSink& out, const Weight& w, int permute_heads) {
  if (permute_heads <= 0) {
    out.write(w.data, w.nbytes);
    return;
  }
  const int64_t rows = w.ne.size() < 2 ? w.ne.at(0) : w.ne[1];
  std::vector<uint8_t> buf(w.nbytes);
  permute_qk_rows(w.data, buf.data(), rows, w.nbytes / static_cast<size_t>(rows), permute_heads,
                  /*to_gguf=*/false);
  out.write(buf.data(), buf.size());
}

// The packed rows of `w` in Hugging Face order, as one buffer (for the format converters).
std::vector<uint8_t> hf_rows(const Weight& w, int permute_heads) {
  class Collect final : public ByteSink {
   public:
    using ByteSink::write;
    void write(std::span<const uint8_t> b) override { bytes.insert(bytes.end(), b.begin(), b.end()); }
    std::vector<uint8_t> bytes;
  } sink;
  sink.bytes.reserve(w.nbytes);
  write_rows(sink, w, permute_heads);
  return std::move(sink.bytes);
}

// A conversion shared by an entry's tensors: made when the first of them is written, dropped
// after the last, so only one weight's converted form is held at a time.
template <class T>
class Shared {
 public:
  explicit Shared(std::function<T()> make) : make_(std::move(make)) {}
  const T& get() {
    if (!value_) value_ = make_();
    return *value_;
  }
  void drop() { value_.reset(); }

 private:
  std::function<T()> make_;
  std::optional<T> value_;
};

template <class T>
void write_vector(ByteSink& s, const std::vector<T>& v) {
  s.write(v.data(), v.size() * sizeof(T));
}

// The report's name for a stored type.
std::string stored_label(QuantType t) {
  return float_dtype(t) ? "unquant" : quant_type_name(t);
}

// A directory the artifact is built in, removed unless published.
class Staging {
 public:
  // `dest`: the destination directory. A new or empty one is staged beside it and renamed in;
  // otherwise the staging directory is made inside it.
  explicit Staging(fs::path dest) : dest_(std::move(dest)) {
    std::error_code ec;
    whole_ = !fs::exists(dest_, ec) || (fs::is_directory(dest_, ec) && fs::is_empty(dest_, ec));
    if (fs::exists(dest_, ec) && !fs::is_directory(dest_, ec))
      throw InvalidArgument(fmt::format("quantize: {} exists and is not a directory", dest_.string()));
    const std::string tag = ".insitu-uqff-" + std::to_string(std::random_device{}());
    fs::path parent = dest_.parent_path().empty() ? fs::path(".") : dest_.parent_path();
    if (!whole_) {
      path_ = dest_ / tag;
    } else {
      fs::create_directories(parent);
      path_ = parent / (dest_.filename().string() + tag);
    }
    fs::create_directories(path_);
    registration_ = std::make_unique<StagingRegistration>(path_.string());
  }
  ~Staging() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

  // Publishes the staged files; `stale` are files of the destination to remove (old shards).
  void publish(const std::vector<std::string>& stale) {
    // From here the staging directory may hold the destination's replaced files: a signal must
    // not remove it.
    registration_.reset();
    if (whole_) {
      std::error_code ec;
      if (fs::exists(dest_, ec)) fs::remove(dest_);  // empty, checked on construction
      fs::rename(path_, dest_);
      return;
    }
    const fs::path backup = path_ / ".replaced";
    fs::create_directories(backup);
    std::vector<std::string> moved_away;  // destination files now in `backup`
    std::vector<std::string> moved_in;    // staged files now in the destination
    try {
      std::vector<std::string> names;
      for (const fs::directory_entry& e : fs::directory_iterator(path_))
        if (e.is_regular_file()) names.push_back(e.path().filename().string());
      for (const std::string& name : stale) {
        if (std::find(names.begin(), names.end(), name) != names.end()) continue;
        if (fs::exists(dest_ / name)) {
          fs::rename(dest_ / name, backup / name);
          moved_away.push_back(name);
        }
      }
      for (const std::string& name : names) {
        if (fs::exists(dest_ / name)) {
          fs::rename(dest_ / name, backup / name);
          moved_away.push_back(name);
        }
        fs::rename(path_ / name, dest_ / name);
        moved_in.push_back(name);
      }
    } catch (...) {
      std::error_code ec;
      for (const std::string& name : moved_in) fs::remove(dest_ / name, ec);
      for (const std::string& name : moved_away) fs::rename(backup / name, dest_ / name, ec);
      throw;
    }
  }

 private:
  fs::path dest_;
  fs::path path_;
  bool whole_ = false;
  std::unique_ptr<StagingRegistration> registration_;  // removal on SIGINT/SIGTERM/SIGHUP
};

struct LayerEntry {
  std::string key;
  const Weight* weight = nullptr;
  const Weight* bias = nullptr;
  const IsqDecision* decision = nullptr;  // null for a packed weight ISQ did not decide
};

// MXFP4 (6), HQQ (2, axis 1) and AFQ (4): row-local block types split into mistral.rs's tensors.
void add_row_format_entry(uqff::ShardedWriter& out, const LayerEntry& e, int heads,
                          const std::shared_ptr<Progress>& progress) {
  const Weight* w = e.weight;
  const int64_t n = w->ne.at(0), rows = w->ne.size() < 2 ? 1 : w->ne[1];
  if (w->ne.size() > 2) {
    throw Unsupported(fmt::format("uqff: weight '{}': {} entries are 2-D only", w->name,
                                  quant_type_name(w->type)));
  }
  const std::string k = e.key + ".weight";
  if (w->type == QuantType::kMXFP4) {
    using Split = std::pair<std::vector<uint8_t>, std::vector<uint8_t>>;
    auto split = std::make_shared<Shared<Split>>([w, heads, rows, n] {
      const std::vector<uint8_t> ggml = hf_rows(*w, heads);
      Split s{std::vector<uint8_t>(rows * n / 2), std::vector<uint8_t>(rows * n / 32)};
      mxfp4_ggml_to_split(ggml.data(), rows, n, s.first.data(), s.second.data());
      return s;
    });
    out.add_tensor(k, st::Dtype::kU8, {rows, n / 2},
                   [split](ByteSink& s) { write_vector(s, split->get().first); });
    out.add_tensor(k + ".scales", st::Dtype::kU8, {rows, n / 32}, [split, w, progress](ByteSink& s) {
      write_vector(s, split->get().second);
      split->drop();
      progress->advance(1, w->nbytes);
    });
    out.add_u8(k + ".format", static_cast<uint8_t>(uqff::Format::kMxfp4));
    return;
  }
  const int64_t group = quant_block_size(w->type);
  if (is_hqq_type(w->type)) {
    const int bits = w->type == QuantType::kHQQ2   ? 2
                     : w->type == QuantType::kHQQ3 ? 3
                     : w->type == QuantType::kHQQ4 ? 4
                                                   : 8;
    const int64_t groups = rows * n / kHqqGroup;
    const int64_t per = 8 / (bits == 3 ? 8 : bits);  // groups packed per row of w_q (not 3-bit)
    if (bits != 3 && groups % per != 0) {
      throw Unsupported(fmt::format("uqff: weight '{}': {} groups cannot be packed {} per byte as "
                                    "mistral.rs's {}-bit HQQ layout needs", w->name, groups, per,
                                    bits));
    }
    const std::vector<int64_t> wq_shape =
        bits == 3 ? std::vector<int64_t>{(groups + 9) / 10, kHqqGroup}
                  : std::vector<int64_t>{groups / per, kHqqGroup};
    auto t = std::make_shared<Shared<HqqUqffTensors>>([w, heads, rows, n] {
      const std::vector<uint8_t> blocks = hf_rows(*w, heads);
      return hqq_to_uqff(w->type, blocks.data(), rows, n);
    });
    out.add_tensor(k, bits == 3 ? st::Dtype::kI32 : st::Dtype::kU8, wq_shape,
                   [t](ByteSink& s) { write_vector(s, t->get().w_q); });
    out.add_tensor(k + ".scales", st::Dtype::kF32, {groups, 1},
                   [t](ByteSink& s) { write_vector(s, t->get().scales); });
    out.add_tensor(k + ".zeros", st::Dtype::kF32, {groups, 1}, [t, w, progress](ByteSink& s) {
      write_vector(s, t->get().zeros);
      t->drop();
      progress->advance(1, w->nbytes);
    });
    out.add_u32_array(k + ".shape", {static_cast<uint32_t>(rows), static_cast<uint32_t>(n)});
    out.add_u8(k + ".bits", static_cast<uint8_t>(bits));
    out.add_u32(k + ".group_size", kHqqGroup);
    out.add_u8(k + ".axis", 1);
    out.add_u32(k + ".optimization_steps", kHqqOptSteps);
    out.add_u8(k + ".round_zeros", 0);
    out.add_u8(k + ".channel_wise", 1);
    out.add_u8(k + ".format", static_cast<uint8_t>(uqff::Format::kHqq));
    return;
  }
  // AFQ: a block is [bf16 scale][bf16 bias][group * bits / 8 bytes].
  const int bits = static_cast<int>((quant_type_size(w->type) - 4) * 8 / group);
  auto t = std::make_shared<Shared<AfqMlxTensors>>([w, heads, rows, n] {
    const std::vector<uint8_t> blocks = hf_rows(*w, heads);
    return afq_to_mlx(w->type, blocks.data(), rows, n);
  });
  out.add_tensor(k, st::Dtype::kU32, {rows, n * bits / 32},
                 [t](ByteSink& s) { write_vector(s, t->get().w_q); });
  out.add_tensor(k + ".scales", st::Dtype::kBF16, {rows, n / group},
                 [t](ByteSink& s) { write_vector(s, t->get().scales); });
  out.add_tensor(k + ".biases", st::Dtype::kBF16, {rows, n / group}, [t, w, progress](ByteSink& s) {
    write_vector(s, t->get().biases);
    t->drop();
    progress->advance(1, w->nbytes);
  });
  out.add_u8(k + ".bits", static_cast<uint8_t>(bits));
  out.add_u8(k + ".group_size", static_cast<uint8_t>(group));
  out.add_u8(k + ".format", static_cast<uint8_t>(uqff::Format::kAfq));
}

// FP8 (3): the E4M3 rows (Hugging Face order) and mistral.rs's per-tensor scalars; kFP8_B128 adds
// its tile grid as weight.scale_grid (io/uqff.h).
void add_fp8_entry(uqff::ShardedWriter& out, const LayerEntry& e, int heads,
                   const std::shared_ptr<Progress>& progress) {
  const Weight* w = e.weight;
  const int64_t n = w->ne.at(0), rows = w->ne.size() < 2 ? 1 : w->ne[1];
  const bool tiles = w->type == QuantType::kFP8_B128;
  if (tiles && heads > 0 && !fp8_tiles_keep_heads(rows, heads)) {
    throw Unsupported(fmt::format("uqff: weight '{}': fp8 128x128 tiles split its heads, so its rows "
                                  "cannot be put back in Hugging Face order", w->name));
  }
  const std::string k = e.key + ".weight";
  out.add_tensor(k, st::Dtype::kF8E4M3, {rows, n}, [w, heads, rows, n, progress](ByteSink& s) {
    Weight e4m3 = *w;  // the E4M3 part: rows of n bytes
    e4m3.nbytes = static_cast<size_t>(rows * n);
    write_rows(s, e4m3, heads);
    progress->advance(1, w->nbytes);
  });
  Fp8UqffScalars sc;
  if (tiles) {
    const Fp8Grid g = fp8_grid(w->type, rows, n);
    out.add_tensor(e.key + "." + uqff::kFp8TileGrid, st::Dtype::kF32, {g.rows, g.cols},
                   [w, rows, n](ByteSink& s) {
                     write_vector(s, fp8_read_grid(w->type, w->data, rows, n));
                   });
  } else {
    sc = fp8_uqff_scalars(w->data, rows, n);
  }
  auto f32 = [&](const std::string& name, float v) {
    out.add_tensor(name, st::Dtype::kF32, {}, [v](ByteSink& s) { s.write(&v, 4); });
  };
  f32(k + ".dequant_w_scale", sc.dequant_w_scale);
  f32(k + ".dequant_x_scale", sc.dequant_x_scale);
  f32(k + ".quant_scale", sc.quant_scale);
  out.add_u32(k + ".dtype", 5);  // mistral.rs dtype code of the activations: BF16
  out.add_u8(k + ".format", static_cast<uint8_t>(uqff::Format::kFp8));
}

void add_entry(uqff::ShardedWriter& out, const LayerEntry& e, const ModelConfig& config,
               const std::shared_ptr<Progress>& progress) {
  const Weight& w = *e.weight;
  const int heads = hf_transform(w.name, config).permute_heads;
  const std::vector<int64_t> dims = dims_of(w);
  const Weight* wp = &w;
  const std::optional<uqff::Format> format = type_traits(w.type).uqff_format;
  if (!format) {
    throw Unsupported(fmt::format("uqff: weight '{}' is stored as {}, which has no UQFF form",
                                  w.name, quant_type_name(w.type)));
  }
  switch (*format) {
    case uqff::Format::kUnquant:
      out.add_tensor(e.key + ".weight", float_dtype(w.type).value(), dims,
                     [wp, heads, progress](ByteSink& s) {
                       write_rows(s, *wp, heads);
                       progress->advance(1, wp->nbytes);
                     });
      out.add_u8(e.key + ".weight.format", static_cast<uint8_t>(uqff::Format::kUnquant));
      break;
    case uqff::Format::kGguf: {
      out.add_tensor(e.key + ".weight", st::Dtype::kU8, {static_cast<int64_t>(w.nbytes)},
                     [wp, heads, progress](ByteSink& s) {
                       write_rows(s, *wp, heads);
                       progress->advance(1, wp->nbytes);
                     });
      out.add_u32(e.key + ".weight.dtype", static_cast<uint32_t>(w.type));
      out.add_u8(e.key + ".weight.format", static_cast<uint8_t>(uqff::Format::kGguf));
      std::vector<uint32_t> shape;
      for (int64_t d : dims) shape.push_back(static_cast<uint32_t>(d));
      out.add_u32_array(e.key + ".weight.shape", shape);
      break;
    }
    case uqff::Format::kMxfp4:
    case uqff::Format::kHqq:
    case uqff::Format::kAfq:
      add_row_format_entry(out, e, heads, progress);
      break;
    case uqff::Format::kFp8:
      add_fp8_entry(out, e, heads, progress);
      break;
    case uqff::Format::kF8Q8:
      out.add_tensor(e.key + ".weight", st::Dtype::kU8, {static_cast<int64_t>(w.nbytes)},
                     [wp, heads, progress](ByteSink& s) {
                       write_rows(s, *wp, heads);
                       progress->advance(1, wp->nbytes);
                     });
      out.add_u32(e.key + ".weight.num_blocks", static_cast<uint32_t>(w.nbytes / 33));
      out.add_u8(e.key + ".weight.format", static_cast<uint8_t>(uqff::Format::kF8Q8));
      out.add_u32_array(e.key + ".weight.shape",
                        {static_cast<uint32_t>(dims[0]), static_cast<uint32_t>(dims[1])});
      break;
  }
  if (e.bias != nullptr) {
    const Weight* b = e.bias;
    const int bheads = hf_transform(b->name, config).permute_heads;
    const std::optional<st::Dtype> dt = float_dtype(b->type);
    if (!dt) throw Unsupported(fmt::format("uqff: bias '{}' is stored as {}", b->name,
                                           quant_type_name(b->type)));
    out.add_tensor(e.key + ".bias", *dt, dims_of(*b), [b, bheads](ByteSink& s) {
      if (bheads <= 0) return s.write(b->data, b->nbytes);
      Weight rows = *b;
      rows.ne = {1, b->ne[0]};
      write_rows(s, rows, bheads);
    });
  }
}

// Residual tensors from a safetensors source: the source's own bytes for every tensor the model
// uses that is not part of a layer entry.
void add_residual_from_safetensors(st::SafetensorsWriter& out, const Model& model,
                                   const std::set<std::string>& entry_names) {
  auto src = st::ShardedSafetensors::open(model.source_path());
  const Arch arch = model.config().arch;
  for (const std::string& name : src->tensor_names()) {
    const std::optional<std::string> gguf = hf_to_gguf_name(name, arch);
    if (!gguf || entry_names.contains(*gguf) || model.find_weight(*gguf) == nullptr) continue;
    const st::TensorView& t = src->tensor(name);
    out.add_tensor(name, t.dtype, t.shape, [src, &t](ByteSink& s) { s.write(t.data, t.nbytes); });
  }
}

// Residual tensors from the model's own weights (a GGUF source): the converter's transforms undone
// (Gemma's +1 on norms, the Q/K permutation of biases), in the weight's stored float type.
void add_residual_from_model(st::SafetensorsWriter& out, const Model& model,
                             const std::set<std::string>& entry_names) {
  const ModelConfig& c = model.config();
  for (const Weight& w : model.weights()) {
    if (entry_names.contains(w.name)) continue;
    const std::optional<std::string> hf = gguf_to_hf_name(w.name, c.arch);
    if (!hf) continue;  // rope_freqs: config.json's rope_scaling regenerates it
    const std::optional<st::Dtype> dt = float_dtype(w.type);
    if (!dt) throw Unsupported(fmt::format("uqff: tensor '{}' is stored as {}", w.name,
                                           quant_type_name(w.type)));
    const HfTransform tr = hf_transform(w.name, c);
    const Weight* wp = &w;
    out.add_tensor(*hf, *dt, dims_of(w), [wp, tr](ByteSink& s) {
      if (tr.norm_shift != 0.0f) {
        if (wp->type != QuantType::kF32)
          throw Unsupported("uqff: norm '" + wp->name + "' is not f32");
        std::vector<float> v(wp->nbytes / 4);
        std::memcpy(v.data(), wp->data, wp->nbytes);
        for (float& x : v) x -= tr.norm_shift;
        return s.write(v.data(), wp->nbytes);
      }
      if (tr.permute_heads <= 0) return s.write(wp->data, wp->nbytes);
      Weight rows = *wp;
      rows.ne = {1, wp->ne[0]};
      write_rows(s, rows, tr.permute_heads);
    });
  }
}

// config.json, tokenizer files, tokenizer_config.json with the model's chat template and
// generation_config.json.
void write_assets(const Model& model, const fs::path& dir) {
  const fs::path src(model.source_path());
  std::error_code ec;
  const bool hf_source = fs::is_directory(src, ec);
  Json config;
  if (hf_source) {
    config = read_json(src / "config.json");
    drop_quantization_config(config);
    for (const char* name : {"tokenizer.json", "tokenizer.model", "special_tokens_map.json",
                             "added_tokens.json", "vocab.json", "merges.txt",
                             "generation_config.json"}) {
      if (fs::is_regular_file(src / name, ec)) fs::copy_file(src / name, dir / name);
    }
    if (fs::is_regular_file(src / "tokenizer_config.json", ec))
      fs::copy_file(src / "tokenizer_config.json", dir / "tokenizer_config.json");
  } else {
    const auto file = gguf::GgufFile::open(model.source_path());
    config = config_to_hf_json(model.config());
    write_hf_tokenizer_files(*file, dir.string());
    Json gen = {{"_from_model_config", true}};
    if (file->has("tokenizer.ggml.bos_token_id"))
      gen["bos_token_id"] = file->get_u64("tokenizer.ggml.bos_token_id");
    if (file->has("tokenizer.ggml.eos_token_id"))
      gen["eos_token_id"] = file->get_u64("tokenizer.ggml.eos_token_id");
    write_json(dir / "generation_config.json", gen);
  }
  write_json(dir / "config.json", config);
  Json tok = fs::is_regular_file(dir / "tokenizer_config.json", ec)
                 ? read_json(dir / "tokenizer_config.json")
                 : Json::object();
  if (const ChatTemplate* t = model.chat_template()) tok["chat_template"] = t->source();
  write_json(dir / "tokenizer_config.json", tok);
}

Json report_output(const std::string& quant, const std::vector<std::string>& shards,
                   const std::vector<LayerEntry>& entries, const std::string& requested) {
  Json counts = Json::object();
  Json details = Json::array();
  Json fallbacks = Json::array();
  for (const LayerEntry& e : entries) {
    const std::string stored = stored_label(e.weight->type);
    counts[stored] = counts.value(stored, 0) + 1;
    Json shape = Json::array();
    for (int64_t d : dims_of(*e.weight)) shape.push_back(d);
    Json d = {{"module", e.key}, {"stored", stored}, {"shape", shape}};
    if (e.decision != nullptr) {
      d["default_target"] = requested;
      d["resolved_target"] = quant_type_name(e.decision->target);
      if (e.decision->target != e.decision->to) {
        fallbacks.push_back({{"module", e.key},
                             {"from", quant_type_name(e.decision->target)},
                             {"to", quant_type_name(e.decision->to)},
                             {"shape", shape},
                             {"reason", e.decision->note}});
      }
    }
    details.push_back(std::move(d));
  }
  Json o = {{"quant", quant},
            {"shards", shards},
            {"layers", entries.size()},
            {"actual_counts", counts},
            {"fallback_count", fallbacks.size()}};
  if (!fallbacks.empty()) o["fallbacks"] = fallbacks;
  o["layer_details"] = details;
  return o;
}

}  // namespace

UqffExportReport export_uqff(const Model& model, const UqffExportOptions& options) {
  const ModelConfig& config = model.config();
  fs::path dest(options.output);
  std::string stem = options.stem;
  if (dest.extension() == ".uqff") {
    stem = dest.stem().string();
    if (uqff::parse_shard_name(dest.filename().string()))
      throw InvalidArgument(fmt::format("quantize: -o {}: give the name without a shard index "
                                        "(x.uqff writes x-0.uqff, x-1.uqff, ...)", options.output));
    dest = dest.parent_path().empty() ? fs::path(".") : dest.parent_path();
  }
  if (stem.empty()) throw InvalidArgument("quantize: no name for the UQFF shards");

  // Layer entries: the plan's weights, and any other weight stored packed (a quantized router).
  std::vector<LayerEntry> entries;
  std::set<std::string> entry_names;
  auto add = [&](const Weight* w, const IsqDecision* d) {
    if (entry_names.contains(w->name)) return;
    const std::optional<std::string> key = uqff_module_key(w->name, config.arch);
    if (!key) {
      throw Unsupported(fmt::format("uqff: weight '{}' has no Hugging Face module key for {}",
                                    w->name, config.arch_name));
    }
    LayerEntry e{*key, w, nullptr, d};
    std::string bias = w->name;
    bias.replace(bias.size() - 7, 7, ".bias");
    e.bias = model.find_weight(bias);
    if (e.bias != nullptr) entry_names.insert(bias);
    entry_names.insert(w->name);
    entries.push_back(e);
  };
  for (const IsqDecision& d : options.plan) add(d.weight, &d);
  for (const Weight& w : model.weights())
    if (w.ne.size() >= 2 && !float_dtype(w.type) && w.name.ends_with(".weight")) add(&w, nullptr);
  std::sort(entries.begin(), entries.end(),
            [](const LayerEntry& a, const LayerEntry& b) { return a.key < b.key; });

  Staging staging(dest);
  uqff::ShardedWriter shards(staging.path().string(), stem, options.shard_bytes);
  uint64_t total = 0;
  for (const LayerEntry& e : entries) total += e.weight->nbytes;
  auto progress = std::make_shared<Progress>("uqff " + stem, static_cast<int64_t>(entries.size()),
                                             total, options.show_progress);
  for (const LayerEntry& e : entries) add_entry(shards, e, config, progress);
  UqffExportReport report;
  report.shards = shards.write();
  progress->finish();
  report.shard_bytes = shards.total_bytes();
  report.n_layers = static_cast<int>(entries.size());

  st::SafetensorsWriter residual;
  residual.set_metadata("format", "pt");
  std::error_code ec;
  if (fs::is_directory(model.source_path(), ec)) {
    add_residual_from_safetensors(residual, model, entry_names);
  } else {
    add_residual_from_model(residual, model, entry_names);
  }
  residual.write((staging.path() / uqff::kResidualFile).string());
  write_assets(model, staging.path());

  // The report: this output, and the other outputs of an existing report in the destination.
  Json rep = {{"schema", 1},
              {"generated_by", {{"tool", "insitu quantize"}}},
              {"base_model", fs::path(model.source_path()).filename().string()},
              {"uqff_version", uqff::kVersionString},
              {"outputs", Json::array()}};
  std::vector<std::string> stale;  // old shards of this stem
  if (fs::is_regular_file(dest / uqff::kReportFile, ec)) {
    for (const Json& o : read_json(dest / uqff::kReportFile).value("outputs", Json::array())) {
      if (o.is_object() && o.value("quant", "") != stem) rep["outputs"].push_back(o);
    }
  }
  if (fs::is_directory(dest, ec)) {
    for (const fs::directory_entry& f : fs::directory_iterator(dest, ec)) {
      const auto p = uqff::parse_shard_name(f.path().filename().string());
      if (p && p->first == stem) stale.push_back(f.path().filename().string());
    }
  }
  rep["outputs"].push_back(report_output(stem, report.shards, entries, options.requested));
  write_json(staging.path() / uqff::kReportFile, rep);
  staging.publish(stale);
  report.dir = dest.string();
  return report;
}

}  // namespace insitu
