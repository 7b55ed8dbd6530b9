// GGUF v2/v3 reader (and, in gguf_writer.h, writer).
//
// Layout (little-endian; see ../shared/reference/ggml-formats.md §5):
//   u32 magic "GGUF" | u32 version (2 or 3) | u64 tensor_count | u64 kv_count
//   kv_count x { string key | u32 value_type | value }       string = u64 len + bytes (no NUL)
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   zero padding to general.alignment (default 32) | data section (each tensor aligned)
// Value types: u8 0, i8 1, u16 2, i16 3, u32 4, i32 5, f32 6, bool 7, string 8, array 9,
// u64 10, i64 11, f64 12. Arrays are { u32 elem_type | u64 count | elems } and may nest.
//
// The file is untrusted: every count, length, offset and size is checked against overflow and
// the bytes present before use; any violation throws FormatError naming the file, the item (key
// or tensor) and the reason. Tensor data is not copied: TensorInfo::data points into the mapping,
// which the GgufFile keeps alive. A GgufFile is immutable after open() and safe to share.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "insitu/quant_type.h"
#include "io/mapped_file.h"

namespace insitu::gguf {

enum class ValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
const char* value_type_name(ValueType t);

struct Value;
struct Array {
  ValueType elem_type = ValueType::kU8;
  std::vector<Value> items;
};

// One metadata value. Integers keep their exact GGUF type so a writer round-trips them.
struct Value {
  ValueType type = ValueType::kU8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> v;

  // Typed accessors; each throws FormatError (naming `what`) when the value has another shape.
  // as_u64/as_i64 accept any integer type whose value fits; as_f64 accepts floats and integers.
  uint64_t as_u64(std::string_view what) const;
  int64_t as_i64(std::string_view what) const;
  double as_f64(std::string_view what) const;
  bool as_bool(std::string_view what) const;
  const std::string& as_string(std::string_view what) const;
  const Array& as_array(std::string_view what) const;

  static Value u32(uint32_t x);
  static Value i32(int32_t x);
  static Value u64(uint64_t x);
  static Value f32(float x);
  static Value boolean(bool x);
  static Value string(std::string s);
  static Value array(ValueType elem_type, std::vector<Value> items);
};

// Deep equality: same types (exactly, including integer widths) and same values.
bool operator==(const Array& a, const Array& b);
bool operator==(const Value& a, const Value& b);

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the contiguous row length
  QuantType type = QuantType::kF32;
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapping

  int64_t n_elements() const;
  // Product of ne[1..]: well defined when ne[0] == 0 (an empty row), unlike n_elements()/ne[0].
  int64_t n_rows() const;
};

class GgufFile {
 public:
  // Opens and validates `path`. Throws IoError / FormatError.
  static std::shared_ptr<const GgufFile> open(const std::string& path);
  // Parses an in-memory image (used by the fuzzer and tests); `name` appears in errors.
  static std::shared_ptr<const GgufFile> parse(std::span<const uint8_t> bytes,
                                               const std::string& name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed lookups. The required forms throw FormatError("gguf: FILE: key 'K' missing") when
  // absent; the defaulted forms return `def` when absent but still throw on a wrong type.
  std::string get_string(std::string_view key) const;
  std::string get_string(std::string_view key, std::string def) const;
  uint64_t get_u64(std::string_view key) const;
  uint64_t get_u64(std::string_view key, uint64_t def) const;
  int64_t get_i64(std::string_view key, int64_t def) const;
  double get_f64(std::string_view key) const;
  double get_f64(std::string_view key, double def) const;
  bool get_bool(std::string_view key, bool def) const;
  const Array* get_array(std::string_view key) const;  // null when absent

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws FormatError when absent

  // Tells the kernel a tensor's bytes will not be read again, so its pages can leave the resident
  // set (a no-op for parse()). The data stays readable; it is paged back in if touched.
  void release(const TensorInfo& t) const;

  // The mapping, kept alive by this object (null for parse()).
  const std::shared_ptr<const MappedFile>& mapping() const { return file_; }

 private:
  GgufFile() = default;
  void parse_bytes(std::span<const uint8_t> bytes);

  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace insitu::gguf
