#include "model/isq.h"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#include "insitu/error.h"
#include "io/imatrix_file.h"
#include "model/hf_names.h"
#include "model/isq_topology.h"
#include "model/model.h"
#include "quant/fp8.h"  // kFp8Tile
#include "quant/quantize.h"
#include "quant/type_traits.h"
#include "util/progress.h"

namespace insitu {

const char* weight_role_name(WeightRole role) {
  switch (role) {
    case WeightRole::kTokenEmbedding: return "token embeddings";
    case WeightRole::kOutput: return "output head";
    case WeightRole::kAttnQ: return "attention q";
    case WeightRole::kAttnK: return "attention k";
    case WeightRole::kAttnV: return "attention v";
    case WeightRole::kAttnOutput: return "attention output";
    case WeightRole::kFfnGate: return "ffn gate";
    case WeightRole::kFfnUp: return "ffn up";
    case WeightRole::kFfnDown: return "ffn down";
    case WeightRole::kFfnRouter: return "ffn router";
    case WeightRole::kFfnGateExp: return "ffn gate experts";
    case WeightRole::kFfnUpExp: return "ffn up experts";
    case WeightRole::kFfnDownExp: return "ffn down experts";
  }
  return "?";
}

bool is_expert_role(WeightRole role) {
  return role == WeightRole::kFfnGateExp || role == WeightRole::kFfnUpExp ||
         role == WeightRole::kFfnDownExp;
}

const char* isq_organization_name(IsqOrganization organization) {
  return organization == IsqOrganization::kMoqe ? "moqe" : "default";
}

IsqOrganization parse_isq_organization(std::string_view text) {
  if (text == "default") return IsqOrganization::kDefault;
  if (text == "moqe") return IsqOrganization::kMoqe;
  throw InvalidArgument(
      fmt::format("--isq-organization: unknown organization '{}'; valid: default moqe", text));
}

QuantType isq_promoted_type(QuantType t) { return type_traits(t).isq_promoted; }

QuantType isq_row_fallback(QuantType type, int64_t n_per_row) {
  const TypeTraits& t = type_traits(type);
  if (n_per_row % t.block_size == 0) return type;
  // One step down the table's fallback; f16 when that type's blocks do not divide the row either.
  return n_per_row % quant_block_size(t.row_fallback) == 0 ? t.row_fallback : QuantType::kF16;
}

void check_isq_type(QuantType type) {
  if (type_traits(type).isq_target) return;
  std::string valid;
  for (const TypeTraits& t : all_type_traits())
    if (t.isq_target) valid += (valid.empty() ? "" : " ") + std::string(t.name);
  throw InvalidArgument(fmt::format("--isq: '{}' cannot be used as a weight type; valid: {}",
                                    quant_type_name(type), valid));
}

IsqImatrixLookup imatrix_lookup(const Imatrix& imatrix) {
  auto table = std::make_shared<std::map<std::string, std::vector<float>, std::less<>>>();
  for (auto& [name, v] : imatrix.importance()) table->emplace(name, std::move(v));
  return [table](std::string_view name) -> const std::vector<float>* {
    const auto it = table->find(name);
    return it == table->end() ? nullptr : &it->second;
  };
}

QuantType parse_isq_type(std::string_view text) {
  static constexpr std::pair<std::string_view, QuantType> kShorthands[] = {
      {"2", QuantType::kQ2K}, {"3", QuantType::kQ3K}, {"4", QuantType::kQ4K},
      {"5", QuantType::kQ5K}, {"6", QuantType::kQ6K}, {"8", QuantType::kQ8_0}};
  for (const auto& [bits, type] : kShorthands)
    if (text == bits) return type;
  const std::optional<QuantType> t = parse_quant_type(text);
  if (!t) {
    std::string valid;
    for (const TypeTraits& tt : all_type_traits())
      if (tt.isq_target) valid += (valid.empty() ? "" : " ") + std::string(tt.name);
    throw InvalidArgument(fmt::format("--isq: unknown type '{}'; valid: 2 3 4 5 6 8 {}", text, valid));
  }
  check_isq_type(*t);
  return *t;
}

std::string IsqTarget::name() const { return mix ? isq_mix_name(*mix) : quant_type_name(type); }

std::string isq_target_name(const IsqOptions& options) {
  if (options.topology_only) return "topology";
  return IsqTarget{options.type, options.mix}.name();
}

IsqTarget parse_isq_target(std::string_view text) {
  if (const std::optional<IsqMix> mix = parse_isq_mix(text))
    return IsqTarget{isq_mix_default_type(*mix), mix};
  try {
    return IsqTarget{parse_isq_type(text), std::nullopt};
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(fmt::format("{}; or a llama.cpp mix: {}", e.what(), isq_mix_name_list()));
  }
}

std::vector<IsqDecision> plan_isq(const std::vector<IsqCandidate>& candidates,
                                  const IsqOptions& options, const IsqModelShape& model) {
  check_isq_type(options.type);
  if (options.mix) {
    if (options.pure) {
      throw InvalidArgument(fmt::format(
          "--pure: '{}' is a per-tensor mix; --pure asks for one type everywhere (give a type such "
          "as {})", isq_mix_name(*options.mix), quant_type_name(isq_mix_default_type(*options.mix))));
    }
    if (model.n_layer <= 0) {
      throw InvalidArgument(fmt::format("--isq {}: a mix needs the model's shape (layer count)",
                                        isq_mix_name(*options.mix)));
    }
  }
  const bool moqe = options.organization == IsqOrganization::kMoqe;
  if (moqe && std::none_of(candidates.begin(), candidates.end(),
                           [](const IsqCandidate& c) { return is_expert_role(c.role); })) {
    throw InvalidArgument("--isq-organization moqe: the model has no routed experts (MoQE "
                          "quantizes only expert weights); use the default organization");
  }
  const bool has_imatrix = static_cast<bool>(options.imatrix);
  std::vector<IsqDecision> plan;
  plan.reserve(candidates.size());
  for (const IsqCandidate& c : candidates) {
    const Weight& w = *c.weight;
    IsqDecision d;
    d.weight = c.weight;
    d.role = c.role;
    d.layer = c.layer;
    d.from = w.type;
    d.bytes_before = w.nbytes;
    const int64_t n_per_row = w.ne.empty() ? 0 : w.ne[0];
    int64_t n_rows = 1;
    for (size_t i = 1; i < w.ne.size(); ++i) n_rows *= w.ne[i];

    QuantType to = options.type;
    const bool sensitive = c.role == WeightRole::kTokenEmbedding || c.role == WeightRole::kOutput;
    const IsqTopologyEntry* pin =
        options.topology ? options.topology->match_weight(w.name, c.role, c.layer, model) : nullptr;
    if (pin != nullptr) d.topology_key = pin->key;
    if (pin != nullptr && pin->type) {
      to = *pin->type;
      d.pinned = true;
      d.note = fmt::format("pinned by topology ({})", pin->key);
    } else if (c.role == WeightRole::kFfnRouter || (moqe && !is_expert_role(c.role))) {
      to = w.type;  // kept as stored (IsqOrganization says why)
    } else if (options.topology_only) {
      to = w.type;  // no default type: unmatched weights stay as stored
    } else if (options.mix) {
      to = isq_mix_tensor_type(*options.mix, model, c.role, c.layer, n_per_row, has_imatrix);
      if (to != options.type) {
        d.note = fmt::format("{} by the {} recipe ({}{})", quant_type_name(to),
                             isq_mix_name(*options.mix), weight_role_name(c.role),
                             c.layer >= 0 ? fmt::format(", layer {}", c.layer) : "");
      }
    } else if (sensitive && !options.pure && isq_promoted_type(to) != to) {
      to = isq_promoted_type(to);
      d.note = fmt::format("promoted to {} ({})", quant_type_name(to), weight_role_name(c.role));
    }
    d.target = to;
    const QuantType fitted = isq_row_fallback(to, n_per_row);
    if (fitted != to) {
      d.note = fmt::format("{}rows of {} do not fit {}'s {}-element blocks; {} instead",
                           d.note.empty() ? "" : d.note + "; ", n_per_row, quant_type_name(to),
                           quant_block_size(to), quant_type_name(fitted));
      to = fitted;
    }
    d.to = to;
    // Stacked experts are converted slab by slab; a type with a tail (fp8's scales) has one per
    // slab.
    const int64_t n_slab = w.ne.size() >= 3 ? w.ne[2] : 1;
    d.bytes_after =
        quant_tensor_size(to, n_rows / n_slab, n_per_row) * static_cast<uint64_t>(n_slab);
    const bool needs_imatrix =
        type_traits(to).requires_imatrix ||
        (options.mix && !d.pinned && isq_mix_requires_imatrix(*options.mix, c.role, to));
    if (d.converts() && needs_imatrix) {
      const std::vector<float>* im = options.imatrix ? options.imatrix(w.name) : nullptr;
      if (im == nullptr) {
        throw InvalidArgument(fmt::format(
            "--isq {}: tensor '{}' ({}) becomes {}, which needs an importance matrix, and none was "
            "given for it (pass --imatrix FILE or --calibration-file TEXT)",
            isq_target_name(options), w.name,
            d.pinned ? fmt::format("{}, {}", weight_role_name(c.role), d.note)
                     : std::string(weight_role_name(c.role)),
            quant_type_name(to)));
      }
    }
    plan.push_back(std::move(d));
  }
  return plan;
}

std::string isq_notes_summary(const std::vector<IsqDecision>& plan) {
  // Each distinct reason once, with how many tensors it applied to, most common first.
  std::vector<std::pair<std::string, int>> notes;
  int n = 0;
  for (const IsqDecision& d : plan) {
    if (!d.converts() && d.note.empty()) continue;
    ++n;
    if (d.note.empty()) continue;
    auto it = std::find_if(notes.begin(), notes.end(),
                           [&](const auto& e) { return e.first == d.note; });
    if (it == notes.end()) notes.emplace_back(d.note, 1);
    else ++it->second;
  }
  std::stable_sort(notes.begin(), notes.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  const size_t shown = std::min<size_t>(notes.size(), 3);
  for (size_t i = 0; i < shown; ++i)
    out += fmt::format("; {} of {}: {}", notes[i].second, n, notes[i].first);
  int rest = 0;
  for (size_t i = shown; i < notes.size(); ++i) rest += notes[i].second;
  if (rest > 0) out += fmt::format("; {} more with other reasons (--log-level debug)", rest);
  return out;
}

void apply_isq(const std::vector<IsqDecision>& plan, const IsqOptions& options, ThreadPool& pool) {
  uint64_t total = 0, total_after = 0;
  int64_t n_convert = 0;
  for (const IsqDecision& d : plan) {
    if (!d.converts()) continue;
    total += d.bytes_before;
    total_after += d.bytes_after;
    ++n_convert;
  }
  Progress progress("isq " + isq_target_name(options), n_convert, total,
                    options.show_progress);
  const auto start = std::chrono::steady_clock::now();
  for (const IsqDecision& d : plan) {
    if (!d.note.empty()) spdlog::debug("isq: {}: {}", d.weight->name, d.note);
    if (!d.converts()) continue;
    Weight& w = *d.weight;
    const int64_t n_per_row = w.ne[0];
    int64_t n_rows = 1;
    for (size_t i = 1; i < w.ne.size(); ++i) n_rows *= w.ne[i];
    // A stack of experts is converted slab by slab: each expert may have its own importance row
    // and its own source.
    const int64_t n_slab = w.ne.size() >= 3 ? w.ne[2] : 1;
    const int64_t slab_rows = n_rows / n_slab;
    const std::vector<float>* im = options.imatrix ? options.imatrix(w.name) : nullptr;
    const int64_t im_size = im ? static_cast<int64_t>(im->size()) : 0;
    if (im != nullptr && im_size != n_per_row && im_size != n_per_row * n_slab) {
      throw InvalidArgument(fmt::format(
          "--imatrix: entry for '{}' has {} values; the tensor's rows have {}{}", w.name,
          im->size(), n_per_row, n_slab > 1 ? fmt::format(" (x {} experts)", n_slab) : ""));
    }
    auto buf = std::make_shared<std::vector<uint8_t>>(d.bytes_after);
    size_t at = 0;
    const size_t src_slab_bytes = quant_row_size(w.type, n_per_row) * slab_rows;
    // fp8_b128's scales cover 128-row tiles: permuting converted rows gives the bytes of
    // converting permuted rows only when every head lies inside one tile. Otherwise the source
    // rows are permuted first (one copy of this weight as stored).
    int permute_after = d.permute_heads;
    std::vector<uint8_t> permuted_src;
    if (permute_after > 0 && d.to == QuantType::kFP8_B128 && !quant_type_has_tail(w.type) &&
        kFp8Tile % (n_rows / permute_after) != 0) {
      permuted_src.resize(src_slab_bytes);
      permute_qk_rows(w.data, permuted_src.data(), n_rows, quant_row_size(w.type, n_per_row),
                      permute_after, /*to_gguf=*/true);
      permute_after = 0;
    }
    for (int64_t e = 0; e < n_slab; ++e) {
      const Weight* src = d.expert_sources.empty() ? nullptr : d.expert_sources.at(e);
      const uint8_t* from = src ? src->data
                            : !permuted_src.empty() ? permuted_src.data()
                                                    : w.data + e * src_slab_bytes;
      const float* imr = im == nullptr ? nullptr
                         : im_size == n_per_row ? im->data()
                                                : im->data() + e * n_per_row;
      convert_rows(w.type, from, d.to, slab_rows, n_per_row, imr, pool,
                   [&](const uint8_t* bytes, size_t size) {
                     std::copy(bytes, bytes + size, buf->data() + at);
                     at += size;
                   });
      if (src && src->release_pages) src->release_pages();
    }
    if (w.release_pages) w.release_pages();
    if (permute_after > 0) {
      // The rows only: a tail (fp8's scales) stays after them.
      const size_t rows_bytes = quant_row_size(d.to, n_per_row) * static_cast<size_t>(n_rows);
      auto permuted = std::make_shared<std::vector<uint8_t>>(*buf);
      permute_qk_rows(buf->data(), permuted->data(), n_rows, rows_bytes / n_rows, permute_after,
                      /*to_gguf=*/true);
      buf = std::move(permuted);
    }
    w.type = d.to;
    w.data = buf->data();
    w.nbytes = buf->size();
    w.owner = std::shared_ptr<const void>(buf, buf->data());
    w.release_pages = nullptr;
    progress.advance(1, d.bytes_before);
  }
  progress.finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (n_convert > 0) {
    spdlog::info("isq {}: {} tensors, {} -> {} in {:.2f} s ({:.3f} GB/s of source, {} threads){}",
                 isq_target_name(options), n_convert, Progress::format_bytes(total),
                 Progress::format_bytes(total_after), seconds,
                 seconds > 0 ? static_cast<double>(total) / seconds / 1e9 : 0.0, pool.size(),
                 isq_notes_summary(plan));
  }
}

}  // namespace insitu
