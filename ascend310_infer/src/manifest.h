/**
 * Manifest of raw tensor files, shared by the app and common/infer310.py.
 *
 * One line per sample, whitespace-separated; '#' starts a comment line:
 *
 *     NAME FILE:DTYPE:DIMS [FILE:DTYPE:DIMS ...]
 *     img_0001 img_0001_0.bin:float32:1x3x320x320
 *
 * FILE is relative to the manifest's folder, DIMS are joined by 'x' ("scalar" for rank 0), one
 * entry per model input (in the model's input order) or, in an output manifest, per output.
 */
#ifndef INFER310_MANIFEST_H_
#define INFER310_MANIFEST_H_

#include <cstdint>
#include <string>
#include <vector>

namespace infer310 {

struct DTypeInfo {
  const char *name;
  size_t bytes;
};

// Element types the manifest knows; returns nullptr for an unknown name.
const DTypeInfo *FindDType(const std::string &name);

struct TensorEntry {
  std::string file;  // relative to the manifest's folder
  std::string dtype;
  std::vector<int64_t> shape;
  size_t ByteSize() const;
};

struct Sample {
  std::string name;
  std::vector<TensorEntry> tensors;
};

// Parse DIR/manifest.txt. Returns false and fills *error (naming file and line) on any problem.
bool ReadManifest(const std::string &dir, std::vector<Sample> *samples, std::string *error);

// Load one entry's raw bytes from DIR; fails when the file size disagrees with dtype x shape.
bool ReadTensorFile(const std::string &dir, const TensorEntry &entry, std::vector<char> *data,
                    std::string *error);

// Check every listed file's size up front, so bad data fails before the model is built.
bool CheckTensorFiles(const std::string &dir, const std::vector<Sample> &samples, std::string *error);

std::string FormatEntry(const TensorEntry &entry);
std::string ShapeToString(const std::vector<int64_t> &shape);

}  // namespace infer310

#endif  // INFER310_MANIFEST_H_
