// JSON model files (config.json, generation_config.json, tokenizer_config.json, tokenizer.json)
// with errors that name the file, the field and what was expected.
//
//   auto cfg = JsonFile::load(dir + "/config.json");
//   int64_t heads = cfg.root().get_int("num_attention_heads");
//   double eps = cfg.root().get_number("rms_norm_eps", 1e-6);
//   if (auto q = cfg.root().find_object("quantization_config")) bits = q->get_int("bits");
//
// Errors (FormatError): a syntax error gives "json: PATH: line L, column C: <what>"; a field of the
// wrong type gives "PATH: field 'a.b': expected integer, got string"; a missing required field
// gives "PATH: field 'a.b': missing". JSON null counts as absent for the defaulted and optional
// getters. A JsonFile owns its document; JsonObject views keep it alive and are cheap to copy.
// Everything is immutable after load() and safe to share across threads.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace insitu {

class JsonObject {
 public:
  // The object's JSON, for callers that need more than the getters (e.g. a tokenizer).
  const nlohmann::json& json() const { return *node_; }
  const std::string& file() const { return *file_; }
  const std::string& where() const { return prefix_; }  // "" for the root, else "a.b"

  bool has(std::string_view field) const;  // present and not null

  int64_t get_int(std::string_view field) const;
  int64_t get_int(std::string_view field, int64_t def) const;
  std::optional<int64_t> find_int(std::string_view field) const;
  double get_number(std::string_view field) const;
  double get_number(std::string_view field, double def) const;
  std::optional<double> find_number(std::string_view field) const;
  bool get_bool(std::string_view field) const;
  bool get_bool(std::string_view field, bool def) const;
  std::string get_string(std::string_view field) const;
  std::string get_string(std::string_view field, std::string def) const;
  std::optional<std::string> find_string(std::string_view field) const;
  std::vector<int64_t> get_int_array(std::string_view field) const;
  std::vector<std::string> get_string_array(std::string_view field) const;
  JsonObject get_object(std::string_view field) const;
  std::optional<JsonObject> find_object(std::string_view field) const;
  // Required field of any type; throws "missing" when absent or null.
  const nlohmann::json& get(std::string_view field) const;

  // Throws FormatError "FILE: field 'where.field': expected WHAT, got KIND".
  [[noreturn]] void type_error(std::string_view field, std::string_view expected,
                               const nlohmann::json& got) const;

 private:
  friend class JsonFile;
  JsonObject(std::shared_ptr<const nlohmann::json> doc, const nlohmann::json* node,
             std::shared_ptr<const std::string> file, std::string prefix);
  const nlohmann::json* find_raw(std::string_view field) const;  // null when absent or null
  std::string path_of(std::string_view field) const;

  std::shared_ptr<const nlohmann::json> doc_;
  const nlohmann::json* node_;
  std::shared_ptr<const std::string> file_;
  std::string prefix_;
};

class JsonFile {
 public:
  // Reads and parses `path`. Throws IoError when unreadable, FormatError on a syntax error.
  static JsonFile load(const std::string& path);
  // Parses text; `name` appears in errors.
  static JsonFile parse(std::string_view text, const std::string& name);

  const std::string& path() const { return *file_; }
  const nlohmann::json& json() const { return *doc_; }
  // The root as an object; throws FormatError when the document is not a JSON object.
  JsonObject root() const;

 private:
  JsonFile() = default;
  std::shared_ptr<const nlohmann::json> doc_;
  std::shared_ptr<const std::string> file_;
};

// "string", "integer", "number", "boolean", "array", "object", "null".
std::string json_kind(const nlohmann::json& j);

}  // namespace insitu
