/**
 * infer_app: model-agnostic inference over a folder of raw tensor files.
 *
 *   infer_app --model_path FILE --input_dir DIR --output_dir DIR
 *             [--backend ascend310|lite_cpu] [--device_id N] [--threads N] [--time_dir DIR]
 *
 * DIR/manifest.txt lists the samples (see manifest.h). Every output k of sample S is written raw
 * to OUTPUT_DIR/S_k.bin, and OUTPUT_DIR/manifest.txt describes them the same way; the mean time
 * per Predict goes to TIME_DIR/test_perform_static.txt (the old 310 apps' file).
 *
 * One source, two libraries behind the same mindspore::Model API, chosen at build time:
 *   INFER_BACKEND_ASCEND  full MindSpore inference package (libmindspore.so) on Ascend 310:
 *                         Serialization::Load(MINDIR) -> Model::Build(GraphCell, context)
 *   INFER_BACKEND_LITE    MindSpore Lite (CPU, or Ascend through Lite):
 *                         Model::Build(path, kMindIR, context)
 *
 * Exit codes: 0 ok, 2 bad arguments, 3 bad input data (manifest, .bin size, dtype, input count),
 * 4 model file missing or Build failed, 5 Predict failed, 6 cannot write the results.
 */
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/serialization.h"
#include "include/api/status.h"
#include "include/api/types.h"
#include "manifest.h"

using infer310::Sample;
using infer310::TensorEntry;

namespace {

enum ExitCode { kOk = 0, kBadArgs = 2, kBadData = 3, kBadModel = 4, kPredictFailed = 5, kWriteFailed = 6 };

#ifdef INFER_BACKEND_ASCEND
const char *const kLibrary = "MindSpore (Ascend inference package)";
const char *const kDefaultBackend = "ascend310";
const std::vector<std::string> kBackends = {"ascend310"};
const char *const kBuildHint = "a MINDIR exported by MindSpore for Ascend, and a free device (--device_id)";
#else
const char *const kLibrary = "MindSpore Lite";
const char *const kDefaultBackend = "lite_cpu";
const std::vector<std::string> kBackends = {"lite_cpu", "ascend310"};
const char *const kBuildHint =
    "the MINDIR written by the Lite converter (common/infer310.py convert_onnx_to_lite); "
    "ascend310 also needs Lite's Ascend plugin and a device";
#endif

const std::map<std::string, mindspore::DataType> kDTypeByName = {
    {"float32", mindspore::DataType::kNumberTypeFloat32}, {"float16", mindspore::DataType::kNumberTypeFloat16},
    {"int32", mindspore::DataType::kNumberTypeInt32},     {"int64", mindspore::DataType::kNumberTypeInt64},
    {"uint8", mindspore::DataType::kNumberTypeUInt8},
};

std::string DTypeName(mindspore::DataType type) {
  for (const auto &kv : kDTypeByName) {
    if (kv.second == type) return kv.first;
  }
  return "type#" + std::to_string(static_cast<int>(type));
}

struct Args {
  std::string model_path, input_dir, output_dir, backend = kDefaultBackend, time_dir = "time_Result";
  int device_id = 0;
  int threads = 2;
};

const char *const kUsage =
    "usage: infer_app --model_path FILE --input_dir DIR --output_dir DIR\n"
    "                 [--backend ascend310|lite_cpu] [--device_id N] [--threads N] [--time_dir DIR]\n";

int Fail(int code, const std::string &message) {
  std::cerr << "infer_app: error: " << message << std::endl;
  return code;
}

bool ParseInt(const std::string &text, int *value) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  *value = std::atoi(text.c_str());
  return true;
}

// --key value or --key=value; returns an error message, empty on success.
std::string ParseArgs(int argc, char **argv, Args *args) {
  std::map<std::string, std::string *> strings = {{"--model_path", &args->model_path},
                                                  {"--input_dir", &args->input_dir},
                                                  {"--output_dir", &args->output_dir},
                                                  {"--backend", &args->backend},
                                                  {"--time_dir", &args->time_dir}};
  std::map<std::string, int *> ints = {{"--device_id", &args->device_id}, {"--threads", &args->threads}};
  for (int i = 1; i < argc; ++i) {
    std::string key = argv[i], value;
    size_t eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else if (strings.count(key) || ints.count(key)) {
      if (i + 1 >= argc) return key + " needs a value";
      value = argv[++i];
    }
    if (strings.count(key)) {
      *strings[key] = value;
    } else if (ints.count(key)) {
      if (!ParseInt(value, ints[key])) return key + " needs a non-negative integer, got '" + value + "'";
    } else {
      return "unknown argument '" + key + "'";
    }
  }
  for (const char *key : {"--model_path", "--input_dir", "--output_dir"}) {
    if (strings[key]->empty()) return std::string(key) + " is required";
  }
  if (std::find(kBackends.begin(), kBackends.end(), args->backend) == kBackends.end()) {
    std::string known;
    for (const auto &b : kBackends) known += " " + b;
    return "--backend " + args->backend + " is not available in this build (" + kLibrary + "; available:" +
           known + "); rebuild with ascend310_infer/build.sh lite|ascend";
  }
  if (args->threads < 1) return "--threads must be at least 1";
  return "";
}

bool IsFile(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool MakeDirs(const std::string &path) {
  for (size_t pos = path.find('/', 1);; pos = path.find('/', pos + 1)) {
    mkdir(path.substr(0, pos).c_str(), 0755);  // existing parents fail harmlessly
    if (pos == std::string::npos) break;
  }
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::shared_ptr<mindspore::Context> MakeContext(const Args &args) {
  auto context = std::make_shared<mindspore::Context>();
  if (args.backend == "ascend310") {
    auto ascend = std::make_shared<mindspore::AscendDeviceInfo>();
    ascend->SetDeviceID(static_cast<uint32_t>(args.device_id));
    context->MutableDeviceInfo().push_back(ascend);
  } else {
    context->SetThreadNum(args.threads);
    context->MutableDeviceInfo().push_back(std::make_shared<mindspore::CPUDeviceInfo>());
  }
  return context;
}

mindspore::Status BuildModel(const Args &args, mindspore::Model *model) {
#ifdef INFER_BACKEND_ASCEND
  mindspore::Graph graph;
  mindspore::Status ret = mindspore::Serialization::Load(args.model_path, mindspore::ModelType::kMindIR, &graph);
  if (ret != mindspore::kSuccess) return ret;
  return model->Build(mindspore::GraphCell(graph), MakeContext(args));
#else
  return model->Build(args.model_path, mindspore::ModelType::kMindIR, MakeContext(args));
#endif
}

// Inputs for one sample: checks count and dtype against the model, resizes it when the shapes
// differ (dynamic batch or size), and wraps the bytes in MSTensors.
int PrepareInputs(const Args &args, const Sample &sample, mindspore::Model *model,
                  std::vector<std::vector<char>> *buffers, std::vector<mindspore::MSTensor> *inputs) {
  std::vector<mindspore::MSTensor> model_inputs = model->GetInputs();
  const std::string who = args.input_dir + "/manifest.txt: sample '" + sample.name + "': ";
  if (sample.tensors.size() != model_inputs.size()) {
    return Fail(kBadData, who + "lists " + std::to_string(sample.tensors.size()) + " input file(s), the model takes " +
                              std::to_string(model_inputs.size()));
  }
  std::vector<std::vector<int64_t>> shapes;
  bool resize = false;
  buffers->assign(sample.tensors.size(), {});
  for (size_t i = 0; i < sample.tensors.size(); ++i) {
    const TensorEntry &entry = sample.tensors[i];
    if (kDTypeByName.at(entry.dtype) != model_inputs[i].DataType()) {
      return Fail(kBadData, who + "input " + std::to_string(i) + " is " + entry.dtype + ", the model expects " +
                                DTypeName(model_inputs[i].DataType()));
    }
    std::string error;
    if (!infer310::ReadTensorFile(args.input_dir, entry, &(*buffers)[i], &error)) return Fail(kBadData, error);
    shapes.push_back(entry.shape);
    resize = resize || entry.shape != model_inputs[i].Shape();
  }
  if (resize) {
    mindspore::Status ret = model->Resize(model_inputs, shapes);
    if (ret != mindspore::kSuccess) {
      return Fail(kBadData, who + "the model cannot take these input shapes (Resize failed: " + ret.ToString() + ")");
    }
    model_inputs = model->GetInputs();
  }
  inputs->clear();
  for (size_t i = 0; i < shapes.size(); ++i) {
    inputs->emplace_back(model_inputs[i].Name(), model_inputs[i].DataType(), shapes[i], (*buffers)[i].data(),
                         (*buffers)[i].size());
  }
  return kOk;
}

// Writes S_k.bin for every output; appends the sample's line to the output manifest.
int WriteOutputs(const Args &args, const Sample &sample, const std::vector<mindspore::MSTensor> &outputs,
                 std::ofstream *manifest) {
  *manifest << sample.name;
  for (size_t k = 0; k < outputs.size(); ++k) {
    TensorEntry entry{sample.name + "_" + std::to_string(k) + ".bin", DTypeName(outputs[k].DataType()),
                      outputs[k].Shape()};
    const std::string path = args.output_dir + "/" + entry.file;
    std::ofstream out(path, std::ios::binary);
    auto data = outputs[k].Data();
    if (!out || (outputs[k].DataSize() > 0 && data == nullptr) ||
        !out.write(static_cast<const char *>(data.get()), static_cast<std::streamsize>(outputs[k].DataSize()))) {
      return Fail(kWriteFailed, path + ": cannot write output " + std::to_string(k));
    }
    *manifest << " " << infer310::FormatEntry(entry);
  }
  *manifest << "\n";
  return kOk;
}

int WriteTiming(const Args &args, std::vector<double> times_ms) {
  if (!MakeDirs(args.time_dir)) return Fail(kWriteFailed, args.time_dir + ": cannot create the folder");
  double sum = 0;
  for (double t : times_ms) sum += t;
  const double mean = sum / times_ms.size();
  std::sort(times_ms.begin(), times_ms.end());
  const double median = times_ms[times_ms.size() / 2];
  const std::string path = args.time_dir + "/test_perform_static.txt";
  std::ofstream out(path);
  char line[256];
  std::snprintf(line, sizeof(line), "NN inference cost average time: %.3f ms of infer_count %zu\n", mean,
                times_ms.size());
  out << line;
  std::snprintf(line, sizeof(line), "median %.3f ms, min %.3f ms, max %.3f ms (backend %s, %s)\n", median,
                times_ms.front(), times_ms.back(), args.backend.c_str(), kLibrary);
  out << line;
  if (!out) return Fail(kWriteFailed, path + ": cannot write");
  std::cout << "[infer_app] " << line;
  return kOk;
}

}  // namespace

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::cout << kUsage;
      return kOk;
    }
  }
  Args args;
  std::string error = ParseArgs(argc, argv, &args);
  if (!error.empty()) {
    std::cerr << kUsage;
    return Fail(kBadArgs, error);
  }
  if (!IsFile(args.model_path)) return Fail(kBadModel, "model file not found: " + args.model_path);
  std::vector<Sample> samples;
  if (!infer310::ReadManifest(args.input_dir, &samples, &error) ||
      !infer310::CheckTensorFiles(args.input_dir, samples, &error)) {
    return Fail(kBadData, error);
  }
  if (!MakeDirs(args.output_dir)) return Fail(kWriteFailed, args.output_dir + ": cannot create the folder");

  std::cout << "[infer_app] " << kLibrary << ", backend " << args.backend << ", model " << args.model_path << ", "
            << samples.size() << " sample(s)" << std::endl;
  mindspore::Model model;
  mindspore::Status ret = BuildModel(args, &model);
  if (ret != mindspore::kSuccess) {
    return Fail(kBadModel, "building " + args.model_path + " failed: " + ret.ToString() + " (" + kLibrary +
                               " on " + args.backend + " needs " + kBuildHint + ")");
  }

  const std::string out_manifest_path = args.output_dir + "/manifest.txt";
  std::ofstream out_manifest(out_manifest_path);
  out_manifest << "# outputs of infer_app for " << args.model_path << "\n";
  std::vector<double> times_ms;
  for (const Sample &sample : samples) {
    std::vector<std::vector<char>> buffers;
    std::vector<mindspore::MSTensor> inputs, outputs;
    int code = PrepareInputs(args, sample, &model, &buffers, &inputs);
    if (code != kOk) return code;
    auto start = std::chrono::steady_clock::now();
    ret = model.Predict(inputs, &outputs);
    auto stop = std::chrono::steady_clock::now();
    if (ret != mindspore::kSuccess) {
      return Fail(kPredictFailed, "Predict failed on sample '" + sample.name + "': " + ret.ToString());
    }
    times_ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    code = WriteOutputs(args, sample, outputs, &out_manifest);
    if (code != kOk) return code;
  }
  out_manifest.close();
  if (!out_manifest) return Fail(kWriteFailed, out_manifest_path + ": cannot write");
  return WriteTiming(args, times_ms);
}
