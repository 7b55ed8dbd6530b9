#include "run_config.h"

#include <toml++/toml.h>

#include <filesystem>
#include <fmt/format.h>
#include <functional>
#include <map>

#include "insitu/error.h"
#include "io/mapped_file.h"

namespace insitu::cli {
namespace {

namespace fs = std::filesystem;

std::string where(const std::string& path, const toml::source_region& at) {
  return fmt::format("{}:{}:{}", path, at.begin.line, at.begin.column);
}

// A value read from a TOML table into a RunConfig field.
using Reader = std::function<void(const toml::node&)>;

// Reads `table`'s keys through `readers`, refusing unknown keys with the valid ones listed.
void read_table(const std::string& path, const toml::table& table, const std::string& section,
                const std::map<std::string, Reader>& readers) {
  for (auto&& [key, node] : table) {
    const auto it = readers.find(std::string(key.str()));
    if (it == readers.end()) {
      std::string valid;
      for (const auto& [name, reader] : readers) valid += (valid.empty() ? "" : " ") + name;
      throw InvalidArgument(fmt::format("{}: unknown key '{}'{}; valid: {}",
                                        where(path, key.source()), key.str(),
                                        section.empty() ? "" : " in [" + section + "]", valid));
    }
    it->second(node);
  }
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "a date or time";
  }
}

// Relative paths in the file are relative to the file's directory; a value that names nothing
// there (an org/name model id) is kept as written.
std::string resolve_path(const std::string& config_path, const std::string& value) {
  if (value.empty() || fs::path(value).is_absolute()) return value;
  const fs::path beside = fs::absolute(config_path).parent_path() / value;
  std::error_code ec;
  return fs::exists(beside, ec) ? beside.lexically_normal().string() : value;
}

}  // namespace

RunConfig read_run_config(const std::string& path) {
  const std::string text = read_regular_file(path, size_t{16} << 20, "run config");
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw InvalidArgument(fmt::format("{}: {}", where(path, e.source()), e.description()));
  }
  RunConfig c;
  auto string = [&](const char* key, auto& field, bool is_path = false) {
    return Reader([&, key, is_path](const toml::node& n) {
      if (!n.is_string())
        throw InvalidArgument(fmt::format("{}: '{}' must be a string, not {}",
                                          where(path, n.source()), key, type_name(n)));
      std::string v = n.as_string()->get();
      field = is_path ? resolve_path(path, v) : v;
    });
  };
  auto integer = [&](const char* key, std::optional<int64_t>& field, int64_t lo) {
    return Reader([&, key, lo](const toml::node& n) {
      if (!n.is_integer())
        throw InvalidArgument(fmt::format("{}: '{}' must be an integer, not {}",
                                          where(path, n.source()), key, type_name(n)));
      const int64_t v = n.as_integer()->get();
      if (v < lo || v > (int64_t{1} << 30))
        throw InvalidArgument(fmt::format("{}: '{}' = {} out of range [{}, {}]",
                                          where(path, n.source()), key, v, lo, int64_t{1} << 30));
      field = v;
    });
  };
  auto table = [&](const char* key, const std::function<void(const toml::table&)>& read) {
    return Reader([&, key, read](const toml::node& n) {
      if (!n.is_table())
        throw InvalidArgument(fmt::format("{}: '{}' must be a table ([{}]), not {}",
                                          where(path, n.source()), key, key, type_name(n)));
      read(*n.as_table());
    });
  };
  bool have_model = false;
  auto models = Reader([&](const toml::node& n) {
    if (!n.is_array_of_tables())
      throw InvalidArgument(fmt::format("{}: 'models' must be an array of tables ([[models]]), "
                                        "not {}", where(path, n.source()), type_name(n)));
    const toml::array& list = *n.as_array();
    if (list.size() != 1)
      throw InvalidArgument(fmt::format("{}: {} [[models]] entries; insitu runs one model",
                                        where(path, n.source()), list.size()));
    const toml::table& m = *list[0].as_table();
    read_table(path, m, "models",
               {{"model_id", string("model_id", c.model_id, true)},
                {"format", string("format", c.format)},
                {"quantization",
                 table("quantization", [&](const toml::table& q) {
                   read_table(path, q, "models.quantization",
                              {{"isq", string("isq", c.isq)},
                               {"quant", string("quant", c.quant)},
                               {"profile", string("profile", c.profile)},
                               {"max_memory", string("max_memory", c.max_memory)},
                               {"imatrix", string("imatrix", c.imatrix, true)},
                               {"calibration_file",
                                string("calibration_file", c.calibration_file, true)},
                               {"topology", string("topology", c.topology, true)},
                               {"isq_organization", string("isq_organization", c.isq_organization)},
                               {"from_uqff", string("from_uqff", c.from_uqff, true)},
                               {"pure", Reader([&](const toml::node& b) {
                                  if (!b.is_boolean())
                                    throw InvalidArgument(fmt::format(
                                        "{}: 'pure' must be a boolean, not {}",
                                        where(path, b.source()), type_name(b)));
                                  c.pure = b.as_boolean()->get();
                                })}});
                 })}});
    if (c.model_id.empty())
      throw InvalidArgument(fmt::format("{}: [[models]] has no model_id",
                                        where(path, m.source())));
    have_model = true;
  });
  read_table(path, root, "",
             {{"command", string("command", c.command)},
              {"runtime", table("runtime",
                                [&](const toml::table& t) {
                                  read_table(path, t, "runtime",
                                             {{"ctx", integer("ctx", c.ctx, 1)},
                                              {"threads", integer("threads", c.threads, 0)}});
                                })},
              {"models", models}});
  if (c.command != "run") {
    const toml::node* n = root.get("command");
    throw InvalidArgument(fmt::format("{}: command '{}' unknown; valid: run",
                                      where(path, n->source()), c.command));
  }
  if (!have_model) throw InvalidArgument(fmt::format("{}: no [[models]] entry", path));
  return c;
}

namespace {

// A TOML basic string.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) out += fmt::format("\\u{:04x}", ch);
        else out += ch;
    }
  }
  return out + "\"";
}

// "# what\nkey = value\n", or the key commented out with an example value when unset.
void key(std::string& out, const char* what, const char* name,
         const std::optional<std::string>& value, const char* example) {
  out += fmt::format("# {}\n", what);
  if (value) out += fmt::format("{} = {}\n", name, quoted(*value));
  else out += fmt::format("# {} = {}\n", name, example);
}

}  // namespace

std::string run_config_toml(const RunConfig& c, const std::string& title) {
  std::string out = fmt::format(
      "# {}\n"
      "# Run it with: insitu from-config -f THIS_FILE (add `-- --prompt TEXT` and other `insitu "
      "run` flags\n"
      "# after `--`). Each key is one flag of `insitu run`; delete a key to get the flag's "
      "default.\n"
      "# Relative paths are relative to this file's directory.\n\n",
      title);
  out += "# The verb to run (only \"run\" for now).\ncommand = \"run\"\n\n[runtime]\n";
  out += "# Context size in tokens: the KV cache is allocated for this many (run --ctx).\n";
  out += c.ctx ? fmt::format("ctx = {}\n", *c.ctx) : "# ctx = 4096\n";
  out += "# Worker threads; 0 uses every core (run --threads).\n";
  out += c.threads ? fmt::format("threads = {}\n", *c.threads) : "# threads = 0\n";
  out += "\n[[models]]\n";
  out += "# A Hugging Face-style directory, an org/name id in the local Hugging Face cache, or a "
         ".gguf file\n# (run -m, or -f with format = \"gguf\").\n";
  out += fmt::format("model_id = {}\n", quoted(c.model_id));
  key(out, "\"gguf\" when model_id is a GGUF file; absent for a directory (run --format).",
      "format", c.format, "\"gguf\"");
  out += "\n[models.quantization]\n";
  key(out, "Quantize in situ while loading: a type (q4k, q8_0, ...), bits (2 3 4 5 6 8) or a "
           "llama.cpp mix\n# (q4k_m, ...); absent keeps the weights as stored (run --isq).",
      "isq", c.isq, "\"q4k\"");
  key(out, "Instead of isq: bits or a type, using a prebuilt UQFF beside the model when there is "
           "one, or\n# \"auto\" to pick what fits this machine as `insitu tune` does (run --quant).",
      "quant", c.quant, "\"auto\"");
  key(out, "With quant = \"auto\": quality | balanced | fast (run --profile).", "profile",
      c.profile, "\"balanced\"");
  key(out, "With quant = \"auto\": the memory to fit in instead of what is available now (run "
           "--max-memory).",
      "max_memory", c.max_memory, "\"8G\"");
  key(out, "Importance matrix for isq: llama.cpp GGUF imatrix, legacy .dat, or .cimatrix (run "
           "--imatrix).",
      "imatrix", c.imatrix, "\"imatrix.gguf\"");
  key(out, "Collect an importance matrix from this text first (run --calibration-file; not with "
           "imatrix).",
      "calibration_file", c.calibration_file, "\"calibration.txt\"");
  key(out, "Per-layer and per-weight ISQ types, as mistral.rs's topology YAML (run --topology).",
      "topology", c.topology, "\"topology.yml\"");
  key(out, "default (attention, MLP, experts, embeddings, output head) or moqe (only the routed "
           "experts)\n# (run --isq-organization).",
      "isq_organization", c.isq_organization, "\"default\"");
  key(out, "Load stored UQFF weights: shard file(s) or a type found beside the model (run "
           "--from-uqff).",
      "from_uqff", c.from_uqff, "\"q4k\"");
  out += "# No promotion of token embeddings and output head (run --pure).\n";
  out += c.pure ? fmt::format("pure = {}\n", *c.pure ? "true" : "false") : "# pure = false\n";
  return out;
}

std::vector<std::string> run_config_args(const RunConfig& c) {
  std::vector<std::string> a = {"run"};
  if (c.format) a.insert(a.end(), {"--format", *c.format, "-f", c.model_id});
  else a.insert(a.end(), {"-m", c.model_id});
  auto opt = [&](const char* flag, const std::optional<std::string>& v) {
    if (v) a.insert(a.end(), {flag, *v});
  };
  opt("--isq", c.isq);
  opt("--quant", c.quant);
  opt("--profile", c.profile);
  opt("--max-memory", c.max_memory);
  opt("--imatrix", c.imatrix);
  opt("--calibration-file", c.calibration_file);
  opt("--topology", c.topology);
  opt("--isq-organization", c.isq_organization);
  opt("--from-uqff", c.from_uqff);
  if (c.pure && *c.pure) a.push_back("--pure");
  if (c.ctx) a.insert(a.end(), {"--ctx", std::to_string(*c.ctx)});
  if (c.threads) a.insert(a.end(), {"--threads", std::to_string(*c.threads)});
  return a;
}

std::string shell_command(const std::vector<std::string>& args) {
  std::string out = "insitu";
  for (const std::string& s : args) {
    const bool plain = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM"
                                                         "NOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
                                         std::string::npos;
    if (plain) {
      out += " " + s;
      continue;
    }
    std::string q = "'";
    for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    out += " " + q + "'";
  }
  return out;
}

}  // namespace insitu::cli
