#include "model/uqff_load.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "insitu/error.h"
#include "io/json_file.h"
#include "io/uqff.h"
#include "model/hf_loader.h"
#include "model/hf_names.h"
#include "model/isq.h"
#include "quant/afq.h"
#include "quant/fp8.h"
#include "quant/hqq.h"
#include "quant/mxfp4_layout.h"
#include "quant/quantize.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;
namespace st = safetensors;

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// uqff_report.json outputs: quant name -> shard paths. Checked as mistral.rs's report validation
// does: outputs non-empty, unique quant names, non-empty shard lists of existing files, no shard
// claimed twice.
std::map<std::string, std::vector<std::string>> read_report(const fs::path& dir) {
  const std::string path = (dir / uqff::kReportFile).string();
  const JsonFile f = JsonFile::load(path);
  const nlohmann::json& j = f.json();
  auto bad = [&](const std::string& why) -> void {
    throw FormatError(fmt::format("{}: {}", path, why));
  };
  if (!j.is_object() || !j.contains("outputs") || !j["outputs"].is_array() || j["outputs"].empty())
    bad("'outputs' must be a non-empty array");
  std::map<std::string, std::vector<std::string>> types;
  std::set<std::string> claimed;
  for (const nlohmann::json& o : j["outputs"]) {
    if (!o.is_object() || !o.contains("quant") || !o["quant"].is_string())
      bad("an output has no 'quant' name");
    const std::string quant = o["quant"].get<std::string>();
    if (types.contains(quant)) bad(fmt::format("output '{}' listed twice", quant));
    if (!o.contains("shards") || !o["shards"].is_array() || o["shards"].empty())
      bad(fmt::format("output '{}': 'shards' must be a non-empty array", quant));
    std::vector<std::string>& files = types[quant];
    for (const nlohmann::json& s : o["shards"]) {
      if (!s.is_string()) bad(fmt::format("output '{}': a shard name is not a string", quant));
      const fs::path rel = s.get<std::string>();
      if (rel.empty() || rel.is_absolute() || rel.string().find("..") != std::string::npos)
        bad(fmt::format("output '{}': shard '{}' must be a plain name inside the directory", quant,
                        rel.string()));
      if (!claimed.insert(rel.string()).second)
        bad(fmt::format("shard '{}' claimed by two outputs", rel.string()));
      const fs::path p = dir / rel;
      std::error_code ec;
      if (!fs::is_regular_file(p, ec))
        bad(fmt::format("output '{}': shard '{}' does not exist", quant, rel.string()));
      files.push_back(p.string());
    }
  }
  return types;
}

// "<dir>/<stem>-0.uqff" and its successors while they exist.
std::vector<std::string> expand_shards(const fs::path& first) {
  std::vector<std::string> files{first.string()};
  const auto parsed = uqff::parse_shard_name(first.filename().string());
  if (!parsed || parsed->second != 0) return files;
  std::error_code ec;
  for (int i = 1;; ++i) {
    const fs::path next = first.parent_path() / uqff::shard_name(parsed->first, i);
    if (!fs::is_regular_file(next, ec)) break;
    files.push_back(next.string());
  }
  return files;
}

QuantType float_type(st::Dtype d, const uqff::Entry& e, const st::TensorView& t) {
  switch (d) {
    case st::Dtype::kF32: return QuantType::kF32;
    case st::Dtype::kF16: return QuantType::kF16;
    case st::Dtype::kBF16: return QuantType::kBF16;
    default:
      throw Unsupported(fmt::format("uqff: {}: tensor '{}': dtype {} unsupported; supported: F32 "
                                    "F16 BF16", e.file, t.name, st::dtype_name(d)));
  }
}

// A Weight viewing a tensor of the mapping `reader` keeps alive.
Weight mapped_weight(const std::shared_ptr<const uqff::Reader>& reader, const st::TensorView& t,
                     std::string name, QuantType type, std::vector<int64_t> dims) {
  Weight w;
  w.name = std::move(name);
  w.type = type;
  w.ne.assign(dims.rbegin(), dims.rend());
  w.data = t.data;
  w.nbytes = t.nbytes;
  w.owner = std::shared_ptr<const void>(reader, t.data);
  return w;
}

void permute_if_needed(Weight& w, const ModelConfig& config, const uqff::Entry& e) {
  const HfTransform tr = hf_transform(w.name, config);
  if (tr.permute_heads <= 0) return;
  const int64_t rows = w.ne.size() < 2 ? w.ne.at(0) : w.ne[1];
  if (w.ne.size() > 2 || rows % (2 * static_cast<int64_t>(tr.permute_heads)) != 0) {
    throw FormatError(fmt::format("uqff: {}: entry '{}': {} rows do not split into {} heads",
                                  e.file, e.key, rows, tr.permute_heads));
  }
  if (w.ne.size() == 1) {
    // A bias: one "row" per element.
    Weight rows_view = w;
    rows_view.ne = {1, w.ne[0]};
    permute_rows_to_gguf(rows_view, tr.permute_heads);
    w.data = rows_view.data;
    w.owner = rows_view.owner;
    return;
  }
  permute_rows_to_gguf(w, tr.permute_heads);
}

[[noreturn]] void bad_entry(const uqff::Entry& e, const std::string& why) {
  throw FormatError(fmt::format("uqff: {}: entry '{}': {}", e.file, e.key, why));
}

uint32_t scalar(const uqff::Entry& e, std::string_view suffix) {
  const st::TensorView& t = e.tensor(suffix);  // dtype and size checked by the reader
  if (t.dtype == st::Dtype::kU8) return t.data[0];
  uint32_t v = 0;
  std::memcpy(&v, t.data, 4);
  return v;
}

float f32_scalar(const uqff::Entry& e, std::string_view suffix) {
  float v = 0;
  std::memcpy(&v, e.tensor(suffix).data, 4);
  return v;
}

// dims [out, in] of a 2-D tensor, or an error naming the entry.
std::pair<int64_t, int64_t> dims2(const uqff::Entry& e, const st::TensorView& t) {
  if (t.shape.size() != 2 || t.shape[0] <= 0 || t.shape[1] <= 0)
    bad_entry(e, fmt::format("tensor '{}': expected 2 positive dims, found [{}]", t.name,
                             fmt::join(t.shape, ", ")));
  return {t.shape[0], t.shape[1]};
}

// dims [out, in] from a u32 weight.shape tensor.
std::pair<int64_t, int64_t> shape_field(const uqff::Entry& e) {
  const st::TensorView& t = e.tensor("weight.shape");
  if (t.dtype != st::Dtype::kU32 || t.shape.size() != 1 || t.shape[0] != 2)
    bad_entry(e, "weight.shape must be U32 [out, in]");
  uint32_t d[2];
  std::memcpy(d, t.data, 8);
  if (d[0] == 0 || d[1] == 0) bad_entry(e, "weight.shape has a zero dimension");
  return {d[0], d[1]};
}

Weight owned_weight(std::string name, QuantType type, int64_t rows, int64_t n,
                    std::vector<uint8_t> bytes) {
  auto buf = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  Weight w;
  w.name = std::move(name);
  w.type = type;
  w.ne = {n, rows};
  w.data = buf->data();
  w.nbytes = buf->size();
  w.owner = std::shared_ptr<const void>(buf, buf->data());
  return w;
}

// Converts a converter's InvalidArgument (a size that does not fit) into a FormatError naming the
// entry.
template <class F>
void checked(const uqff::Entry& e, F&& f) {
  try {
    f();
  } catch (const InvalidArgument& x) {
    bad_entry(e, x.what());
  }
}

Weight hqq_weight(const uqff::Entry& e, const std::string& name) {
  const uint32_t bits = scalar(e, "weight.bits"), group = scalar(e, "weight.group_size"),
                 axis = scalar(e, "weight.axis");
  if (group != kHqqGroup || axis != 1) {
    throw Unsupported(fmt::format(
        "uqff: {}: entry '{}': HQQ with group {} along axis {}; insitu holds HQQ as row groups of "
        "64 (axis 1), and mistral.rs's ISQ layout (axis 0) groups columns, which cannot be held as "
        "row blocks", e.file, e.key, group, axis));
  }
  const QuantType type = bits == 2   ? QuantType::kHQQ2
                         : bits == 3 ? QuantType::kHQQ3
                         : bits == 4 ? QuantType::kHQQ4
                         : bits == 8 ? QuantType::kHQQ8
                                     : QuantType::kF32;
  if (type == QuantType::kF32) bad_entry(e, fmt::format("HQQ bits {} unknown; valid: 2 3 4 8", bits));
  const auto [rows, n] = shape_field(e);
  const st::TensorView& w = e.tensor("weight");
  const st::TensorView& sc = e.tensor("weight.scales");
  const st::TensorView& z = e.tensor("weight.zeros");
  HqqUqffTensors t;
  t.bits = static_cast<int>(bits);
  t.w_q_shape = w.shape;
  t.w_q.assign(w.data, w.data + w.nbytes);
  t.scales.resize(sc.nbytes / 4);
  std::memcpy(t.scales.data(), sc.data, sc.nbytes);
  t.zeros.resize(z.nbytes / 4);
  std::memcpy(t.zeros.data(), z.data, z.nbytes);
  std::vector<uint8_t> blocks;
  checked(e, [&] {
    blocks.resize(static_cast<size_t>(rows) * quant_row_size(type, n));
    hqq_from_uqff(type, t, rows, n, blocks.data());
  });
  return owned_weight(name, type, rows, n, std::move(blocks));
}

Weight afq_weight(const uqff::Entry& e, const std::string& name) {
  const int bits = static_cast<int>(scalar(e, "weight.bits"));
  const int group = static_cast<int>(scalar(e, "weight.group_size"));
  const std::optional<QuantType> type = afq_type(bits, group);
  if (!type) bad_entry(e, fmt::format("AFQ with {} bits and group {} is not an MLX format", bits, group));
  const st::TensorView& w = e.tensor("weight");
  const auto [rows, words] = dims2(e, w);
  if (words * 32 % bits != 0) bad_entry(e, "weight's row length is not a whole number of elements");
  const int64_t n = words * 32 / bits;
  AfqMlxTensors m;
  m.bits = bits;
  m.group = group;
  m.w_q.resize(w.nbytes / 4);
  std::memcpy(m.w_q.data(), w.data, w.nbytes);
  for (const char* suffix : {"weight.scales", "weight.biases"}) {
    const st::TensorView& t = e.tensor(suffix);
    if (t.dtype != st::Dtype::kBF16) {
      throw Unsupported(fmt::format("uqff: {}: tensor '{}': AFQ {} in {}; insitu reads bf16", e.file,
                                    t.name, suffix, st::dtype_name(t.dtype)));
    }
    std::vector<uint16_t>& v = std::string_view(suffix) == "weight.scales" ? m.scales : m.biases;
    v.resize(t.nbytes / 2);
    std::memcpy(v.data(), t.data, t.nbytes);
  }
  std::vector<uint8_t> blocks;
  checked(e, [&] {
    blocks.resize(static_cast<size_t>(rows) * quant_row_size(*type, n));
    afq_from_mlx(*type, m, rows, n, blocks.data());
  });
  return owned_weight(name, *type, rows, n, std::move(blocks));
}

// FP8: the E4M3 rows are permuted (llama Q/K) before the scale grid is attached.
Weight fp8_weight(const uqff::Entry& e, const std::string& name, int permute_heads) {
  const st::TensorView& w = e.tensor("weight");
  const auto [rows, n] = dims2(e, w);
  const st::TensorView* tiles = e.tensors.contains(uqff::kFp8TileGrid)
                                    ? &e.tensor(uqff::kFp8TileGrid)
                                    : nullptr;
  const QuantType type = tiles ? QuantType::kFP8_B128 : QuantType::kFP8;
  std::vector<float> grid;
  if (tiles) {
    if (tiles->dtype != st::Dtype::kF32) bad_entry(e, "weight.scale_grid must be F32");
    grid.resize(tiles->nbytes / 4);
    std::memcpy(grid.data(), tiles->data, tiles->nbytes);
  } else {
    grid.push_back(f32_scalar(e, "weight.dequant_w_scale"));
  }
  std::vector<uint8_t> e4m3(w.data, w.data + w.nbytes);
  if (tiles && permute_heads > 0 && !fp8_tiles_keep_heads(rows, permute_heads)) {
    throw Unsupported(fmt::format("uqff: {}: entry '{}': fp8 128x128 tiles split its heads of {} "
                                  "rows, so its rows cannot be reordered for RoPE", e.file, e.key,
                                  rows / permute_heads));
  }
  if (permute_heads > 0) {
    std::vector<uint8_t> p(e4m3.size());
    checked(e, [&] { permute_qk_rows(e4m3.data(), p.data(), rows, n, permute_heads, true); });
    e4m3.swap(p);
  }
  std::vector<uint8_t> bytes;
  checked(e, [&] { bytes = fp8_assemble(type, e4m3, grid, rows, n); });
  return owned_weight(name, type, rows, n, std::move(bytes));
}

Weight f8q8_weight(const std::shared_ptr<const uqff::Reader>& reader, const uqff::Entry& e,
                   const std::string& name) {
  const auto [rows, n] = shape_field(e);
  const uint32_t blocks = scalar(e, "weight.num_blocks");
  const st::TensorView& w = e.tensor("weight");
  if (n % 32 != 0 || static_cast<uint64_t>(rows) * static_cast<uint64_t>(n) / 32 != blocks ||
      static_cast<uint64_t>(blocks) * 33 != w.nbytes || w.shape.size() != 1) {
    bad_entry(e, fmt::format("f8q8: {} blocks in {} bytes do not make [{}, {}]", blocks, w.nbytes,
                             rows, n));
  }
  return mapped_weight(reader, w, name, QuantType::kF8Q8, {rows, n});
}

Weight mxfp4_weight(const uqff::Entry& e, const std::string& name) {
  const st::TensorView& w = e.tensor("weight");
  const st::TensorView& sc = e.tensor("weight.scales");
  const auto [rows, half] = dims2(e, w);
  const int64_t n = half * 2;
  if (n % 32 != 0 || sc.shape != std::vector<int64_t>{rows, n / 32})
    bad_entry(e, fmt::format("mxfp4: scales [{}] do not match blocks [{}, {}]",
                             fmt::join(sc.shape, ", "), rows, half));
  std::vector<uint8_t> ggml(static_cast<size_t>(rows) * quant_row_size(QuantType::kMXFP4, n));
  checked(e, [&] { mxfp4_split_to_ggml(w.data, sc.data, rows, n, ggml.data()); });
  return owned_weight(name, QuantType::kMXFP4, rows, n, std::move(ggml));
}

constexpr std::pair<std::string_view, std::string_view> kExpertKeys[] = {
    {"ffn_gate_exps", "gate_proj"}, {"ffn_up_exps", "up_proj"}, {"ffn_down_exps", "down_proj"}};
constexpr std::string_view kExpertPrefix = ".block_sparse_moe.experts.";

}  // namespace

std::optional<std::string> uqff_module_key(std::string_view gguf_name, Arch arch) {
  if (gguf_name.starts_with("blk.") && gguf_name.ends_with(".weight")) {
    const std::string_view body = gguf_name.substr(4, gguf_name.size() - 4 - 7);
    const size_t dot = body.find('.');
    if (dot != std::string_view::npos) {
      for (const auto& [gguf, hf] : kExpertKeys) {
        if (body.substr(dot + 1) == gguf)
          return fmt::format("model.layers.{}{}{}", body.substr(0, dot), kExpertPrefix, hf);
      }
    }
  }
  if (!gguf_name.ends_with(".weight")) return std::nullopt;
  std::optional<std::string> hf = gguf_to_hf_name(gguf_name, arch);
  if (!hf || !hf->ends_with(".weight")) return std::nullopt;
  hf->resize(hf->size() - 7);
  return hf;
}

std::optional<std::string> uqff_weight_name(std::string_view key, Arch arch) {
  const size_t at = key.find(kExpertPrefix);
  if (key.starts_with("model.layers.") && at != std::string_view::npos) {
    const std::string_view layer = key.substr(13, at - 13);
    int il = 0;
    const auto [p, ec] = std::from_chars(layer.data(), layer.data() + layer.size(), il);
    if (ec == std::errc() && p == layer.data() + layer.size()) {
      for (const auto& [gguf, hf] : kExpertKeys)
        if (key.substr(at + kExpertPrefix.size()) == hf) return fmt::format("blk.{}.{}.weight", il, gguf);
    }
  }
  return hf_to_gguf_name(fmt::format("{}.weight", key), arch);
}

bool fp8_tiles_keep_heads(int64_t rows, int heads) {
  const int64_t hd = rows / heads;
  return hd > 0 && (kFp8Tile % hd == 0 || hd % kFp8Tile == 0);
}

std::string UqffDirectory::type_list() const {
  if (types.empty()) return "none";
  std::string s;
  for (const auto& [name, files] : types) s += (s.empty() ? "" : " ") + name;
  return s;
}

UqffDirectory scan_uqff_directory(const std::string& dir) {
  UqffDirectory d;
  d.dir = dir;
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return d;
  std::map<std::string, std::map<int, std::string>> by_stem;
  std::vector<std::string> loose;  // .uqff files without an index
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    if (!e.is_regular_file(ec)) continue;
    const std::string name = e.path().filename().string();
    const std::string ext = lower(e.path().extension().string());
    if (name == uqff::kReportFile) d.has_report = true;
    if (name == uqff::kResidualFile) {
      d.has_residual = true;
    } else if (ext == ".safetensors" || ext == ".bin" || ext == ".pt" || ext == ".pth" ||
               name == "model.safetensors.index.json") {
      d.has_source_weights = true;
    }
    if (ext == ".uqff") {
      if (const auto p = uqff::parse_shard_name(name)) {
        by_stem[p->first][p->second] = e.path().string();
      } else {
        loose.push_back(e.path().string());
      }
    }
  }
  if (d.has_report) {
    d.types = read_report(root);
  } else {
    for (const auto& [stem, shards] : by_stem) {
      std::vector<std::string> files;
      for (int i = 0; shards.contains(i); ++i) files.push_back(shards.at(i));
      if (!files.empty()) d.types[stem] = std::move(files);
    }
    for (const std::string& f : loose) d.types[fs::path(f).stem().string()] = {f};
  }
  std::string base = root.filename().string();
  if (base.empty()) base = root.parent_path().filename().string();
  const bool any_uqff = !by_stem.empty() || !loose.empty();
  d.looks_like_artifact = lower(base).ends_with("-uqff") || d.has_report || d.has_residual ||
                          (any_uqff && !d.has_source_weights);
  return d;
}

std::vector<std::string> uqff_type_candidates(std::string_view spec) {
  static constexpr std::pair<std::string_view, std::array<QuantType, 2>> kBits[] = {
      {"2", {QuantType::kQ2K, QuantType::kAFQ2}}, {"3", {QuantType::kQ3K, QuantType::kAFQ3}},
      {"4", {QuantType::kQ4K, QuantType::kAFQ4}}, {"5", {QuantType::kQ5K, QuantType::kQ5K}},
      {"6", {QuantType::kQ6K, QuantType::kAFQ6}}, {"8", {QuantType::kQ8_0, QuantType::kAFQ8}}};
  for (const auto& [bits, types] : kBits) {
    if (spec != bits) continue;
    std::vector<std::string> names{quant_type_name(types[0])};
    if (types[1] != types[0]) names.push_back(quant_type_name(types[1]));
    return names;
  }
  if (const std::optional<IsqMix> mix = parse_isq_mix(spec)) return {isq_mix_name(*mix)};
  if (const std::optional<QuantType> t = parse_quant_type(spec)) return {quant_type_name(*t)};
  return {std::string(parse_isq_target(spec).name())};  // throws, listing the valid names
}

std::vector<std::string> find_uqff_type(const UqffDirectory& dir, std::string_view spec) {
  if (const auto it = dir.types.find(std::string(spec)); it != dir.types.end()) return it->second;
  for (const std::string& name : uqff_type_candidates(spec)) {
    const auto it = dir.types.find(name);
    if (it != dir.types.end()) return it->second;
  }
  return {};
}

std::vector<std::string> resolve_uqff_files(const std::string& spec, const std::string& model_dir) {
  std::vector<std::string> files;
  auto add = [&](const std::vector<std::string>& more) {
    for (const std::string& f : more)
      if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
  };
  std::optional<UqffDirectory> scanned;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(uqff::kListDelimiter, start);
    if (end == std::string::npos) end = spec.size();
    const std::string item = spec.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    std::error_code ec;
    std::vector<fs::path> tried{fs::path(item)};
    if (!model_dir.empty() && fs::path(item).is_relative())
      tried.push_back(fs::path(model_dir) / item);
    const auto found = std::find_if(tried.begin(), tried.end(),
                                    [&](const fs::path& p) { return fs::is_regular_file(p, ec); });
    if (found != tried.end()) {
      add(expand_shards(*found));
      continue;
    }
    std::vector<std::string> of_type;
    if (!model_dir.empty()) {
      if (!scanned) scanned = scan_uqff_directory(model_dir);
      try {
        of_type = find_uqff_type(*scanned, item);
      } catch (const InvalidArgument&) {
        // Not a type name: reported below as a missing file.
      }
    }
    if (of_type.empty()) {
      std::string paths;
      for (const fs::path& p : tried) paths += (paths.empty() ? "" : ", ") + p.string();
      throw InvalidArgument(fmt::format(
          "--from-uqff '{}': no such file (tried {}) and no UQFF of that type in '{}' (it has: {})",
          item, paths, model_dir, scanned ? scanned->type_list() : "none"));
    }
    add(of_type);
  }
  if (files.empty()) throw InvalidArgument("--from-uqff: no file or type given");
  return files;
}

std::vector<std::string> default_uqff_files(const std::string& dir) {
  const UqffDirectory d = scan_uqff_directory(dir);
  if (d.has_source_weights || d.types.empty()) return {};
  if (d.types.size() > 1) {
    throw InvalidArgument(fmt::format("{}: holds several UQFF types ({}); choose one with "
                                      "--from-uqff TYPE or --quant TYPE", dir, d.type_list()));
  }
  spdlog::info("{}: loading the UQFF {} ({} shard{})", dir, d.types.begin()->first,
               d.types.begin()->second.size(), d.types.begin()->second.size() == 1 ? "" : "s");
  return d.types.begin()->second;
}

void apply_uqff_weights(const std::vector<std::string>& files, ModelConfig& config,
                        std::vector<Weight>& weights) {
  const std::shared_ptr<const uqff::Reader> reader = uqff::Reader::open(files);
  auto put = [&](Weight w) {
    for (Weight& old : weights) {
      if (old.name == w.name) {
        old = std::move(w);
        return;
      }
    }
    weights.push_back(std::move(w));
  };
  for (const uqff::Entry& e : reader->entries()) {
    const std::optional<std::string> name = uqff_weight_name(e.key, config.arch);
    if (!name) {
      spdlog::warn("uqff: {}: entry '{}' is not part of a {} model; ignored", e.file, e.key,
                   config.arch_name);
      continue;
    }
    const st::TensorView& t = e.tensor("weight");
    Weight w;
    bool permuted = false;
    switch (e.format) {
      case uqff::Format::kGguf:
        w = mapped_weight(reader, t, *name, static_cast<QuantType>(e.ggml_type), e.shape);
        break;
      case uqff::Format::kUnquant:
        w = mapped_weight(reader, t, *name, float_type(t.dtype, e, t), t.shape);
        break;
      case uqff::Format::kHqq: w = hqq_weight(e, *name); break;
      case uqff::Format::kAfq: w = afq_weight(e, *name); break;
      case uqff::Format::kF8Q8: w = f8q8_weight(reader, e, *name); break;
      case uqff::Format::kMxfp4: w = mxfp4_weight(e, *name); break;
      case uqff::Format::kFp8:
        w = fp8_weight(e, *name, hf_transform(*name, config).permute_heads);
        permuted = true;
        break;
    }
    if (!permuted) permute_if_needed(w, config, e);
    put(std::move(w));
    if (const st::TensorView* b = e.bias()) {
      const std::optional<std::string> bname = hf_to_gguf_name(e.key + ".bias", config.arch);
      if (!bname) {
        throw FormatError(fmt::format("uqff: {}: entry '{}' has a bias the {} architecture has no "
                                      "tensor for", e.file, e.key, config.arch_name));
      }
      Weight bw = mapped_weight(reader, *b, *bname, float_type(b->dtype, e, *b), b->shape);
      permute_if_needed(bw, config, e);
      put(std::move(bw));
    }
  }
  config.tied_embeddings = std::none_of(weights.begin(), weights.end(),
                                        [](const Weight& w) { return w.name == "output.weight"; });
}

}  // namespace insitu
