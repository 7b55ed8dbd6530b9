// insitu::Error subclasses as Python exceptions. Each is also a built-in exception, so callers
// that know nothing of insitu catch what they expect:
//   Error(Exception)                      every failure the library reports
//   InvalidArgument(Error, ValueError)    a bad argument or option
//   FormatError(Error, ValueError)        a malformed, truncated or hostile file
//   Unsupported(Error, ValueError)        a feature or combination this build does not support
//   IoError(Error, OSError)               an operating-system call failed
//   NotFound(IoError, FileNotFoundError)  a model path that does not exist
// The message is the library's, unchanged.
#include <string_view>

#include "bindings.h"
#include "insitu/error.h"

namespace insitu::python {
namespace {

PyObject* g_error = nullptr;
PyObject* g_invalid = nullptr;
PyObject* g_format = nullptr;
PyObject* g_unsupported = nullptr;
PyObject* g_io = nullptr;
PyObject* g_not_found = nullptr;

PyObject* add_exception(py::module_& m, const char* name, const char* doc, py::tuple bases) {
  const std::string qualified = std::string("insitu.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (type == nullptr) throw py::error_already_set();
  m.add_object(name, py::handle(type));  // the module keeps a reference; so does g_*
  return type;
}

// The library says "PATH: no such file or directory" for a model path that does not exist.
bool is_not_found(std::string_view message) {
  constexpr std::string_view kSuffix = ": no such file or directory";
  return message.size() >= kSuffix.size() &&
         message.substr(message.size() - kSuffix.size()) == kSuffix;
}

}  // namespace

void bind_errors(py::module_& m) {
  const py::handle exception(PyExc_Exception);
  g_error = add_exception(m, "Error", "Every failure the insitu library reports.",
                          py::make_tuple(exception));
  g_invalid = add_exception(m, "InvalidArgument", "A bad argument or option (also a ValueError).",
                            py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError)));
  g_format = add_exception(m, "FormatError",
                           "A malformed, truncated or hostile file (also a ValueError).",
                           py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError)));
  g_unsupported = add_exception(
      m, "Unsupported", "A feature or combination this build does not support (also a ValueError).",
      py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError)));
  g_io = add_exception(m, "IoError", "An operating-system call failed (also an OSError).",
                       py::make_tuple(py::handle(g_error), py::handle(PyExc_OSError)));
  g_not_found = add_exception(m, "NotFound",
                              "A model path that does not exist (also a FileNotFoundError).",
                              py::make_tuple(py::handle(g_io), py::handle(PyExc_FileNotFoundError)));
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      PyObject* type = g_error;
      if (is_not_found(e.what())) type = g_not_found;
      else if (dynamic_cast<const InvalidArgument*>(&e)) type = g_invalid;
      else if (dynamic_cast<const FormatError*>(&e)) type = g_format;
      else if (dynamic_cast<const Unsupported*>(&e)) type = g_unsupported;
      else if (dynamic_cast<const IoError*>(&e)) type = g_io;
      PyErr_SetObject(type, utf8(e.what()).ptr());
    }
  });
}

}  // namespace insitu::python
