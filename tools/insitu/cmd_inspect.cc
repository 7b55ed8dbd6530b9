// `insitu inspect PATH [--json] [--full]`: prints a model file's metadata, its tensors (name,
// type, shape, bytes) and totals (tensor count, parameters, bytes, bits per weight).
// PATH may be a GGUF file, a .safetensors file, a model.safetensors.index.json, a Hugging
// Face-style directory (config.json + safetensors shards), or a UQFF artifact (a directory or a
// .uqff shard: layer entries with their types, residual tensors, the report). Long arrays and strings are summarised
// unless --full is given. --json prints the same information as one JSON document.
#include <fmt/format.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "insitu/error.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/uqff.h"
#include "model/uqff_load.h"

namespace insitu::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr size_t kArrayHead = 3;        // items shown of a long array in text output
constexpr size_t kJsonArrayLimit = 64;  // arrays longer than this are summarised in JSON output
constexpr size_t kStringLimit = 80;     // characters of a long string shown in text output

struct InspectArgs {
  std::string path;
  bool json = false;
  bool full = false;
};

// The format-neutral report both renderers print.
struct Report {
  std::string path;
  std::string format;            // "gguf", "safetensors"
  Json header = Json::object();  // format facts: version, alignment, shards, ...
  std::vector<std::pair<std::string, std::string>> metadata_text;
  Json metadata = Json::object();
  std::string shape_order;  // how shapes are written
  struct Tensor {
    std::string name, type;
    std::vector<int64_t> shape;
    uint64_t bytes = 0;
    int64_t elements = 0;
  };
  std::vector<Tensor> tensors;
};

// The length of the valid, printable UTF-8 sequence at s[i], or 0 when the byte there must be
// shown as \xNN: invalid UTF-8, C0 controls other than \n and \t, DEL, and the C1 controls
// U+0080..U+009F (0xC2 0x80..0x9F; U+009B is CSI). A model file must not drive the terminal.
size_t printable_len(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t len = c < 0x80         ? 1
                     : (c >> 5) == 6  ? 2
                     : (c >> 4) == 14 ? 3
                     : (c >> 3) == 30 ? 4
                                      : 0;
  bool valid = len > 0 && i + len <= s.size();
  for (size_t k = 1; valid && k < len; ++k) {
    valid = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  }
  if (!valid) return 0;
  if (len == 1 && (c < 0x20 || c == 0x7F) && c != '\n' && c != '\t') return 0;
  if (len == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0) return 0;
  return len;
}

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02X", c);
  return buf;
}

// One line, printable: escapes control characters, quotes and invalid UTF-8.
std::string escape(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = printable_len(s, i);
    if (len == 0) {
      out += hex_byte(c);
      ++i;
      continue;
    }
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else
      out.append(s, i, len);
    i += len;
  }
  return out;
}

// Text bound for the terminal that escape() has not seen (keys, paths, index metadata): what
// printable_len refuses, and \n and \t, become \xNN; everything else is kept as it is.
std::string terminal_safe(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = printable_len(s, i);
    if (len == 0 || c == '\n' || c == '\t') {
      out += hex_byte(c);
      ++i;
    } else {
      out.append(s, i, len);
      i += len;
    }
  }
  return out;
}

std::string quoted(const std::string& s, bool full) {
  if (full || s.size() <= kStringLimit) return "\"" + escape(s) + "\"";
  // Cut on a UTF-8 boundary.
  size_t cut = kStringLimit;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return "\"" + escape(s.substr(0, cut)) + "\"... (" + std::to_string(s.size()) + " bytes)";
}

std::string number(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", d);
  return buf;
}

std::string value_text(const gguf::Value& v, bool full) {
  using gguf::ValueType;
  switch (v.type) {
    case ValueType::kString:
      return quoted(std::get<std::string>(v.v), full);
    case ValueType::kBool:
      return std::get<bool>(v.v) ? "true" : "false";
    case ValueType::kF32:
    case ValueType::kF64:
      return number(std::get<double>(v.v));
    case ValueType::kArray: {
      const gguf::Array& a = std::get<gguf::Array>(v.v);
      const std::string kind = a.elem_type == ValueType::kString ? "strings"
                               : a.elem_type == ValueType::kArray
                                   ? "arrays"
                                   : std::string(gguf::value_type_name(a.elem_type));
      const size_t shown = full ? a.items.size() : std::min(a.items.size(), kArrayHead);
      std::string s = "[" + std::to_string(a.items.size()) + " " + kind + ":";
      for (size_t i = 0; i < shown; ++i) s += (i ? ", " : " ") + value_text(a.items[i], full);
      if (shown < a.items.size()) s += ", ...";
      return s + " ]";
    }
    default:
      if (const auto* u = std::get_if<uint64_t>(&v.v)) return std::to_string(*u);
      return std::to_string(std::get<int64_t>(v.v));
  }
}

Json value_json(const gguf::Value& v, bool full) {
  using gguf::ValueType;
  switch (v.type) {
    case ValueType::kString:
      return std::get<std::string>(v.v);
    case ValueType::kBool:
      return std::get<bool>(v.v);
    case ValueType::kF32:
    case ValueType::kF64:
      return std::get<double>(v.v);
    case ValueType::kArray: {
      const gguf::Array& a = std::get<gguf::Array>(v.v);
      if (full || a.items.size() <= kJsonArrayLimit) {
        Json arr = Json::array();
        for (const gguf::Value& item : a.items) arr.push_back(value_json(item, full));
        return arr;
      }
      Json head = Json::array();
      for (size_t i = 0; i < kArrayHead; ++i) head.push_back(value_json(a.items[i], full));
      return Json{{"array_of", gguf::value_type_name(a.elem_type)},
                  {"count", a.items.size()},
                  {"head", head}};
    }
    default:
      if (const auto* u = std::get_if<uint64_t>(&v.v)) return *u;
      return std::get<int64_t>(v.v);
  }
}

Report inspect_gguf(const std::string& path, bool full) {
  auto f = gguf::GgufFile::open(path);
  Report r;
  r.path = path;
  r.format = "gguf";
  r.header = Json{{"version", f->version()},
                  {"alignment", f->alignment()},
                  {"data_offset", f->data_offset()},
                  {"file_bytes", f->mapping()->size()}};
  r.shape_order = "ne, ggml order: ne[0] is the contiguous row";
  for (const auto& [key, value] : f->metadata()) {
    r.metadata_text.emplace_back(key, value_text(value, full));
    r.metadata[key] = value_json(value, full);
  }
  for (const gguf::TensorInfo& t : f->tensors()) {
    r.tensors.push_back({t.name, quant_type_name(t.type), t.ne, t.nbytes, t.n_elements()});
  }
  return r;
}

// A JSON value from a config file, summarised for text output.
std::string json_text(const nlohmann::json& j, bool full) {
  if (j.is_string()) return quoted(j.get<std::string>(), full);
  if (j.is_array() && !full && j.size() > 8) {
    std::string s = "[" + std::to_string(j.size()) + " items: ";
    for (size_t i = 0; i < kArrayHead; ++i) {
      s += (i ? ", " : "") + j[i].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    return s + ", ... ]";
  }
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (!full && s.size() > 2 * kStringLimit) s = s.substr(0, 2 * kStringLimit) + "...";
  return s;
}

Report inspect_safetensors(const std::string& path, bool full) {
  Report r;
  r.path = path;
  r.format = "safetensors";
  r.shape_order = "row-major: the last dimension is contiguous";
  // A directory's config.json comes first in the metadata: it describes the model.
  if (fs::is_directory(path)) {
    const fs::path config = fs::path(path) / "config.json";
    if (fs::exists(config)) {
      const JsonFile cfg = JsonFile::load(config.string());
      if (cfg.json().is_object()) {
        for (const auto& [k, v] : cfg.json().items()) {
          r.metadata_text.emplace_back("config." + k, json_text(v, full));
          r.metadata["config." + k] = v;
        }
      }
    }
  }
  auto s = safetensors::ShardedSafetensors::open(path);
  Json shards = Json::array();
  uint64_t file_bytes = 0;
  for (const auto& shard : s->shards()) {
    shards.push_back(shard->path());
    file_bytes += shard->mapping()->size();
    for (const auto& [k, v] : shard->metadata()) {
      if (r.metadata.contains(k)) continue;  // shards usually repeat the same entries
      r.metadata_text.emplace_back(k, quoted(v, full));
      r.metadata[k] = v;
    }
  }
  for (const auto& [k, v] : s->index_metadata()) {
    r.metadata_text.emplace_back("index." + k, v);
    r.metadata["index." + k] = v;
  }
  r.header = Json{{"shards", shards}, {"file_bytes", file_bytes}};
  for (const std::string& name : s->tensor_names()) {
    const safetensors::TensorView& t = s->tensor(name);
    r.tensors.push_back(
        {t.name, safetensors::dtype_name(t.dtype), t.shape, t.nbytes, t.n_elements()});
  }
  return r;
}

// A UQFF artifact: its shards (every type, or the shards of one stem for a .uqff file), each
// layer entry as a tensor (its quantized type for GGUF-format entries, else its format), the
// types per layer counted in the header, residual.safetensors' tensors and uqff_report.json.
Report inspect_uqff(const std::string& path, bool full) {
  Report r;
  r.path = path;
  r.format = "uqff";
  r.shape_order = "(out, in), or (experts, out, in): the order UQFF writes";
  std::error_code ec;
  const bool is_dir = fs::is_directory(path, ec);
  const std::string dir = is_dir ? path : fs::path(path).parent_path().string();
  const UqffDirectory d = scan_uqff_directory(dir.empty() ? "." : dir);
  std::map<std::string, std::vector<std::string>> types = d.types;
  if (!is_dir) {
    const auto name = uqff::parse_shard_name(fs::path(path).filename().string());
    types.clear();
    if (name && d.types.count(name->first)) types[name->first] = d.types.at(name->first);
    else types[fs::path(path).stem().string()] = {path};
  }
  Json shards = Json::object();
  Json per_type = Json::object();
  uint64_t file_bytes = 0;
  uint32_t minor = 0;
  for (const auto& [type, files] : types) {
    shards[type] = files;
    const auto reader = uqff::Reader::open(files);
    minor = reader->version_minor();
    for (const std::string& f : files) file_bytes += fs::file_size(f, ec);
    for (const auto& [k, v] : reader->metadata()) {
      if (r.metadata.contains(k)) continue;
      r.metadata_text.emplace_back(k, quoted(v, full));
      r.metadata[k] = v;
    }
    for (const uqff::Entry& e : reader->entries()) {
      Report::Tensor t;
      t.name = e.key;
      if (e.format == uqff::Format::kGguf) {
        t.type = is_known_quant_type(e.ggml_type)
                     ? quant_type_name(static_cast<QuantType>(e.ggml_type))
                     : "ggml type " + std::to_string(e.ggml_type);
        t.shape = e.shape;
      } else {
        t.type = uqff::format_name(e.format);
        t.shape = e.tensor("weight").shape;
      }
      int64_t elements = t.shape.empty() ? 0 : 1;
      for (int64_t n : t.shape) elements *= n;
      t.elements = elements;
      for (const auto& [suffix, view] : e.tensors) t.bytes += view->nbytes;
      per_type[t.type] = per_type.value(t.type, 0) + 1;
      r.tensors.push_back(std::move(t));
    }
  }
  r.header = Json{{"uqff_version", fmt::format("1.{}", minor)},
                  {"shards", shards},
                  {"file_bytes", file_bytes},
                  {"entries_per_type", per_type}};
  if (d.has_residual) {
    const auto res = safetensors::SafetensorsFile::open((fs::path(dir) / "residual.safetensors")
                                                            .string());
    Json residual = Json::array();
    for (const safetensors::TensorView& t : res->tensors()) residual.push_back(t.name);
    r.header["residual_tensors"] = residual;
  }
  if (d.has_report) {
    const JsonFile report = JsonFile::load((fs::path(dir) / "uqff_report.json").string());
    r.header["report"] = report.json();
  }
  return r;
}

bool starts_with_gguf_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

Report inspect_path(const std::string& path, bool full) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(path + ": no such file or directory");
  if (fs::is_directory(path, ec)) {
    const UqffDirectory d = scan_uqff_directory(path);
    if (!d.types.empty() && (d.looks_like_artifact || !d.has_source_weights))
      return inspect_uqff(path, full);
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.path().extension() == ".safetensors") return inspect_safetensors(path, full);
    }
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.path().extension() == ".gguf") {
        throw InvalidArgument(path + ": a directory of GGUF files; inspect one of them, e.g. " +
                              e.path().string());
      }
    }
    throw InvalidArgument(path + ": no .safetensors files in this directory");
  }
  // Opening a FIFO to sniff the magic would wait for a writer: refuse what is not a file first.
  if (!fs::is_regular_file(path, ec)) throw IoError(path + ": not a regular file");
  if (starts_with_gguf_magic(path)) return inspect_gguf(path, full);
  const std::string ext = fs::path(path).extension();
  if (ext == ".uqff") return inspect_uqff(path, full);
  if (ext == ".safetensors" || ext == ".json") return inspect_safetensors(path, full);
  if (ext == ".gguf") return inspect_gguf(path, full);  // reports the bad magic
  throw InvalidArgument(path +
                        ": not a GGUF or safetensors file (expected .gguf, .safetensors, "
                        "an index .json or a model directory)");
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) s += (s.empty() ? "" : " x ") + std::to_string(d);
  return s.empty() ? "scalar" : s;
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

std::string human_count(uint64_t n) {
  char buf[32];
  if (n >= 1000000000)
    std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1000000)
    std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1000)
    std::snprintf(buf, sizeof buf, "%.2fK", n / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%" PRIu64, n);
  return buf;
}

void print_text(const Report& r) {
  std::printf("file: %s\nformat: %s", terminal_safe(r.path).c_str(), r.format.c_str());
  for (const auto& [k, v] : r.header.items()) {
    if (v.is_array()) continue;
    const std::string value = v.dump(-1, ' ', false, Json::error_handler_t::replace);
    std::printf(", %s %s", terminal_safe(k).c_str(), terminal_safe(value).c_str());
  }
  std::printf("\n");
  if (r.header.contains("shards") && r.header["shards"].size() > 1) {
    std::printf("shards: %zu\n", r.header["shards"].size());
  }
  std::printf("\nmetadata (%zu):\n", r.metadata_text.size());
  for (const auto& [k, v] : r.metadata_text) {
    std::printf("  %s = %s\n", terminal_safe(k).c_str(), terminal_safe(v).c_str());
  }

  size_t name_w = 4, type_w = 4, shape_w = 5;
  for (const Report::Tensor& t : r.tensors) {
    name_w = std::max(name_w, t.name.size());
    type_w = std::max(type_w, t.type.size());
    shape_w = std::max(shape_w, shape_text(t.shape).size());
  }
  std::printf("\ntensors (%zu; shape %s):\n", r.tensors.size(), r.shape_order.c_str());
  std::printf("  %-*s  %-*s  %-*s  %14s\n", static_cast<int>(name_w), "name",
              static_cast<int>(type_w), "type", static_cast<int>(shape_w), "shape", "bytes");
  uint64_t params = 0, bytes = 0;
  for (const Report::Tensor& t : r.tensors) {
    std::printf("  %-*s  %-*s  %-*s  %14" PRIu64 "\n", static_cast<int>(name_w),
                escape(t.name).c_str(), static_cast<int>(type_w), t.type.c_str(),
                static_cast<int>(shape_w), shape_text(t.shape).c_str(), t.bytes);
    params += static_cast<uint64_t>(t.elements);
    bytes += t.bytes;
  }
  const double bpw =
      params == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(params);
  std::printf("\ntotals: %zu tensors, %" PRIu64 " parameters (%s), %" PRIu64
              " bytes (%s), %.3f bits per weight\n",
              r.tensors.size(), params, human_count(params).c_str(), bytes,
              human_bytes(bytes).c_str(), bpw);
}

void print_json(const Report& r) {
  Json out;
  out["file"] = r.path;
  out["format"] = r.format;
  for (const auto& [k, v] : r.header.items()) out[k] = v;
  out["metadata"] = r.metadata;
  out["shape_order"] = r.shape_order;
  Json tensors = Json::array();
  uint64_t params = 0, bytes = 0;
  for (const Report::Tensor& t : r.tensors) {
    tensors.push_back({{"name", t.name},
                       {"type", t.type},
                       {"shape", t.shape},
                       {"bytes", t.bytes},
                       {"elements", t.elements}});
    params += static_cast<uint64_t>(t.elements);
    bytes += t.bytes;
  }
  out["tensors"] = tensors;
  out["totals"] = {
      {"tensors", r.tensors.size()},
      {"parameters", params},
      {"bytes", bytes},
      {"bits_per_weight",
       params == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(params)}};
  const std::string s = out.dump(2, ' ', false, Json::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Print a model file's metadata, tensors, types and sizes (GGUF, safetensors, or a "
      "Hugging Face directory)");
  cmd->add_option("path", args->path,
                  "GGUF file, .safetensors file, index .json, or model directory")
      ->required();
  cmd->add_flag("--json", args->json, "Print JSON instead of text");
  cmd->add_flag("--full", args->full, "Print long arrays and strings in full");
  cmd->callback([args] {
    const Report r = inspect_path(args->path, args->full);
    if (args->json) {
      print_json(r);
    } else {
      print_text(r);
    }
  });
}

}  // namespace insitu::cli
