#include "model_args.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include <fmt/format.h>

#include "api/model_builder.h"
#include "insitu/error.h"

namespace insitu::cli {

void set_log_level(const std::string& level) {
  const spdlog::level::level_enum l = spdlog::level::from_str(level);
  if (l == spdlog::level::off && level != "off") {
    throw InvalidArgument("--log-level '" + level +
                          "' unknown; valid: trace debug info warn error off");
  }
  spdlog::set_level(l);
}

namespace {

// A CLI11 validator for one option of the table: the library's own check, so the message is
// the same on every front end.
CLI::Validator table_check(const OptionSpec& spec) {
  return CLI::Validator(
      [spec](std::string& value) -> std::string {
        try {
          if (spec.kind == OptionKind::kChoice) {
            check_option(spec, value);
          } else if (spec.kind == OptionKind::kInt) {
            size_t used = 0;
            int64_t v = 0;
            try {
              v = std::stoll(value, &used);
            } catch (const std::exception&) {
              used = 0;
            }
            if (used == 0 || used != value.size())
              return fmt::format("{}: '{}' is not a whole number", spec.name, value);
            check_option(spec, v);
          }
        } catch (const InvalidArgument& e) {
          // CLI11 names the flag itself.
          std::string message = e.what();
          const std::string prefix = std::string(spec.name) + ": ";
          if (message.starts_with(prefix)) message.erase(0, prefix.size());
          return message;
        }
        return {};
      },
      "", spec.name);
}

}  // namespace

void add_build_options(CLI::App& cmd, BuildOptions& options,
                       std::initializer_list<std::string_view> sections,
                       std::initializer_list<std::string_view> except) {
  visit_build_options(options, [&](const OptionSpec& spec, auto& field) {
    if (std::find(except.begin(), except.end(), std::string_view(spec.name)) != except.end())
      return;
    if (std::find(sections.begin(), sections.end(), std::string_view(spec.section)) ==
            sections.end() &&
        std::find(sections.begin(), sections.end(), std::string_view(spec.name)) ==
            sections.end())
      return;
    std::string names = std::string(spec.alias).empty()
                            ? fmt::format("--{}", spec.name)
                            : fmt::format("{},--{}", spec.alias, spec.name);
    std::string help = spec.help;
    if (spec.kind == OptionKind::kChoice) help += fmt::format(" ({})", spec.choices);
    using Field = std::remove_reference_t<decltype(field)>;
    if constexpr (std::is_same_v<Field, bool>) {
      cmd.add_flag(names, field, help);
    } else {
      CLI::Option* o = cmd.add_option(names, field, help);
      if (spec.kind == OptionKind::kChoice || spec.kind == OptionKind::kInt) {
        o->check(table_check(spec));
        o->capture_default_str();
      }
    }
  });
}

void ModelArgs::add_to(CLI::App& cmd, bool with_threads) {
  cmd.add_option("-m,--model", model_dir,
                 "Hugging Face-style model directory (config.json, *.safetensors, tokenizer.json)");
  cmd.add_option("--format", format, "Format of the file given with -f")
      ->check(CLI::IsMember({"gguf"}));
  cmd.add_option("-f,--file", file, "Model file (with --format gguf)");
  BuildOptions runtime;
  visit_build_options(runtime, [&](const OptionSpec& spec, auto&) {
    if (with_threads && std::string_view(spec.name) == "threads")
      cmd.add_option("-t,--threads", threads, spec.help)
          ->check(table_check(spec))
          ->transform(CLI::Validator(
              [](std::string& value) -> std::string {
                // The CPUs this process may use, at most (a warning says so).
                value = std::to_string(ThreadPool::user_thread_count(std::stoi(value)));
                return {};
              },
              "", "threads-cap"));
  });
  cmd.add_option("--log-level", log_level, "trace | debug | info | warn | error | off")
      ->capture_default_str();
}

std::string ModelArgs::path() const {
  if (!model_dir.empty() && !file.empty()) {
    throw InvalidArgument("give either -m DIR or --format gguf -f FILE, not both");
  }
  if (!file.empty()) {
    if (!format.empty() && format != "gguf") {
      throw InvalidArgument("--format '" + format + "' unknown; valid: gguf");
    }
    return file;
  }
  if (!model_dir.empty()) return resolve_model_path(model_dir);
  throw InvalidArgument("no model given: use -m DIR or --format gguf -f FILE");
}

void IsqArgs::add_to(CLI::App& cmd, std::initializer_list<std::string_view> except) {
  add_build_options(cmd, *this, {"quantization"}, except);
}

BuildOptions ModelArgs::build_options(const IsqArgs* isq) const {
  BuildOptions b = isq != nullptr ? static_cast<const BuildOptions&>(*isq) : BuildOptions{};
  b.path = path();
  b.threads = ThreadPool::user_thread_count(threads);
  return b;
}

std::shared_ptr<const Model> ModelArgs::load(const IsqArgs* isq) const {
  set_log_level(log_level);
  return ModelBuilder(build_options(isq)).build();
}

}  // namespace insitu::cli
