// Python str operations over UTF-8, as jinja2 filters and str methods use them.
//
// Case mapping covers ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic (plus ß -> SS);
// other scripts are left unchanged, which is what Python does for uncased scripts (CJK, ...).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace insitu::jinja {

std::string py_lower(std::string_view s);
std::string py_upper(std::string_view s);
std::string py_capitalize(std::string_view s);
std::string py_title(std::string_view s);      // str.title()
std::string jinja_title(std::string_view s);   // the `title` filter (word starts after - space ( { [ <)
// str.strip/lstrip/rstrip; chars == nullopt strips whitespace.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / rsplit; sep == nullopt splits on whitespace runs. maxsplit < 0: no limit.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit,
                                  bool from_right);
std::vector<std::string> py_splitlines(std::string_view s);
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
int64_t py_count(std::string_view s, std::string_view sub);
int64_t py_find(std::string_view s, std::string_view sub, bool from_right);  // code-point index, -1
std::string html_escape(std::string_view s);  // markupsafe.escape
int64_t word_count(std::string_view s);       // len(re.findall(r"\w+", s))
bool is_cased_letter(char32_t c);
// Python int(str) / float(str) parsing (whitespace, sign, underscores); nullopt when invalid.
std::optional<int64_t> parse_py_int(std::string_view s);
std::optional<double> parse_py_float(std::string_view s);

}  // namespace insitu::jinja
