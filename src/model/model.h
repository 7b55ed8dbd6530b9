// The library's view of a model: the public Model and Session (include/insitu/model.h,
// session.h) with what the loader, the architectures and the tools share about them: a weight as
// held in memory, the loader's options, and the linear-layer observer.
//
// Model::load reads a GGUF file or a Hugging Face-style directory (config.json, *.safetensors,
// tokenizer.json) into one immutable object: configuration, tokenizer, chat template and weights.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "insitu/model.h"
#include "insitu/quant_type.h"
#include "insitu/session.h"
#include "kernels/matmul.h"
#include "model/config.h"
#include "model/isq.h"
#include "util/thread_pool.h"

namespace insitu {

// A weight as held in memory: packed in its own type (or dequantized to f32), row-major
// [n_out, n_in]. Owns its bytes or points into a mapping the Model keeps alive.
struct Weight {
  std::string name;
  QuantType type = QuantType::kF32;
  std::vector<int64_t> ne;  // ggml order
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<const void> owner;  // keeps `data` alive
  // Set when `data` points into a file mapping: drops those pages from the resident set once the
  // weight has been converted (the bytes stay readable; the kernel re-reads them on access).
  std::function<void()> release_pages;

  WeightView view() const;  // 2-D view for matmul
};

struct LoadOptions {
  std::string path;          // a .gguf file or a Hugging Face-style directory
  int n_threads = 0;         // 0: hardware threads
  bool dequantize_to_f32 = false;  // keep native types by default
  // In-situ quantization of the linear weights, embeddings and output head while loading
  // (model/isq.h); unset: weights keep their stored types.
  std::optional<IsqOptions> isq;
  // UQFF shards (model/uqff_load.h) whose layer entries replace the source's weights as stored, no
  // requantization; not with `isq`. Empty for a directory that holds UQFF shards and no source
  // weights: the shards of its only type.
  std::vector<std::string> uqff_files;
  // Resolve the configuration, tokenizer and layer structure but read no weight data: every
  // weight keeps the type, shape and nbytes a plain load() would give it (1-D norms as f32) with
  // its data null. Such a model answers config(), weights() and plan_isq() (what `insitu tune`
  // needs); a Session refuses it. Not with isq, uqff_files or dequantize_to_f32.
  bool shapes_only = false;
};

// Sees the input of every linear layer a Session applies (importance-matrix collection). Called on
// the Session's thread just before the weight is applied; a Session without an observer pays one
// null check per matrix product, and an observer never changes results.
class LinearObserver {
 public:
  virtual ~LinearObserver() = default;
  // weight: the matrix applied (weight.name is its GGUF name, weight.ne[0] = n_in).
  // expert: for a mixture-of-experts weight [n_expert, n_out, n_in], the expert these rows were
  //   routed to; -1 for a dense weight.
  // x: [n_rows, n_in] row-major inputs, valid only during the call.
  virtual void observe(const Weight& weight, int expert, const float* x, int64_t n_rows) = 0;
};

}  // namespace insitu
