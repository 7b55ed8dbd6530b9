// Collecting importance matrices (imatrix) from a calibration text, as llama.cpp's imatrix tool
// does (a port of the collection in tools/imatrix/imatrix.cpp, llama.cpp as vendored in
// llama-cpp-python 0.3.36), layer by layer so that only one layer's weights are resident.
//
// What is collected, as there:
//   * the text is tokenized once as common_tokenize(text, add_special = true, parse_special =
//     false) (BOS first when the model adds one); n_chunk = n_tokens / n_ctx (at most max_chunks);
//     chunk c is tokens [c*n_ctx, (c+1)*n_ctx) with its first token replaced by BOS (when the model
//     adds BOS), evaluated in a fresh context (positions from 0);
//   * for every matrix product whose weight is named "blk.*" (and "output.weight" with
//     process_output), every row of its input x (all n_ctx tokens of every chunk) adds x_j² to
//     column j's sum and 1 to the count. A tied output head is the tensor token_embd.weight, which
//     llama.cpp does not collect even with --process-output; neither is it collected here.
//     Per expert for mixture-of-experts weights (experts never routed keep count 0). llama.cpp
//     also skips products of fewer than 16 rows, which only matters for n_ctx < 16 (it then
//     collects nothing); here every row counts. It also wants 2 * n_ctx tokens (for its
//     perplexity); one chunk is enough here;
//   * the result carries chunk_count = n_chunk, chunk_size = n_ctx and the dataset name, as the
//     GGUF imatrix llama.cpp writes (counts = n_chunk * n_ctx rows per dense entry).
// Sums are accumulated in double and stored as float; they do not depend on the thread count.
//
// Streaming (collect_imatrix): every chunk's embeddings are computed first (only the embedding
// rows used are touched, then their pages are returned to the kernel); then for each layer in turn
// the layer is prepared (Model::prepare_layer), every chunk's hidden states go through it with a KV
// cache of that layer alone, and the layer is released (converted buffers freed, mapped pages
// returned). Peak memory is about one layer's weights plus the hidden states of the whole
// calibration set ([n_chunk * n_ctx, n_embd] floats) and one layer's KV cache and scratch.
// collect_imatrix_eval is the plain alternative (the whole model, chunk by chunk through
// Session::eval), the reference the streaming pass is tested against: results are bit-identical.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/imatrix_file.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace insitu {

// Importance statistics as llama.cpp's imatrix keeps them: per weight (and per expert slab of a
// stacked expert weight), the sum of x^2 over every input row for each input column, and the
// rows seen. Shared by the collector below and the server's live calibration. Not thread-safe.
class ImatrixStats {
 public:
  // Adds the rows x[n_rows, weight.ne[0]] of expert slab `expert` (-1: a dense weight). With a
  // pool, columns are split across its threads; each column sums its rows in order, so the sums
  // never depend on the thread count. Throws InvalidArgument for an expert the weight has not
  // and, with check_finite, for a non-finite sum (naming the weight).
  void add(const Weight& weight, int expert, const float* x, int64_t n_rows, ThreadPool* pool,
           bool check_finite);
  // The entries in the imatrix file form (datasets and chunk fields left to the caller).
  Imatrix to_imatrix() const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    int64_t n_cols = 0;
    std::vector<double> sums;     // [n_mat][n_cols]
    std::vector<int64_t> counts;  // [n_mat]
  };
  std::map<std::string, Entry> entries_;
};

struct ImatrixCollectOptions {
  int n_ctx = 512;              // tokens per chunk (llama-imatrix --ctx-size)
  int max_chunks = -1;          // < 0: every whole chunk of the text
  bool process_output = false;  // also collect output.weight (llama-imatrix --process-output)
  std::string dataset;          // recorded in imatrix.datasets (the calibration file's name)
  KvCacheType kv_type = KvCacheType::kF16;

  // Throws InvalidArgument naming the option: n_ctx < 1 or above 2^20, max_chunks == 0.
  void validate() const;
};

// Called after each unit of work with (units done, units in all): one unit is one chunk through
// one layer (or through the output head); for collect_imatrix_eval, one chunk through the model.
using ImatrixStepCallback = std::function<void(int64_t done, int64_t total)>;

// The calibration text's tokens as llama-imatrix makes them (BOS first when the model adds one).
std::vector<int32_t> imatrix_tokens(const Model& model, std::string_view text);

// Chunks the options take from n_tokens tokens (n_tokens / n_ctx, at most max_chunks).
int imatrix_chunk_count(int64_t n_tokens, const ImatrixCollectOptions& options);

// Streaming collection over `tokens` (from imatrix_tokens). The model is best loaded with
// Model::load_streaming; a model from Model::load works too (its layers stay converted, but their
// mapped pages are still returned as each layer finishes). Throws InvalidArgument when the text
// has fewer than n_ctx tokens or the options are invalid.
Imatrix collect_imatrix(const std::shared_ptr<Model>& model, std::span<const int32_t> tokens,
                        const ImatrixCollectOptions& options, ThreadPool& pool,
                        const ImatrixStepCallback& on_step = {});

// Loads `source` for streaming, tokenizes `text` and collects.
Imatrix collect_imatrix(const LoadOptions& source, std::string_view text,
                        const ImatrixCollectOptions& options, ThreadPool& pool,
                        const ImatrixStepCallback& on_step = {});

// The same collection through Session::eval, chunk by chunk with every layer resident.
Imatrix collect_imatrix_eval(const std::shared_ptr<const Model>& model,
                             std::span<const int32_t> tokens, const ImatrixCollectOptions& options,
                             ThreadPool& pool, const ImatrixStepCallback& on_step = {});

// The same matrices keyed by mistral.rs module paths, as .cimatrix files are
// ("blk.3.ffn_down.weight" -> "model.layers.3.mlp.down_proj"; "output.weight" -> "lm_head").
// Throws InvalidArgument for an entry the architecture has no module for.
Imatrix imatrix_with_module_keys(const Imatrix& imatrix, Arch arch);

// The inverse, for reading a .cimatrix: module keys -> GGUF tensor names. Entries already named
// like GGUF tensors are kept; throws InvalidArgument for a key that is neither.
Imatrix imatrix_with_gguf_names(const Imatrix& imatrix, Arch arch);

}  // namespace insitu
