// insitu._core.Model: loading (ModelBuilder from keyword arguments generated from options.h's
// table), tokenizing, chat prompts, logits as a NumPy array and in-situ re-quantization.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <set>
#include <type_traits>
#include <vector>

#include "bindings.h"
#include "insitu/chat.h"
#include "insitu/error.h"
#include "insitu/session.h"
#include "model/isq.h"
#include "model/model.h"

namespace insitu::python {

std::string option_text(const py::handle& value, const char* name) {
  if (py::isinstance<py::bool_>(value))
    throw py::type_error(std::string(name) + ": expected a str, an int or a path, got a bool");
  if (py::isinstance<py::int_>(value)) return std::to_string(value.cast<long long>());
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::hasattr(value, "__fspath__"))
    return py::module_::import("os").attr("fspath")(value).cast<std::string>();
  const py::module_ enum_module = py::module_::import("enum");
  if (py::isinstance(value, enum_module.attr("Enum"))) return option_text(value.attr("value"), name);
  throw py::type_error(std::string(name) + ": expected a str, an int or a path, got " +
                       py::str(py::type::of(value).attr("__name__")).cast<std::string>());
}

BuildOptions build_options_from(const std::string& path, const py::dict& options) {
  BuildOptions o;
  o.path = path;
  std::set<std::string> known = {"progress"};
  std::string valid;
  visit_build_options(o, [&](const OptionSpec& spec, auto& field) {
    std::string key = spec.name;
    for (char& c : key)
      if (c == '-') c = '_';
    known.insert(key);
    valid += (valid.empty() ? "" : ", ") + key;
    if (!options.contains(key)) return;
    const py::handle v = options[py::str(key)];
    if (v.is_none()) return;
    using T = std::decay_t<decltype(field)>;
    if constexpr (std::is_same_v<T, bool>) {
      field = v.cast<bool>();
    } else if constexpr (std::is_same_v<T, int>) {
      if (!py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v))
        throw py::type_error(key + ": expected an int");
      const int64_t x = v.cast<int64_t>();
      check_option(spec, x);
      field = static_cast<int>(x);
    } else {
      std::string text = option_text(v, key.c_str());
      if (spec.kind == OptionKind::kChoice) check_option(spec, text);
      field = std::move(text);
    }
  });
  for (const auto& item : options) {
    const std::string key = py::str(item.first);
    if (!known.count(key))
      throw py::type_error("unexpected keyword argument '" + key + "'; valid: " + valid +
                           ", progress");
  }
  if (options.contains("progress") && !options["progress"].is_none())
    o.show_progress = options["progress"].cast<bool>();
  return o;
}

namespace {

std::vector<ChatMessage> chat_messages(const py::handle& messages) {
  std::vector<ChatMessage> out;
  for (const py::handle m : messages) {
    const py::dict d = py::reinterpret_borrow<py::dict>(m);
    if (!d.contains("role") || !d.contains("content"))
      throw InvalidArgument("chat: each message needs 'role' and 'content'");
    out.push_back({d["role"].cast<std::string>(), d["content"].cast<std::string>()});
  }
  return out;
}

// tokens as a NumPy array that owns them (no copy).
py::array_t<float> owned_array(std::vector<float>&& data, std::vector<py::ssize_t> shape) {
  auto* held = new std::vector<float>(std::move(data));
  py::capsule owner(held, [](void* p) { delete static_cast<std::vector<float>*>(p); });
  return py::array_t<float>(shape, held->data(), owner);
}

// A new handle on the model `spec` re-quantizes to: a type ("q8_0", "Q4K"), bits (4) or a mix.
ModelHandle re_isq(const ModelHandle& h, const std::string& spec) {
  const IsqTarget target = parse_isq_target(spec);
  ModelHandle out = h;
  if (!target.mix) {
    out.model = h.model->re_isq(target.type);
    return out;
  }
  IsqOptions o = h.model->isq_options() ? *h.model->isq_options() : IsqOptions{};
  o.type = target.type;
  o.mix = target.mix;
  o.pure = false;
  out.model = h.model->re_isq(o);
  return out;
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<ModelHandle>(m, "Model", "A loaded model (internal; see insitu.Model).")
      .def_static(
          "load",
          [](const std::string& path, const py::dict& options) {
            const BuildOptions o = build_options_from(path, options);
            py::gil_scoped_release unlocked;
            ModelHandle h;
            h.model = ModelBuilder(o).build();
            h.executor = std::make_shared<Executor>(o.threads);
            h.ctx = o.ctx;
            return h;
          },
          py::arg("path"), py::arg("options"))
      .def_property_readonly("ctx", [](const ModelHandle& h) { return h.ctx; })
      .def_property_readonly("threads",
                             [](const ModelHandle& h) { return h.executor->n_threads(); })
      .def("info",
           [](const ModelHandle& h) {
             const ModelInfo i = model_info(*h.model);
             py::dict d;
             d["name"] = i.name;
             d["architecture"] = i.architecture;
             d["path"] = i.path;
             d["n_layer"] = i.n_layer;
             d["n_embd"] = i.n_embd;
             d["n_vocab"] = i.n_vocab;
             d["n_ctx_train"] = i.n_ctx_train;
             d["n_params"] = i.n_params;
             d["weight_bytes"] = i.weight_bytes;
             d["weight_types"] = i.weight_types;
             d["has_chat_template"] = i.has_chat_template;
             d["isq"] = h.model->isq_options() ? py::object(py::str(isq_target_name(
                                                     *h.model->isq_options())))
                                               : py::object(py::none());
             return d;
           })
      .def("weight_types",
           [](const ModelHandle& h) {
             py::dict d;
             for (const Weight& w : h.model->weights()) d[py::str(w.name)] = quant_type_name(w.type);
             return d;
           })
      .def(
          "tokenize",
          [](const ModelHandle& h, const std::string& text, bool add_special, bool parse_special) {
            py::gil_scoped_release unlocked;
            return h.model->tokenizer().encode(text, add_special, parse_special);
          },
          py::arg("text"), py::arg("add_special"), py::arg("parse_special"))
      .def(
          "detokenize",
          [](const ModelHandle& h, const std::vector<int32_t>& tokens, bool render_special) {
            const int32_t n = h.model->tokenizer().n_vocab();
            for (int32_t t : tokens)
              if (t < 0 || t >= n)
                throw InvalidArgument("detokenize: token id " + std::to_string(t) +
                                      " out of range [0, " + std::to_string(n) + ")");
            return utf8(h.model->tokenizer().decode(tokens, render_special));
          },
          py::arg("tokens"), py::arg("render_special"))
      .def("is_eog", [](const ModelHandle& h, int32_t id) { return h.model->tokenizer().is_eog(id); })
      .def(
          "chat_tokens",
          [](const ModelHandle& h, const py::list& messages, bool add_generation_prompt) {
            ChatPromptOptions o;
            o.add_generation_prompt = add_generation_prompt;
            return chat_prompt(*h.model, chat_messages(messages), o);
          },
          py::arg("messages"), py::arg("add_generation_prompt"))
      .def(
          "chat_text",
          [](const ModelHandle& h, const py::list& messages, bool add_generation_prompt) {
            ChatPromptOptions o;
            o.add_generation_prompt = add_generation_prompt;
            return utf8(chat_prompt_text(*h.model, chat_messages(messages), o));
          },
          py::arg("messages"), py::arg("add_generation_prompt"))
      .def(
          "logits",
          [](const ModelHandle& h, const std::vector<int32_t>& tokens) {
            if (tokens.empty()) throw InvalidArgument("logits: no tokens");
            std::vector<float> logits;
            {
              py::gil_scoped_release unlocked;
              Session s(h.model, static_cast<int>(tokens.size()), *h.executor);
              s.eval(tokens, true, logits);
            }
            const py::ssize_t n = static_cast<py::ssize_t>(tokens.size());
            const py::ssize_t n_vocab = static_cast<py::ssize_t>(logits.size()) / n;
            return owned_array(std::move(logits), {n, n_vocab});
          },
          py::arg("tokens"))
      .def(
          "re_isq",
          [](const ModelHandle& h, const py::object& spec) {
            const std::string text = option_text(spec, "re_isq");
            py::gil_scoped_release unlocked;
            return re_isq(h, text);
          },
          py::arg("spec"));
}

}  // namespace insitu::python
