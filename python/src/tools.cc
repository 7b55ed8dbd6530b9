// The tools Python reaches without the CLI: tune (the analysis `insitu tune --json` prints, built by
// the same quality/tune_json.h) and quantize (a model quantized in situ and written as UQFF or
// GGUF, as `insitu quantize` does), plus the library's log level.
#include <pybind11/stl.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "api/auto_quant.h"
#include "bindings.h"
#include "export/gguf_export.h"
#include "export/uqff_export.h"
#include "insitu/error.h"
#include "io/imatrix_file.h"
#include "model/isq.h"
#include "model/isq_topology.h"
#include "quality/imatrix_collect.h"
#include "quality/tune_json.h"
#include "quant/gguf_quantize.h"

namespace insitu::python {
namespace {

namespace fs = std::filesystem;

// `insitu run` arguments for the recommended candidate, in the order and quoting `tune` prints
// them (tools/insitu/run_config.cc: model, then the option table's quantization and runtime
// options).
std::string recommended_command(const std::string& path, const BuildOptions& b,
                                const TuneCandidate& k) {
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  const std::string model = exists ? fs::absolute(path, ec).lexically_normal().string() : path;
  std::vector<std::string> args = {"run"};
  if (exists && !fs::is_directory(path)) args.insert(args.end(), {"--format", "gguf", "-f", model});
  else args.insert(args.end(), {"-m", model});
  const auto abs = [&](const std::string& p) {
    return fs::absolute(p, ec).lexically_normal().string();
  };
  if (k.target) args.insert(args.end(), {"--isq", k.target->name()});
  if (k.target && !b.imatrix.empty()) args.insert(args.end(), {"--imatrix", abs(b.imatrix)});
  if (!b.topology.empty()) args.insert(args.end(), {"--topology", abs(b.topology)});
  if (k.target && b.isq_organization != "default")
    args.insert(args.end(), {"--isq-organization", b.isq_organization});
  if (k.target && b.pure) args.push_back("--pure");
  if (b.ctx != 4096) args.insert(args.end(), {"--ctx", std::to_string(b.ctx)});
  if (b.threads != 0) args.insert(args.end(), {"--threads", std::to_string(b.threads)});
  std::string out = "insitu";
  for (const std::string& s : args) {
    const bool plain = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM"
                                                         "NOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
                                         std::string::npos;
    if (plain) {
      out += " " + s;
      continue;
    }
    std::string q = "'";
    for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    out += " " + q + "'";
  }
  return out;
}

std::string tune_json_text(const std::string& path, const BuildOptions& b) {
  const std::shared_ptr<const Model> model = load_shapes(path, b.threads);
  TuneOptions o;
  o.profile = parse_tune_profile(b.profile);
  if (!b.isq.empty()) o.requested = parse_isq_target(b.isq);
  o.isq.show_progress = false;
  o.isq.pure = b.pure;
  o.isq.organization = parse_isq_organization(b.isq_organization);
  if (!b.topology.empty()) o.isq.topology = IsqTopology::load(b.topology);
  if (!b.imatrix.empty())
    o.isq.imatrix = imatrix_lookup(
        imatrix_with_gguf_names(Imatrix::load(b.imatrix), model->config().arch));
  o.n_ctx = b.ctx;
  o.n_threads = pool_threads(b.threads);
  SystemMemory sys;
  o.memory = tune_memory(b.max_memory, &sys);
  const TuneResult r = tune_model(*model, o);
  const std::string command =
      r.recommended >= 0 ? recommended_command(path, b, r.candidates[r.recommended]) : "";
  return tune_json(r, *model, sys, b.max_memory, std::nullopt, command).dump();
}

// What quantize wrote.
struct QuantizeReport {
  std::string format;               // "uqff" or "gguf"
  std::string path;                 // the GGUF file, or the UQFF directory
  std::string isq;                  // the type or mix written
  std::vector<std::string> shards;  // UQFF shard file names
  int64_t count = 0;                // GGUF tensors, or UQFF layer entries
  uint64_t tensor_bytes = 0;
};

// Loads `b` (which must ask for in-situ quantization) and writes it to `output` as `format`
// ("uqff", "gguf", or "" for the output's extension), as `insitu quantize` does.
QuantizeReport quantize(const BuildOptions& b, const std::string& output, std::string format) {
  if (output.empty()) throw InvalidArgument("quantize: output is required");
  if (b.isq.empty()) throw InvalidArgument("quantize: isq=TYPE|MIX is required");
  if (!b.quant.empty() || !b.from_uqff.empty())
    throw InvalidArgument("quantize: quant and from_uqff choose what to load; quantize takes the "
                          "type to write with isq");
  const std::string ext = fs::path(output).extension().string();
  if (format.empty()) format = ext == ".gguf" ? "gguf" : "uqff";
  if (format != "gguf" && format != "uqff")
    throw InvalidArgument("quantize: format '" + format + "' unknown; valid: uqff gguf");
  if ((ext == ".gguf" || ext == ".uqff") && ext.substr(1) != format)
    throw InvalidArgument("quantize: format " + format + " with output " + output +
                          ": the extension says " + ext.substr(1));
  const IsqTarget target = parse_isq_target(b.isq);
  const std::shared_ptr<const Model> model = ModelBuilder(b).build();
  QuantizeReport report{format, output, target.name(), {}, 0, 0};
  if (format == "gguf") {
    GgufExportOptions o;
    o.file_type = target.mix ? static_cast<uint32_t>(*target.mix) : llama_file_type(target.type);
    if (!b.imatrix.empty()) {
      const Imatrix im = Imatrix::load(b.imatrix);
      o.imatrix_file = b.imatrix;
      if (!im.datasets.empty()) o.imatrix_dataset = im.datasets.front();
      o.imatrix_entries = static_cast<int64_t>(im.entries.size());
      o.imatrix_chunks = im.chunk_count;
    } else if (!b.calibration_file.empty()) {
      o.imatrix_dataset = b.calibration_file;  // collected in memory: no file to name
    }
    if (!fs::is_directory(b.path)) o.general_metadata_from = b.path;
    o.show_progress = b.show_progress;
    const GgufExportReport r = export_gguf(*model, output, o);
    report.count = r.n_tensors;
    report.tensor_bytes = r.tensor_bytes;
    return report;
  }
  UqffExportOptions o;
  o.output = output;
  o.stem = target.name();
  o.requested = target.name();
  // The decisions the load made: a plan from shapes alone repeats them.
  o.plan = model->plan_isq(*model->isq_options());
  o.show_progress = b.show_progress;
  const UqffExportReport r = export_uqff(*model, o);
  report.path = r.dir;
  report.shards = r.shards;
  report.count = r.n_layers;
  report.tensor_bytes = r.shard_bytes;
  return report;
}

}  // namespace

void bind_tools(py::module_& m) {
  m.def(
      "tune",
      [](const std::string& path, const py::dict& options) {
        const BuildOptions b = build_options_from(path, options);
        std::string text;
        {
          py::gil_scoped_release unlocked;
          text = tune_json_text(b.path, b);
        }
        return py::module_::import("json").attr("loads")(utf8(text));
      },
      py::arg("path"), py::arg("options"));
  m.def(
      "quantize",
      [](const std::string& path, const std::string& output, const std::string& format,
         const py::dict& options) {
        const BuildOptions b = build_options_from(path, options);
        QuantizeReport r;
        {
          py::gil_scoped_release unlocked;
          r = quantize(b, output, format);
        }
        py::dict d;
        d["format"] = r.format;
        d["path"] = r.path;
        d["isq"] = r.isq;
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
