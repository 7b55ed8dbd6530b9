// GGUF v3 writer.
//
// Usage: set metadata, add tensors (each with a producer that streams its bytes), then write().
//   GgufWriter w;                       // alignment 32 unless set_alignment() says otherwise
//   w.set("general.architecture", Value::string("llama"));
//   w.add_tensor("blk.0.attn_q.weight", QuantType::kQ4K, {4096, 4096},
//                [&](ByteSink& out) { quantize_rows_into(out); });
//   w.write("model.gguf");
//
// Layout written: header, metadata in insertion order, tensor infos in insertion order, zero
// padding to the alignment, then each tensor's bytes followed by zero padding to the alignment.
// Offsets are the running sum of padded sizes in info order, which is what ggml's reader requires
// (see gguf.h). write() is atomic (io/atomic_file.h): on any error, including an exception from a
// producer or a producer writing the wrong number of bytes, nothing is left at the path.
// Producers run one at a time in info order on the calling thread, so only one tensor's output
// needs to exist at a time. The writer is not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "io/gguf.h"

namespace insitu::gguf {

class GgufWriter {
 public:
  // Writes exactly the tensor's nbytes into the sink (in any number of pieces).
  using Producer = std::function<void(ByteSink& out)>;

  struct PlannedTensor {
    std::string name;
    QuantType type = QuantType::kF32;
    std::vector<int64_t> ne;  // ggml order
    uint64_t nbytes = 0;
    uint64_t offset = 0;  // relative to the data section; running sum of padded sizes
    Producer produce;
  };

  GgufWriter() = default;

  // Sets a metadata key (replacing an earlier value in place, so the order stays stable).
  // Throws InvalidArgument for an empty key, a key over 65535 bytes, or a malformed Value (one
  // whose variant does not match its type, an out-of-range integer, mixed array elements).
  // Setting "general.alignment" changes the alignment (it must be a power of two, as u32).
  void set(const std::string& key, Value value);
  bool remove(const std::string& key);
  const Value* find(const std::string& key) const;
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }

  // Sets general.alignment (a power of two). 32 is ggml's default and is not written as a key
  // unless set explicitly.
  void set_alignment(uint64_t alignment);
  uint64_t alignment() const { return alignment_; }

  // Adds a tensor. Throws InvalidArgument for a duplicate name, a name over 63 bytes, n_dims not
  // in 1..4, a negative dimension, a type that cannot appear in GGUF, ne[0] not a multiple of the
  // type's block size, or a size that overflows. Returns its index.
  size_t add_tensor(std::string name, QuantType type, std::vector<int64_t> ne, Producer produce);
  // Convenience: the bytes are copied out of `data` during write(), so it must stay valid until
  // then; its size must equal the tensor's byte size.
  size_t add_tensor(std::string name, QuantType type, std::vector<int64_t> ne,
                    std::span<const uint8_t> data);
  const std::vector<PlannedTensor>& tensors() const { return tensors_; }

  // Writes the file atomically. Throws IoError, InvalidArgument (a producer wrote the wrong number
  // of bytes) or whatever a producer throws; in every failure case the path is left untouched.
  void write(const std::string& path) const;

  // The header + metadata + tensor infos + padding, i.e. where the data section starts.
  uint64_t data_offset() const;
  // The whole file's size.
  uint64_t file_size() const;

 private:
  void write_header(ByteSink& out) const;
  void relayout();

  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PlannedTensor> tensors_;
  uint64_t alignment_ = 32;
};

// The bytes one Value takes when encoded (type tags excluded for the top level).
uint64_t encoded_value_size(const Value& v);

}  // namespace insitu::gguf
