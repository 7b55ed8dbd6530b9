#include "io/json_file.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "insitu/error.h"
#include "io/mapped_file.h"

namespace insitu {

using Json = nlohmann::json;

std::string json_kind(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    default:
      return "value";
  }
}

// ---- JsonFile ----------------------------------------------------------------------------------

JsonFile JsonFile::load(const std::string& path) {
  // The largest real JSON model files (tokenizer.json) are tens of MB.
  constexpr size_t kMaxJsonBytes = size_t{1} << 30;
  return parse(read_regular_file(path, kMaxJsonBytes, "JSON file"), path);
}

JsonFile JsonFile::parse(std::string_view text, const std::string& name) {
  JsonFile f;
  f.file_ = std::make_shared<const std::string>(name);
  try {
    f.doc_ = std::make_shared<const Json>(Json::parse(text.begin(), text.end()));
  } catch (const Json::parse_error& e) {
    // nlohmann reports the byte just past the problem; turn it into a 1-based line and column.
    const size_t at = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] parse error at line L, column C: ".
    if (const size_t p = what.find("parse error"); p != std::string::npos) {
      if (const size_t colon = what.find(": ", p); colon != std::string::npos) {
        what = what.substr(colon + 2);
      }
    }
    throw FormatError("json: " + name + ": line " + std::to_string(line) + ", column " +
                      std::to_string(col) + ": " + what);
  } catch (const Json::exception& e) {
    throw FormatError("json: " + name + ": " + e.what());
  }
  return f;
}

JsonObject JsonFile::root() const {
  if (!doc_->is_object()) {
    throw FormatError(*file_ + ": expected a JSON object at the top level, got " +
                      json_kind(*doc_));
  }
  return JsonObject(doc_, doc_.get(), file_, "");
}

// ---- JsonObject --------------------------------------------------------------------------------

JsonObject::JsonObject(std::shared_ptr<const Json> doc, const Json* node,
                       std::shared_ptr<const std::string> file, std::string prefix)
    : doc_(std::move(doc)), node_(node), file_(std::move(file)), prefix_(std::move(prefix)) {}

std::string JsonObject::path_of(std::string_view field) const {
  return prefix_.empty() ? std::string(field) : prefix_ + "." + std::string(field);
}

void JsonObject::type_error(std::string_view field, std::string_view expected,
                            const Json& got) const {
  throw FormatError(*file_ + ": field '" + path_of(field) + "': expected " + std::string(expected) +
                    ", got " + json_kind(got));
}

const Json* JsonObject::find_raw(std::string_view field) const {
  const auto it = node_->find(field);
  if (it == node_->end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonObject::has(std::string_view field) const { return find_raw(field) != nullptr; }

const Json& JsonObject::get(std::string_view field) const {
  const Json* j = find_raw(field);
  if (j == nullptr) throw FormatError(*file_ + ": field '" + path_of(field) + "': missing");
  return *j;
}

std::optional<int64_t> JsonObject::find_int(std::string_view field) const {
  const Json* j = find_raw(field);
  if (j == nullptr) return std::nullopt;
  if (j->is_number_integer()) {
    if (j->is_number_unsigned() &&
        j->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw FormatError(*file_ + ": field '" + path_of(field) + "': " + j->dump() +
                        " out of range");
    }
    return j->get<int64_t>();
  }
  // Some exporters write integral values as 32.0; accept exactly integral floats in range.
  if (j->is_number_float()) {
    const double d = j->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<int64_t>(d);
    }
  }
  type_error(field, "integer", *j);
}

int64_t JsonObject::get_int(std::string_view field) const {
  get(field);
  return *find_int(field);
}

int64_t JsonObject::get_int(std::string_view field, int64_t def) const {
  return find_int(field).value_or(def);
}

std::optional<double> JsonObject::find_number(std::string_view field) const {
  const Json* j = find_raw(field);
  if (j == nullptr) return std::nullopt;
  if (!j->is_number()) type_error(field, "number", *j);
  return j->get<double>();
}

double JsonObject::get_number(std::string_view field) const {
  get(field);
  return *find_number(field);
}

double JsonObject::get_number(std::string_view field, double def) const {
  return find_number(field).value_or(def);
}

bool JsonObject::get_bool(std::string_view field) const {
  const Json& j = get(field);
  if (!j.is_boolean()) type_error(field, "boolean", j);
  return j.get<bool>();
}

bool JsonObject::get_bool(std::string_view field, bool def) const {
  return has(field) ? get_bool(field) : def;
}

std::optional<std::string> JsonObject::find_string(std::string_view field) const {
  const Json* j = find_raw(field);
  if (j == nullptr) return std::nullopt;
  if (!j->is_string()) type_error(field, "string", *j);
  return j->get<std::string>();
}

std::string JsonObject::get_string(std::string_view field) const {
  get(field);
  return *find_string(field);
}

std::string JsonObject::get_string(std::string_view field, std::string def) const {
  auto s = find_string(field);
  return s ? *s : def;
}

std::vector<int64_t> JsonObject::get_int_array(std::string_view field) const {
  const Json& j = get(field);
  if (!j.is_array()) type_error(field, "array of integers", j);
  std::vector<int64_t> out;
  out.reserve(j.size());
  for (const Json& x : j) {
    if (!x.is_number_integer() ||
        (x.is_number_unsigned() &&
         x.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      type_error(std::string(field) + "[" + std::to_string(out.size()) + "]", "integer", x);
    }
    out.push_back(x.get<int64_t>());
  }
  return out;
}

std::vector<std::string> JsonObject::get_string_array(std::string_view field) const {
  const Json& j = get(field);
  if (!j.is_array()) type_error(field, "array of strings", j);
  std::vector<std::string> out;
  out.reserve(j.size());
  for (const Json& x : j) {
    if (!x.is_string()) {
      type_error(std::string(field) + "[" + std::to_string(out.size()) + "]", "string", x);
    }
    out.push_back(x.get<std::string>());
  }
  return out;
}

std::optional<JsonObject> JsonObject::find_object(std::string_view field) const {
  const Json* j = find_raw(field);
  if (j == nullptr) return std::nullopt;
  if (!j->is_object()) type_error(field, "object", *j);
  return JsonObject(doc_, j, file_, path_of(field));
}

JsonObject JsonObject::get_object(std::string_view field) const {
  get(field);
  return *find_object(field);
}

}  // namespace insitu
