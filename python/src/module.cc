// insitu._core: the C++ library as a Python extension module. The public package (python/insitu)
// wraps it; nothing here is meant to be imported directly.
#include "bindings.h"

#include "insitu/quant_type.h"
#include "insitu/version.h"

namespace insitu::python {

py::str utf8(const std::string& text) {
  PyObject* s = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "replace");
  if (s == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

}  // namespace insitu::python

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  using namespace insitu;
  using namespace insitu::python;
  m.doc() = "insitu's C++ library (internal; use the insitu package)";
  m.attr("__version__") = version();
  m.def("quant_types", [] {
    py::list out;
    for (QuantType t : all_quant_types()) out.append(quant_type_name(t));
    return out;
  }, "Every type's frozen lower-case name, in table order.");
  m.def("parse_quant_type", [](const std::string& name) -> py::object {
    const std::optional<QuantType> t = parse_quant_type(name);
    if (!t) return py::none();
    return py::str(quant_type_name(*t));
  }, py::arg("name"), "The frozen name of any accepted spelling (Q4K, q4_k, ...), or None.");
  m.def("build_option_specs", [] {
    py::list out;
    for (const OptionSpec& s : build_option_specs()) {
      std::string key = s.name;
      for (char& c : key)
        if (c == '-') c = '_';
      py::dict d;
      d["name"] = key;
      d["section"] = s.section;
      d["default"] = s.default_text;
      d["help"] = s.help;
      d["choices"] = s.choices;
      out.append(d);
    }
    return out;
  }, "The declarations of Model.load's keyword arguments (include/insitu/options.h), in order.");
  bind_errors(m);
  bind_model(m);
  bind_generation(m);
  bind_tools(m);
}
