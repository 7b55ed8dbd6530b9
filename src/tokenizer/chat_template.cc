#include "insitu/chat_template.h"

#include "insitu/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/json_value.h"

namespace insitu {

namespace {

std::string error_prefix(const std::string& origin) {
  return origin.empty() ? std::string("chat template: ") : "chat template of " + origin + ": ";
}

}  // namespace

struct ChatTemplate::Impl {
  explicit Impl(std::string_view source) : tmpl(source) {}
  jinja::Template tmpl;
  std::string bos;
  std::string eos;
  std::string prefix;  // error_prefix(origin)

  // A budget breach is the template's fault, not the conversation's: name where it came from.
  std::string render(const jinja::Value& vars) const {
    try {
      return tmpl.render(vars);
    } catch (const jinja::LimitError& e) {
      throw jinja::LimitError(prefix + e.what());
    }
  }
};

ChatTemplate::ChatTemplate(std::string source, std::string bos_token, std::string eos_token, std::string origin)
    : source_(std::move(source)), origin_(std::move(origin)) {
  try {
    impl_ = std::make_unique<Impl>(source_);
  } catch (const jinja::LimitError& e) {
    throw jinja::LimitError(error_prefix(origin_) + e.what());
  } catch (const FormatError& e) {
    throw FormatError(error_prefix(origin_) + e.what());
  }
  impl_->prefix = error_prefix(origin_);
  impl_->bos = std::move(bos_token);
  impl_->eos = std::move(eos_token);
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

namespace {

jinja::Value base_variables(const std::string& bos, const std::string& eos, bool add_generation_prompt) {
  jinja::Value vars = jinja::Value::dict();
  auto& d = vars.dict_data();
  d.set(jinja::Value("bos_token"), jinja::Value(bos));
  d.set(jinja::Value("eos_token"), jinja::Value(eos));
  d.set(jinja::Value("add_generation_prompt"), jinja::Value(add_generation_prompt));
  return vars;
}

jinja::Value messages_value(const std::vector<ChatMessage>& messages) {
  std::vector<jinja::Value> list;
  list.reserve(messages.size());
  for (const auto& m : messages) {
    jinja::Value d = jinja::Value::dict();
    d.dict_data().set(jinja::Value("role"), jinja::Value(m.role));
    d.dict_data().set(jinja::Value("content"), jinja::Value(m.content));
    list.push_back(std::move(d));
  }
  return jinja::Value::list(std::move(list));
}

jinja::Value json_object(std::string_view text, const char* what) {
  jinja::Value v = jinja::value_from_json(text, what);
  if (!v.is_dict()) throw InvalidArgument(std::string(what) + ": expected a JSON object");
  return v;
}

}  // namespace

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  jinja::Value vars = base_variables(impl_->bos, impl_->eos, add_generation_prompt);
  vars.dict_data().set(jinja::Value("messages"), messages_value(messages));
  return impl_->render(vars);
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                std::string_view extra_json) const {
  jinja::Value vars = base_variables(impl_->bos, impl_->eos, add_generation_prompt);
  vars.dict_data().set(jinja::Value("messages"), messages_value(messages));
  const jinja::Value extra = json_object(extra_json, "chat template variables");
  for (const auto& [k, v] : extra.dict_data().items) vars.dict_data().set(k, v);
  return impl_->render(vars);
}

std::string ChatTemplate::render_json(std::string_view variables_json) const {
  jinja::Value vars = base_variables(impl_->bos, impl_->eos, false);
  const jinja::Value given = json_object(variables_json, "chat template variables");
  for (const auto& [k, v] : given.dict_data().items) vars.dict_data().set(k, v);
  return impl_->render(vars);
}

}  // namespace insitu
