#include "quant/gguf_quantize.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "insitu/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "quant/quantize.h"
#include "quant/type_traits.h"
#include "util/progress.h"

namespace insitu {

uint32_t llama_file_type(QuantType type) {
  // A type llama.cpp has no file type for (q8_1, q8_k, integers, insitu's own) gives 0, all f32.
  return type_traits(type).llama_ftype.value_or(0);
}

namespace {

bool is_float_source(QuantType t) {
  return t == QuantType::kF32 || t == QuantType::kF16 || t == QuantType::kBF16;
}

}  // namespace

GgufQuantizeReport quantize_gguf(const std::string& input, const std::string& output,
                                 const GgufQuantizeOptions& options, ThreadPool& pool) {
  const TypeTraits& target = type_traits(options.type);
  if (!target.is_quantized && !is_float_source(options.type)) {
    throw InvalidArgument("quantize: '" + std::string(target.name) +
                          "' is not a weight type; valid: " + quant_type_name_list());
  }
  if (target.quantize == nullptr) {
    throw Unsupported("quantize: producing '" + std::string(target.name) +
                      "' is not supported (it is an activation-only or read-only type)");
  }
  const auto in = gguf::GgufFile::open(input);
  GgufQuantizeReport report;

  gguf::GgufWriter writer;
  for (const auto& [key, value] : in->metadata()) writer.set(key, value);
  writer.set("general.quantization_version", gguf::Value::u32(2));
  writer.set("general.file_type", gguf::Value::u32(llama_file_type(options.type)));
  if (options.imatrix && !options.imatrix_source.empty()) {
    writer.set("quantize.imatrix.file", gguf::Value::string(options.imatrix_source));
  }

  uint64_t total_bytes = 0;
  for (const gguf::TensorInfo& t : in->tensors()) total_bytes += t.nbytes;
  auto progress = std::make_shared<Progress>("quantize " + std::string(target.name),
                                             static_cast<int64_t>(in->tensors().size()),
                                             total_bytes, options.show_progress);

  for (const gguf::TensorInfo& t : in->tensors()) {
    const bool quantize = t.ne.size() == 2 && is_float_source(t.type) && t.type != options.type &&
                          t.ne[0] % target.block_size == 0;
    if (!quantize) {
      std::string why;
      if (t.ne.size() != 2) {
        why = std::to_string(t.ne.size()) + "-D";
      } else if (!is_float_source(t.type) || t.type == options.type) {
        why = "already " + quant_type_name(t.type);
      } else {
        why = "row length " + std::to_string(t.ne[0]) + " is not a multiple of " +
              std::to_string(target.block_size);
      }
      report.notes.push_back(t.name + ": kept as " + quant_type_name(t.type) + " (" + why + ")");
      spdlog::info("quantize: {}", report.notes.back());
      ++report.n_copied;
      report.bytes_in += t.nbytes;
      report.bytes_out += t.nbytes;
      const gguf::TensorInfo* tp = &t;
      writer.add_tensor(t.name, t.type, t.ne, [tp, in, progress](ByteSink& out) {
        out.write(tp->data, tp->nbytes);
        in->release(*tp);
        progress->advance(1, tp->nbytes);
      });
      continue;
    }

    const std::vector<float>* imat = options.imatrix ? options.imatrix(t.name) : nullptr;
    if (imat != nullptr && static_cast<int64_t>(imat->size()) != t.ne[0]) {
      throw InvalidArgument("quantize: imatrix entry for '" + t.name + "' has " +
                            std::to_string(imat->size()) + " values; the tensor's rows have " +
                            std::to_string(t.ne[0]));
    }
    if (target.requires_imatrix && imat == nullptr) {
      throw InvalidArgument("quantize: type '" + std::string(target.name) +
                            "' needs an importance matrix and none was given for tensor '" +
                            t.name + "' (pass --imatrix FILE)");
    }
    ++report.n_quantized;
    report.bytes_in += t.nbytes;
    report.bytes_out += quant_row_size(options.type, t.ne[0]) * static_cast<uint64_t>(t.ne[1]);
    const gguf::TensorInfo* tp = &t;
    const QuantType type = options.type;
    writer.add_tensor(t.name, type, t.ne, [tp, in, imat, type, &pool, progress](ByteSink& out) {
      convert_rows(tp->type, tp->data, type, tp->ne[1], tp->ne[0], imat ? imat->data() : nullptr,
                   pool, [&out](const uint8_t* bytes, size_t size) { out.write(bytes, size); });
      in->release(*tp);
      progress->advance(1, tp->nbytes);
    });
  }
  writer.write(output);
  progress->finish();
  return report;
}

}  // namespace insitu
