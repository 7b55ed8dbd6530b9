// Safetensors reader, multi-shard loader and writer.
//
// Layout (little-endian): u64 N | N bytes of UTF-8 JSON header | data section.
//   header = { "__metadata__": {string: string}?  (optional),
//              "<tensor name>": { "dtype": "F16", "shape": [d0, d1, ...],
//                                 "data_offsets": [begin, end] }, ... }
// Offsets are relative to the data section (8 + N); shapes are row-major (the last dimension is
// contiguous, i.e. PyTorch order, the reverse of GGUF's ne). The header may be padded with spaces.
//
// The file is untrusted. Checked always: N <= 100 MB (the reference implementation's limit) and
// 8 + N <= file size; the header is a JSON object; every entry has a known dtype, a shape of
// non-negative integers, and begin <= end <= data size; end - begin == product(shape) * dtype size
// with overflow checks; no two tensors share bytes. Any violation throws one FormatError naming
// the file, the tensor (or field) and the reason. Tensor data is not copied: TensorView::data
// points into the mapping, which the SafetensorsFile keeps alive. Files are immutable after open()
// and safe to share across threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace insitu::safetensors {

enum class Dtype : uint8_t {
  kBool,
  kU8,
  kI8,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64,
  kF8E4M3,
  kF8E5M2,
};

// The header spelling ("F16", "BF16", "F8_E4M3"), its size in bytes, and the reverse lookup
// (exact, case-sensitive, as the format defines it).
const char* dtype_name(Dtype d);
size_t dtype_size(Dtype d);
std::optional<Dtype> parse_dtype(std::string_view name);
std::string dtype_name_list();  // "BOOL U8 I8 ..." for error messages

struct TensorView {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;  // row-major; empty for a scalar
  uint64_t offset = 0;         // relative to the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapping

  int64_t n_elements() const;  // 1 for a scalar; validated against overflow at parse time
};

class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws IoError / FormatError.
  static std::shared_ptr<const SafetensorsFile> open(const std::string& path);
  // Parses an in-memory image (fuzzer, tests). `bytes` must outlive the result, whose views
  // point into it; `name` appears in errors.
  static std::shared_ptr<const SafetensorsFile> parse(std::span<const uint8_t> bytes,
                                                      const std::string& name);

  const std::string& path() const { return path_; }
  uint64_t data_offset() const { return data_offset_; }  // 8 + header length
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Tensors in data-offset order (ties, i.e. empty tensors, by name).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(std::string_view name) const;
  const TensorView& tensor(std::string_view name) const;  // throws FormatError when absent

  // Drops a converted tensor's pages from the resident set (no-op for parse()).
  void release(const TensorView& t) const;
  const std::shared_ptr<const MappedFile>& mapping() const { return file_; }

 private:
  SafetensorsFile() = default;
  void parse_bytes(std::span<const uint8_t> bytes);

  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  uint64_t data_offset_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

// All shards of a checkpoint as one set of tensors.
//
// open() accepts: a directory (uses model.safetensors.index.json when present, else
// model.safetensors, else every *.safetensors file in it, sorted by name), an index .json file,
// or a single .safetensors file. With an index, every tensor of weight_map must exist in the shard
// it names; shard names must be plain relative paths inside the directory. Without one, a tensor
// name present in two shards is an error. Immutable and thread-safe after open().
class ShardedSafetensors {
 public:
  static std::shared_ptr<const ShardedSafetensors> open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<std::shared_ptr<const SafetensorsFile>>& shards() const { return shards_; }
  // Metadata from the index's "metadata" object (values rendered as JSON text when not strings);
  // empty without an index.
  const std::map<std::string, std::string>& index_metadata() const { return index_metadata_; }

  std::vector<std::string> tensor_names() const;  // sorted
  size_t size() const { return by_name_.size(); }
  const TensorView* find(std::string_view name) const;
  // Throws FormatError naming the checkpoint and the tensor when absent.
  const TensorView& tensor(std::string_view name) const;
  const SafetensorsFile& shard_of(std::string_view name) const;

 private:
  ShardedSafetensors() = default;
  void add_shard_tensors(size_t shard, const std::string& origin);

  std::string path_;
  std::vector<std::shared_ptr<const SafetensorsFile>> shards_;
  std::map<std::string, std::string> index_metadata_;
  std::map<std::string, std::pair<size_t, const TensorView*>, std::less<>> by_name_;
};

// Writes one .safetensors file atomically (io/atomic_file.h), streaming tensor data one tensor at
// a time through producers, in insertion order; offsets are the running sum of sizes. The header
// is padded with spaces so the data section starts on an 8-byte boundary. Not thread-safe.
class SafetensorsWriter {
 public:
  // Writes exactly the tensor's byte size into the sink.
  using Producer = std::function<void(ByteSink& out)>;

  void set_metadata(const std::string& key, const std::string& value);
  // Throws InvalidArgument for an empty or duplicate name, "__metadata__", a negative dimension
  // or a size overflow. Returns the tensor's index.
  size_t add_tensor(std::string name, Dtype dtype, std::vector<int64_t> shape, Producer produce);
  // The bytes are copied from `data` during write(); its size must match.
  size_t add_tensor(std::string name, Dtype dtype, std::vector<int64_t> shape,
                    std::span<const uint8_t> data);

  // Throws IoError, InvalidArgument (a producer wrote the wrong number of bytes) or what a
  // producer throws; on failure nothing is left at `path`.
  void write(const std::string& path) const;

 private:
  struct Planned {
    std::string name;
    Dtype dtype;
    std::vector<int64_t> shape;
    uint64_t nbytes;
    Producer produce;
  };
  std::string header_json() const;

  std::map<std::string, std::string> metadata_;
  std::vector<Planned> tensors_;
};

}  // namespace insitu::safetensors
