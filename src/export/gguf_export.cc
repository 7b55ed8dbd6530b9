#include "export/gguf_export.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>

#include "insitu/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "quant/gguf_quantize.h"
#include "quant/type_traits.h"
#include "tokenizer/gguf_metadata.h"
#include "util/progress.h"

namespace insitu {
namespace {

// llama.cpp's converter order: token embeddings (and other model-level inputs), the blocks in
// layer order, then the output norm and head.
int order_group(const std::string& name, int* layer) {
  *layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", layer) == 1) return 1;
  if (name.rfind("output", 0) == 0) return 2;
  return 0;
}

uint32_t dominant_file_type(const Model& model) {
  std::map<QuantType, uint64_t> bytes;
  for (const Weight& w : model.weights()) bytes[w.type] += w.nbytes;
  QuantType best = QuantType::kF32;
  uint64_t most = 0;
  for (const auto& [type, n] : bytes) {
    const bool quantized = type_traits(type).is_quantized;
    const bool best_quantized = type_traits(best).is_quantized;
    if ((quantized && !best_quantized) || (quantized == best_quantized && n > most)) {
      best = type;
      most = n;
    }
  }
  return llama_file_type(best);
}

}  // namespace

GgufExportReport export_gguf(const Model& model, const std::string& path,
                             const GgufExportOptions& options) {
  using gguf::Value;
  const ModelConfig& c = model.config();
  gguf::GgufWriter w;
  config_to_gguf(c, w);
  std::optional<uint32_t> file_type = options.file_type;
  if (!options.general_metadata_from.empty()) {
    const auto src = gguf::GgufFile::open(options.general_metadata_from);
    if (!file_type && src->has("general.file_type"))
      file_type = static_cast<uint32_t>(src->get_u64("general.file_type"));
    for (const auto& [key, value] : src->metadata()) {
      if (key.rfind("general.", 0) != 0 || w.find(key) != nullptr) continue;
      if (key == "general.file_type" || key == "general.quantization_version" ||
          key == "general.alignment")
        continue;
      w.set(key, value);
    }
  }
  w.set("general.quantization_version", Value::u32(2));
  w.set("general.file_type", Value::u32(file_type ? *file_type : dominant_file_type(model)));
  write_gguf_tokenizer(model.tokenizer(), w);
  if (const ChatTemplate* t = model.chat_template())
    w.set("tokenizer.chat_template", Value::string(t->source()));
  if (!options.imatrix_file.empty())
    w.set("quantize.imatrix.file", Value::string(options.imatrix_file));
  if (!options.imatrix_dataset.empty())
    w.set("quantize.imatrix.dataset", Value::string(options.imatrix_dataset));
  if (options.imatrix_entries > 0) {
    w.set("quantize.imatrix.entries_count",
          Value::u32(static_cast<uint32_t>(options.imatrix_entries)));
  }
  if (options.imatrix_chunks > 0)
    w.set("quantize.imatrix.chunks_count",
          Value::u32(static_cast<uint32_t>(options.imatrix_chunks)));

  std::vector<const Weight*> order;
  for (const Weight& wt : model.weights()) order.push_back(&wt);
  std::stable_sort(order.begin(), order.end(), [](const Weight* a, const Weight* b) {
    int la = 0, lb = 0;
    const int ga = order_group(a->name, &la), gb = order_group(b->name, &lb);
    return ga != gb ? ga < gb : la < lb;
  });

  GgufExportReport report;
  uint64_t total = 0;
  for (const Weight* wt : order) total += wt->nbytes;
  auto progress = std::make_shared<Progress>("gguf", static_cast<int64_t>(order.size()), total,
                                             options.show_progress);
  for (const Weight* wt : order) {
    if (static_cast<uint32_t>(wt->type) >= 1000) {
      throw Unsupported(
          fmt::format("gguf export: tensor '{}' is {}, which has no GGUF form; "
                      "GGUF types: {}",
                      wt->name, quant_type_name(wt->type), quant_type_name_list()));
    }
    w.add_tensor(wt->name, wt->type, wt->ne, [wt, progress](ByteSink& out) {
      out.write(wt->data, wt->nbytes);
      progress->advance(1, wt->nbytes);
    });
    ++report.n_tensors;
    report.tensor_bytes += wt->nbytes;
  }
  // llama3 RoPE factors derived from config.json live in a tensor in GGUF.
  std::shared_ptr<std::vector<float>> factors;
  if (model.find_weight("rope_freqs.weight") == nullptr) {
    factors = std::make_shared<std::vector<float>>(llama3_rope_freq_factors(c));
    if (!factors->empty()) {
      const auto* bytes = reinterpret_cast<const uint8_t*>(factors->data());
      w.add_tensor("rope_freqs.weight", QuantType::kF32, {static_cast<int64_t>(factors->size())},
                   std::span<const uint8_t>(bytes, factors->size() * sizeof(float)));
      ++report.n_tensors;
      report.tensor_bytes += factors->size() * sizeof(float);
    }
  }
  w.write(path);
  progress->finish();
  report.file_bytes = w.file_size();
  spdlog::info("gguf export: {} tensors, {:.1f} MiB, to {}", report.n_tensors,
               report.tensor_bytes / 1048576.0, path);
  return report;
}

}  // namespace insitu
