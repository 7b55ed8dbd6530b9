// GGUF reader. The validation rules follow ggml's own reader (ggml/src/gguf.cpp, llama.cpp as
// vendored in llama-cpp-python 0.3.36) where they protect memory safety, and are a little more
// permissive where the spec is: arrays may nest (bounded depth), and tensor data need not follow
// the running-sum layout as long as every tensor is aligned, in range and disjoint from the others.
#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "insitu/error.h"

namespace insitu::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxKeyLength = 65535;          // spec: keys are at most 65535 bytes
constexpr uint64_t kMaxTensorNameLength = 63;      // GGML_MAX_NAME (64) includes the NUL
constexpr uint64_t kMaxStringLength = 1ull << 30;  // ggml's GGUF_MAX_STRING_LENGTH
constexpr int kMaxArrayDepth = 8;                  // nesting beyond this is hostile, not useful
constexpr uint32_t kMaxDims = 4;

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes little-endian");

[[noreturn]] void fail(const std::string& file, const std::string& item, const std::string& why) {
  throw FormatError("gguf: " + file + ": " + (item.empty() ? "" : item + ": ") + why);
}

// The fewest bytes one element of a type occupies on disk; bounds array counts before allocation.
uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::kU8:
    case ValueType::kI8:
    case ValueType::kBool:
      return 1;
    case ValueType::kU16:
    case ValueType::kI16:
      return 2;
    case ValueType::kU32:
    case ValueType::kI32:
    case ValueType::kF32:
      return 4;
    case ValueType::kU64:
    case ValueType::kI64:
    case ValueType::kF64:
      return 8;
    case ValueType::kString:
      return 8;  // u64 length
    case ValueType::kArray:
      return 12;  // u32 type + u64 count
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kF64); }

// A bounds-checked cursor over the file image.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, const std::string& file) : bytes_(bytes), file_(file) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  T read(const std::string& item, const char* what) {
    if (remaining() < sizeof(T)) {
      fail(file_, item,
           std::string("truncated: need ") + std::to_string(sizeof(T)) + " bytes for " + what +
               " at offset " + std::to_string(pos_) + ", file has " +
               std::to_string(bytes_.size()));
    }
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& item, const char* what, uint64_t max_len) {
    const uint64_t len = read<uint64_t>(item, what);
    if (len > max_len) {
      fail(file_, item,
           std::string(what) + " length " + std::to_string(len) + " exceeds the limit of " +
               std::to_string(max_len));
    }
    if (len > remaining()) {
      fail(file_, item,
           std::string(what) + " length " + std::to_string(len) + " at offset " +
               std::to_string(pos_) + " runs past the end of the file (" +
               std::to_string(remaining()) + " bytes left)");
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return s;
  }

  const std::string& file() const { return file_; }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& file_;
  size_t pos_ = 0;
};

Value read_value(Reader& r, ValueType type, const std::string& item, int depth);

Array read_array(Reader& r, const std::string& item, int depth) {
  if (depth >= kMaxArrayDepth) {
    fail(r.file(), item, "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
  }
  const uint32_t raw_type = r.read<uint32_t>(item, "array element type");
  if (!valid_value_type(raw_type)) {
    fail(r.file(), item, "array element type " + std::to_string(raw_type) + " is not a GGUF type");
  }
  const auto elem = static_cast<ValueType>(raw_type);
  const uint64_t count = r.read<uint64_t>(item, "array count");
  // Every element needs at least min_encoded_size bytes, so a count the file cannot hold is
  // rejected here, before anything is allocated.
  if (count > r.remaining() / min_encoded_size(elem)) {
    fail(r.file(), item,
         "array of " + std::to_string(count) + " " + value_type_name(elem) +
             " elements cannot fit in the " + std::to_string(r.remaining()) + " bytes left");
  }
  Array a;
  a.elem_type = elem;
  a.items.reserve(count);
  for (uint64_t i = 0; i < count; ++i) a.items.push_back(read_value(r, elem, item, depth + 1));
  return a;
}

Value read_value(Reader& r, ValueType type, const std::string& item, int depth) {
  Value v;
  v.type = type;
  switch (type) {
    case ValueType::kU8:
      v.v = uint64_t{r.read<uint8_t>(item, "u8")};
      break;
    case ValueType::kI8:
      v.v = int64_t{r.read<int8_t>(item, "i8")};
      break;
    case ValueType::kU16:
      v.v = uint64_t{r.read<uint16_t>(item, "u16")};
      break;
    case ValueType::kI16:
      v.v = int64_t{r.read<int16_t>(item, "i16")};
      break;
    case ValueType::kU32:
      v.v = uint64_t{r.read<uint32_t>(item, "u32")};
      break;
    case ValueType::kI32:
      v.v = int64_t{r.read<int32_t>(item, "i32")};
      break;
    case ValueType::kU64:
      v.v = r.read<uint64_t>(item, "u64");
      break;
    case ValueType::kI64:
      v.v = r.read<int64_t>(item, "i64");
      break;
    case ValueType::kF32:
      v.v = double{r.read<float>(item, "f32")};
      break;
    case ValueType::kF64:
      v.v = r.read<double>(item, "f64");
      break;
    case ValueType::kBool: {
      const uint8_t b = r.read<uint8_t>(item, "bool");
      if (b > 1) fail(r.file(), item, "bool value " + std::to_string(b) + " is not 0 or 1");
      v.v = b != 0;
      break;
    }
    case ValueType::kString:
      v.v = r.read_string(item, "string", kMaxStringLength);
      break;
    case ValueType::kArray:
      v.v = read_array(r, item, depth);
      break;
  }
  return v;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kU8:
      return "u8";
    case ValueType::kI8:
      return "i8";
    case ValueType::kU16:
      return "u16";
    case ValueType::kI16:
      return "i16";
    case ValueType::kU32:
      return "u32";
    case ValueType::kI32:
      return "i32";
    case ValueType::kF32:
      return "f32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kU64:
      return "u64";
    case ValueType::kI64:
      return "i64";
    case ValueType::kF64:
      return "f64";
  }
  return "unknown";
}

// ---- Value -------------------------------------------------------------------------------------

namespace {
[[noreturn]] void wrong_type(std::string_view what, const char* expected, ValueType got) {
  throw FormatError(std::string(what) + ": expected " + expected + ", got " + value_type_name(got));
}
}  // namespace

uint64_t Value::as_u64(std::string_view what) const {
  if (const auto* u = std::get_if<uint64_t>(&v)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v)) {
    if (*i < 0) {
      throw FormatError(std::string(what) + ": expected a non-negative integer, got " +
                        std::to_string(*i));
    }
    return static_cast<uint64_t>(*i);
  }
  wrong_type(what, "an unsigned integer", type);
}

int64_t Value::as_i64(std::string_view what) const {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&v)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw FormatError(std::string(what) + ": value " + std::to_string(*u) +
                        " does not fit in a signed 64-bit integer");
    }
    return static_cast<int64_t>(*u);
  }
  wrong_type(what, "an integer", type);
}

double Value::as_f64(std::string_view what) const {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<uint64_t>(&v)) return static_cast<double>(*u);
  wrong_type(what, "a number", type);
}

bool Value::as_bool(std::string_view what) const {
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  wrong_type(what, "a bool", type);
}

const std::string& Value::as_string(std::string_view what) const {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  wrong_type(what, "a string", type);
}

const Array& Value::as_array(std::string_view what) const {
  if (const auto* a = std::get_if<Array>(&v)) return *a;
  wrong_type(what, "an array", type);
}

Value Value::u32(uint32_t x) { return Value{ValueType::kU32, uint64_t{x}}; }
Value Value::i32(int32_t x) { return Value{ValueType::kI32, int64_t{x}}; }
Value Value::u64(uint64_t x) { return Value{ValueType::kU64, x}; }
Value Value::f32(float x) { return Value{ValueType::kF32, double{x}}; }
Value Value::boolean(bool x) { return Value{ValueType::kBool, x}; }
Value Value::string(std::string s) { return Value{ValueType::kString, std::move(s)}; }
Value Value::array(ValueType elem_type, std::vector<Value> items) {
  for (const Value& item : items) {
    if (item.type != elem_type) {
      throw InvalidArgument(std::string("gguf: array of ") + value_type_name(elem_type) +
                            " given an element of type " + value_type_name(item.type));
    }
  }
  return Value{ValueType::kArray, Array{elem_type, std::move(items)}};
}

bool operator==(const Array& a, const Array& b) {
  return a.elem_type == b.elem_type && a.items == b.items;
}
bool operator==(const Value& a, const Value& b) { return a.type == b.type && a.v == b.v; }

// ---- TensorInfo --------------------------------------------------------------------------------

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // validated against overflow when the file was parsed
  return n;
}

int64_t TensorInfo::n_rows() const {
  if (ne.empty()) return 0;
  int64_t n = 1;
  for (size_t d = 1; d < ne.size(); ++d) n *= ne[d];  // validated against overflow at parse time
  return n;
}

// ---- GgufFile ----------------------------------------------------------------------------------

std::shared_ptr<const GgufFile> GgufFile::open(const std::string& path) {
  auto mapping = MappedFile::open(path);
  std::shared_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->file_ = mapping;
  f->parse_bytes(mapping->bytes());
  return f;
}

std::shared_ptr<const GgufFile> GgufFile::parse(std::span<const uint8_t> bytes,
                                                const std::string& name) {
  std::shared_ptr<GgufFile> f(new GgufFile());
  f->path_ = name;
  f->parse_bytes(bytes);
  return f;
}

void GgufFile::parse_bytes(std::span<const uint8_t> bytes) {
  const std::string& file = path_;
  Reader r(bytes, file);

  // Header.
  if (bytes.size() < 4)
    fail(file, "", "truncated: " + std::to_string(bytes.size()) + " bytes, not a GGUF file");
  const uint32_t magic = r.read<uint32_t>("header", "magic");
  if (magic != kMagic) {
    char shown[5] = {};
    std::memcpy(shown, bytes.data(), 4);
    for (char& c : shown) {
      if (c != 0 && (c < 32 || c > 126)) c = '?';
    }
    fail(file, "header", std::string("bad magic '") + shown + "', expected 'GGUF'");
  }
  version_ = r.read<uint32_t>("header", "version");
  if (version_ != 2 && version_ != 3) {
    std::string why = "version " + std::to_string(version_) + " unsupported; supported: 2 3";
    if (version_ == 1) why += " (version 1 used 32-bit counts and is obsolete)";
    if ((version_ & 0xFFFF) == 0 && version_ != 0) why += " (a big-endian file?)";
    fail(file, "header", why);
  }
  const uint64_t n_tensors = r.read<uint64_t>("header", "tensor count");
  const uint64_t n_kv = r.read<uint64_t>("header", "metadata count");
  // Each key/value pair needs at least 13 bytes and each tensor info 24, so counts the file cannot
  // hold fail before any allocation.
  if (n_kv > r.remaining() / 13) {
    fail(file, "header",
         "metadata count " + std::to_string(n_kv) + " cannot fit in a " +
             std::to_string(bytes.size()) + "-byte file");
  }
  if (n_tensors > r.remaining() / 24) {
    fail(file, "header",
         "tensor count " + std::to_string(n_tensors) + " cannot fit in a " +
             std::to_string(bytes.size()) + "-byte file");
  }

  // Metadata.
  kv_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string item = "metadata entry " + std::to_string(i);
    std::string key = r.read_string(item, "key", kMaxKeyLength);
    if (key.empty()) fail(file, item, "empty key");
    const std::string kitem = "key " + quoted(key);
    if (kv_index_.count(key) != 0) fail(file, kitem, "duplicate key");
    const uint32_t raw_type = r.read<uint32_t>(kitem, "value type");
    if (!valid_value_type(raw_type)) {
      fail(file, kitem, "value type " + std::to_string(raw_type) + " is not a GGUF type (0..12)");
    }
    Value v = read_value(r, static_cast<ValueType>(raw_type), kitem, 0);
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }

  alignment_ = kDefaultAlignment;
  if (const Value* a = find("general.alignment")) {
    if (!std::holds_alternative<uint64_t>(a->v)) {
      fail(file, "key 'general.alignment'",
           std::string("expected an unsigned integer, got ") + value_type_name(a->type));
    }
    const uint64_t al = std::get<uint64_t>(a->v);
    if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 30)) {
      fail(file, "key 'general.alignment'",
           "alignment " + std::to_string(al) + " is not a power of two in 1..2^30");
    }
    alignment_ = al;
  }

  // Tensor infos.
  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    const std::string item = "tensor " + std::to_string(i);
    t.name = r.read_string(item, "tensor name", kMaxTensorNameLength);
    const std::string titem = "tensor " + quoted(t.name);
    if (tensor_index_.count(t.name) != 0) fail(file, titem, "duplicate tensor name");
    const uint32_t n_dims = r.read<uint32_t>(titem, "n_dims");
    if (n_dims > kMaxDims) {
      fail(file, titem, "n_dims " + std::to_string(n_dims) + " exceeds the maximum of 4");
    }
    // The product of the non-zero dimensions must fit, so n_elements() and n_rows() can never
    // overflow, even for a tensor with an empty dimension.
    int64_t nonzero_product = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t raw = r.read<uint64_t>(titem, "dimension");
      if (raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(file, titem,
             "dimension " + std::to_string(d) + " is negative (" +
                 std::to_string(static_cast<int64_t>(raw)) + ")");
      }
      const auto ne = static_cast<int64_t>(raw);
      if (ne != 0) {
        if (nonzero_product > std::numeric_limits<int64_t>::max() / ne) {
          fail(file, titem, "element count overflows 64 bits");
        }
        nonzero_product *= ne;
      }
      t.ne.push_back(ne);
    }
    if (t.ne.empty()) t.ne.push_back(1);  // a 0-d tensor is a single element, as in ggml
    const uint32_t type_id = r.read<uint32_t>(titem, "type");
    if (type_id >= 1000 || !is_known_quant_type(type_id)) {
      fail(
          file, titem,
          "type " + std::to_string(type_id) + " unsupported; supported: " + quant_type_name_list());
    }
    t.type = static_cast<QuantType>(type_id);
    const int64_t block = quant_block_size(t.type);
    if (t.ne[0] % block != 0) {
      fail(file, titem,
           "row length ne[0]=" + std::to_string(t.ne[0]) + " is not a multiple of " +
               quant_type_name(t.type) + "'s block size " + std::to_string(block));
    }
    // nbytes = row size * rows, checked against overflow.
    uint64_t row_bytes = 0;
    try {
      row_bytes = quant_row_size(t.type, t.ne[0]);
    } catch (const InvalidArgument& e) {
      fail(file, titem, std::string("row size: ") + e.what());
    }
    const auto rows = static_cast<uint64_t>(t.n_rows());
    if (rows != 0 && row_bytes > std::numeric_limits<uint64_t>::max() / rows) {
      fail(file, titem, "byte size overflows 64 bits");
    }
    t.nbytes = row_bytes * rows;
    t.offset = r.read<uint64_t>(titem, "data offset");
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // Data section: starts at the next multiple of the alignment after the header. A file with no
  // tensors may end before that padding, as ggml's writer omits it.
  const uint64_t header_end = r.pos();
  data_offset_ = (header_end + alignment_ - 1) / alignment_ * alignment_;
  if (tensors_.empty()) return;
  if (data_offset_ > bytes.size()) {
    fail(file, "data section",
         "starts at offset " + std::to_string(data_offset_) + " past the end of the " +
             std::to_string(bytes.size()) + "-byte file");
  }
  const uint64_t data_size = bytes.size() - data_offset_;
  for (TensorInfo& t : tensors_) {
    const std::string titem = "tensor " + quoted(t.name);
    if (t.offset % alignment_ != 0) {
      fail(file, titem,
           "data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
               std::to_string(alignment_));
    }
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      fail(file, titem,
           "data [" + std::to_string(t.offset) + ", +" + std::to_string(t.nbytes) +
               ") runs past the end of the " + std::to_string(data_size) + "-byte data section");
    }
    t.data = bytes.data() + data_offset_ + t.offset;
  }
  // No two tensors may share bytes. Empty tensors occupy nothing and cannot overlap.
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const TensorInfo& t : tensors_) {
    if (t.nbytes != 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& prev = *by_offset[i - 1];
    const TensorInfo& cur = *by_offset[i];
    if (cur.offset < prev.offset + prev.nbytes) {
      fail(file, "tensor " + quoted(cur.name),
           "data at offset " + std::to_string(cur.offset) + " overlaps tensor " +
               quoted(prev.name) + " [" + std::to_string(prev.offset) + ", " +
               std::to_string(prev.offset + prev.nbytes) + ")");
    }
  }
}

// ---- lookups -----------------------------------------------------------------------------------

const Value* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {
std::string key_what(const std::string& file, std::string_view key) {
  return "gguf: " + file + ": key '" + std::string(key) + "'";
}
}  // namespace

namespace {
const Value* required(const GgufFile& f, std::string_view key) {
  const Value* v = f.find(key);
  if (v == nullptr) throw FormatError(key_what(f.path(), key) + ": missing");
  return v;
}
}  // namespace

std::string GgufFile::get_string(std::string_view key) const {
  const Value* v = required(*this, key);
  return v->as_string(key_what(path_, key));
}
std::string GgufFile::get_string(std::string_view key, std::string def) const {
  const Value* v = find(key);
  return v == nullptr ? def : v->as_string(key_what(path_, key));
}
uint64_t GgufFile::get_u64(std::string_view key) const {
  const Value* v = required(*this, key);
  return v->as_u64(key_what(path_, key));
}
uint64_t GgufFile::get_u64(std::string_view key, uint64_t def) const {
  const Value* v = find(key);
  return v == nullptr ? def : v->as_u64(key_what(path_, key));
}
int64_t GgufFile::get_i64(std::string_view key, int64_t def) const {
  const Value* v = find(key);
  return v == nullptr ? def : v->as_i64(key_what(path_, key));
}
double GgufFile::get_f64(std::string_view key) const {
  const Value* v = required(*this, key);
  return v->as_f64(key_what(path_, key));
}
double GgufFile::get_f64(std::string_view key, double def) const {
  const Value* v = find(key);
  return v == nullptr ? def : v->as_f64(key_what(path_, key));
}
bool GgufFile::get_bool(std::string_view key, bool def) const {
  const Value* v = find(key);
  return v == nullptr ? def : v->as_bool(key_what(path_, key));
}
const Array* GgufFile::get_array(std::string_view key) const {
  const Value* v = find(key);
  return v == nullptr ? nullptr : &v->as_array(key_what(path_, key));
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& GgufFile::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (t == nullptr) {
    throw FormatError("gguf: " + path_ + ": tensor '" + std::string(name) + "' missing");
  }
  return *t;
}

void GgufFile::release(const TensorInfo& t) const {
  if (file_ != nullptr) file_->release_pages(data_offset_ + t.offset, t.nbytes);
}

}  // namespace insitu::gguf
