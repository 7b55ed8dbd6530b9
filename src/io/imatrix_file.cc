// imatrix readers and writers. Layouts follow llama.cpp as vendored in llama-cpp-python
// 0.3.36 (tools/imatrix/imatrix.cpp, common/imatrix-loader.cpp, tools/quantize/quantize.cpp) and
// mistral.rs's CollectedImatrixData (mistralrs-quant/src/imatrix.rs) for .cimatrix.
#include "io/imatrix_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "insitu/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/mapped_file.h"

namespace insitu {
namespace {

[[noreturn]] void fail(const std::string& file, const std::string& item, const std::string& why) {
  throw FormatError("imatrix: " + file + ": " + (item.empty() ? "" : item + ": ") + why);
}

void check_values(const std::string& file, const std::string& item, const float* v, size_t n,
                  const char* what) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i]) || v[i] < 0) {
      fail(file, item,
           std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(v[i]) +
               " is not a finite non-negative number");
    }
  }
}

// A bounds-checked little-endian cursor for the two binary formats.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> b, const std::string& file) : b_(b), file_(file) {}
  size_t remaining() const { return b_.size() - pos_; }
  bool done() const { return pos_ == b_.size(); }

  template <typename T>
  T read(const std::string& item, const char* what) {
    if (remaining() < sizeof(T)) {
      fail(file_, item,
           std::string("truncated reading ") + what + " at offset " + std::to_string(pos_));
    }
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_bytes(uint64_t n, const std::string& item, const char* what) {
    if (n > remaining()) {
      fail(file_, item,
           std::string(what) + " length " + std::to_string(n) + " runs past the end of the file");
    }
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::vector<float> read_floats(uint64_t n, const std::string& item) {
    if (n > remaining() / sizeof(float)) {
      fail(file_, item, std::to_string(n) + " values run past the end of the file");
    }
    std::vector<float> v(n);
    if (n > 0) std::memcpy(v.data(), b_.data() + pos_, n * sizeof(float));
    pos_ += n * sizeof(float);
    return v;
  }

 private:
  std::span<const uint8_t> b_;
  const std::string& file_;
  size_t pos_ = 0;
};

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<float> ImatrixEntry::importance() const {
  std::vector<float> out(sums.size());
  for (int64_t m = 0; m < n_mat; ++m) {
    const float c = counts[static_cast<size_t>(m)];
    for (int64_t j = 0; j < n_cols; ++j) {
      const size_t i = static_cast<size_t>(m * n_cols + j);
      out[i] = c > 0 ? sums[i] / c : 1.0f;
    }
  }
  return out;
}

std::map<std::string, std::vector<float>> Imatrix::importance() const {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, e] : entries) out.emplace(name, e.importance());
  return out;
}

Imatrix Imatrix::load(const std::string& path) {
  auto f = MappedFile::open(path);
  return parse(f->bytes(), path);
}

namespace {
Imatrix from_gguf(const gguf::GgufFile& g, const std::string& path);
Imatrix from_legacy(std::span<const uint8_t> bytes, const std::string& path);
Imatrix from_cimatrix(std::span<const uint8_t> bytes, const std::string& path);
}  // namespace

Imatrix Imatrix::parse(std::span<const uint8_t> bytes, const std::string& name) {
  if (std::filesystem::path(name).extension() == ".cimatrix") return from_cimatrix(bytes, name);
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) {
    return from_gguf(*gguf::GgufFile::parse(bytes, name), name);
  }
  return from_legacy(bytes, name);
}

Imatrix Imatrix::load_gguf(const std::string& path) {
  return from_gguf(*gguf::GgufFile::open(path), path);
}

Imatrix Imatrix::load_legacy(const std::string& path) {
  auto f = MappedFile::open(path);
  return from_legacy(f->bytes(), path);
}

Imatrix Imatrix::load_cimatrix(const std::string& path) {
  auto f = MappedFile::open(path);
  return from_cimatrix(f->bytes(), path);
}

namespace {

Imatrix from_gguf(const gguf::GgufFile& gf, const std::string& path) {
  const gguf::GgufFile* g = &gf;
  Imatrix im;
  const std::string type = g->get_string("general.type", "imatrix");
  if (type != "imatrix") fail(path, "key 'general.type'", "is '" + type + "', not 'imatrix'");
  if (const gguf::Array* ds = g->get_array("imatrix.datasets")) {
    for (const gguf::Value& v : ds->items) im.datasets.push_back(v.as_string("imatrix.datasets"));
  }
  im.chunk_count = g->get_i64("imatrix.chunk_count", 0);
  im.chunk_size = g->get_i64("imatrix.chunk_size", 0);

  auto f32_data = [&](const gguf::TensorInfo& t) {
    if (t.type != QuantType::kF32) {
      fail(path, "tensor '" + t.name + "'", "type " + quant_type_name(t.type) + ", expected f32");
    }
    const auto* p = reinterpret_cast<const float*>(t.data);
    std::vector<float> v(static_cast<size_t>(t.n_elements()));
    if (!v.empty()) std::memcpy(v.data(), p, v.size() * sizeof(float));
    return v;
  };
  constexpr std::string_view kSums = ".in_sum2";
  constexpr std::string_view kCounts = ".counts";
  constexpr std::string_view kSum = ".in_sum";
  for (const gguf::TensorInfo& t : g->tensors()) {
    if (ends_with(t.name, kCounts) || ends_with(t.name, kSum)) continue;
    if (!ends_with(t.name, kSums)) {
      fail(path, "tensor '" + t.name + "'", "not an imatrix tensor (.in_sum2/.counts/.in_sum)");
    }
    const std::string name = t.name.substr(0, t.name.size() - kSums.size());
    const std::string item = "entry '" + name + "'";
    const gguf::TensorInfo* c = g->find_tensor(name + std::string(kCounts));
    if (c == nullptr) fail(path, item, "has " + t.name + " but no " + name + ".counts");
    if (t.ne.size() > 2 || c->ne.size() > 2) fail(path, item, "tensors must be 1-D or 2-D");
    ImatrixEntry e;
    e.n_cols = t.ne[0];
    e.n_mat = t.ne.size() == 2 ? t.ne[1] : 1;
    const int64_t c_mat = c->ne.size() == 2 ? c->ne[1] : 1;
    if (c->ne[0] != 1 || c_mat != e.n_mat) {
      fail(path, item, "counts shape does not match " + std::to_string(e.n_mat) + " matrices");
    }
    e.sums = f32_data(t);
    e.counts = f32_data(*c);
    check_values(path, item, e.sums.data(), e.sums.size(), "in_sum2");
    check_values(path, item, e.counts.data(), e.counts.size(), "counts");
    im.entries.emplace(name, std::move(e));
  }
  for (const gguf::TensorInfo& t : g->tensors()) {
    if (ends_with(t.name, kCounts)) {
      const std::string name = t.name.substr(0, t.name.size() - kCounts.size());
      if (im.entries.count(name) == 0)
        fail(path, "entry '" + name + "'", "has counts but no in_sum2");
    }
  }
  return im;
}

Imatrix from_legacy(std::span<const uint8_t> bytes, const std::string& path) {
  Cursor r(bytes, path);
  Imatrix im;
  const int32_t n = r.read<int32_t>("header", "entry count");
  // Each entry needs at least 16 bytes (len, ncall, nval, one value).
  if (n <= 0 || static_cast<uint64_t>(n) > r.remaining() / 16) {
    fail(path, "header",
         "entry count " + std::to_string(n) + " is not plausible for a " +
             std::to_string(bytes.size()) + "-byte file");
  }
  for (int32_t i = 0; i < n; ++i) {
    const std::string idx = "entry " + std::to_string(i);
    const int32_t len = r.read<int32_t>(idx, "name length");
    if (len <= 0) fail(path, idx, "name length " + std::to_string(len));
    const std::string name = r.read_bytes(static_cast<uint64_t>(len), idx, "name");
    const std::string item = "entry '" + name + "'";
    const int32_t ncall = r.read<int32_t>(item, "ncall");
    const int32_t nval = r.read<int32_t>(item, "value count");
    if (nval <= 0) fail(path, item, "value count " + std::to_string(nval));
    ImatrixEntry e;
    e.sums = r.read_floats(static_cast<uint64_t>(nval), item);
    check_values(path, item, e.sums.data(), e.sums.size(), "values");
    e.n_cols = nval;
    e.n_mat = 1;
    e.counts = {ncall > 0 ? static_cast<float>(ncall) : 1.0f};
    if (!im.entries.emplace(name, std::move(e)).second) fail(path, item, "duplicate entry");
  }
  // Optional trailer: last chunk, then the dataset name.
  if (r.remaining() >= 4) {
    im.chunk_count = r.read<int32_t>("trailer", "chunk count");
    if (r.remaining() >= 4) {
      const int32_t len = r.read<int32_t>("trailer", "dataset name length");
      if (len < 0) fail(path, "trailer", "dataset name length " + std::to_string(len));
      im.datasets.push_back(r.read_bytes(static_cast<uint64_t>(len), "trailer", "dataset name"));
    }
  }
  return im;
}

Imatrix from_cimatrix(std::span<const uint8_t> bytes, const std::string& path) {
  Cursor r(bytes, path);
  Imatrix im;
  const uint64_t n = r.read<uint64_t>("header", "entry count");
  if (n > r.remaining() / 16) {  // key_len + n_values at least
    fail(path, "header", "entry count " + std::to_string(n) + " cannot fit in the file");
  }
  for (uint64_t i = 0; i < n; ++i) {
    const std::string idx = "entry " + std::to_string(i);
    const uint64_t len = r.read<uint64_t>(idx, "key length");
    const std::string key = r.read_bytes(len, idx, "key");
    const std::string item = "entry '" + key + "'";
    const uint64_t nval = r.read<uint64_t>(item, "value count");
    ImatrixEntry e;
    e.sums = r.read_floats(nval, item);
    check_values(path, item, e.sums.data(), e.sums.size(), "values");
    e.n_cols = static_cast<int64_t>(nval);
    e.counts = {1.0f};
    if (!im.entries.emplace(key, std::move(e)).second) fail(path, item, "duplicate entry");
  }
  if (!r.done())
    fail(path, "", std::to_string(r.remaining()) + " unexpected bytes after the entries");
  return im;
}

}  // namespace

namespace {

void check_entry(const std::string& name, const ImatrixEntry& e) {
  if (e.n_cols <= 0 || e.n_mat <= 0 ||
      e.sums.size() != static_cast<size_t>(e.n_cols) * static_cast<size_t>(e.n_mat) ||
      e.counts.size() != static_cast<size_t>(e.n_mat)) {
    throw InvalidArgument("imatrix: entry '" + name + "': " + std::to_string(e.sums.size()) +
                          " sums and " + std::to_string(e.counts.size()) + " counts for " +
                          std::to_string(e.n_mat) + " x " + std::to_string(e.n_cols));
  }
}

template <typename T>
void put(ByteSink& out, T v) {
  out.write(&v, sizeof v);
}

int32_t checked_i32(uint64_t v, const std::string& what) {
  if (v > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()))
    throw InvalidArgument("imatrix: " + what + " " + std::to_string(v) +
                          " does not fit the .dat form");
  return static_cast<int32_t>(v);
}

}  // namespace

void Imatrix::save_dat(const std::string& path) const {
  for (const auto& [name, e] : entries) check_entry(name, e);
  const float chunk = chunk_size > 0 ? static_cast<float>(chunk_size) : 1.0f;
  std::vector<const std::string*> stored;
  for (const auto& [name, e] : entries) {
    bool any = false;
    for (float c : e.counts) any = any || c > 0;
    if (any) stored.push_back(&name);  // llama.cpp skips entries without data
  }
  AtomicFile out(path);
  put(out, checked_i32(stored.size(), "entry count"));
  for (const std::string* name : stored) {
    const ImatrixEntry& e = entries.at(*name);
    put(out, checked_i32(name->size(), "name length of '" + *name + "'"));
    out.write(name->data(), name->size());
    float max_count = 0;
    for (float c : e.counts) max_count = std::max(max_count, c);
    // llama.cpp: (max(counts) + chunk_size - 1) / chunk_size in integers.
    const int32_t ncall = checked_i32(static_cast<uint64_t>(std::ceil(max_count / chunk)), "ncall");
    put(out, ncall);
    put(out, checked_i32(e.sums.size(), "value count of '" + *name + "'"));
    std::vector<float> values(e.sums.size());
    for (size_t i = 0; i < values.size(); ++i) {
      float count = e.counts[i / static_cast<size_t>(e.n_cols)];
      float value = e.sums[i];
      if (count == 0.0f) value = count = 1.0f;  // as llama.cpp stores a matrix without data
      values[i] = (value / count) * static_cast<float>(ncall);
    }
    out.write(values.data(), values.size() * sizeof(float));
  }
  put(out, checked_i32(static_cast<uint64_t>(std::max<int64_t>(chunk_count, 0)), "chunk_count"));
  const std::string dataset = datasets.empty() ? std::string() : datasets.back();
  put(out, checked_i32(dataset.size(), "dataset name length"));
  out.write(dataset.data(), dataset.size());
  out.commit();
}

void Imatrix::save_cimatrix(const std::string& path) const {
  for (const auto& [name, e] : entries) check_entry(name, e);
  const float ncalls = static_cast<float>(std::max<int64_t>(chunk_count, 1));
  AtomicFile out(path);
  put(out, static_cast<uint64_t>(entries.size()));
  for (const auto& [name, e] : entries) {
    put(out, static_cast<uint64_t>(name.size()));
    out.write(name.data(), name.size());
    put(out, static_cast<uint64_t>(e.sums.size()));
    std::vector<float> values(e.sums.size());
    for (size_t i = 0; i < values.size(); ++i) {
      const float count = e.counts[i / static_cast<size_t>(e.n_cols)];
      values[i] = count > 0 ? e.sums[i] / count * ncalls : 0.0f;
    }
    out.write(values.data(), values.size() * sizeof(float));
  }
  out.commit();
}

void Imatrix::save_gguf(const std::string& path) const {
  gguf::GgufWriter w;
  w.set("general.type", gguf::Value::string("imatrix"));
  std::vector<gguf::Value> ds;
  for (const std::string& d : datasets) ds.push_back(gguf::Value::string(d));
  w.set("imatrix.datasets", gguf::Value::array(gguf::ValueType::kString, std::move(ds)));
  auto u32 = [](int64_t x, const char* what) {
    if (x < 0 || x > 0xFFFFFFFFll) {
      throw InvalidArgument(std::string("imatrix: ") + what + " " + std::to_string(x) +
                            " out of range");
    }
    return gguf::Value::u32(static_cast<uint32_t>(x));
  };
  w.set("imatrix.chunk_count", u32(chunk_count, "chunk_count"));
  w.set("imatrix.chunk_size", u32(chunk_size, "chunk_size"));
  for (const auto& [name, e] : entries) {  // std::map: sorted by name, as llama.cpp writes them
    check_entry(name, e);
    auto bytes = [](const std::vector<float>& v) {
      return std::span(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float));
    };
    w.add_tensor(name + ".in_sum2", QuantType::kF32, {e.n_cols, e.n_mat}, bytes(e.sums));
    w.add_tensor(name + ".counts", QuantType::kF32, {1, e.n_mat}, bytes(e.counts));
  }
  w.write(path);
}

}  // namespace insitu
