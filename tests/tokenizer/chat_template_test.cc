// ChatTemplate against Python jinja2 (Hugging Face settings): every conversation in
// tests/data/templates/models.json (written by scripts/gen_template_reference.py) must render
// byte-identically, and conversations the template rejects must fail with jinja2's message.
#include "insitu/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "insitu/error.h"
#include "test_paths.h"

namespace insitu {
namespace {

using Json = nlohmann::ordered_json;

Json load(const std::string& name) {
  const std::string path = test::data_dir() + "/templates/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return Json::parse(ss.str());
}

// Plain {role, content-string} messages go through apply(); anything richer through render_json().
bool plain_messages(const Json& messages, std::vector<ChatMessage>& out) {
  for (const auto& m : messages) {
    if (m.size() != 2 || !m.contains("role") || !m.contains("content") || !m["content"].is_string()) return false;
    out.push_back(ChatMessage{m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return true;
}

TEST(ChatTemplate, ModelTemplatesMatchJinja2) {
  const Json data = load("models.json");
  int checked = 0;
  int via_apply = 0;
  for (const auto& t : data["templates"]) {
    const std::string tname = t["name"].get<std::string>();
    ChatTemplate tmpl(t["template"].get<std::string>(), t["bos_token"].get<std::string>(),
                      t["eos_token"].get<std::string>());
    for (const auto& c : t["cases"]) {
      SCOPED_TRACE(tname + "/" + c["name"].get<std::string>());
      std::vector<ChatMessage> msgs;
      const bool plain = plain_messages(c["messages"], msgs);
      const bool agp = c["add_generation_prompt"].get<bool>();
      auto render = [&]() -> std::string {
        if (plain && c["extra"].empty()) {
          ++via_apply;
          return tmpl.apply(msgs, agp);
        }
        if (plain) return tmpl.apply(msgs, agp, c["extra"].dump());
        Json vars = c["extra"];
        vars["messages"] = c["messages"];
        vars["add_generation_prompt"] = agp;
        return tmpl.render_json(vars.dump());
      };
      if (c.contains("expected")) {
        EXPECT_EQ(render(), c["expected"].get<std::string>());
      } else {
        const std::string want = c["error"].get<std::string>();
        try {
          const std::string got = render();
          ADD_FAILURE() << "expected error containing '" << want << "', rendered: " << got;
        } catch (const InvalidArgument& e) {
          EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
        }
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 90);
  EXPECT_GT(via_apply, 50);
}

TEST(ChatTemplate, SmolLM2TemplateFromGgufIsCovered) {
  // The reference data must include the template shipped in the SmolLM2 GGUF.
  const Json data = load("models.json");
  bool found = false;
  for (const auto& t : data["templates"]) {
    if (t["source"].get<std::string>().find("SmolLM2-135M-Instruct") != std::string::npos) {
      found = true;
      EXPECT_NE(t["template"].get<std::string>().find("<|im_start|>"), std::string::npos);
    }
  }
  EXPECT_TRUE(found);
}

TEST(ChatTemplate, RaiseExceptionCarriesTemplateMessage) {
  ChatTemplate t("{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok",
                 "<s>", "</s>");
  EXPECT_EQ(t.apply({{"user", "hi"}}, false), "ok");
  try {
    t.apply({{"assistant", "hi"}}, false);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("first must be user"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("line 1"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, VariablesAndExtras) {
  ChatTemplate t("{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}"
                 "{% if add_generation_prompt %}>{% endif %}{{ eos_token }}{{ tools | default('-') }}",
                 "<s>", "</s>");
  EXPECT_EQ(t.apply({{"user", "a"}, {"assistant", "b"}}, true), "<s>user:a;assistant:b;></s>-");
  EXPECT_EQ(t.apply({{"user", "a"}}, false, R"({"tools": [1, 2]})"), "<s>user:a;</s>[1, 2]");
  EXPECT_EQ(t.render_json(R"({"messages": [{"role": "tool", "content": {"x": 1}}]})"),
            "<s>tool:{'x': 1};</s>-");
  EXPECT_THROW(t.apply({}, false, "[1]"), InvalidArgument);
  EXPECT_THROW(t.render_json("{not json"), InvalidArgument);
}

TEST(ChatTemplate, UnsupportedConstructsNameConstructAndLine) {
  struct Case {
    const char* source;
    const char* construct;
  };
  const Case cases[] = {
      {"a\n{% extends 'base.html' %}", "extends"},
      {"{% include 'x' %}", "include"},
      {"{% import 'x' as y %}", "import"},
      {"\n\n{% block body %}{% endblock %}", "block"},
      {"{% for x in xs recursive %}{% endfor %}", "recursive"},
      {"{{ x | frobnicate }}", "frobnicate"},
      {"{{ x is frobnicated }}", "frobnicated"},
      // Inside an if, but in a loop: jinja2 checks these at compile time too.
      {"{% if false %}{% for i in x %}{{ i | frobnicate }}{% endfor %}{% endif %}", "frobnicate"},
      {"{{ f(*args) }}", "*args"},
      {"{% if x %}", "endif"},
      {"{{ x ", "}}"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.source);
    try {
      ChatTemplate t(c.source, "", "");
      ADD_FAILURE() << "expected FormatError";
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.construct), std::string::npos) << msg;
      EXPECT_NE(msg.find("line "), std::string::npos) << msg;
    }
  }
  try {
    ChatTemplate t("ok\n\n{% extends 'x' %}", "", "");
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, MoveKeepsTemplate) {
  ChatTemplate a("{{ messages | length }}", "", "");
  ChatTemplate b(std::move(a));
  EXPECT_EQ(b.apply({{"user", "x"}, {"user", "y"}}, false), "2");
  EXPECT_EQ(b.source(), "{{ messages | length }}");
}

}  // namespace
}  // namespace insitu
