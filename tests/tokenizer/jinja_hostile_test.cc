// Hostile chat templates (issue 20, items 2 and 3): templates come from model files, so each
// construct that once overflowed the stack, exhausted memory or spun forever must now fail with a
// LimitError naming the budget, promptly, without a crash and without a large allocation. Every
// case runs with the process's peak-RSS counter reset, and the growth is checked.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>

#include "insitu/error.h"
#include "insitu/chat_template.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/json_value.h"
#include "tokenizer/jinja/limits.h"

namespace insitu::jinja {
namespace {

// Peak resident set size of this process in MiB (VmHWM); -1 when /proc is unavailable.
long peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) / 1024;
  }
  return -1;
}

// Resets the peak to the current RSS (Linux: writing 5 to clear_refs); false where not allowed.
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

// The budgets allow up to kMaxAllocatedBytes (512 MiB) in total; the hostile cases below stop
// before that. kHangSeconds is a hang guard, not a performance check: in a release build each
// case takes well under 2 s; sanitizer builds are many times slower.
constexpr long kMaxPeakGrowthMib = 600;
constexpr double kHangSeconds = 120.0;

struct Outcome {
  std::string error;  // empty: rendered
  std::string output;
};

// Parses and renders `source` with a fixed context, measuring time and peak memory.
Outcome attempt(const std::string& source, const std::string& vars = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}") {
  const Value context = value_from_json(vars, "test vars");
  const bool peak_ok = reset_peak_rss();
  const long before = peak_rss_mib();
  const auto t0 = std::chrono::steady_clock::now();
  Outcome o;
  try {
    o.output = Template(source).render(context);
  } catch (const LimitError& e) {
    o.error = e.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, kHangSeconds);
  if (peak_ok && before >= 0) EXPECT_LT(peak_rss_mib() - before, kMaxPeakGrowthMib);
  return o;
}

// Expects a LimitError whose message names `budget`.
void expect_limit(const std::string& source, const std::string& budget) {
  SCOPED_TRACE(source.substr(0, 120));
  const Outcome o = attempt(source);
  ASSERT_FALSE(o.error.empty()) << "rendered " << o.output.size() << " bytes";
  EXPECT_NE(o.error.find(budget), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("template budget exceeded"), std::string::npos) << o.error;
}

std::string chain(const std::string& head, const std::string& link, int n, const std::string& tail = "") {
  std::string s = head;
  for (int i = 0; i < n; ++i) s += link;
  return s + tail;
}

// ---- Syntax depth (parse time) ---------------------------------------------------------------

TEST(JinjaHostile, LongBinaryChainIsBounded) {
  expect_limit("{{ 1" + chain("", " + 1", 20000) + " }}", "expression depth");
  expect_limit("{{ 1" + chain("", " * 1", 20000) + " }}", "expression depth");
  expect_limit("{{ 2" + chain("", " ** 1", 20000) + " }}", "expression depth");
}

TEST(JinjaHostile, LongConcatChainIsBounded) {
  expect_limit("{{ 'a'" + chain("", " ~ 'a'", 20000) + " }}", "expression depth");
}

TEST(JinjaHostile, LongAndOrChainsAreBounded) {
  expect_limit("{{ x" + chain("", " and x", 20000) + " }}", "expression depth");
  expect_limit("{{ x" + chain("", " or x", 20000) + " }}", "expression depth");
}

TEST(JinjaHostile, LongPostfixChainsAreBounded) {
  expect_limit("{{ x" + chain("", ".a", 20000) + " }}", "expression depth");
  expect_limit("{{ x" + chain("", "[0]", 20000) + " }}", "expression depth");
  expect_limit("{{ x" + chain("", "[1:]", 20000) + " }}", "expression depth");
  expect_limit("{{ x" + chain("", "()", 20000) + " }}", "expression depth");
  expect_limit("{{ 'a'" + chain("", " | upper", 20000) + " }}", "expression depth");
  expect_limit("{{ 'a'" + chain("", " if x else 'a'", 20000) + " }}", "expression");
}

TEST(JinjaHostile, DeepLiteralsAreBounded) {
  const int n = 500000;
  expect_limit("{{ " + std::string(n, '[') + std::string(n, ']') + " }}", "expression");
  expect_limit("{{ " + chain("", "{'a': ", n) + "1" + std::string(n, '}') + " }}", "expression");
  expect_limit("{{ " + chain("", "(1, ", n) + "1" + std::string(n, ')') + " }}", "expression");
  expect_limit("{{ " + std::string(n, '(') + "1" + std::string(n, ')') + " }}", "expression");
  expect_limit("{{ " + chain("", "- ", n) + "1 }}", "expression");
  expect_limit("{{ " + chain("", "not ", n) + "1 }}", "expression");
  expect_limit("{{ f(" + chain("", "f(", n) + std::string(n + 1, ')') + " }}", "expression");
}

TEST(JinjaHostile, DeepBlocksAreBounded) {
  expect_limit(chain("", "{% if true %}", 100000) + chain("", "{% endif %}", 100000), "block nesting");
  expect_limit(chain("", "{% for x in y %}", 100000) + chain("", "{% endfor %}", 100000), "block nesting");
  expect_limit(chain("", "{% macro m() %}", 100000) + chain("", "{% endmacro %}", 100000), "block nesting");
}

TEST(JinjaHostile, ModerateDepthStillWorks) {
  EXPECT_EQ(attempt("{{ 1" + chain("", " + 1", 200) + " }}").output, "201");
  EXPECT_EQ(attempt("{{ " + std::string(80, '[') + std::string(80, ']') + " | length }}").output, "1");
  EXPECT_EQ(attempt("{{ " + std::string(80, '(') + "1" + std::string(80, ')') + " }}").output, "1");
  EXPECT_EQ(attempt(chain("", "{% if true %}", 100) + "x" + chain("", "{% endif %}", 100)).output, "x");
}

// ---- Loops, steps and output (render time) ---------------------------------------------------

TEST(JinjaHostile, NestedLoopsStopAtTheIterationBudget) {
  expect_limit("{% for a in range(2000) %}{% for b in range(2000) %}{% for c in range(2000) %}"
               "{% endfor %}{% endfor %}{% endfor %}",
               "loop iterations");
}

TEST(JinjaHostile, ExponentialMacroStopsAtTheStepBudget) {
  expect_limit("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
               "evaluation steps");
}

TEST(JinjaHostile, OutputIsBounded) {
  expect_limit("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output size");
  // Bodies of set blocks count too.
  expect_limit("{% for i in range(100000) %}{% set s %}{{ 'x' * 1000 }}{% endset %}{% endfor %}", "output size");
}

TEST(JinjaHostile, QuadraticBuiltinsAreCharged) {
  expect_limit("{{ range(100000) | unique | length }}", "evaluation steps");
  expect_limit("{% set l = range(100000) | list %}{% for i in range(1000) %}{{ i in l }}{% endfor %}",
               "evaluation steps");
  expect_limit("{{ dict(range(100000) | batch(2)) | length }}", "evaluation steps");
}

TEST(JinjaHostile, RecursiveFiltersAreBounded) {
  expect_limit("{{ ['a'] | map(" + chain("'map'", ", 'map'", 20000) + ", 'upper') | list }}", "filter nesting");
}

// ---- Value sizes -----------------------------------------------------------------------------

TEST(JinjaHostile, StringRepeatIsBounded) {
  expect_limit("{{ 'x' * 10**10 }}", "string size");
  expect_limit("{{ 10**10 * 'x' }}", "string size");
}

TEST(JinjaHostile, StringDoublingIsBounded) {
  expect_limit("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
               "string size");
  expect_limit("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
               "string size");
}

TEST(JinjaHostile, ListRepeatIsBounded) {
  expect_limit("{{ [1] * 10**9 }}", "list size");
  expect_limit("{{ ([1] * 1000000 + [1] * 1000000) | length }}", "list size");
  // Few items, but each a large string: copying the list copies the strings.
  expect_limit("{{ (['x' * 10**7] * 1000) | length }}", "allocated bytes");
}

TEST(JinjaHostile, PaddingFiltersAreBounded) {
  expect_limit("{{ 'x' | center(10**9) }}", "string size");
  expect_limit("{{ 'x\ny' | indent(10**9) }}", "string size");
  expect_limit("{{ ('x\n' * 100000) | indent(1000) }}", "string size");
  expect_limit("{{ [1] | batch(10**9, 0) | list }}", "list size");
  expect_limit("{{ {'a': 1} | tojson(indent=10**9) }}", "string size");
}

TEST(JinjaHostile, JoinAndReplaceAreBounded) {
  expect_limit("{{ (['x' * 10**6] * 100) | join }}", "string size");
  expect_limit("{{ ','.join(['x' * 10**6] * 100) }}", "string size");
  expect_limit("{{ ('x' * 10**6) | replace('x', 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy') }}", "string size");
  expect_limit("{{ ('x' * 10**6).replace('', 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy') }}", "string size");
}

TEST(JinjaHostile, SplittingIsBounded) {
  expect_limit("{{ ('x' * 10**7) | list | length }}", "list size");
  expect_limit("{{ ('a,' * 10**7).split(',') | length }}", "list size");
  expect_limit("{{ ('a ' * 10**7).split() | length }}", "list size");
  expect_limit("{{ ('a\n' * 10**7).splitlines() | length }}", "list size");
}

TEST(JinjaHostile, CopiesOfLargeStringsAreCharged) {
  // Each lookup copies the string: 32 MiB a time adds up to the allocation budget quickly.
  expect_limit("{% set s = 'x' * 30000000 %}{% for i in range(100000) %}{% if s %}{% endif %}{% endfor %}",
               "allocated bytes");
}

TEST(JinjaHostile, CopiesOfListsOfLargeStringsAreCharged) {
  // 100 MiB of strings in one list is within budget; iterating or filtering it again and again
  // copies them every time.
  const std::string big = "{% set l = ['x' * 1000000] * 100 %}";
  expect_limit(big + "{% for i in range(2000) %}{% for x in l %}{% endfor %}{% endfor %}", "allocated bytes");
  expect_limit(big + "{% for i in range(2000) %}{{ l | select | list | length }}{% endfor %}", "allocated bytes");
}

// ---- Value nesting ---------------------------------------------------------------------------

TEST(JinjaHostile, DeepValuesAreDestroyedWithoutRecursion) {
  // 500,000 levels of [[[...]]] built at run time: destroying it must not overflow the stack.
  const Outcome o = attempt(
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% for j in range(5) %}"
      "{% set ns.x = [ns.x] %}{% endfor %}{% endfor %}done");
  EXPECT_EQ(o.output, "done") << o.error;
  // Printing, comparing or serialising it stops at the nesting budget.
  // Two equal chains of distinct lists, so that comparing them walks every level.
  const std::string build =
      "{% set ns = namespace(x=[], y=[]) %}{% for i in range(2000) %}{% set ns.x = [ns.x] %}"
      "{% set ns.y = [ns.y] %}{% endfor %}";
  expect_limit(build + "{{ ns.x }}", "value nesting");
  expect_limit(build + "{{ ns.x | tojson }}", "value nesting");
  expect_limit(build + "{{ ns.x == ns.y }}", "value nesting");
  expect_limit(build + "{{ ns.x < ns.y }}", "value nesting");
  expect_limit(build + "{{ ns.x in [ns.y] }}", "value nesting");
  expect_limit(build + "{{ [ns.x, ns.y] | unique | list }}", "value nesting");
}

TEST(JinjaHostile, SelfReferenceDoesNotLeakOrRecurse) {
  // The cycle ns -> ns is broken when the rendering ends (ASan's leak checker verifies it).
  EXPECT_EQ(attempt("{% set ns = namespace() %}{% set ns.me = ns %}{% set ns.l = [ns, [ns]] %}ok").output, "ok");
  expect_limit("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "value nesting");
}

TEST(JinjaHostile, DeepMacroRecursionIsBounded) {
  // Macro recursion with deep expressions at every level: the render-depth budget holds the
  // stack to a fixed size.
  const std::string deep = chain("", "1 + (", 80) + "f(n + 1)" + std::string(80, ')');
  expect_limit("{% macro f(n) %}{{ " + deep + " }}{% endmacro %}{{ f(0) }}", "render depth");
  EXPECT_THROW(Template("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").render(Value::dict()), Error);
}

// ---- Checked arithmetic ----------------------------------------------------------------------

TEST(JinjaHostile, IntegerOverflowIsAnError) {
  const char* overflowing[] = {
      "{{ 9223372036854775807 + 1 }}",
      "{{ -9223372036854775807 - 2 }}",
      "{{ 9223372036854775807 * 2 }}",
      "{{ 2 ** 63 }}",
      "{{ 3 ** 1000 }}",
      "{{ -(-9223372036854775807 - 1) }}",
      "{{ (-9223372036854775807 - 1) // -1 }}",
      "{{ (-9223372036854775807 - 1) % -1 }}",
      "{{ (-9223372036854775807 - 1) | abs }}",
      "{{ 1e300 | int }}",
      "{{ '1e300' | int }}",
      "{{ [1, 2] | sum(start=9223372036854775807) }}",
  };
  for (const char* src : overflowing) {
    SCOPED_TRACE(src);
    EXPECT_THROW(Template(src).render(Value::dict()), RenderError);
  }
  // Attribute paths with numbers beyond int64 are simply missing (std::stoll used to throw
  // std::out_of_range, which is no insitu::Error).
  EXPECT_EQ(attempt("{{ [[1]] | map(attribute='99999999999999999999999') | list }}").output, "[Undefined]");
  EXPECT_THROW(Template("{{ 0xFFFFFFFFFFFFFFFFFF }}"), FormatError);
  EXPECT_THROW(Template("{{ 99999999999999999999 }}"), FormatError);
}

TEST(JinjaHostile, HugeRangesAreRefusedExactly) {
  const char* refused[] = {
      "{{ range(-9223372036854775807 - 1, 9223372036854775807) | length }}",
      "{{ range(9223372036854775807, -9223372036854775807 - 1, -1) | length }}",
      "{{ range(10**18) | length }}",
  };
  for (const char* src : refused) {
    SCOPED_TRACE(src);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(Template(src).render(Value::dict()), RenderError);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), kHangSeconds);
  }
  // Near the ends of int64 the count and the items are exact.
  EXPECT_EQ(attempt("{{ range(9223372036854775806, 9223372036854775807, 4611686018427387904) | list }}").output,
            "[9223372036854775806]");
  EXPECT_EQ(attempt("{{ range(-9223372036854775807 - 1, 9223372036854775807, 4611686018427387904) | list }}").output,
            "[-9223372036854775808, -4611686018427387904, 0, 4611686018427387904]");
  EXPECT_EQ(attempt("{{ range(5, -9223372036854775807 - 1, -9223372036854775807 - 1) | list }}").output,
            "[5, -9223372036854775803]");
  EXPECT_EQ(attempt("{{ [1, 2, 3, 4, 5][1::9223372036854775807] }}").output, "[2]");
  EXPECT_EQ(attempt("{{ [1, 2, 3, 4, 5][::-9223372036854775807 - 1] }}").output, "[5]");
  EXPECT_EQ(attempt("{{ 3.5 | round(-9223372036854775807 - 1) }}").output.empty(), false);
}

// ---- The chat template names its origin ------------------------------------------------------

TEST(JinjaHostile, ChatTemplateErrorsNameTheOrigin) {
  const std::string origin = "hostile.gguf (tokenizer.chat_template)";
  try {
    ChatTemplate t("{{ 1" + chain("", " + 1", 20000) + " }}", "<s>", "</s>", origin);
    FAIL() << "expected LimitError";
  } catch (const LimitError& e) {
    EXPECT_NE(std::string(e.what()).find(origin), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("expression depth"), std::string::npos) << e.what();
  }
  const ChatTemplate t("{% for m in messages %}{% for a in range(2000) %}{% for b in range(2000) %}"
                       "{% endfor %}{% endfor %}{% endfor %}",
                       "<s>", "</s>", origin);
  try {
    t.apply({{"user", "hi"}}, true);
    FAIL() << "expected LimitError";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("chat template of " + origin), std::string::npos) << msg;
    EXPECT_NE(msg.find("loop iterations limit 1000000"), std::string::npos) << msg;
    EXPECT_NE(msg.find("template line 1"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace insitu::jinja
