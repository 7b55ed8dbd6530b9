#include "run_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <functional>
#include <map>
#include <sstream>

#include "insitu/error.h"
#include "insitu/options.h"
#include "io/mapped_file.h"

namespace insitu::cli {
namespace {

namespace fs = std::filesystem;

// An option's TOML key: its name with '_' for '-' (as JSON and Python spell it too).
std::string toml_key(const OptionSpec& spec) {
  std::string key = spec.name;
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

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
  const BuildOptions defaults;
  auto string = [&](const char* key, auto& field, bool is_path = false) {
    return Reader([&, key, is_path](const toml::node& n) {
      if (!n.is_string())
        throw InvalidArgument(fmt::format("{}: '{}' must be a string, not {}",
                                          where(path, n.source()), key, type_name(n)));
      std::string v = n.as_string()->get();
      field = is_path ? resolve_path(path, v) : v;
    });
  };
  // The readers of one section of the option table: each key is an option's name with '_' for
  // '-', checked as the table declares it.
  auto section = [&](const char* name) {
    std::map<std::string, Reader> readers;
    visit_build_options(defaults, [&](const OptionSpec& spec, const auto&) {
      if (std::string_view(spec.section) != name) return;
      const std::string key = toml_key(spec);
      readers[key] = Reader([&, spec, key](const toml::node& n) {
        std::string value;
        switch (spec.kind) {
          case OptionKind::kBool:
            if (!n.is_boolean())
              throw InvalidArgument(fmt::format("{}: '{}' must be a boolean, not {}",
                                                where(path, n.source()), key, type_name(n)));
            value = n.as_boolean()->get() ? "true" : "false";
            break;
          case OptionKind::kInt: {
            if (!n.is_integer())
              throw InvalidArgument(fmt::format("{}: '{}' must be an integer, not {}",
                                                where(path, n.source()), key, type_name(n)));
            const int64_t v = n.as_integer()->get();
            try {
              check_option(spec, v);
            } catch (const InvalidArgument& e) {
              throw InvalidArgument(fmt::format("{}: {}", where(path, n.source()), e.what()));
            }
            value = std::to_string(v);
            break;
          }
          default:
            if (!n.is_string())
              throw InvalidArgument(fmt::format("{}: '{}' must be a string, not {}",
                                                where(path, n.source()), key, type_name(n)));
            value = n.as_string()->get();
            try {
              check_option(spec, value);
            } catch (const InvalidArgument& e) {
              throw InvalidArgument(fmt::format("{}: {}", where(path, n.source()), e.what()));
            }
            if (spec.kind == OptionKind::kPath) value = resolve_path(path, value);
        }
        c.values[spec.name] = value;
      });
    });
    return readers;
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
                {"quantization", table("quantization", [&](const toml::table& q) {
                   read_table(path, q, "models.quantization", section("quantization"));
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
                                  read_table(path, t, "runtime", section("runtime"));
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

// Wraps `text` as "# " comment lines of at most 100 columns.
std::string comment(const std::string& text) {
  std::string out, line;
  std::istringstream words(text);
  for (std::string w; words >> w;) {
    if (!line.empty() && line.size() + 1 + w.size() > 98) {
      out += "# " + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + w;
  }
  if (!line.empty()) out += "# " + line + "\n";
  return out;
}

// "# help (run --NAME)\nkey = value\n" for every option of a table section, the key commented out
// with the table's example when the configuration does not set it.
void section_keys(std::string& out, const RunConfig& c, const char* section) {
  const BuildOptions defaults;
  visit_build_options(defaults, [&](const OptionSpec& spec, const auto&) {
    if (std::string_view(spec.section) != section) return;
    std::string help = spec.help;
    if (spec.kind == OptionKind::kChoice) help += fmt::format(" ({})", spec.choices);
    out += comment(fmt::format("{} (run --{}).", help, spec.name));
    const bool text = spec.kind != OptionKind::kBool && spec.kind != OptionKind::kInt;
    const auto it = c.values.find(spec.name);
    if (it == c.values.end())
      out += fmt::format("# {} = {}\n", toml_key(spec),
                         text ? quoted(spec.example) : std::string(spec.example));
    else
      out += fmt::format("{} = {}\n", toml_key(spec), text ? quoted(it->second) : it->second);
  });
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
  section_keys(out, c, "runtime");
  out += "\n[[models]]\n";
  out += "# A Hugging Face-style directory, an org/name id in the local Hugging Face cache, or a "
         ".gguf file\n# (run -m, or -f with format = \"gguf\").\n";
  out += fmt::format("model_id = {}\n", quoted(c.model_id));
  out += "# \"gguf\" when model_id is a GGUF file; absent for a directory (run --format).\n";
  out += c.format ? fmt::format("format = {}\n", quoted(*c.format)) : "# format = \"gguf\"\n";
  out += "\n[models.quantization]\n";
  section_keys(out, c, "quantization");
  return out;
}

}  // namespace insitu::cli
