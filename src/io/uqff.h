// UQFF 1.2 container: mistral.rs's Universal Quantized File Format, as plain safetensors shards.
//
// Byte layout: every shard is an ordinary .safetensors file (io/safetensors.h). The first shard
// starts with three u32 scalar tensors (shape []) uqff.version.major / .minor / .patch = 1, 2, 0;
// __metadata__ is informational ("uqff.producer", "uqff.version" = "1.2.0"). Every other tensor
// belongs to a layer entry named `<module key>.<suffix>`, the module key being the Hugging Face
// module path ("model.layers.0.self_attn.q_proj", "model.embed_tokens", "lm_head"). Each entry has
// a u8 scalar `weight.format` (Format below) and exactly the weight* suffixes its format lists,
// plus an optional native `bias` [out]:
//   Gguf (0)    weight u8 [nbytes] raw ggml blocks, rows in order; weight.dtype u32 scalar = ggml
//               type id; weight.shape u32 [rank] dims in (out, in) or (E, out, in) order.
//   Unquant (1) weight: native tensor (row-major (out, in)).
//   Hqq (2)     weight (u8 or i32), weight.scales f32, weight.zeros f32, weight.shape u32 [rank],
//               weight.bits u8, weight.group_size u32, weight.axis u8, weight.optimization_steps
//               u32, weight.round_zeros u8, weight.channel_wise u8.
//   Fp8 (3)     weight F8_E4M3, weight.dequant_w_scale, weight.dequant_x_scale, weight.quant_scale
//               (f32 scalars), weight.dtype u32 scalar (mistral.rs's dtype code table).
//               insitu extension for 128x128-tile FP8 (kFP8_B128): weight.scale_grid f32
//               [ceil(out/128), ceil(in/128)], the dequantization scale of each tile (DeepSeek's
//               weight_scale_inv); the per-tensor scalars are then 1. mistral.rs refuses entries
//               with this extra tensor, so such files load in insitu only.
//   Afq (4)     weight u32 packed, weight.scales, weight.biases, weight.bits u8, weight.group_size u8.
//   F8Q8 (5)    weight u8 [nbytes] 33-byte blocks, weight.num_blocks u32 scalar, weight.shape u32.
//   Mxfp4 (6)   weight u8 (out, in/2), weight.scales u8 (out, in/32).
// A model's shards are one tensor set: `<stem>-0.uqff`, `<stem>-1.uqff`, ... (soft cap per shard,
// 10 GiB by default; a tensor never spans shards).
//
// Reading: files are untrusted. Reader::open maps every shard, rejects duplicate tensor names
// across shards (identical version scalars excepted), pre-1.0 artifacts (all tensor names
// integers), a missing or different major version and a newer minor version (an older minor is
// accepted). Each entry's suffix set, dtypes and shapes are validated for its format, and every
// size against the bytes present; errors name the file, the tensor and the reason (FormatError).
// Entries keep pointers into the mappings, which the Reader keeps alive; immutable after open().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/safetensors.h"

namespace insitu::uqff {

inline constexpr uint32_t kVersionMajor = 1;
inline constexpr uint32_t kVersionMinor = 2;
inline constexpr uint32_t kVersionPatch = 0;
inline constexpr const char* kVersionString = "1.2.0";
inline constexpr uint64_t kDefaultShardBytes = uint64_t{10} << 30;  // mistral.rs MAX_UQFF_SIZE_BYTES
inline constexpr const char* kResidualFile = "residual.safetensors";
inline constexpr const char* kReportFile = "uqff_report.json";
inline constexpr char kListDelimiter = ';';  // mistral.rs UQFF_MULTI_FILE_DELIMITER
inline constexpr const char* kFp8TileGrid = "weight.scale_grid";  // the extension above

// mistral.rs QuantizedSerdeType.
enum class Format : uint8_t {
  kGguf = 0,
  kUnquant = 1,
  kHqq = 2,
  kFp8 = 3,
  kAfq = 4,
  kF8Q8 = 5,
  kMxfp4 = 6,
};
const char* format_name(Format f);  // "gguf", "unquant", "hqq", ...

// "q4k-0.uqff" -> ("q4k", 0); nullopt for a name without a "-<index>.uqff" tail.
std::optional<std::pair<std::string, int>> parse_shard_name(std::string_view file_name);
std::string shard_name(std::string_view stem, int index);  // "q4k-0.uqff"

// One layer entry. Tensors by suffix ("weight", "weight.dtype", ..., "bias").
struct Entry {
  std::string key;
  Format format = Format::kGguf;
  std::string file;  // the shard holding `weight`, for error messages
  std::map<std::string, const safetensors::TensorView*, std::less<>> tensors;

  const safetensors::TensorView& tensor(std::string_view suffix) const;  // must exist
  const safetensors::TensorView* bias() const;                           // null when absent

  // Gguf entries: ggml type id and dims in (out, in) / (E, out, in) order, validated against the
  // bytes of `weight`. Other formats: empty.
  uint32_t ggml_type = 0;
  std::vector<int64_t> shape;
};

class Reader {
 public:
  static std::shared_ptr<const Reader> open(const std::vector<std::string>& paths);

  const std::vector<std::string>& paths() const { return paths_; }
  uint32_t version_minor() const { return minor_; }
  const std::vector<Entry>& entries() const { return entries_; }  // sorted by key
  const Entry* find(std::string_view key) const;
  // Metadata of the first shard.
  const std::map<std::string, std::string>& metadata() const { return files_.front()->metadata(); }

 private:
  Reader() = default;
  std::vector<std::string> paths_;
  std::vector<std::shared_ptr<const safetensors::SafetensorsFile>> files_;
  uint32_t minor_ = 0;
  std::vector<Entry> entries_;
};

// Writes the tensors of one UQFF into `<dir>/<stem>-<i>.uqff`, starting a new shard before a
// tensor that would take the current (non-empty) one past `shard_bytes` and right after a tensor
// that reaches it. The version scalars and the metadata are added on construction. Tensor data is
// produced when write() runs, one tensor at a time. Not thread-safe.
class ShardedWriter {
 public:
  ShardedWriter(std::string dir, std::string stem, uint64_t shard_bytes = kDefaultShardBytes);

  // Throws InvalidArgument for a name already added (in any shard).
  void add_tensor(std::string name, safetensors::Dtype dtype, std::vector<int64_t> shape,
                  safetensors::SafetensorsWriter::Producer produce);
  void add_u8(const std::string& name, uint8_t value);
  void add_u32(const std::string& name, uint32_t value);
  void add_u32_array(const std::string& name, const std::vector<uint32_t>& values);

  // Writes every shard; returns their file names (without the directory), in order.
  std::vector<std::string> write() const;
  uint64_t total_bytes() const { return total_bytes_; }

 private:
  void new_shard();
  safetensors::SafetensorsWriter& writer_for(uint64_t nbytes);
  std::string dir_;
  std::string stem_;
  uint64_t cap_;
  std::vector<safetensors::SafetensorsWriter> shards_;
  std::vector<uint64_t> shard_sizes_;
  std::set<std::string> names_;  // every tensor added, to refuse duplicates across shards
  uint64_t total_bytes_ = 0;
};

}  // namespace insitu::uqff
