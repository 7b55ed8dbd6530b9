#include "export/convert.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "insitu/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/hf_names.h"
#include "quant/float_convert.h"
#include "quant/type_traits.h"
#include "tokenizer/hf_export.h"
#include "util/progress.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << '\n';
  if (!out) throw IoError(path.string() + ": cannot write");
}

// Removes the staging directory unless the conversion reached its rename.
class StagingDir {
 public:
  explicit StagingDir(fs::path p) : path_(std::move(p)) {
    fs::create_directories(path_);
    registration_ = std::make_unique<StagingRegistration>(path_.string());
  }
  ~StagingDir() {
    if (!committed_) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }
  void commit_to(const fs::path& target) {
    std::error_code ec;
    if (fs::exists(target)) fs::remove(target, ec);  // an empty directory, checked earlier
    registration_.reset();
    fs::rename(path_, target);
    committed_ = true;
  }

 private:
  fs::path path_;
  bool committed_ = false;
  std::unique_ptr<StagingRegistration> registration_;  // removal on SIGINT/SIGTERM/SIGHUP
};

void store_row(const float* src, uint8_t* dst, int64_t n, safetensors::Dtype dtype) {
  switch (dtype) {
    case safetensors::Dtype::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      break;
    case safetensors::Dtype::kF16: {
      auto* d = reinterpret_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
      break;
    }
    case safetensors::Dtype::kBF16: {
      auto* d = reinterpret_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
      break;
    }
    default:
      throw InvalidArgument("convert: dtype must be f32, f16 or bf16");
  }
}

}  // namespace

ConvertReport convert_gguf_to_hf(const ConvertOptions& options, ThreadPool& pool) {
  using safetensors::Dtype;
  if (options.dtype != Dtype::kF32 && options.dtype != Dtype::kF16 &&
      options.dtype != Dtype::kBF16) {
    throw InvalidArgument("convert: --dtype must be one of f32 f16 bf16");
  }
  const fs::path target(options.output_dir);
  if (fs::exists(target) && (!fs::is_directory(target) || !fs::is_empty(target))) {
    throw InvalidArgument("convert: " + options.output_dir +
                          " already exists and is not an empty directory");
  }
  const auto file = gguf::GgufFile::open(options.input);
  const ModelConfig config = config_from_gguf(*file);

  std::random_device rd;
  fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  StagingDir staging(parent / (target.filename().string() + ".tmp-" + std::to_string(rd())));

  nlohmann::json cfg = config_to_hf_json(config);
  cfg["torch_dtype"] = options.dtype == Dtype::kF32   ? "float32"
                       : options.dtype == Dtype::kF16 ? "float16"
                                                      : "bfloat16";
  write_json(staging.path() / "config.json", cfg);
  nlohmann::json gen = {{"_from_model_config", true}};
  if (file->has("tokenizer.ggml.bos_token_id")) {
    gen["bos_token_id"] = file->get_u64("tokenizer.ggml.bos_token_id");
  }
  if (file->has("tokenizer.ggml.eos_token_id")) {
    gen["eos_token_id"] = file->get_u64("tokenizer.ggml.eos_token_id");
  }
  write_json(staging.path() / "generation_config.json", gen);
  write_hf_tokenizer_files(*file, staging.path().string());

  safetensors::SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  ConvertReport report;
  uint64_t total = 0;
  for (const gguf::TensorInfo& t : file->tensors()) total += t.nbytes;
  auto progress = std::make_shared<Progress>("convert", static_cast<int64_t>(file->tensors().size()),
                                             total, options.show_progress);
  const size_t elem = safetensors::dtype_size(options.dtype);
  for (const gguf::TensorInfo& t : file->tensors()) {
    const std::optional<std::string> hf = gguf_to_hf_name(t.name, config.arch);
    if (!hf) {
      // e.g. rope_freqs.weight, which config.json's rope_scaling regenerates.
      spdlog::info("convert: {} has no Hugging Face tensor; derived from config.json", t.name);
      progress->advance(1, t.nbytes);
      continue;
    }
    if (t.ne.empty() || t.ne.size() > 2) {
      throw Unsupported("convert: tensor '" + t.name + "' has " + std::to_string(t.ne.size()) +
                        " dimensions; only 1-D and 2-D tensors are converted");
    }
    std::vector<int64_t> shape(t.ne.rbegin(), t.ne.rend());  // row-major
    const HfTransform tr = hf_transform(t.name, config);
    const gguf::TensorInfo* tp = &t;
    const Dtype dtype = options.dtype;
    ++report.n_tensors;
    report.bytes_written += static_cast<uint64_t>(t.n_elements()) * elem;
    writer.add_tensor(*hf, dtype, shape, [tp, tr, dtype, elem, &pool, file, progress](ByteSink& out) {
      const int64_t n = tp->ne[0];
      const int64_t rows = tp->n_rows();
      const TypeTraits& tt = type_traits(tp->type);
      const size_t src_row = quant_row_size(tp->type, n);
      std::vector<uint8_t> stored(static_cast<size_t>(rows * n) * elem);
      pool.parallel_for(rows, [&](int, int64_t b, int64_t e) {
        std::vector<float> row(static_cast<size_t>(n));
        for (int64_t r = b; r < e; ++r) {
          tt.dequantize_row(tp->data + r * src_row, row.data(), n);
          if (tr.norm_shift != 0.0f) {
            for (float& x : row) x -= tr.norm_shift;
          }
          store_row(row.data(), stored.data() + static_cast<size_t>(r * n) * elem, n, dtype);
        }
      });
      if (tr.permute_heads > 0) {
        std::vector<uint8_t> unpermuted(stored.size());
        permute_qk_rows(stored.data(), unpermuted.data(), rows, static_cast<size_t>(n) * elem,
                        tr.permute_heads, /*to_gguf=*/false);
        stored.swap(unpermuted);
      }
      out.write(stored.data(), stored.size());
      file->release(*tp);
      progress->advance(1, tp->nbytes);
    });
  }
  writer.write((staging.path() / "model.safetensors").string());
  progress->finish();
  staging.commit_to(target);
  return report;
}

}  // namespace insitu
