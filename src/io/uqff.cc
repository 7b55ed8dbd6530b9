#include "io/uqff.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "insitu/error.h"
#include "insitu/quant_type.h"

namespace insitu::uqff {
namespace {

namespace fs = std::filesystem;
namespace st = safetensors;

[[noreturn]] void fail(const std::string& file, const std::string& tensor, const std::string& why) {
  throw FormatError(fmt::format("uqff: {}: {}{}", file, tensor.empty() ? "" : "tensor '" + tensor + "': ", why));
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_scalar(const st::TensorView& t) {
  return t.shape.empty() || (t.shape.size() == 1 && t.shape[0] == 1);
}

// A u8/u32 scalar; `file` and `name` for errors.
uint32_t read_scalar(const st::TensorView& t, st::Dtype dtype, const std::string& file) {
  if (t.dtype != dtype || !is_scalar(t)) {
    fail(file, t.name, fmt::format("expected a {} scalar, found {} of shape [{}]",
                                   st::dtype_name(dtype), st::dtype_name(t.dtype),
                                   fmt::join(t.shape, ", ")));
  }
  if (dtype == st::Dtype::kU8) return t.data[0];
  uint32_t v = 0;
  std::memcpy(&v, t.data, 4);
  return v;
}

// The tensors each format requires besides weight.format (bias is optional for all).
std::vector<std::string_view> required_suffixes(Format f) {
  switch (f) {
    case Format::kGguf: return {"weight", "weight.dtype", "weight.shape"};
    case Format::kUnquant: return {"weight"};
    case Format::kHqq:
      return {"weight", "weight.scales", "weight.zeros", "weight.shape", "weight.bits",
              "weight.group_size", "weight.axis", "weight.optimization_steps",
              "weight.round_zeros", "weight.channel_wise"};
    case Format::kFp8:
      return {"weight", "weight.dequant_w_scale", "weight.dequant_x_scale", "weight.quant_scale",
              "weight.dtype"};
    case Format::kAfq: return {"weight", "weight.scales", "weight.biases", "weight.bits",
                               "weight.group_size"};
    case Format::kF8Q8: return {"weight", "weight.num_blocks", "weight.shape"};
    case Format::kMxfp4: return {"weight", "weight.scales"};
  }
  return {};
}

// Splits "<key>.weight[.x]" / "<key>.bias" into key and suffix.
bool split_entry_name(std::string_view name, std::string& key, std::string& suffix) {
  constexpr std::string_view kBias = ".bias";
  if (name.size() > kBias.size() && name.ends_with(kBias)) {
    key = name.substr(0, name.size() - kBias.size());
    suffix = "bias";
    return true;
  }
  size_t at = name.rfind(".weight");
  while (at != std::string_view::npos && at > 0) {
    const size_t end = at + 7;
    if (end == name.size() || name[end] == '.') {
      key = name.substr(0, at);
      suffix = name.substr(at + 1);
      return true;
    }
    at = name.rfind(".weight", at - 1);
  }
  return false;
}

void validate_gguf(Entry& e) {
  const st::TensorView& w = e.tensor("weight");
  const st::TensorView& dt = e.tensor("weight.dtype");
  const st::TensorView& sh = e.tensor("weight.shape");
  const std::string& file = e.file;
  if (w.dtype != st::Dtype::kU8 || w.shape.size() != 1)
    fail(file, w.name, "a gguf entry's weight must be 1-D U8 bytes");
  const uint32_t id = read_scalar(dt, st::Dtype::kU32, file);
  if (id >= kFirstInsituTypeId || !is_known_quant_type(id) || quant_type_size(QuantType(id)) == 0)
    fail(file, dt.name, fmt::format("ggml type id {} unknown", id));
  if (sh.dtype != st::Dtype::kU32 || sh.shape.size() != 1 || sh.shape[0] < 2 || sh.shape[0] > 3)
    fail(file, sh.name, "expected U32 dims [out, in] or [experts, out, in]");
  e.ggml_type = id;
  e.shape.resize(static_cast<size_t>(sh.shape[0]));
  uint64_t rows = 1;
  for (size_t i = 0; i < e.shape.size(); ++i) {
    uint32_t d = 0;
    std::memcpy(&d, sh.data + 4 * i, 4);
    if (d == 0) fail(file, sh.name, "zero dimension");
    e.shape[i] = d;
    if (i + 1 < e.shape.size()) {
      if (rows > std::numeric_limits<uint64_t>::max() / d) fail(file, sh.name, "size overflows");
      rows *= d;
    }
  }
  const QuantType type = static_cast<QuantType>(id);
  const int64_t n_in = e.shape.back();
  if (n_in % quant_block_size(type) != 0) {
    fail(file, w.name, fmt::format("rows of {} elements do not fit {}'s {}-element blocks", n_in,
                                   quant_type_name(type), quant_block_size(type)));
  }
  const uint64_t row_bytes = quant_row_size(type, n_in);
  if (row_bytes != 0 && rows > std::numeric_limits<uint64_t>::max() / row_bytes)
    fail(file, sh.name, "size overflows");
  if (rows * row_bytes != w.nbytes) {
    fail(file, w.name, fmt::format("{} bytes; {} [{}] needs {}", w.nbytes, quant_type_name(type),
                                   fmt::join(e.shape, ", "), rows * row_bytes));
  }
}

void validate_unquant(const Entry& e) {
  const st::TensorView& w = e.tensor("weight");
  if (w.shape.size() < 2 || w.shape.size() > 3)
    fail(e.file, w.name, fmt::format("expected dims [out, in] or [experts, out, in], found [{}]",
                                     fmt::join(w.shape, ", ")));
}

// Scalars and dtypes of the formats whose conversion lives above this layer.
void validate_other(const Entry& e) {
  auto want = [&](std::string_view suffix, st::Dtype dtype) {
    const st::TensorView& t = e.tensor(suffix);
    if (t.dtype != dtype)
      fail(e.file, t.name, fmt::format("dtype {}; expected {}", st::dtype_name(t.dtype),
                                       st::dtype_name(dtype)));
  };
  auto scalar = [&](std::string_view suffix, st::Dtype dtype) {
    read_scalar(e.tensor(suffix), dtype, e.file);
  };
  switch (e.format) {
    case Format::kHqq:
      want("weight.scales", st::Dtype::kF32);
      want("weight.zeros", st::Dtype::kF32);
      want("weight.shape", st::Dtype::kU32);
      scalar("weight.bits", st::Dtype::kU8);
      scalar("weight.group_size", st::Dtype::kU32);
      scalar("weight.axis", st::Dtype::kU8);
      scalar("weight.optimization_steps", st::Dtype::kU32);
      scalar("weight.round_zeros", st::Dtype::kU8);
      scalar("weight.channel_wise", st::Dtype::kU8);
      break;
    case Format::kFp8:
      want("weight", st::Dtype::kF8E4M3);
      scalar("weight.dequant_w_scale", st::Dtype::kF32);
      scalar("weight.dequant_x_scale", st::Dtype::kF32);
      scalar("weight.quant_scale", st::Dtype::kF32);
      scalar("weight.dtype", st::Dtype::kU32);
      break;
    case Format::kAfq:
      want("weight", st::Dtype::kU32);
      scalar("weight.bits", st::Dtype::kU8);
      scalar("weight.group_size", st::Dtype::kU8);
      break;
    case Format::kF8Q8:
      want("weight", st::Dtype::kU8);
      scalar("weight.num_blocks", st::Dtype::kU32);
      want("weight.shape", st::Dtype::kU32);
      break;
    case Format::kMxfp4:
      want("weight", st::Dtype::kU8);
      want("weight.scales", st::Dtype::kU8);
      break;
    default: break;
  }
}

}  // namespace

const char* format_name(Format f) {
  switch (f) {
    case Format::kGguf: return "gguf";
    case Format::kUnquant: return "unquant";
    case Format::kHqq: return "hqq";
    case Format::kFp8: return "fp8";
    case Format::kAfq: return "afq";
    case Format::kF8Q8: return "f8q8";
    case Format::kMxfp4: return "mxfp4";
  }
  return "?";
}

std::optional<std::pair<std::string, int>> parse_shard_name(std::string_view name) {
  constexpr std::string_view kExt = ".uqff";
  if (!name.ends_with(kExt)) return std::nullopt;
  const std::string_view base = name.substr(0, name.size() - kExt.size());
  const size_t dash = base.rfind('-');
  if (dash == std::string_view::npos || dash == 0) return std::nullopt;
  const std::string_view digits = base.substr(dash + 1);
  if (!all_digits(digits) || digits.size() > 6) return std::nullopt;
  int index = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), index);
  return std::make_pair(std::string(base.substr(0, dash)), index);
}

std::string shard_name(std::string_view stem, int index) { return fmt::format("{}-{}.uqff", stem, index); }

const st::TensorView& Entry::tensor(std::string_view suffix) const {
  const auto it = tensors.find(suffix);
  if (it == tensors.end()) fail(file, key + "." + std::string(suffix), "missing");
  return *it->second;
}

const st::TensorView* Entry::bias() const {
  const auto it = tensors.find("bias");
  return it == tensors.end() ? nullptr : it->second;
}

std::shared_ptr<const Reader> Reader::open(const std::vector<std::string>& paths) {
  if (paths.empty()) throw InvalidArgument("uqff: no files given");
  auto r = std::shared_ptr<Reader>(new Reader());
  r->paths_ = paths;
  // name -> (file index, view)
  std::map<std::string, std::pair<size_t, const st::TensorView*>, std::less<>> all;
  for (size_t i = 0; i < paths.size(); ++i) {
    auto f = st::SafetensorsFile::open(paths[i]);
    const auto& ts = f->tensors();
    if (!ts.empty() && std::all_of(ts.begin(), ts.end(),
                                   [](const st::TensorView& t) { return all_digits(t.name); })) {
      fail(paths[i], "", "Pre-1.0 UQFF artifacts are no longer supported (tensor names are "
                         "indices); quantize the model again");
    }
    r->files_.push_back(f);
    for (const st::TensorView& t : ts) {
      auto [it, inserted] = all.emplace(t.name, std::make_pair(i, &t));
      if (inserted) continue;
      const st::TensorView& o = *it->second.second;
      const bool same_version = t.name.starts_with("uqff.version.") && t.dtype == o.dtype &&
                                t.nbytes == o.nbytes &&
                                std::memcmp(t.data, o.data, t.nbytes) == 0;
      if (!same_version) {
        fail(paths[i], t.name, fmt::format("also in {}; a tensor may appear in one shard only",
                                           paths[it->second.first]));
      }
    }
  }
  auto version = [&](const char* part) -> std::optional<uint32_t> {
    const auto it = all.find(fmt::format("uqff.version.{}", part));
    if (it == all.end()) return std::nullopt;
    return read_scalar(*it->second.second, st::Dtype::kU32, paths[it->second.first]);
  };
  const std::optional<uint32_t> major = version("major");
  if (!major) {
    fail(paths.front(), "uqff.version.major",
         "missing: not a UQFF 1.x artifact (or the first shard was not given)");
  }
  const uint32_t minor = version("minor").value_or(0);
  if (*major != kVersionMajor || minor > kVersionMinor) {
    fail(paths.front(), "uqff.version.major",
         fmt::format("UQFF version {}.{} unsupported; this build reads {}.0 to {}.{}", *major,
                     minor, kVersionMajor, kVersionMajor, kVersionMinor));
  }
  r->minor_ = minor;

  std::map<std::string, Entry, std::less<>> entries;
  for (const auto& [name, where] : all) {
    if (name.starts_with("uqff.version.")) continue;
    std::string key, suffix;
    if (!split_entry_name(name, key, suffix)) {
      fail(paths[where.first], name, "not a layer entry (expected <module>.weight[.<field>] or "
                                     "<module>.bias)");
    }
    Entry& e = entries[key];
    e.key = key;
    e.tensors[suffix] = where.second;
    if (suffix == "weight") e.file = paths[where.first];
  }
  for (auto& [key, e] : entries) {
    if (e.file.empty()) e.file = paths.front();
    const auto fmt_it = e.tensors.find("weight.format");
    if (fmt_it == e.tensors.end()) fail(e.file, key + ".weight.format", "missing");
    const uint32_t f = read_scalar(*fmt_it->second, st::Dtype::kU8, e.file);
    if (f > static_cast<uint32_t>(Format::kMxfp4))
      fail(e.file, fmt_it->second->name, fmt::format("format {} unknown; valid: 0 to 6", f));
    e.format = static_cast<Format>(f);
    const std::vector<std::string_view> required = required_suffixes(e.format);
    for (std::string_view s : required) {
      if (!e.tensors.contains(s)) {
        fail(e.file, key + "." + std::string(s),
             fmt::format("missing; a {} entry has {}", format_name(e.format), fmt::join(required, " ")));
      }
    }
    for (const auto& [suffix, t] : e.tensors) {
      if (suffix == "weight.format" || suffix == "bias") continue;
      if (e.format == Format::kFp8 && suffix == kFp8TileGrid) continue;
      if (std::find(required.begin(), required.end(), suffix) == required.end()) {
        fail(e.file, t->name, fmt::format("unexpected in a {} entry (it has {})",
                                          format_name(e.format), fmt::join(required, " ")));
      }
    }
    if (e.format == Format::kGguf) {
      validate_gguf(e);
    } else if (e.format == Format::kUnquant) {
      validate_unquant(e);
    } else {
      validate_other(e);
    }
    if (const st::TensorView* b = e.bias(); b != nullptr && b->shape.size() != 1)
      fail(e.file, b->name, "a bias must be 1-D");
  }
  r->entries_.reserve(entries.size());
  for (auto& [key, e] : entries) r->entries_.push_back(std::move(e));
  return r;
}

const Entry* Reader::find(std::string_view key) const {
  const auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                                   [](const Entry& e, std::string_view k) { return e.key < k; });
  return it != entries_.end() && it->key == key ? &*it : nullptr;
}

// ---- ShardedWriter ----------------------------------------------------------------------------

ShardedWriter::ShardedWriter(std::string dir, std::string stem, uint64_t shard_bytes)
    : dir_(std::move(dir)), stem_(std::move(stem)), cap_(shard_bytes == 0 ? 1 : shard_bytes) {
  new_shard();
  add_u32("uqff.version.major", kVersionMajor);
  add_u32("uqff.version.minor", kVersionMinor);
  add_u32("uqff.version.patch", kVersionPatch);
}

void ShardedWriter::new_shard() {
  shards_.emplace_back().set_metadata("uqff.producer", "insitu");
  shards_.back().set_metadata("uqff.version", kVersionString);
  shard_sizes_.push_back(0);
}

st::SafetensorsWriter& ShardedWriter::writer_for(uint64_t nbytes) {
  const uint64_t used = shard_sizes_.back();
  if (used > 0 && (used >= cap_ || nbytes > cap_ - used)) new_shard();
  shard_sizes_.back() += nbytes;
  return shards_.back();
}

void ShardedWriter::add_tensor(std::string name, st::Dtype dtype, std::vector<int64_t> shape,
                               st::SafetensorsWriter::Producer produce) {
  if (!names_.insert(name).second)
    throw InvalidArgument("uqff writer: tensor '" + name + "' added twice");
  uint64_t n = st::dtype_size(dtype);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  writer_for(n).add_tensor(std::move(name), dtype, std::move(shape), std::move(produce));
  total_bytes_ += n;
}

void ShardedWriter::add_u8(const std::string& name, uint8_t value) {
  add_tensor(name, st::Dtype::kU8, {}, [value](ByteSink& out) { out.write(&value, 1); });
}

void ShardedWriter::add_u32(const std::string& name, uint32_t value) {
  add_tensor(name, st::Dtype::kU32, {}, [value](ByteSink& out) { out.write(&value, 4); });
}

void ShardedWriter::add_u32_array(const std::string& name, const std::vector<uint32_t>& values) {
  add_tensor(name, st::Dtype::kU32, {static_cast<int64_t>(values.size())},
             [values](ByteSink& out) { out.write(values.data(), values.size() * 4); });
}

std::vector<std::string> ShardedWriter::write() const {
  std::vector<std::string> files;
  for (size_t i = 0; i < shards_.size(); ++i) {
    const std::string name = shard_name(stem_, static_cast<int>(i));
    shards_[i].write((fs::path(dir_) / name).string());
    files.push_back(name);
  }
  return files;
}

}  // namespace insitu::uqff
