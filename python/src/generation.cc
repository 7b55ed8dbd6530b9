// Generation from Python: GenerateOptions from keyword arguments, a whole generation with the GIL
// released (Ctrl-C checked after every token), and TokenStream, a pull iterator that evaluates one
// token per __next__ with the GIL released, so that other Python threads run meanwhile and a
// KeyboardInterrupt lands between tokens.
#include <pybind11/stl.h>

#include <deque>
#include <mutex>
#include <random>
#include <vector>

#include "bindings.h"
#include "insitu/error.h"
#include "insitu/generate.h"
#include "insitu/session.h"

namespace insitu::python {
namespace {

// GenerateOptions from keyword arguments named after its fields (sampling's flattened in); None
// keeps a default, seed None draws a random one. Raises TypeError for an unknown name.
GenerateOptions generate_options(const py::dict& kw) {
  GenerateOptions g;
  SamplerOptions& s = g.sampling;
  bool seeded = false;
  for (const auto& item : kw) {
    const std::string key = py::str(item.first);
    const py::handle v = item.second;
    if (v.is_none()) continue;
    if (key == "max_tokens") g.max_tokens = v.cast<int>();
    else if (key == "temperature") s.temperature = v.cast<float>();
    else if (key == "top_k") s.top_k = v.cast<int>();
    else if (key == "top_p") s.top_p = v.cast<float>();
    else if (key == "min_p") s.min_p = v.cast<float>();
    else if (key == "repeat_penalty") s.repeat_penalty = v.cast<float>();
    else if (key == "repeat_last_n") s.repeat_last_n = v.cast<int>();
    else if (key == "frequency_penalty") s.frequency_penalty = v.cast<float>();
    else if (key == "presence_penalty") s.presence_penalty = v.cast<float>();
    else if (key == "seed") {
      s.seed = v.cast<uint64_t>();
      seeded = true;
    } else if (key == "stop") {
      if (py::isinstance<py::str>(v)) g.stop = {v.cast<std::string>()};
      else g.stop = v.cast<std::vector<std::string>>();
    } else if (key == "stop_at_eog") g.stop_at_eog = v.cast<bool>();
    else if (key == "render_special") g.render_special = v.cast<bool>();
    else if (key == "logprobs") g.logprobs = v.cast<bool>();
    else if (key == "top_logprobs") g.top_logprobs = v.cast<int>();
    else
      throw py::type_error("unexpected keyword argument '" + key +
                           "'; valid: max_tokens, temperature, top_k, top_p, min_p, "
                           "repeat_penalty, repeat_last_n, frequency_penalty, presence_penalty, "
                           "seed, stop, stop_at_eog, render_special, logprobs, top_logprobs");
  }
  if (!seeded) s.seed = std::random_device{}();
  g.validate();
  return g;
}

py::object finish_name(const std::optional<StopReason>& r) {
  return r ? py::object(py::str(finish_reason_name(*r))) : py::object(py::none());
}

// One sequence generated step by step on its own Session (see generate() in
// src/runtime/generator.cc, whose order of evaluation it repeats exactly: the prompt, then one
// token after each sampled one).
class TokenStream {
 public:
  TokenStream(const ModelHandle& h, std::vector<int32_t> prompt, const GenerateOptions& options)
      : handle_(h), prompt_(std::move(prompt)) {
    if (prompt_.empty()) throw InvalidArgument("generate: empty prompt");
    session_ = std::make_unique<Session>(h.model, h.ctx, *h.executor);
    if (static_cast<int64_t>(prompt_.size()) > session_->n_ctx())
      throw InvalidArgument("generate: prompt of " + std::to_string(prompt_.size()) +
                            " tokens does not fit the context of " +
                            std::to_string(session_->n_ctx()) + " (Model.load(ctx=...))");
    gen_ = std::make_unique<Generation>(h.model->tokenizer(), options, prompt_);
  }

  // The next event; raises StopIteration after the last one.
  TokenEvent next() {
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) throw InvalidArgument("TokenStream: already in use by another thread");
    {
      py::gil_scoped_release unlocked;
      while (pending_.empty() && !gen_->finished()) step();
    }
    if (pending_.empty()) throw py::stop_iteration();
    TokenEvent e = std::move(pending_.front());
    pending_.pop_front();
    return e;
  }

  // Ends the generation early (finish reason "cancelled"); the events already made stay queued.
  void cancel() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!gen_->finished()) gen_->cancel();
  }

  bool finished() const { return gen_->finished() && pending_.empty(); }
  const GenerateResult& result() const { return gen_->result(); }

 private:
  using Clock = std::chrono::steady_clock;

  void step() {
    if (!started_) {
      const auto t0 = Clock::now();
      session_->eval(prompt_, false, logits_);
      t_decode_ = Clock::now();
      gen_->result().stats.n_prompt = static_cast<int>(prompt_.size());
      gen_->result().stats.prefill_seconds = std::chrono::duration<double>(t_decode_ - t0).count();
      started_ = true;
    } else if (next_) {
      session_->eval(std::span<const int32_t>(&*next_, 1), false, logits_);
    }
    next_ = gen_->advance(logits_, session_->n_ctx() - session_->n_past(),
                          [this](const TokenEvent& e) {
                            pending_.push_back(e);
                            return true;
                          });
    gen_->result().stats.decode_seconds =
        std::chrono::duration<double>(Clock::now() - t_decode_).count();
  }

  ModelHandle handle_;  // keeps the model and executor alive
  std::vector<int32_t> prompt_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<Generation> gen_;
  std::vector<float> logits_;
  std::deque<TokenEvent> pending_;
  std::optional<int32_t> next_;
  bool started_ = false;
  Clock::time_point t_decode_;
  std::mutex mutex_;
};

// A whole generation with the GIL released. After each token the GIL is taken back briefly to run
// Python's signal handlers; a KeyboardInterrupt cancels the generation and is raised once the
// session is left in a consistent state.
GenerateResult generate_all(const ModelHandle& h, const std::vector<int32_t>& prompt,
                            const GenerateOptions& options) {
  std::unique_ptr<py::error_already_set> interrupted;
  GenerateResult r;
  {
    py::gil_scoped_release unlocked;
    Session session(h.model, h.ctx, *h.executor);
    r = generate(session, prompt, options, [&](const TokenEvent&) {
      py::gil_scoped_acquire locked;
      if (PyErr_CheckSignals() != 0) {
        interrupted = std::make_unique<py::error_already_set>();
        return false;
      }
      return true;
    });
  }
  if (interrupted) throw std::move(*interrupted);
  return r;
}

}  // namespace

void bind_generation(py::module_& m) {
  py::class_<TokenEvent>(m, "TokenEvent", "One sampled token, as it becomes final.")
      .def_readonly("token", &TokenEvent::token, "The sampled id (-1 for a closing event).")
      .def_property_readonly(
          "text", [](const TokenEvent& e) { return utf8(e.text); },
          "Text final after this token (may be empty: held back, or a control token).")
      .def_readonly("logprob", &TokenEvent::logprob, "Log-probability of the token (logprobs).")
      .def_readonly("top_logprobs", &TokenEvent::top_logprobs,
                    "The top_logprobs most likely (id, logprob) pairs, most likely first.")
      .def_readonly("is_last", &TokenEvent::is_last, "No event follows.")
      .def_property_readonly(
          "finish_reason", [](const TokenEvent& e) { return finish_name(e.finish_reason); },
          "On the last event: 'stop', 'length' or 'cancelled' (OpenAI's finish_reason).")
      .def("__repr__", [](const TokenEvent& e) {
        return "TokenEvent(token=" + std::to_string(e.token) + ", text=" +
               py::repr(utf8(e.text)).cast<std::string>() + ")";
      });

  py::class_<GenerateResult>(m, "GenerateResult", "A finished generation.")
      .def_property_readonly("text", [](const GenerateResult& r) { return utf8(r.text); },
                             "Every event's text, concatenated.")
      .def_readonly("tokens", &GenerateResult::tokens, "The sampled ids, in order.")
      .def_property_readonly(
          "finish_reason", [](const GenerateResult& r) { return finish_reason_name(r.stop_reason); },
          "OpenAI's finish_reason: 'stop', 'length' or 'cancelled'.")
      .def_property_readonly(
          "stop_reason", [](const GenerateResult& r) { return stop_reason_name(r.stop_reason); },
          "Why it ended: 'eog', 'stop', 'length', 'context' or 'cancelled'.")
      .def_readonly("stop_string", &GenerateResult::stop_string, "The stop string that matched.")
      .def_property_readonly("n_prompt", [](const GenerateResult& r) { return r.stats.n_prompt; })
      .def_property_readonly("n_generated",
                             [](const GenerateResult& r) { return r.stats.n_generated; })
      .def_property_readonly("prefill_seconds",
                             [](const GenerateResult& r) { return r.stats.prefill_seconds; })
      .def_property_readonly("decode_seconds",
                             [](const GenerateResult& r) { return r.stats.decode_seconds; });

  py::class_<TokenStream>(m, "TokenStream",
                          "An iterator of TokenEvents; each step runs with the GIL released.")
      .def("__iter__", [](TokenStream& s) -> TokenStream& { return s; })
      .def("__next__", &TokenStream::next)
      .def("cancel", &TokenStream::cancel, "Stop generating (finish reason 'cancelled').")
      .def_property_readonly("finished", &TokenStream::finished)
      .def_property_readonly("result", &TokenStream::result, py::return_value_policy::copy,
                             "The result so far (complete once finished).");

  m.def(
      "generate",
      [](const ModelHandle& h, const std::vector<int32_t>& prompt, const py::dict& options) {
        return generate_all(h, prompt, generate_options(options));
      },
      py::arg("model"), py::arg("prompt"), py::arg("options"));
  m.def(
      "stream",
      [](const ModelHandle& h, std::vector<int32_t> prompt, const py::dict& options) {
        return std::make_unique<TokenStream>(h, std::move(prompt), generate_options(options));
      },
      py::arg("model"), py::arg("prompt"), py::arg("options"));
}

}  // namespace insitu::python
