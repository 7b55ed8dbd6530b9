// The Jinja2 interpreter against Python jinja2: every snippet in tests/data/templates/snippets.json
// (one or more per supported construct, written by scripts/gen_template_reference.py) renders
// byte-identically or fails with jinja2's message; plus properties checked directly.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "insitu/error.h"
#include "test_paths.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/json_value.h"
#include "tokenizer/jinja/value.h"

namespace insitu::jinja {
namespace {

using Json = nlohmann::ordered_json;

Json load_snippets() {
  const std::string path = test::data_dir() + "/templates/snippets.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return Json::parse(ss.str());
}

std::string render(std::string_view source, std::string_view vars_json = "{}") {
  return Template(source).render(value_from_json(vars_json, "test vars"));
}

TEST(Jinja, SnippetsMatchJinja2) {
  const Json data = load_snippets();
  int rendered = 0;
  int errors = 0;
  for (const auto& c : data["cases"]) {
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name);
    const Template t(c["template"].get<std::string>());
    const Value vars = value_from_json(c["vars"].dump(), name);
    if (c.contains("expected")) {
      EXPECT_EQ(t.render(vars), c["expected"].get<std::string>());
      ++rendered;
    } else {
      const std::string want = c["error"].get<std::string>();
      try {
        const std::string got = t.render(vars);
        ADD_FAILURE() << "expected error containing '" << want << "', rendered: " << got;
      } catch (const RenderError& e) {
        EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
      }
      ++errors;
    }
  }
  EXPECT_GE(rendered, 150);
  EXPECT_GE(errors, 15);
}

TEST(Jinja, FloatReprIsPythons) {
  EXPECT_EQ(float_repr(1.0), "1.0");
  EXPECT_EQ(float_repr(0.1), "0.1");
  EXPECT_EQ(float_repr(1e16), "1e+16");
  EXPECT_EQ(float_repr(123456789012345.6), "123456789012345.6");
  EXPECT_EQ(float_repr(1e-5), "1e-05");
  EXPECT_EQ(float_repr(0.0001), "0.0001");
  EXPECT_EQ(float_repr(-2.5e-10), "-2.5e-10");
  EXPECT_EQ(float_repr(-0.0), "-0.0");
  EXPECT_EQ(float_repr(INFINITY), "inf");
  EXPECT_EQ(float_repr(std::nan("")), "nan");
  EXPECT_EQ(float_repr(1.7976931348623157e308), "1.7976931348623157e+308");
}

TEST(Jinja, StringReprIsPythons) {
  EXPECT_EQ(string_repr("a"), "'a'");
  EXPECT_EQ(string_repr("it's"), "\"it's\"");
  EXPECT_EQ(string_repr("both ' and \""), "'both \\' and \"'");
  EXPECT_EQ(string_repr("\x01\n\xc2\xa0\xc3\xa9"), "'\\x01\\n\\xa0\xc3\xa9'");
}

TEST(Jinja, RuntimeUnsupportedConstructsAreNamed) {
  try {
    render("\n{{ '%s' % 1 }}");
    FAIL() << "expected RenderError";
  } catch (const RenderError& e) {
    EXPECT_NE(std::string(e.what()).find("'%' string formatting"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(render("{{ 2 ** 64 }}"), RenderError);  // beyond 64-bit integers
  EXPECT_THROW(render("{{ 9223372036854775807 + 1 }}"), RenderError);
}

TEST(Jinja, ErrorsNameTheLine) {
  try {
    render("line1\nline2 {{ missing.attr }}");
    FAIL() << "expected RenderError";
  } catch (const RenderError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'missing' is undefined"), std::string::npos) << msg;
  }
  try {
    Template t("{% for x in y %}\n{% if x %}\n{% endfor %}");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

TEST(Jinja, MalformedTemplatesFailCleanly) {
  const char* bad[] = {"{{", "{%", "{# abc", "{{ 'abc }}", "{% for %}{% endfor %}", "{% if %}{% endif %}",
                       "{{ [1, 2 }}", "{{ (1 }}", "{% set %}", "{% macro %}{% endmacro %}", "{{ a. }}",
                       "{% endfor %}", "{% else %}", "{{ 1 + }}", "{{ x | }}", "{% raw %}abc", "{{ @ }}",
                       "{% break %}", "{{ '\\xZZ' }}"};
  for (const char* src : bad) {
    SCOPED_TRACE(src);
    EXPECT_THROW(Template t(src), FormatError);
  }
}

TEST(Jinja, RecursionIsBounded) {
  EXPECT_THROW(render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"), RenderError);
  // Hostile nesting fails with an error instead of exhausting the stack.
  EXPECT_THROW(Template{"{{ " + std::string(100000, '(')}, FormatError);
  std::string nots = "{{ ";
  for (int i = 0; i < 100000; ++i) nots += "not ";
  EXPECT_THROW(Template{nots + "x }}"}, FormatError);
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if true %}";
  EXPECT_THROW(Template{ifs}, FormatError);
  EXPECT_THROW(value_from_json(std::string(5000, '[') + std::string(5000, ']'), "deep"), InvalidArgument);
  // Values nested beyond the budget are a LimitError (see jinja_hostile_test.cc).
  EXPECT_THROW(render("{% set ns = namespace(x=[]) %}{% for i in range(2000) %}{% set ns.x = [ns.x] %}{% endfor %}"
                      "{{ ns.x }}"),
               LimitError);
  EXPECT_THROW(render("{% set ns = namespace(x=[]) %}{% for i in range(2000) %}{% set ns.x = [ns.x] %}{% endfor %}"
                      "{{ ns.x | tojson }}"),
               LimitError);
  // Moderate nesting is fine.
  EXPECT_EQ(render("{{ " + std::string(50, '(') + "1" + std::string(50, ')') + " }}"), "1");
}

TEST(Jinja, RenderIsThreadSafe) {
  const Template t("{% set ns = namespace(s=0) %}{% for i in range(n) %}{% set ns.s = ns.s + i %}{% endfor %}"
                   "{{ ns.s }}");
  std::vector<std::thread> threads;
  std::vector<std::string> out(4);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 50; ++rep) {
        out[k] = t.render(value_from_json("{\"n\": " + std::to_string(100 + k) + "}", "vars"));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; ++k) {
    const int n = 100 + k;
    EXPECT_EQ(out[k], std::to_string(n * (n - 1) / 2));
  }
}

TEST(Jinja, ValuesAliasLikePython) {
  // Namespaces are shared objects: a macro's assignment through a passed namespace is visible.
  EXPECT_EQ(render("{% set ns = namespace(v=1) %}{% set alias = ns %}{% set alias.v = 2 %}{{ ns.v }}"), "2");
  // Lists from JSON keep their order; dicts keep insertion order.
  EXPECT_EQ(render("{{ d | list }}", R"({"d": {"z": 1, "a": 2}})"), "['z', 'a']");
}

}  // namespace
}  // namespace insitu::jinja
