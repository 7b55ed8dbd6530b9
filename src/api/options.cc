// The option table's checks (include/insitu/options.h).
#include <algorithm>
#include <cctype>
#include <sstream>

#include <fmt/format.h>

#include "insitu/error.h"
#include "insitu/options.h"

namespace insitu {

std::vector<OptionSpec> build_option_specs() {
  std::vector<OptionSpec> specs;
  const BuildOptions defaults;
  visit_build_options(defaults, [&](const OptionSpec& s, const auto&) { specs.push_back(s); });
  return specs;
}

void check_option(const OptionSpec& spec, std::string& value) {
  if (spec.kind != OptionKind::kChoice) return;
  std::istringstream choices(spec.choices);
  std::string c;
  while (choices >> c) {
    if (c.size() == value.size() &&
        std::equal(c.begin(), c.end(), value.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      value = c;
      return;
    }
  }
  throw InvalidArgument(fmt::format("{}: '{}' invalid; valid: {}", spec.name, value, spec.choices));
}

void check_option(const OptionSpec& spec, int64_t value) {
  if (spec.kind != OptionKind::kInt) return;
  if (value < spec.min || value > spec.max)
    throw InvalidArgument(fmt::format("{}: {} out of range; expected a whole number from {} to {}",
                                      spec.name, value, spec.min, spec.max));
}

}  // namespace insitu
