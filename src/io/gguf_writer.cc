#include "io/gguf_writer.h"

#include <cstring>
#include <limits>
#include <unordered_set>

#include "insitu/error.h"

namespace insitu::gguf {
namespace {

constexpr uint64_t kMaxKeyLength = 65535;
constexpr uint64_t kMaxTensorNameLength = 63;

[[noreturn]] void bad(const std::string& what, const std::string& why) {
  throw InvalidArgument("gguf writer: " + what + ": " + why);
}

uint64_t pad_to(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

// Reads an integer Value as an unsigned or signed quantity within [lo, hi].
void check_int(const Value& v, const std::string& what, int64_t lo, uint64_t hi) {
  if (const auto* u = std::get_if<uint64_t>(&v.v)) {
    if (*u > hi) bad(what, std::to_string(*u) + " out of range for " + value_type_name(v.type));
    return;
  }
  if (const auto* i = std::get_if<int64_t>(&v.v)) {
    if (*i < lo || (*i > 0 && static_cast<uint64_t>(*i) > hi)) {
      bad(what, std::to_string(*i) + " out of range for " + value_type_name(v.type));
    }
    return;
  }
  bad(what, std::string("type ") + value_type_name(v.type) + " holds a non-integer");
}

void validate(const Value& v, const std::string& what) {
  constexpr auto kI64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  switch (v.type) {
    case ValueType::kU8:
      check_int(v, what, 0, 0xFF);
      break;
    case ValueType::kU16:
      check_int(v, what, 0, 0xFFFF);
      break;
    case ValueType::kU32:
      check_int(v, what, 0, 0xFFFFFFFFu);
      break;
    case ValueType::kU64:
      check_int(v, what, 0, std::numeric_limits<uint64_t>::max());
      break;
    case ValueType::kI8:
      check_int(v, what, -128, 127);
      break;
    case ValueType::kI16:
      check_int(v, what, -32768, 32767);
      break;
    case ValueType::kI32:
      check_int(v, what, std::numeric_limits<int32_t>::min(), 0x7FFFFFFF);
      break;
    case ValueType::kI64:
      check_int(v, what, std::numeric_limits<int64_t>::min(), kI64Max);
      break;
    case ValueType::kF32:
    case ValueType::kF64:
      if (!std::holds_alternative<double>(v.v)) bad(what, "float type holds a non-float");
      break;
    case ValueType::kBool:
      if (!std::holds_alternative<bool>(v.v)) bad(what, "bool type holds a non-bool");
      break;
    case ValueType::kString:
      if (!std::holds_alternative<std::string>(v.v)) bad(what, "string type holds a non-string");
      break;
    case ValueType::kArray: {
      const auto* a = std::get_if<Array>(&v.v);
      if (a == nullptr) bad(what, "array type holds a non-array");
      if (static_cast<uint32_t>(a->elem_type) > static_cast<uint32_t>(ValueType::kF64)) {
        bad(what, "array element type " + std::to_string(static_cast<uint32_t>(a->elem_type)));
      }
      for (const Value& item : a->items) {
        if (item.type != a->elem_type) {
          bad(what, std::string("array of ") + value_type_name(a->elem_type) +
                        " holds an element of type " + value_type_name(item.type));
        }
        validate(item, what);
      }
      break;
    }
    default:
      bad(what, "value type " + std::to_string(static_cast<uint32_t>(v.type)));
  }
}

uint64_t int_bits(const Value& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.v)) return *u;
  return static_cast<uint64_t>(std::get<int64_t>(v.v));
}

template <typename T>
void put(ByteSink& out, T x) {
  out.write(&x, sizeof(T));
}

void put_string(ByteSink& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.write(s.data(), s.size());
}

void write_value(ByteSink& out, const Value& v) {
  switch (v.type) {
    case ValueType::kU8:
    case ValueType::kI8:
      put(out, static_cast<uint8_t>(int_bits(v)));
      break;
    case ValueType::kU16:
    case ValueType::kI16:
      put(out, static_cast<uint16_t>(int_bits(v)));
      break;
    case ValueType::kU32:
    case ValueType::kI32:
      put(out, static_cast<uint32_t>(int_bits(v)));
      break;
    case ValueType::kU64:
    case ValueType::kI64:
      put(out, int_bits(v));
      break;
    case ValueType::kF32:
      put(out, static_cast<float>(std::get<double>(v.v)));
      break;
    case ValueType::kF64:
      put(out, std::get<double>(v.v));
      break;
    case ValueType::kBool:
      put<uint8_t>(out, std::get<bool>(v.v) ? 1 : 0);
      break;
    case ValueType::kString:
      put_string(out, std::get<std::string>(v.v));
      break;
    case ValueType::kArray: {
      const Array& a = std::get<Array>(v.v);
      put(out, static_cast<uint32_t>(a.elem_type));
      put<uint64_t>(out, a.items.size());
      for (const Value& item : a.items) write_value(out, item);
      break;
    }
  }
}

// Counts bytes instead of writing them, to compute the header size.
class CountingSink final : public ByteSink {
 public:
  using ByteSink::write;
  void write(std::span<const uint8_t> bytes) override { n += bytes.size(); }
  uint64_t n = 0;
};

// Passes a producer's bytes through, refusing more than the tensor's size.
class BoundedSink final : public ByteSink {
 public:
  BoundedSink(ByteSink& out, const std::string& name, uint64_t limit)
      : out_(out), name_(name), limit_(limit) {}
  using ByteSink::write;
  void write(std::span<const uint8_t> bytes) override {
    if (bytes.size() > limit_ - written_) {
      bad("tensor '" + name_ + "'",
          "producer wrote more than the tensor's " + std::to_string(limit_) + " bytes");
    }
    out_.write(bytes);
    written_ += bytes.size();
  }
  uint64_t written() const { return written_; }

 private:
  ByteSink& out_;
  const std::string& name_;
  uint64_t limit_;
  uint64_t written_ = 0;
};

}  // namespace

uint64_t encoded_value_size(const Value& v) {
  CountingSink c;
  write_value(c, v);
  return c.n;
}

void GgufWriter::set(const std::string& key, Value value) {
  if (key.empty()) bad("metadata", "empty key");
  if (key.size() > kMaxKeyLength)
    bad("key '" + key.substr(0, 64) + "...'", "longer than 65535 bytes");
  validate(value, "key '" + key + "'");
  if (key == "general.alignment") {
    if (value.type != ValueType::kU32) bad("key 'general.alignment'", "must be u32");
    const uint64_t al = int_bits(value);
    if (al == 0 || (al & (al - 1)) != 0) {
      bad("key 'general.alignment'", std::to_string(al) + " is not a power of two");
    }
    alignment_ = al;
    relayout();
  }
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

bool GgufWriter::remove(const std::string& key) {
  for (auto it = kv_.begin(); it != kv_.end(); ++it) {
    if (it->first == key) {
      kv_.erase(it);
      if (key == "general.alignment") {
        alignment_ = 32;
        relayout();
      }
      return true;
    }
  }
  return false;
}

const Value* GgufWriter::find(const std::string& key) const {
  for (const auto& [k, v] : kv_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void GgufWriter::set_alignment(uint64_t alignment) {
  if (alignment > 0xFFFFFFFFu) bad("alignment", std::to_string(alignment) + " does not fit u32");
  set("general.alignment", Value::u32(static_cast<uint32_t>(alignment)));
}

void GgufWriter::relayout() {
  uint64_t offset = 0;
  for (PlannedTensor& t : tensors_) {
    t.offset = offset;
    const uint64_t padded = pad_to(t.nbytes, alignment_);
    if (padded < t.nbytes || offset > std::numeric_limits<uint64_t>::max() - padded) {
      bad("tensor '" + t.name + "'", "data section size overflows");
    }
    offset += padded;
  }
}

size_t GgufWriter::add_tensor(std::string name, QuantType type, std::vector<int64_t> ne,
                              Producer produce) {
  const std::string what = "tensor '" + name + "'";
  if (name.empty()) bad("tensor", "empty name");
  if (name.size() > kMaxTensorNameLength) bad(what, "name longer than 63 bytes");
  for (const PlannedTensor& t : tensors_) {
    if (t.name == name) bad(what, "duplicate tensor name");
  }
  if (ne.empty() || ne.size() > 4) bad(what, std::to_string(ne.size()) + " dimensions; need 1..4");
  const auto id = static_cast<uint32_t>(type);
  if (id >= 1000 || !is_known_quant_type(id)) {
    bad(what, "type " + quant_type_name(type) + " cannot be stored in GGUF");
  }
  uint64_t rows = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] < 0) bad(what, "dimension " + std::to_string(d) + " is negative");
    if (d > 0) {
      const auto n = static_cast<uint64_t>(ne[d]);
      if (n != 0 && rows > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / n) {
        bad(what, "element count overflows");
      }
      rows *= n;
    }
  }
  if (ne[0] != 0 && rows > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
                               static_cast<uint64_t>(ne[0])) {
    bad(what, "element count overflows");
  }
  uint64_t row_bytes = 0;
  try {
    row_bytes = quant_row_size(type, ne[0]);
  } catch (const InvalidArgument& e) {
    bad(what, e.what());
  }
  if (rows != 0 && row_bytes > std::numeric_limits<uint64_t>::max() / rows) {
    bad(what, "byte size overflows");
  }
  if (!produce) bad(what, "no producer");
  PlannedTensor t;
  t.name = std::move(name);
  t.type = type;
  t.ne = std::move(ne);
  t.nbytes = row_bytes * rows;
  t.produce = std::move(produce);
  tensors_.push_back(std::move(t));
  try {
    relayout();
  } catch (...) {
    tensors_.pop_back();
    throw;
  }
  return tensors_.size() - 1;
}

size_t GgufWriter::add_tensor(std::string name, QuantType type, std::vector<int64_t> ne,
                              std::span<const uint8_t> data) {
  const std::string n = name;
  const size_t index =
      add_tensor(std::move(name), type, std::move(ne), [data](ByteSink& out) { out.write(data); });
  if (tensors_[index].nbytes != data.size()) {
    const uint64_t want = tensors_[index].nbytes;
    tensors_.pop_back();
    bad("tensor '" + n + "'", "given " + std::to_string(data.size()) +
                                  " bytes, its shape and type need " + std::to_string(want));
  }
  return index;
}

void GgufWriter::write_header(ByteSink& out) const {
  out.write("GGUF", 4);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kv_.size());
  for (const auto& [key, value] : kv_) {
    put_string(out, key);
    put(out, static_cast<uint32_t>(value.type));
    write_value(out, value);
  }
  for (const PlannedTensor& t : tensors_) {
    put_string(out, t.name);
    put(out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put(out, static_cast<uint64_t>(d));
    put(out, static_cast<uint32_t>(t.type));
    put(out, t.offset);
  }
}

uint64_t GgufWriter::data_offset() const {
  CountingSink c;
  write_header(c);
  return pad_to(c.n, alignment_);
}

uint64_t GgufWriter::file_size() const {
  uint64_t n = data_offset();
  if (!tensors_.empty()) n += tensors_.back().offset + pad_to(tensors_.back().nbytes, alignment_);
  return n;
}

void GgufWriter::write(const std::string& path) const {
  AtomicFile out(path);
  write_header(out);
  out.write_zeros(pad_to(out.size(), alignment_) - out.size());
  const uint64_t data_start = out.size();
  for (const PlannedTensor& t : tensors_) {
    if (out.size() - data_start != t.offset) {
      bad("tensor '" + t.name + "'", "internal layout mismatch");
    }
    BoundedSink sink(out, t.name, t.nbytes);
    t.produce(sink);
    if (sink.written() != t.nbytes) {
      bad("tensor '" + t.name + "'", "producer wrote " + std::to_string(sink.written()) +
                                         " of the tensor's " + std::to_string(t.nbytes) + " bytes");
    }
    out.write_zeros(pad_to(t.nbytes, alignment_) - t.nbytes);
  }
  out.commit();
}

}  // namespace insitu::gguf
