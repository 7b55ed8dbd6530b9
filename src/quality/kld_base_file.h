// The base-logits file of llama.cpp's perplexity tool (`--kl-divergence-base`), written and read
// byte for byte as tools/perplexity/perplexity.cpp does (llama.cpp as vendored in
// llama-cpp-python 0.3.36), so files interchange with llama-perplexity in both directions.
//
// Layout (little-endian, no padding):
//   char[8]  "_logits_"
//   int32    n_ctx                       tokens per chunk
//   int32    n_vocab                     width of every distribution
//   int32    n_chunk
//   int32    tokens[n_chunk * n_ctx]     the text's ids as tokenized (BOS included when the model
//                                        adds one; the per-chunk BOS substitution is not stored)
//   n_chunk * (n_ctx - 1 - n_ctx/2) records, chunk by chunk, one per scored position j
//   (j = n_ctx/2 .. n_ctx-2, the distribution of token j+1), each nv = 2*((n_vocab+1)/2) + 4
//   uint16:
//     float32  scale                     (max_logit - min_logit) / 65535
//     float32  min_log_prob              log-prob of the floor logit min_logit
//     uint16   q[n_vocab]                log p[i] ~= scale * q[i] + min_log_prob; 0 below the floor
//     uint16   pad[n_vocab % 2]          zero
// The floor is max(min logit, max logit - 16): log-probs more than 16 nats below the top are
// clamped to it, and the KL sum skips them (p < e^-16).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace insitu {

// uint16 per record (nv above).
size_t kld_record_size(int n_vocab);
// Positions scored per chunk: n_ctx - 1 - n_ctx/2.
int kld_scored_per_chunk(int n_ctx);

// Encodes one position's logits [n_vocab] into `record` (kld_record_size(n_vocab) uint16) as
// llama.cpp's log_softmax(n_vocab, logits, log_prob, tok) does, and returns that function's value:
// -log p(tok) computed in float (max + log-sum-exp - logit[tok]).
double encode_log_probs(std::span<const float> logits, int32_t tok, uint16_t* record);

// Log-prob of entry i of an encoded record (scale * q[i] + min_log_prob, in float as llama.cpp).
float decoded_log_prob(const uint16_t* record, int32_t i);

// One position compared with its base record, as llama.cpp's log_softmax(n_vocab, logits,
// base_log_prob, tok, kld) computes it: the KL sum skips base log-probs below the record's floor.
struct KldRow {
  float nll = 0;       // -log p(tok) under `logits`
  float nll_base = 0;  // -log p(tok) under the base
  double kld = 0;      // KL(base || logits), nats
  float p_diff = 0;    // p(tok) - p_base(tok)
  bool same_top = false;  // both argmaxes agree
};
KldRow kld_row(const float* logits, int n_vocab, const uint16_t* base, int32_t tok);

// Streams a base file to `path` through an AtomicFile: nothing appears under `path` until commit()
// has checked that every record was written; an exception or a missing commit leaves no file.
class KldBaseWriter {
 public:
  // Writes the header and tokens (n_chunk * n_ctx ids). Throws InvalidArgument for bad counts,
  // IoError when the destination's directory is not writable.
  KldBaseWriter(std::string path, int n_ctx, int n_vocab, int n_chunk,
                std::span<const int32_t> tokens);
  // Appends whole records (a multiple of kld_record_size(n_vocab) uint16), in chunk order.
  void append(std::span<const uint16_t> records);
  // Throws InvalidArgument when records are missing; then publishes the file.
  void commit();
  const std::string& path() const { return file_.path(); }

 private:
  AtomicFile file_;
  size_t record_size_;
  uint64_t records_expected_;
  uint64_t records_written_ = 0;
};

// A base file mapped read-only and checked: magic, positive counts, every token id inside the
// vocabulary, and a size exactly equal to what the header implies (a truncated or padded file is
// rejected). Errors are FormatError naming the path. The accessors point into the mapping.
class KldBaseFile {
 public:
  static KldBaseFile open(const std::string& path);

  const std::string& path() const { return map_->path(); }
  int n_ctx() const { return n_ctx_; }
  int n_vocab() const { return n_vocab_; }
  int n_chunk() const { return n_chunk_; }
  std::span<const int32_t> tokens() const { return tokens_; }
  // The record of scored position k (0 .. kld_scored_per_chunk(n_ctx)-1) of `chunk`.
  const uint16_t* record(int chunk, int k) const;
  // Tells the kernel the records of `chunk` will not be read again.
  void release_chunk(int chunk) const;

 private:
  std::shared_ptr<const MappedFile> map_;
  int n_ctx_ = 0;
  int n_vocab_ = 0;
  int n_chunk_ = 0;
  std::span<const int32_t> tokens_;
  const uint16_t* records_ = nullptr;
  size_t record_size_ = 0;
};

}  // namespace insitu
