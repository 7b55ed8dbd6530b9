#include "model/isq_topology.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <spdlog/spdlog.h>
// yaml-cpp 0.7's node iterators trip GCC 12's -Wdangling-pointer (a false positive in its headers).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#include <yaml-cpp/yaml.h>
#pragma GCC diagnostic pop
#else
#include <yaml-cpp/yaml.h>
#endif

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "insitu/error.h"
#include "io/mapped_file.h"
#include "model/hf_names.h"
#include "model/isq.h"
#include "model/isq_mix.h"
#include "model/model.h"

namespace insitu {

namespace {

// Ranges beyond this are refused rather than sized into a per-layer table.
constexpr int64_t kMaxLayerIndex = 100000;

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};

[[noreturn]] void fail(const std::string& source, int line, std::string_view key,
                       const std::string& reason) {
  const std::string where = line > 0 ? fmt::format("{}:{}", source, line) : source;
  if (key.empty()) throw InvalidArgument(fmt::format("topology {}: {}", where, reason));
  throw InvalidArgument(fmt::format("topology {}: '{}': {}", where, key, reason));
}

// 1-based line of a node, or 0 when yaml-cpp has none.
int line_of(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

std::optional<int64_t> parse_index(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

// An `isq:` value: any --isq type spelling, plus mistral.rs's serde name for fp8.
QuantType parse_entry_type(std::string text) {
  std::string folded;
  for (char c : text)
    if (c != '_' && c != '-')
      folded.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (folded == "f8e4m3") text = "fp8";
  try {
    return parse_isq_type(text);
  } catch (const InvalidArgument& e) {
    // parse_isq_type speaks of the --isq flag; here the value comes from the file.
    std::string_view msg = e.what();
    if (msg.substr(0, 7) == "--isq: ") msg.remove_prefix(7);
    throw InvalidArgument(std::string(msg));
  }
}

// cpu, cuda[N] or metal[N] (mistral.rs's DEVICE_PATTERN).
bool valid_device(std::string_view d) {
  if (d == "cpu") return true;
  for (std::string_view prefix : {std::string_view("cuda["), std::string_view("metal[")}) {
    if (d.size() > prefix.size() + 1 && d.substr(0, prefix.size()) == prefix && d.back() == ']') {
      const std::string_view digits = d.substr(prefix.size(), d.size() - prefix.size() - 1);
      return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    }
  }
  return false;
}

}  // namespace

struct IsqTopology::Pattern {
  int entry = 0;  // index into entries_
  std::shared_ptr<pcre2_code> code;
};

IsqTopology::IsqTopology() = default;
IsqTopology::~IsqTopology() = default;
IsqTopology::IsqTopology(IsqTopology&&) noexcept = default;

std::shared_ptr<const IsqTopology> IsqTopology::load(const std::string& path) {
  return parse(read_regular_file(path, size_t{16} << 20, "topology"), path);
}

std::shared_ptr<const IsqTopology> IsqTopology::parse(std::string_view yaml,
                                                      const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw InvalidArgument(fmt::format("topology {}:{}:{}: bad YAML: {}", source, e.mark.line + 1,
                                      e.mark.column + 1, e.msg));
  }
  if (!root.IsMap() || root.size() == 0) {
    fail(source, line_of(root), "",
         "expected a mapping of selectors to entries, e.g. \"0-8: {isq: q4k}\" or "
         "\"'/lm_head\\.weight$/': {isq: q8_0}\"");
  }

  struct Range {
    int64_t start, end;
    int entry;
  };
  std::vector<Range> ranges;
  std::vector<std::string> gpu_keys;
  std::set<std::string> seen;
  auto topo = std::shared_ptr<IsqTopology>(new IsqTopology());
  topo->source_ = source;
  for (auto it = root.begin(); it != root.end(); ++it) {
    // By value: it->first/second are proxies that die at the end of the full expression.
    const YAML::Node k = it->first;
    const YAML::Node v = it->second;
    IsqTopologyEntry e;
    e.line = line_of(k);
    if (!k.IsScalar())
      fail(source, e.line, "", "a selector must be a string: START-END, N or /regex/");
    e.key = k.Scalar();
    if (!seen.insert(e.key).second) fail(source, e.line, e.key, "selector given twice");

    // The entry's body: a mapping with isq and/or device, or empty.
    if (v.IsMap()) {
      for (auto f = v.begin(); f != v.end(); ++f) {
        const std::string field = f->first.IsScalar() ? f->first.Scalar() : "?";
        const YAML::Node value = f->second;
        const int line = line_of(f->first);
        if (field != "isq" && field != "device")
          fail(source, line, e.key, fmt::format("unknown key '{}'; valid: isq device", field));
        if (value.IsNull()) continue;
        if (!value.IsScalar()) fail(source, line, e.key, fmt::format("{} must be a string", field));
        const std::string text = value.Scalar();
        if (field == "isq") {
          if (text.empty()) continue;
          try {
            e.type = parse_entry_type(text);
          } catch (const InvalidArgument& err) {
            fail(source, line, e.key, fmt::format("isq: {}", err.what()));
          }
        } else {
          if (!valid_device(text)) {
            fail(source, line, e.key,
                 fmt::format("device '{}' invalid; valid: cpu, cuda[N], metal[N]", text));
          }
          e.device = text;
          if (text != "cpu") gpu_keys.push_back(e.key);
        }
      }
    } else if (!v.IsNull()) {
      fail(source, line_of(v), e.key, "expected a mapping with isq and/or device");
    }

    const int index = static_cast<int>(topo->entries_.size());
    const std::string_view key = e.key;
    if (key.size() >= 2 && key.front() == '/' && key.back() == '/') {
      const std::string_view pattern = key.substr(1, key.size() - 2);
      int err = 0;
      PCRE2_SIZE offset = 0;
      pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                       PCRE2_UTF, &err, &offset, nullptr);
      if (code == nullptr) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        fail(source, e.line, e.key,
             fmt::format("bad regex at offset {}: {}", offset, reinterpret_cast<const char*>(msg)));
      }
      topo->patterns_.push_back({index, std::shared_ptr<pcre2_code>(code, CodeDeleter())});
    } else {
      int64_t start = 0, end = 0;
      if (const size_t dash = key.find('-'); dash != std::string_view::npos) {
        const std::optional<int64_t> s = parse_index(key.substr(0, dash));
        const std::optional<int64_t> t = parse_index(key.substr(dash + 1));
        if (!s || !t) {
          fail(source, e.line, e.key,
               "not a selector; expected START-END (layers, half-open), N or /regex/");
        }
        start = *s;
        end = *t;
      } else {
        const std::optional<int64_t> n = parse_index(key);
        if (!n) {
          fail(source, e.line, e.key,
               "not a selector; expected START-END (layers, half-open), N or /regex/");
        }
        start = *n;
        end = *n + 1;
      }
      if (end <= start) {
        fail(source, e.line, e.key,
             fmt::format("range end must be > start (half-open), got {} <= {}", end, start));
      }
      if (end > kMaxLayerIndex) {
        fail(source, e.line, e.key,
             fmt::format("layer index {} out of range (at most {})", end - 1, kMaxLayerIndex - 1));
      }
      ranges.push_back({start, end, index});
    }
    topo->entries_.push_back(std::move(e));
  }

  // Sorted by (end, declaration): a later-applied range overwrites, so the larger end wins and,
  // for equal ends, the later declaration.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.end != b.end ? a.end < b.end : a.entry < b.entry;
  });
  if (!ranges.empty()) topo->layer_entry_.assign(static_cast<size_t>(ranges.back().end), -1);
  for (const Range& r : ranges)
    for (int64_t i = r.start; i < r.end; ++i) topo->layer_entry_[static_cast<size_t>(i)] = r.entry;

  if (!gpu_keys.empty()) {
    std::string keys;
    for (const std::string& k : gpu_keys) keys += (keys.empty() ? "'" : ", '") + k + "'";
    spdlog::warn("topology {}: this build runs on the CPU only; the GPU device of {} is ignored",
                 source, keys);
  }
  return topo;
}

const IsqTopologyEntry* IsqTopology::first_untyped() const {
  for (const IsqTopologyEntry& e : entries_)
    if (!e.type) return &e;
  return nullptr;
}

const IsqTopologyEntry* IsqTopology::match_name(std::string_view name) const {
  for (auto p = patterns_.rbegin(); p != patterns_.rend(); ++p) {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(p->code.get(), nullptr), &pcre2_match_data_free);
    if (!md) throw std::bad_alloc();
    const int rc = pcre2_match(p->code.get(), reinterpret_cast<PCRE2_SPTR>(name.data()),
                               name.size(), 0, 0, md.get(), nullptr);
    if (rc >= 0) return &entries_[static_cast<size_t>(p->entry)];
    if (rc != PCRE2_ERROR_NOMATCH) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw InvalidArgument(fmt::format("topology {}:{}: '{}': matching '{}' failed: {}", source_,
                                        entries_[static_cast<size_t>(p->entry)].line,
                                        entries_[static_cast<size_t>(p->entry)].key, name,
                                        reinterpret_cast<const char*>(msg)));
    }
  }
  return nullptr;
}

const IsqTopologyEntry* IsqTopology::match_layer(int layer) const {
  if (layer < 0 || static_cast<size_t>(layer) >= layer_entry_.size()) return nullptr;
  const int e = layer_entry_[static_cast<size_t>(layer)];
  return e < 0 ? nullptr : &entries_[static_cast<size_t>(e)];
}

const IsqTopologyEntry* IsqTopology::match(std::span<const std::string> hf_names, int layer) const {
  // The last-declared regex matching any of the names; regexes beat ranges.
  const IsqTopologyEntry* best = nullptr;
  for (const std::string& name : hf_names) {
    const IsqTopologyEntry* e = match_name(name);
    if (e != nullptr && (best == nullptr || e > best))
      best = e;  // entries_ is in declaration order
  }
  return best != nullptr ? best : match_layer(layer);
}

std::vector<std::string> isq_topology_names(std::string_view gguf_name, WeightRole role,
                                            const IsqModelShape& model) {
  std::vector<std::string> names;
  if (std::optional<std::string> hf = gguf_to_hf_name(gguf_name, model.arch)) {
    names.push_back(std::move(*hf));
  } else {
    names.emplace_back(gguf_name);
  }
  if (role == WeightRole::kTokenEmbedding && model.tied_embeddings)
    names.emplace_back("lm_head.weight");
  return names;
}

const IsqTopologyEntry* IsqTopology::match_weight(std::string_view gguf_name, WeightRole role,
                                                  int layer, const IsqModelShape& model) const {
  return match(isq_topology_names(gguf_name, role, model), layer);
}

void log_topology_coverage(const IsqTopology& topology, const std::vector<IsqDecision>& plan,
                           const std::vector<Weight>& weights, const IsqModelShape& model) {
  std::set<std::string_view> used;
  std::set<const Weight*> candidates;
  for (const IsqDecision& d : plan) {
    if (!d.topology_key.empty()) used.insert(d.topology_key);
    candidates.insert(d.weight);
  }
  for (const IsqTopologyEntry& e : topology.entries()) {
    if (!used.contains(e.key)) {
      spdlog::warn("topology {}:{}: '{}' decides no weight of this model ({} layers)",
                   topology.source(), e.line, e.key, model.n_layer);
    }
  }
  if (!spdlog::should_log(spdlog::level::debug)) return;
  for (const Weight& w : weights) {
    if (candidates.contains(&w)) continue;
    const std::optional<std::string> hf = gguf_to_hf_name(w.name, model.arch);
    if (const IsqTopologyEntry* e = topology.match_name(hf ? *hf : w.name)) {
      spdlog::debug("topology {}:{}: '{}' matches '{}', which in-situ quantization leaves as it is",
                    topology.source(), e->line, e->key, hf ? *hf : w.name);
    }
  }
}

}  // namespace insitu
