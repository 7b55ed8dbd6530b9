#include "model/reference_data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "test_paths.h"

namespace insitu::test {

ModelReference load_model_reference(const std::string& name) {
  ModelReference ref;
  const std::string dir = data_dir() + "/reference/";
  std::ifstream js(dir + name + ".json");
  if (!js) {
    ADD_FAILURE() << "missing " << dir << name << ".json";
    return ref;
  }
  const nlohmann::json j = nlohmann::json::parse(js);
  ref.model_file = j.at("model").get<std::string>();
  ref.text_ids = j.at("text_ids").get<std::vector<int32_t>>();
  ref.first = j.value("first_position", 0);
  ref.positions = j.at("positions").get<int>();
  ref.topk = j.at("topk").get<int>();
  for (const auto& p : j.at("prompts")) {
    ref.prompts.push_back({p.at("text").get<std::string>(), p.at("ids").get<std::vector<int32_t>>(),
                           p.at("greedy").get<std::vector<int32_t>>()});
  }
  std::ifstream bin(dir + j.at("topk_file").get<std::string>(), std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(bin)), {});
  const size_t expected = static_cast<size_t>(ref.positions) * ref.topk * 8;
  if (bytes.size() != expected) {
    ADD_FAILURE() << name << ".topk.bin: " << bytes.size() << " bytes, expected " << expected;
    return {};
  }
  ref.top.resize(static_cast<size_t>(ref.positions) * ref.topk);
  for (size_t i = 0; i < ref.top.size(); ++i) {
    std::memcpy(&ref.top[i].id, bytes.data() + 8 * i, 4);
    std::memcpy(&ref.top[i].logprob, bytes.data() + 8 * i + 4, 4);
  }
  return ref;
}

LogitAgreement compare_logits(const ModelReference& ref, const std::vector<float>& logits,
                              int n_vocab) {
  LogitAgreement out;
  out.positions = ref.positions;
  int agree = 0;
  for (int pos = 0; pos < ref.positions; ++pos) {
    const float* row = logits.data() + static_cast<size_t>(pos) * n_vocab;
    // Our log-softmax in double precision.
    double mx = row[0];
    int argmax = 0;
    for (int v = 1; v < n_vocab; ++v) {
      if (row[v] > mx) {
        mx = row[v];
        argmax = v;
      }
    }
    double sum = 0;
    for (int v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
    const double lse = mx + std::log(sum);

    const ReferenceTopK* top = ref.top.data() + static_cast<size_t>(pos) * ref.topk;
    double kl = 0, p_mass = 0, q_mass = 0;
    for (int k = 0; k < ref.topk; ++k) {
      const double lp = top[k].logprob;
      const double lq = static_cast<double>(row[top[k].id]) - lse;
      const double p = std::exp(lp);
      kl += p * (lp - lq);
      p_mass += p;
      q_mass += std::exp(lq);
    }
    const double p_rest = std::max(0.0, 1.0 - p_mass);
    const double q_rest = std::max(1e-300, 1.0 - q_mass);
    if (p_rest > 0) kl += p_rest * (std::log(p_rest) - std::log(q_rest));
    out.mean_kl += kl;
    out.max_kl = std::max(out.max_kl, kl);
    if (argmax == top[0].id) ++agree;
  }
  out.mean_kl /= ref.positions;
  out.top1 = static_cast<double>(agree) / ref.positions;
  return out;
}

}  // namespace insitu::test
