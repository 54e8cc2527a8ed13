// python_util.h - running Debian's Python with NumPy from a test (the independent reference of
// the file-format tests: NumPy writes what kiln reads and reads what kiln writes).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace kiln::test {

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

}  // namespace kiln::test
