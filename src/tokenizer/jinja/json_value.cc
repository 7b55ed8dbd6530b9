#include "tokenizer/jinja/json_value.h"

#include <nlohmann/json.hpp>

namespace insitu::jinja {
namespace {

Value convert(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxNesting) throw InvalidArgument("json: nested more than " + std::to_string(kMaxNesting) + " levels deep");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) throw InvalidArgument("json: integer " + std::to_string(u) + " exceeds 64 bits");
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      for (const auto& x : j) items.push_back(convert(x, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value d = Value::dict();
      for (auto it = j.begin(); it != j.end(); ++it) d.dict_data().set(Value(it.key()), convert(it.value(), depth + 1));
      return d;
    }
    default: throw InvalidArgument("json: unsupported value type");
  }
}

}  // namespace

Value value_from_json(std::string_view json_text, std::string_view what) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(std::string(what) + ": invalid JSON: " + e.what());
  }
  return convert(j, 0);
}

}  // namespace insitu::jinja
