// Port of llama_tensor_get_type_impl / tensor_requires_imatrix / llama_ftype_get_default_type
// (src/llama-quant.cpp, llama.cpp as vendored in llama-cpp-python 0.3.36). The branch structure
// follows upstream's so the two can be read side by side; ATTENTION_QKV/KV_B, Falcon, GLM-5 and
// BailingMoE3 branches are absent because no architecture insitu runs has them.
#include "model/isq_mix.h"

#include <algorithm>
#include <cctype>

#include "model/isq.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

using Q = QuantType;
using M = IsqMix;

struct MixRow {
  IsqMix mix;
  const char* name;
  const char* llama_name;
  QuantType default_type;
};

constexpr MixRow kMixes[] = {
    {M::kQ4_0, "q4_0_mix", "Q4_0", Q::kQ4_0},
    {M::kQ4_1, "q4_1_mix", "Q4_1", Q::kQ4_1},
    {M::kQ8_0, "q8_0_mix", "Q8_0", Q::kQ8_0},
    {M::kQ5_0, "q5_0_mix", "Q5_0", Q::kQ5_0},
    {M::kQ5_1, "q5_1_mix", "Q5_1", Q::kQ5_1},
    {M::kQ2K, "q2k_mix", "Q2_K", Q::kQ2K},
    {M::kQ3K_S, "q3k_s", "Q3_K_S", Q::kQ3K},
    {M::kQ3K_M, "q3k_m", "Q3_K_M", Q::kQ3K},
    {M::kQ3K_L, "q3k_l", "Q3_K_L", Q::kQ3K},
    {M::kQ4K_S, "q4k_s", "Q4_K_S", Q::kQ4K},
    {M::kQ4K_M, "q4k_m", "Q4_K_M", Q::kQ4K},
    {M::kQ5K_S, "q5k_s", "Q5_K_S", Q::kQ5K},
    {M::kQ5K_M, "q5k_m", "Q5_K_M", Q::kQ5K},
    {M::kQ6K, "q6k_mix", "Q6_K", Q::kQ6K},
    {M::kIQ2_XXS, "iq2_xxs_mix", "IQ2_XXS", Q::kIQ2_XXS},
    {M::kIQ2_XS, "iq2_xs_mix", "IQ2_XS", Q::kIQ2_XS},
    {M::kQ2K_S, "q2k_s", "Q2_K_S", Q::kQ2K},
    {M::kIQ3_XS, "iq3_xs", "IQ3_XS", Q::kIQ3_S},
    {M::kIQ3_XXS, "iq3_xxs_mix", "IQ3_XXS", Q::kIQ3_XXS},
    {M::kIQ1_S, "iq1_s_mix", "IQ1_S", Q::kIQ1_S},
    {M::kIQ4_NL, "iq4_nl_mix", "IQ4_NL", Q::kIQ4_NL},
    {M::kIQ3_S, "iq3_s_mix", "IQ3_S", Q::kIQ3_S},
    {M::kIQ3_M, "iq3_m", "IQ3_M", Q::kIQ3_S},
    {M::kIQ2_S, "iq2_s_mix", "IQ2_S", Q::kIQ2_XS},
    {M::kIQ2_M, "iq2_m", "IQ2_M", Q::kIQ2_S},
    {M::kIQ4_XS, "iq4_xs_mix", "IQ4_XS", Q::kIQ4_XS},
    {M::kIQ1_M, "iq1_m_mix", "IQ1_M", Q::kIQ1_M},
    {M::kTQ1_0, "tq1_0_mix", "TQ1_0", Q::kTQ1_0},
    {M::kTQ2_0, "tq2_0_mix", "TQ2_0", Q::kTQ2_0},
};

const MixRow& row(IsqMix mix) {
  for (const MixRow& r : kMixes)
    if (r.mix == mix) return r;
  return kMixes[0];  // unreachable for a valid enum value
}

bool is_low_iq(IsqMix f) {  // the IQ1/IQ2 family sharing one branch upstream
  return f == M::kIQ2_XXS || f == M::kIQ2_XS || f == M::kIQ1_S || f == M::kIQ2_S ||
         f == M::kIQ2_M || f == M::kIQ1_M;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third between.
bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

}  // namespace

const std::vector<IsqMix>& all_isq_mixes() {
  static const std::vector<IsqMix> all = [] {
    std::vector<IsqMix> v;
    for (const MixRow& r : kMixes) v.push_back(r.mix);
    std::sort(v.begin(), v.end());
    return v;
  }();
  return all;
}

const char* isq_mix_name(IsqMix mix) { return row(mix).name; }
const char* isq_mix_llama_name(IsqMix mix) { return row(mix).llama_name; }
QuantType isq_mix_default_type(IsqMix mix) { return row(mix).default_type; }

std::optional<IsqMix> parse_isq_mix(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const MixRow& r : kMixes)
    if (lower == r.name) return r.mix;
  // llama.cpp's own spellings (Q4_K_M, q5_k_s, IQ3_M, Q4KM), case-insensitive, '_' optional;
  // except where the spelling names a single type (Q4_0, IQ2_XS): a type wins, as in --isq q4_0.
  auto squeeze = [](std::string_view s) {
    std::string out;
    for (char c : s)
      if (c != '_' && c != '-') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  const std::string key = squeeze(text);
  if (parse_quant_type(text)) return std::nullopt;
  for (const MixRow& r : kMixes)
    if (!parse_quant_type(r.llama_name) && (squeeze(r.llama_name) == key || squeeze(r.name) == key))
      return r.mix;
  return std::nullopt;
}

std::string isq_mix_name_list() {
  std::string s;
  for (IsqMix m : all_isq_mixes()) s += (s.empty() ? "" : " ") + std::string(isq_mix_name(m));
  return s;
}

QuantType isq_mix_tensor_type(IsqMix ftype, const IsqModelShape& model, WeightRole role, int layer,
                              int64_t n_per_row, bool has_imatrix) {
  using R = WeightRole;
  // llama.cpp categorises a stacked expert tensor by name ("ffn_gate_exps" contains "ffn_gate")
  // and, with experts, takes its layer from the name: the dense rules at the same layer.
  if (role == R::kFfnGateExp) role = R::kFfnGate;
  if (role == R::kFfnUpExp) role = R::kFfnUp;
  if (role == R::kFfnDownExp) role = R::kFfnDown;
  QuantType new_type = isq_mix_default_type(ftype);
  const int n_gqa = model.n_head_kv > 0 ? model.n_head / model.n_head_kv : 0;
  const int n_expert = model.n_expert;
  const int n_layer = model.n_layer;
  // llama.cpp's LLM_TYPE_70B as inferred for quantization: an 80-layer llama with grouped KV.
  const bool is_70b =
      model.arch == Arch::kLlama && n_layer == 80 && model.n_head != model.n_head_kv;
  // Dense models: llama.cpp's attention-v and ffn-down counters equal the layer index.
  const int i_attention_wv = layer, n_attention_wv = n_layer;
  const int i_layer = layer;

  if (role == R::kOutput || (model.tied_embeddings && role == R::kTokenEmbedding)) {
    if (n_per_row % quant_block_size(new_type) != 0) {
      new_type = Q::kQ8_0;
    } else if (ftype == M::kIQ2_XXS || ftype == M::kIQ2_XS || ftype == M::kIQ3_XXS ||
               ftype == M::kIQ1_S || ftype == M::kIQ2_S || ftype == M::kIQ2_M ||
               ftype == M::kIQ1_M) {
      new_type = Q::kQ5K;
    } else if (new_type != Q::kQ8_0) {
      new_type = Q::kQ6K;
    }
  } else if (role == R::kTokenEmbedding) {
    if (ftype == M::kIQ2_XXS || ftype == M::kIQ2_XS || ftype == M::kIQ1_S || ftype == M::kIQ1_M) {
      new_type = Q::kQ2K;
    } else if (ftype == M::kIQ2_S || ftype == M::kIQ2_M) {
      new_type = Q::kIQ3_S;
    } else if (ftype == M::kIQ3_XXS) {
      new_type = Q::kIQ3_S;
    } else if (ftype == M::kTQ1_0 || ftype == M::kTQ2_0) {
      new_type = Q::kQ4K;
    }
  } else if (is_low_iq(ftype)) {
    if (role == R::kAttnV) {
      if (n_gqa >= 4 || n_expert >= 4)
        new_type = Q::kQ4K;
      else
        new_type = ftype == M::kIQ2_S || ftype == M::kIQ2_M ? Q::kIQ3_S : Q::kQ2K;
    } else if (n_expert == 8 && role == R::kAttnK) {
      new_type = Q::kQ4K;
    } else if (role == R::kFfnDown) {
      if (i_layer < n_layer / 8) {
        new_type = ftype == M::kIQ2_S || ftype == M::kIQ2_M ? Q::kIQ3_S : Q::kQ2K;
      }
    } else if (role == R::kAttnOutput) {
      if (n_expert == 8) {
        new_type = Q::kQ5K;
      } else {
        if (ftype == M::kIQ1_S || ftype == M::kIQ1_M)
          new_type = Q::kIQ2_XXS;
        else if (ftype == M::kIQ2_S || ftype == M::kIQ2_M)
          new_type = Q::kIQ3_S;
      }
    }
  } else if (role == R::kAttnV) {
    if (ftype == M::kQ2K) {
      new_type = n_gqa >= 4 ? Q::kQ4K : Q::kQ3K;
    } else if (ftype == M::kQ2K_S && n_gqa >= 4) {
      new_type = Q::kQ4K;
    } else if (ftype == M::kIQ3_XXS) {
      new_type = n_gqa >= 4 ? Q::kQ4K : !has_imatrix ? Q::kIQ3_S : Q::kIQ3_XXS;
    } else if ((ftype == M::kIQ3_XS || ftype == M::kIQ3_S) && n_gqa >= 4) {
      new_type = Q::kQ4K;
    } else if (ftype == M::kIQ3_M) {
      new_type = Q::kQ4K;
    } else if (ftype == M::kQ3K_M) {
      new_type = i_attention_wv < 2 ? Q::kQ5K : Q::kQ4K;
    } else if (ftype == M::kQ3K_L) {
      new_type = Q::kQ5K;
    } else if ((ftype == M::kIQ4_NL || ftype == M::kIQ4_XS) && n_gqa >= 4) {
      new_type = Q::kQ5K;
    } else if ((ftype == M::kQ4K_M || ftype == M::kQ5K_M) &&
               use_more_bits(i_attention_wv, n_attention_wv)) {
      new_type = Q::kQ6K;
    } else if (ftype == M::kQ4K_S && i_attention_wv < 4) {
      new_type = Q::kQ5K;
    }
    if (is_70b) {
      // Eight heads share each attention-v row in the 70B model, so it is 8x smaller than q.
      if (new_type == Q::kQ3K || new_type == Q::kQ4K) new_type = Q::kQ5K;
    }
    if (n_expert == 8) new_type = Q::kQ8_0;
  } else if (role == R::kAttnK) {
    if (n_expert == 8) {
      new_type = Q::kQ8_0;
    } else if (ftype == M::kIQ3_XS) {
      new_type = Q::kIQ3_XXS;
    } else if (ftype == M::kIQ3_XXS) {
      new_type = Q::kIQ2_S;
    }
  } else if (role == R::kAttnQ) {
    if (ftype == M::kIQ3_XS) {
      new_type = Q::kIQ3_XXS;
    } else if (ftype == M::kIQ3_XXS) {
      new_type = Q::kIQ2_S;
    }
  } else if (role == R::kFfnDown) {
    if (ftype == M::kQ2K) {
      new_type = Q::kQ3K;
    } else if (ftype == M::kQ2K_S) {
      if (i_layer < n_layer / 8) new_type = Q::kQ4K;
    } else if (ftype == M::kIQ3_XXS && !has_imatrix) {
      new_type = i_layer < n_layer / 8 ? Q::kQ4K : Q::kQ3K;
    } else if (ftype == M::kQ3K_M) {
      // Upstream: q3k for Falcon's other layers; every other architecture gets q4k.
      new_type = i_layer < n_layer / 16 ? Q::kQ5K : Q::kQ4K;
    } else if (ftype == M::kIQ3_M &&
               (i_layer < n_layer / 8 || (n_expert == 8 && use_more_bits(i_layer, n_layer)))) {
      new_type = Q::kQ4K;
    } else if (ftype == M::kQ3K_L) {
      new_type = Q::kQ5K;
    } else if (ftype == M::kQ4K_M) {
      if (use_more_bits(i_layer, n_layer)) new_type = Q::kQ6K;
    } else if (i_layer < n_layer / 8 && (ftype == M::kIQ4_NL || ftype == M::kIQ4_XS) &&
               !has_imatrix) {
      new_type = Q::kQ5K;
    } else if (ftype == M::kQ5K_M && use_more_bits(i_layer, n_layer)) {
      new_type = Q::kQ6K;
    } else if (ftype == M::kQ4K_S && i_layer < n_layer / 8) {
      new_type = Q::kQ5K;
    } else if ((ftype == M::kQ4_0 || ftype == M::kQ5_0) && has_imatrix && i_layer < n_layer / 8) {
      // Upstream guards the first ffn_down layers of q4_0/q5_0 only when an imatrix is given, so
      // the same command without one keeps giving the same file.
      new_type = ftype == M::kQ4_0 ? Q::kQ4_1 : Q::kQ5_1;
    }
  } else if (role == R::kAttnOutput) {
    if (n_expert == 8) {
      if (ftype == M::kQ2K || ftype == M::kIQ3_XS || ftype == M::kIQ3_XXS || ftype == M::kQ3K_S ||
          ftype == M::kQ3K_M || ftype == M::kIQ4_NL || ftype == M::kQ4K_S || ftype == M::kQ4K_M ||
          ftype == M::kIQ3_S || ftype == M::kIQ3_M || ftype == M::kIQ4_XS) {
        new_type = Q::kQ5K;
      }
    } else {
      if (ftype == M::kQ2K)
        new_type = Q::kQ3K;
      else if (ftype == M::kIQ3_XXS)
        new_type = Q::kIQ3_S;
      else if (ftype == M::kQ3K_M)
        new_type = Q::kQ4K;
      else if (ftype == M::kQ3K_L)
        new_type = Q::kQ5K;
      else if (ftype == M::kIQ3_M)
        new_type = Q::kQ4K;
    }
  } else if (role == R::kFfnGate || role == R::kFfnUp) {
    if (ftype == M::kIQ3_XS && i_layer >= n_layer / 8 && i_layer < 7 * n_layer / 8) {
      new_type = Q::kIQ3_XXS;
    }
  }
  return new_type;
}

bool isq_mix_requires_imatrix(IsqMix mix, WeightRole role, QuantType type) {
  if (role == WeightRole::kTokenEmbedding || role == WeightRole::kOutput) return false;
  switch (type) {
    case Q::kIQ3_XXS:
    case Q::kIQ2_XXS:
    case Q::kIQ2_XS:
    case Q::kIQ2_S:
    case Q::kIQ1_M:
    case Q::kIQ1_S:
      return true;
    case Q::kQ2K:
      // k-quants do not need one, except q2k weights of a q2k_s file.
      return mix == M::kQ2K_S;
    default:
      return false;
  }
}

}  // namespace insitu
