// Safetensors reader, sharded loader and writer. The validation follows the reference
// implementation's rules (huggingface/safetensors, safetensors/src/tensor.rs) where they protect
// memory safety; gaps between tensors are tolerated, overlaps are not.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>

#include "insitu/error.h"

namespace insitu::safetensors {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr uint64_t kMaxHeaderSize = 100'000'000;

static_assert(std::endian::native == std::endian::little);

struct DtypeRow {
  Dtype dtype;
  const char* name;
  size_t size;
};
constexpr DtypeRow kDtypes[] = {
    {Dtype::kBool, "BOOL", 1}, {Dtype::kU8, "U8", 1},          {Dtype::kI8, "I8", 1},
    {Dtype::kI16, "I16", 2},   {Dtype::kU16, "U16", 2},        {Dtype::kF16, "F16", 2},
    {Dtype::kBF16, "BF16", 2}, {Dtype::kI32, "I32", 4},        {Dtype::kU32, "U32", 4},
    {Dtype::kF32, "F32", 4},   {Dtype::kF64, "F64", 8},        {Dtype::kI64, "I64", 8},
    {Dtype::kU64, "U64", 8},   {Dtype::kF8E4M3, "F8_E4M3", 1}, {Dtype::kF8E5M2, "F8_E5M2", 1},
};

[[noreturn]] void fail(const std::string& file, const std::string& item, const std::string& why) {
  throw FormatError("safetensors: " + file + ": " + (item.empty() ? "" : item + ": ") + why);
}

std::string json_kind(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
      return "negative integer";
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "float";
    default:
      return "value";
  }
}

// Parses JSON text, rejecting duplicate keys in the top-level object (a hostile file could
// otherwise hide an entry). Parse errors carry nlohmann's line/column.
// Finds a repeated top-level key in one linear SAX pass (nlohmann keeps the last silently).
// A parse callback would do it too, but nlohmann's callback parser rescans the parent object at
// the end of every nested object, which is quadratic in the tensor count.
class DuplicateKeyFinder : public nlohmann::json_sax<Json> {
 public:
  bool found = false;
  std::string duplicate;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth_, true; }
  bool end_object() override { return --depth_, true; }
  bool start_array(std::size_t) override { return ++depth_, true; }
  bool end_array() override { return --depth_, true; }
  bool key(string_t& k) override {
    if (depth_ != 1 || seen_.insert(k).second) return true;
    found = true;
    duplicate = k;
    return false;  // stops the pass
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;  // the full parse below reports it with its position
  }

 private:
  int depth_ = 0;
  std::unordered_set<std::string> seen_;
};

Json parse_header_json(std::string_view text, const std::string& file) {
  DuplicateKeyFinder finder;
  Json::sax_parse(text.begin(), text.end(), &finder);
  if (finder.found) fail(file, "header", "duplicate key '" + finder.duplicate + "'");
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    fail(file, "header", std::string("invalid JSON: ") + e.what());
  }
}

uint64_t checked_elements(const std::vector<int64_t>& shape, bool* overflow) {
  uint64_t n = 1;
  *overflow = false;
  for (int64_t d : shape) {
    const auto u = static_cast<uint64_t>(d);
    if (u != 0 && n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / u) {
      *overflow = true;
      return 0;
    }
    n *= u;
  }
  return n;
}

}  // namespace

const char* dtype_name(Dtype d) {
  for (const DtypeRow& r : kDtypes) {
    if (r.dtype == d) return r.name;
  }
  return "unknown";
}

size_t dtype_size(Dtype d) {
  for (const DtypeRow& r : kDtypes) {
    if (r.dtype == d) return r.size;
  }
  return 0;
}

std::optional<Dtype> parse_dtype(std::string_view name) {
  for (const DtypeRow& r : kDtypes) {
    if (name == r.name) return r.dtype;
  }
  return std::nullopt;
}

std::string dtype_name_list() {
  std::string s;
  for (const DtypeRow& r : kDtypes) {
    if (!s.empty()) s += ' ';
    s += r.name;
  }
  return s;
}

int64_t TensorView::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- SafetensorsFile ---------------------------------------------------------------------------

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto mapping = MappedFile::open(path);
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->file_ = mapping;
  f->parse_bytes(mapping->bytes());
  return f;
}

std::shared_ptr<const SafetensorsFile> SafetensorsFile::parse(std::span<const uint8_t> bytes,
                                                              const std::string& name) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = name;
  f->parse_bytes(bytes);
  return f;
}

void SafetensorsFile::parse_bytes(std::span<const uint8_t> bytes) {
  const std::string& file = path_;
  if (bytes.size() < 8) {
    fail(file, "header",
         "truncated: " + std::to_string(bytes.size()) +
             " bytes, need at least 8 for the header length");
  }
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > kMaxHeaderSize) {
    fail(file, "header",
         "length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderSize) +
             " bytes");
  }
  if (n > bytes.size() - 8) {
    fail(file, "header",
         "length " + std::to_string(n) + " runs past the end of the " +
             std::to_string(bytes.size()) + "-byte file");
  }
  if (n < 2 || bytes[8] != '{') {
    fail(file, "header", "does not start with a JSON object ('{')");
  }
  data_offset_ = 8 + n;
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), n);
  const Json header = parse_header_json(text, file);
  if (!header.is_object())
    fail(file, "header", "is a JSON " + json_kind(header) + ", not an object");

  const uint64_t data_size = bytes.size() - data_offset_;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        fail(file, "__metadata__", "expected an object, got " + json_kind(entry));
      }
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) {
          fail(file, "__metadata__ key '" + k + "'", "expected a string, got " + json_kind(v));
        }
        metadata_.emplace(k, v.get<std::string>());
      }
      continue;
    }
    const std::string item = "tensor '" + name + "'";
    if (!entry.is_object()) fail(file, item, "expected an object, got " + json_kind(entry));
    TensorView t;
    t.name = name;

    const auto dt = entry.find("dtype");
    if (dt == entry.end()) fail(file, item, "missing field 'dtype'");
    if (!dt->is_string())
      fail(file, item, "field 'dtype': expected a string, got " + json_kind(*dt));
    const auto dtype = parse_dtype(dt->get_ref<const std::string&>());
    if (!dtype) {
      fail(file, item,
           "dtype '" + dt->get<std::string>() + "' unsupported; supported: " + dtype_name_list());
    }
    t.dtype = *dtype;

    const auto sh = entry.find("shape");
    if (sh == entry.end()) fail(file, item, "missing field 'shape'");
    if (!sh->is_array())
      fail(file, item, "field 'shape': expected an array, got " + json_kind(*sh));
    for (const Json& d : *sh) {
      if (!d.is_number_unsigned() ||
          d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(file, item, "field 'shape': dimension " + d.dump() + " is not a non-negative integer");
      }
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }

    const auto off = entry.find("data_offsets");
    if (off == entry.end()) fail(file, item, "missing field 'data_offsets'");
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned()) {
      fail(file, item,
           "field 'data_offsets': expected [begin, end] of non-negative integers, got " +
               off->dump());
    }
    const uint64_t begin = (*off)[0].get<uint64_t>();
    const uint64_t end = (*off)[1].get<uint64_t>();
    if (begin > end) {
      fail(file, item,
           "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
               "] are out of order");
    }
    if (end > data_size) {
      fail(file, item,
           "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
               "] run past the end of the " + std::to_string(data_size) + "-byte data section");
    }
    bool overflow = false;
    const uint64_t elements = checked_elements(t.shape, &overflow);
    if (overflow ||
        (elements != 0 && dtype_size(t.dtype) > std::numeric_limits<uint64_t>::max() / elements)) {
      fail(file, item, "element count of the shape overflows");
    }
    const uint64_t want = elements * dtype_size(t.dtype);
    if (end - begin != want) {
      std::string shape;
      for (int64_t d : t.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
      fail(file, item,
           "data_offsets span " + std::to_string(end - begin) + " bytes but shape [" + shape +
               "] of " + dtype_name(t.dtype) + " needs " + std::to_string(want));
    }
    t.offset = begin;
    t.nbytes = want;
    t.data = bytes.data() + data_offset_ + begin;
    tensors_.push_back(std::move(t));
  }

  std::sort(tensors_.begin(), tensors_.end(), [](const TensorView& a, const TensorView& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.name < b.name;
  });
  const TensorView* prev = nullptr;
  for (const TensorView& t : tensors_) {
    if (t.nbytes == 0) continue;
    if (prev != nullptr && t.offset < prev->offset + prev->nbytes) {
      fail(file, "tensor '" + t.name + "'",
           "data_offsets [" + std::to_string(t.offset) + ", " +
               std::to_string(t.offset + t.nbytes) + "] overlap tensor '" + prev->name + "'");
    }
    prev = &t;
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& SafetensorsFile::tensor(std::string_view name) const {
  const TensorView* t = find(name);
  if (t == nullptr) fail(path_, "tensor '" + std::string(name) + "'", "missing");
  return *t;
}

void SafetensorsFile::release(const TensorView& t) const {
  if (file_ != nullptr) file_->release_pages(data_offset_ + t.offset, t.nbytes);
}

// ---- ShardedSafetensors ------------------------------------------------------------------------

std::shared_ptr<const ShardedSafetensors> ShardedSafetensors::open(const std::string& path) {
  std::shared_ptr<ShardedSafetensors> s(new ShardedSafetensors());
  s->path_ = path;
  std::error_code ec;
  fs::path index_path;
  fs::path dir;
  if (fs::is_directory(path, ec)) {
    dir = path;
    if (fs::exists(dir / "model.safetensors.index.json", ec)) {
      index_path = dir / "model.safetensors.index.json";
    } else if (fs::exists(dir / "model.safetensors", ec)) {
      s->shards_.push_back(SafetensorsFile::open((dir / "model.safetensors").string()));
    } else {
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
      }
      if (ec) throw IoError(path + ": cannot list directory: " + ec.message());
      std::sort(files.begin(), files.end());
      if (files.empty()) throw IoError(path + ": no .safetensors files in directory");
      for (const std::string& f : files) s->shards_.push_back(SafetensorsFile::open(f));
    }
  } else if (fs::path(path).extension() == ".json") {
    index_path = path;
    dir = fs::path(path).parent_path();
  } else {
    s->shards_.push_back(SafetensorsFile::open(path));
  }

  if (index_path.empty()) {
    for (size_t i = 0; i < s->shards_.size(); ++i) s->add_shard_tensors(i, s->shards_[i]->path());
    return s;
  }

  // The index is small JSON; map it like any other untrusted file.
  const std::string ipath = index_path.string();
  auto mapping = MappedFile::open(ipath);
  Json index;
  try {
    index = Json::parse(mapping->bytes().begin(), mapping->bytes().end());
  } catch (const Json::exception& e) {
    fail(ipath, "", std::string("invalid JSON: ") + e.what());
  }
  if (!index.is_object()) fail(ipath, "", "expected a JSON object, got " + json_kind(index));
  if (auto m = index.find("metadata"); m != index.end() && m->is_object()) {
    for (const auto& [k, v] : m->items()) {
      s->index_metadata_.emplace(k, v.is_string() ? v.get<std::string>() : v.dump());
    }
  }
  const auto wm = index.find("weight_map");
  if (wm == index.end()) fail(ipath, "", "missing field 'weight_map'");
  if (!wm->is_object()) fail(ipath, "weight_map", "expected an object, got " + json_kind(*wm));
  std::map<std::string, size_t> shard_of_file;
  for (const auto& [tensor, shard] : wm->items()) {
    const std::string item = "weight_map tensor '" + tensor + "'";
    if (!shard.is_string())
      fail(ipath, item, "expected a shard file name, got " + json_kind(shard));
    const std::string name = shard.get<std::string>();
    const fs::path rel(name);
    bool escapes = name.empty() || rel.is_absolute();
    for (const auto& part : rel) escapes = escapes || part == "..";
    if (escapes) fail(ipath, item, "shard '" + name + "' is not a file inside the model directory");
    auto it = shard_of_file.find(name);
    if (it == shard_of_file.end()) {
      s->shards_.push_back(SafetensorsFile::open((dir / rel).string()));
      it = shard_of_file.emplace(name, s->shards_.size() - 1).first;
    }
    const TensorView* t = s->shards_[it->second]->find(tensor);
    if (t == nullptr) fail(ipath, item, "not found in shard '" + name + "'");
    s->by_name_.emplace(tensor, std::make_pair(it->second, t));
  }
  return s;
}

void ShardedSafetensors::add_shard_tensors(size_t shard, const std::string& origin) {
  for (const TensorView& t : shards_[shard]->tensors()) {
    auto [it, inserted] = by_name_.emplace(t.name, std::make_pair(shard, &t));
    if (!inserted) {
      fail(origin, "tensor '" + t.name + "'",
           "also present in " + shards_[it->second.first]->path());
    }
  }
}

std::vector<std::string> ShardedSafetensors::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, where] : by_name_) names.push_back(name);
  return names;
}

const TensorView* ShardedSafetensors::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.second;
}

const TensorView& ShardedSafetensors::tensor(std::string_view name) const {
  const TensorView* t = find(name);
  if (t == nullptr) fail(path_, "tensor '" + std::string(name) + "'", "missing");
  return *t;
}

const SafetensorsFile& ShardedSafetensors::shard_of(std::string_view name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) fail(path_, "tensor '" + std::string(name) + "'", "missing");
  return *shards_[it->second.first];
}

// ---- SafetensorsWriter -------------------------------------------------------------------------

namespace {
[[noreturn]] void bad(const std::string& what, const std::string& why) {
  throw InvalidArgument("safetensors writer: " + what + ": " + why);
}
}  // namespace

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

size_t SafetensorsWriter::add_tensor(std::string name, Dtype dtype, std::vector<int64_t> shape,
                                     Producer produce) {
  const std::string what = "tensor '" + name + "'";
  if (name.empty()) bad("tensor", "empty name");
  if (name == "__metadata__") bad(what, "reserved name");
  for (const Planned& t : tensors_) {
    if (t.name == name) bad(what, "duplicate tensor name");
  }
  for (int64_t d : shape) {
    if (d < 0) bad(what, "negative dimension " + std::to_string(d));
  }
  bool overflow = false;
  const uint64_t elements = checked_elements(shape, &overflow);
  const size_t size = dtype_size(dtype);
  if (size == 0) bad(what, "unknown dtype");
  if (overflow || (elements != 0 && size > std::numeric_limits<uint64_t>::max() / elements)) {
    bad(what, "size overflows");
  }
  if (!produce) bad(what, "no producer");
  tensors_.push_back(
      Planned{std::move(name), dtype, std::move(shape), elements * size, std::move(produce)});
  return tensors_.size() - 1;
}

size_t SafetensorsWriter::add_tensor(std::string name, Dtype dtype, std::vector<int64_t> shape,
                                     std::span<const uint8_t> data) {
  const std::string n = name;
  const size_t i = add_tensor(std::move(name), dtype, std::move(shape),
                              [data](ByteSink& out) { out.write(data); });
  if (tensors_[i].nbytes != data.size()) {
    const uint64_t want = tensors_[i].nbytes;
    tensors_.pop_back();
    bad("tensor '" + n + "'", "given " + std::to_string(data.size()) +
                                  " bytes, its shape and dtype need " + std::to_string(want));
  }
  return i;
}

std::string SafetensorsWriter::header_json() const {
  // ordered_json keeps __metadata__ first and tensors in data order, like the reference writer.
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata_.empty()) h["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const Planned& t : tensors_) {
    h[t.name] = {{"dtype", dtype_name(t.dtype)},
                 {"shape", t.shape},
                 {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string text = h.dump();
  // Pad with spaces so the data section is 8-byte aligned.
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  return text;
}

void SafetensorsWriter::write(const std::string& path) const {
  const std::string header = header_json();
  AtomicFile out(path);
  const uint64_t n = header.size();
  out.write(&n, 8);
  out.write(header.data(), header.size());
  for (const Planned& t : tensors_) {
    // Counts what the producer writes, refusing more than the tensor's size.
    class Bounded final : public ByteSink {
     public:
      Bounded(ByteSink& o, const Planned& p) : out(o), plan(p) {}
      using ByteSink::write;
      void write(std::span<const uint8_t> bytes) override {
        if (bytes.size() > plan.nbytes - written) {
          bad("tensor '" + plan.name + "'",
              "producer wrote more than the tensor's " + std::to_string(plan.nbytes) + " bytes");
        }
        out.write(bytes);
        written += bytes.size();
      }
      ByteSink& out;
      const Planned& plan;
      uint64_t written = 0;
    } sink(out, t);
    t.produce(sink);
    if (sink.written != t.nbytes) {
      bad("tensor '" + t.name + "'", "producer wrote " + std::to_string(sink.written) +
                                         " of the tensor's " + std::to_string(t.nbytes) + " bytes");
    }
  }
  out.commit();
}

}  // namespace insitu::safetensors
