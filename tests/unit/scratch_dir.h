// scratch_dir.h - what the file-format tests share: a scratch directory per test, and Debian's
// Python with NumPy as their independent reference (NumPy writes what kiln reads and reads what
// kiln writes).
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kiln/runtime/tensor.h"

namespace kiln::test {

// Value k of the file tests' pattern for a dtype: exact in every dtype (bools alternate). Their
// Python scripts compute the same.
inline double Pattern(DType t, int64_t k) {
  if (t == DType::kBool) return double(k % 3 == 1);
  if (t == DType::kUInt8) return double((k * 37 + 5) % 256);
  if (t == DType::kInt8) return double((k * 37 + 5) % 256 - 128);
  if (IsFloatingPoint(t)) return (double(k) - 7.0) * 0.25;
  return double(k * 1001 - 50000);
}

inline Tensor PatternTensor(DType t, const std::vector<int64_t>& shape) {
  std::vector<double> v(size_t(NumElements(shape)));
  for (size_t k = 0; k < v.size(); ++k) v[k] = Pattern(t, int64_t(k));
  return Tensor::FromValues(shape, t, v);
}

// Whether /usr/bin/python3 with NumPy runs here; else `why` says what is missing.
inline bool HaveNumpy(std::string* why) {
  if (::access("/usr/bin/python3", X_OK) != 0) {
    *why = "/usr/bin/python3 is missing";
    return false;
  }
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    *why = "/usr/bin/python3 cannot import numpy (install python3-numpy)";
    return false;
  }
  return true;
}

// Runs the script file `file` with `dir` as the working directory; returns its standard output
// and error together and sets `*status` to its exit status (-1 when it could not start).
inline std::string RunPythonFile(const std::string& dir, const std::string& file, int* status) {
  std::string cmd = "cd '" + dir + "' && /usr/bin/python3 '" + file + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  *status = -1;
  if (!p) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  *status = ::pclose(p);
  return out;
}

// A test with its own empty directory (removed afterwards, read-only subdirectories included).
class ScratchDirTest : public ::testing::Test {
 protected:
  explicit ScratchDirTest(const std::string& name) : name_(name) {}
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / (name_ + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    namespace fs = std::filesystem;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add);
    std::error_code ec;
    for (auto& e : fs::recursive_directory_iterator(dir_, ec))
      if (e.is_directory()) fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir_);
  }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::string WriteBytes(const std::string& name, const std::string& bytes) {
    std::ofstream(Path(name), std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return Path(name);
  }

  // Runs a Python script with dir_ as the working directory; returns its standard output and
  // error together, and expects exit status 0.
  std::string RunPython(const std::string& script) {
    std::string file = WriteBytes("script.py", script);
    int status = 0;
    std::string out = RunPythonFile(dir_.string(), file, &status);
    EXPECT_EQ(status, 0) << "python failed:\n" << out;
    return out;
  }

  std::filesystem::path dir_;

 private:
  std::string name_;
};

}  // namespace kiln::test
