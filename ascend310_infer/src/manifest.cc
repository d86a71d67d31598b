#include "manifest.h"

#include <fstream>
#include <sstream>

namespace infer310 {

namespace {

const DTypeInfo kDTypes[] = {
    {"float32", 4}, {"float16", 2}, {"int32", 4}, {"int64", 8}, {"uint8", 1},
};

bool ParseShape(const std::string &text, std::vector<int64_t> *shape) {
  shape->clear();
  if (text == "scalar") return true;
  std::stringstream ss(text);
  std::string dim;
  while (std::getline(ss, dim, 'x')) {
    if (dim.empty() || dim.find_first_not_of("0123456789") != std::string::npos) return false;
    shape->push_back(std::stoll(dim));
  }
  return !shape->empty();
}

// FILE:DTYPE:DIMS, split from the right so that FILE may itself hold a ':'.
bool ParseEntry(const std::string &token, TensorEntry *entry) {
  size_t last = token.rfind(':');
  if (last == std::string::npos || last == 0) return false;
  size_t mid = token.rfind(':', last - 1);
  if (mid == std::string::npos || mid == 0) return false;
  entry->file = token.substr(0, mid);
  entry->dtype = token.substr(mid + 1, last - mid - 1);
  return ParseShape(token.substr(last + 1), &entry->shape);
}

}  // namespace

const DTypeInfo *FindDType(const std::string &name) {
  for (const auto &info : kDTypes) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

size_t TensorEntry::ByteSize() const {
  size_t n = FindDType(dtype)->bytes;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

std::string ShapeToString(const std::vector<int64_t> &shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s;
}

std::string FormatEntry(const TensorEntry &entry) {
  return entry.file + ":" + entry.dtype + ":" + ShapeToString(entry.shape);
}

bool ReadManifest(const std::string &dir, std::vector<Sample> *samples, std::string *error) {
  const std::string path = dir + "/manifest.txt";
  std::ifstream in(path);
  if (!in) {
    *error = path + ": cannot open (the input folder needs the manifest written by common/infer310.py)";
    return false;
  }
  samples->clear();
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    std::stringstream ss(line);
    Sample sample;
    if (!(ss >> sample.name) || sample.name[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(lineno) + ": ";
    std::string token;
    while (ss >> token) {
      TensorEntry entry;
      if (!ParseEntry(token, &entry)) {
        *error = where + "bad entry '" + token + "', expected FILE:DTYPE:DIMS such as x.bin:float32:1x3x32x32";
        return false;
      }
      if (FindDType(entry.dtype) == nullptr) {
        *error = where + "unknown dtype '" + entry.dtype + "' (float32, float16, int32, int64, uint8)";
        return false;
      }
      sample.tensors.push_back(entry);
    }
    if (sample.tensors.empty()) {
      *error = where + "sample '" + sample.name + "' lists no input file";
      return false;
    }
    samples->push_back(sample);
  }
  if (samples->empty()) {
    *error = path + ": no samples listed";
    return false;
  }
  return true;
}

namespace {

// Opens DIR/FILE at its end and checks its size against the entry; returns the stream.
bool OpenChecked(const std::string &dir, const TensorEntry &entry, std::ifstream *in, size_t *size,
                 std::string *error) {
  const std::string path = dir + "/" + entry.file;
  in->open(path, std::ios::binary | std::ios::ate);
  if (!*in) {
    *error = path + ": cannot open (listed in " + dir + "/manifest.txt)";
    return false;
  }
  *size = static_cast<size_t>(in->tellg());
  if (*size != entry.ByteSize()) {
    *error = path + ": holds " + std::to_string(*size) + " bytes but the manifest says " + entry.dtype + " " +
             ShapeToString(entry.shape) + " = " + std::to_string(entry.ByteSize()) + " bytes";
    return false;
  }
  return true;
}

}  // namespace

bool CheckTensorFiles(const std::string &dir, const std::vector<Sample> &samples, std::string *error) {
  for (const Sample &sample : samples) {
    for (const TensorEntry &entry : sample.tensors) {
      std::ifstream in;
      size_t size = 0;
      if (!OpenChecked(dir, entry, &in, &size, error)) return false;
    }
  }
  return true;
}

bool ReadTensorFile(const std::string &dir, const TensorEntry &entry, std::vector<char> *data,
                    std::string *error) {
  std::ifstream in;
  size_t size = 0;
  if (!OpenChecked(dir, entry, &in, &size, error)) return false;
  data->resize(size);
  in.seekg(0);
  if (size > 0 && !in.read(data->data(), static_cast<std::streamsize>(size))) {
    *error = dir + "/" + entry.file + ": read failed";
    return false;
  }
  return true;
}

}  // namespace infer310
