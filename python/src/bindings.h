// Shared by the translation units of the Python extension insitu._core: the handle a Python Model
// holds, the value conversions every binding uses, and one bind_* function per file.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "insitu/executor.h"
#include "insitu/model.h"
#include "insitu/options.h"

namespace insitu::python {

namespace py = pybind11;

// A model as Python holds it: the immutable Model, and the Executor its sessions compute on (shared
// with every model re_isq derives from it, so the worker threads are started once). Thread-safe:
// both parts are.
struct ModelHandle {
  std::shared_ptr<const Model> model;
  std::shared_ptr<Executor> executor;
  int ctx = 4096;  // the context (KV cache tokens) of the sessions generation runs on
};

// A value of an option the way the CLI spells it: a str as is, an int as its digits (bits: 4 ->
// "4"), an os.PathLike as its path, an Enum by its value. Raises TypeError for anything else.
std::string option_text(const py::handle& value, const char* name);

// BuildOptions for `path` from keyword arguments named after options.h's table ('_' for '-'),
// plus `progress` (show_progress). None leaves an option at its default. Raises TypeError naming an
// unknown keyword and listing the valid ones; values are checked as the CLI checks them
// (InvalidArgument -> insitu.InvalidArgument, a ValueError).
BuildOptions build_options_from(const std::string& path, const py::dict& options);

// UTF-8 text as a Python str, malformed sequences replaced by U+FFFD (decoded token ids may spell
// partial characters).
py::str utf8(const std::string& text);

void bind_errors(py::module_& m);
void bind_model(py::module_& m);
void bind_generation(py::module_& m);
void bind_tools(py::module_& m);

}  // namespace insitu::python
