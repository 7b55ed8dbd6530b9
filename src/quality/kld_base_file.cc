#include "quality/kld_base_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "insitu/error.h"

namespace insitu {
namespace {

constexpr char kMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
constexpr size_t kHeaderBytes = sizeof(kMagic) + 3 * sizeof(int32_t);

// Round to nearest (ties to even) through the float mantissa, as llama.cpp's nearest_int; valid
// for |x| < 2^22, which holds here (0 <= x <= 65535).
int nearest_int(float x) {
  const float v = x + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace

size_t kld_record_size(int n_vocab) { return 2 * ((static_cast<size_t>(n_vocab) + 1) / 2) + 4; }

int kld_scored_per_chunk(int n_ctx) { return n_ctx - 1 - n_ctx / 2; }

double encode_log_probs(std::span<const float> logits, int32_t tok, uint16_t* record) {
  const int n_vocab = static_cast<int>(logits.size());
  float max_logit = logits[0];
  float min_logit = logits[0];
  for (int i = 1; i < n_vocab; ++i) {
    max_logit = std::max(max_logit, logits[i]);
    min_logit = std::min(min_logit, logits[i]);
  }
  min_logit = std::max(min_logit, max_logit - 16);
  double sum_exp = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const float log_sum_exp = static_cast<float>(std::log(sum_exp));
  const float min_log_prob = min_logit - max_logit - log_sum_exp;
  const float scale = (max_logit - min_logit) / 65535.f;
  std::memcpy(record, &scale, sizeof scale);
  std::memcpy(record + 2, &min_log_prob, sizeof min_log_prob);
  uint16_t* q = record + 4;
  if (scale != 0.0f) {
    const float inv_scale = 1 / scale;
    for (int i = 0; i < n_vocab; ++i) {
      q[i] = logits[i] > min_logit
                 ? static_cast<uint16_t>(nearest_int(inv_scale * (logits[i] - min_logit)))
                 : 0;
    }
  } else {
    std::fill(q, q + n_vocab, uint16_t{0});
  }
  if (n_vocab % 2) q[n_vocab] = 0;
  return max_logit + log_sum_exp - logits[tok];
}

float decoded_log_prob(const uint16_t* record, int32_t i) {
  float scale, min_log_prob;
  std::memcpy(&scale, record, sizeof scale);
  std::memcpy(&min_log_prob, record + 2, sizeof min_log_prob);
  return scale * record[4 + i] + min_log_prob;
}

KldBaseWriter::KldBaseWriter(std::string path, int n_ctx, int n_vocab, int n_chunk,
                             std::span<const int32_t> tokens)
    : file_(std::move(path)), record_size_(kld_record_size(n_vocab)) {
  if (n_ctx < 3 || n_vocab <= 0 || n_chunk <= 0)
    throw InvalidArgument(
        fmt::format("{}: cannot write a KL-divergence base with n_ctx {}, "
                    "n_vocab {}, {} chunks",
                    file_.path(), n_ctx, n_vocab, n_chunk));
  const uint64_t n_tokens = static_cast<uint64_t>(n_ctx) * n_chunk;
  if (tokens.size() != n_tokens)
    throw InvalidArgument(fmt::format("{}: {} tokens given for {} chunks of {}", file_.path(),
                                      tokens.size(), n_chunk, n_ctx));
  records_expected_ = static_cast<uint64_t>(n_chunk) * kld_scored_per_chunk(n_ctx);
  const int32_t header[3] = {n_ctx, n_vocab, n_chunk};
  file_.write(kMagic, sizeof kMagic);
  file_.write(header, sizeof header);
  file_.write(tokens.data(), tokens.size_bytes());
}

void KldBaseWriter::append(std::span<const uint16_t> records) {
  if (records.size() % record_size_ != 0)
    throw InvalidArgument(fmt::format("{}: {} uint16 is not a whole number of {}-entry records",
                                      file_.path(), records.size(), record_size_));
  const uint64_t n = records.size() / record_size_;
  if (records_written_ + n > records_expected_)
    throw InvalidArgument(fmt::format("{}: more than the {} records the header announces",
                                      file_.path(), records_expected_));
  file_.write(records.data(), records.size_bytes());
  records_written_ += n;
}

void KldBaseWriter::commit() {
  if (records_written_ != records_expected_)
    throw InvalidArgument(fmt::format("{}: {} of {} records written; not publishing a partial file",
                                      file_.path(), records_written_, records_expected_));
  file_.commit();
}

KldBaseFile KldBaseFile::open(const std::string& path) {
  KldBaseFile f;
  f.map_ = MappedFile::open(path);
  const uint8_t* p = f.map_->data();
  const size_t size = f.map_->size();
  if (size < kHeaderBytes || std::memcmp(p, kMagic, sizeof kMagic) != 0)
    throw FormatError(path + ": not a KL-divergence base file (no '_logits_' header)");
  int32_t header[3];
  std::memcpy(header, p + sizeof kMagic, sizeof header);
  f.n_ctx_ = header[0];
  f.n_vocab_ = header[1];
  f.n_chunk_ = header[2];
  if (f.n_ctx_ < 4 || f.n_vocab_ <= 0 || f.n_chunk_ <= 0)
    throw FormatError(
        fmt::format("{}: KL-divergence base header is invalid: n_ctx {}, n_vocab {}, "
                    "n_chunk {}",
                    path, f.n_ctx_, f.n_vocab_, f.n_chunk_));
  // Counts are below 2^31 each, so these products fit in 64 bits without overflow checks
  // beyond the final comparison with the real size.
  const uint64_t n_tokens = static_cast<uint64_t>(f.n_ctx_) * static_cast<uint64_t>(f.n_chunk_);
  f.record_size_ = kld_record_size(f.n_vocab_);
  const uint64_t n_records =
      static_cast<uint64_t>(f.n_chunk_) * static_cast<uint64_t>(kld_scored_per_chunk(f.n_ctx_));
  const unsigned __int128 expected =
      static_cast<unsigned __int128>(kHeaderBytes) +
      static_cast<unsigned __int128>(n_tokens) * sizeof(int32_t) +
      static_cast<unsigned __int128>(n_records) * f.record_size_ * sizeof(uint16_t);
  if (expected != size) {
    const char* what = expected > size ? "truncated" : "longer than its header says";
    throw FormatError(fmt::format(
        "{}: KL-divergence base is {}: {} bytes, expected {} for "
        "n_ctx {}, n_vocab {}, {} chunks",
        path, what, size, static_cast<uint64_t>(expected), f.n_ctx_, f.n_vocab_, f.n_chunk_));
  }
  // The header is 20 bytes and a record an even number of uint16, so tokens and records sit on
  // 4-byte boundaries of the page-aligned mapping.
  f.tokens_ = {reinterpret_cast<const int32_t*>(p + kHeaderBytes), static_cast<size_t>(n_tokens)};
  f.records_ = reinterpret_cast<const uint16_t*>(p + kHeaderBytes + n_tokens * sizeof(int32_t));
  for (size_t i = 0; i < f.tokens_.size(); ++i) {
    if (f.tokens_[i] < 0 || f.tokens_[i] >= f.n_vocab_)
      throw FormatError(fmt::format("{}: token {} has id {}, outside the vocabulary of {}", path, i,
                                    f.tokens_[i], f.n_vocab_));
  }
  return f;
}

const uint16_t* KldBaseFile::record(int chunk, int k) const {
  const size_t index = static_cast<size_t>(chunk) * kld_scored_per_chunk(n_ctx_) + k;
  return records_ + index * record_size_;
}

void KldBaseFile::release_chunk(int chunk) const {
  const size_t per_chunk = static_cast<size_t>(kld_scored_per_chunk(n_ctx_)) * record_size_ * 2;
  const size_t offset = reinterpret_cast<const uint8_t*>(record(chunk, 0)) - map_->data();
  map_->release_pages(offset, per_chunk);
}

KldRow kld_row(const float* logits, int n_vocab, const uint16_t* base, int32_t tok) {
  float max_logit = logits[0];
  int imax = 0;
  for (int i = 1; i < n_vocab; ++i) {
    if (logits[i] > max_logit) {
      max_logit = logits[i];
      imax = i;
    }
  }
  double sum_exp = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const float log_sum_exp = static_cast<float>(std::log(sum_exp));
  float scale, min_log_prob;
  std::memcpy(&scale, base, sizeof scale);
  std::memcpy(&min_log_prob, base + 2, sizeof min_log_prob);
  const uint16_t* q = base + 4;

  KldRow r;
  r.nll = max_logit + log_sum_exp - logits[tok];
  r.nll_base = -(scale * q[tok] + min_log_prob);
  max_logit += log_sum_exp;
  double sum = 0;
  int imax_base = -1;
  float p_log_base_max = 0;
  for (int i = 0; i < n_vocab; ++i) {
    const float p_log_base = scale * q[i] + min_log_prob;
    if (i == 0 || p_log_base > p_log_base_max) {
      p_log_base_max = p_log_base;
      imax_base = i;
    }
    if (p_log_base > -16.f) {
      const float p_base = std::exp(p_log_base);
      sum += p_base * (p_log_base - logits[i] + max_logit);
    }
  }
  r.kld = sum;
  r.same_top = imax == imax_base;
  r.p_diff = std::exp(-r.nll) - std::exp(-r.nll_base);
  return r;
}

}  // namespace insitu
