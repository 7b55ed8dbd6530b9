// The tools Python reaches without the CLI: tune (api/tune_run.h, what `insitu tune --json` prints)
// and quantize (api/quantize.h, what `insitu quantize` writes), plus the library's log level.
#include <pybind11/stl.h>
#include <spdlog/spdlog.h>

#include "api/quantize.h"
#include "api/tune_run.h"
#include "bindings.h"
#include "insitu/error.h"

namespace insitu::python {

void bind_tools(py::module_& m) {
  m.def(
      "tune",
      [](const std::string& path, const py::dict& options) {
        const BuildOptions b = build_options_from(path, options);
        std::string text;
        {
          py::gil_scoped_release unlocked;
          TuneRequest q;
          q.build = b;
          text = run_tune(q, /*show_progress=*/false).json.dump();
        }
        return py::module_::import("json").attr("loads")(utf8(text));
      },
      py::arg("path"), py::arg("options"));
  m.def(
      "quantize",
      [](const std::string& path, const std::string& output, const std::string& format,
         const py::dict& options) {
        QuantizeOptions o;
        o.build = build_options_from(path, options);
        o.output = output;
        o.output_format = format;
        QuantizeReport r;
        {
          py::gil_scoped_release unlocked;
          r = quantize_model(o);
        }
        py::dict d;
        d["format"] = r.format;
        d["path"] = r.output;
        d["isq"] = r.target;
        d["shards"] = r.shards;
        d[r.format == "gguf" ? "n_tensors" : "n_layers"] = r.count;
        d["tensor_bytes"] = r.tensor_bytes;
        return d;
      },
      py::arg("path"), py::arg("output"), py::arg("format"), py::arg("options"));
  m.def(
      "set_log_level",
      [](const std::string& level) {
        const spdlog::level::level_enum l = spdlog::level::from_str(level);
        if (l == spdlog::level::off && level != "off")
          throw InvalidArgument("log level '" + level +
                                "' unknown; valid: trace debug info warning error critical off");
        spdlog::set_level(l);
      },
      py::arg("level"));
}

}  // namespace insitu::python
