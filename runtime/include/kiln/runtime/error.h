// kiln/runtime/error.h - the error types of every kiln layer.
//
// Errors say who is at fault (DESIGN.md, decision 8):
//   UserError        a bad model, attribute, shape or input: the message names the node, the op,
//                    the values involved and what was expected.
//   UnsupportedError a feature kiln lacks on a target; lists everything unsupported at once.
//   InternalError    a broken invariant inside kiln: a bug.
//   RuntimeError     the environment failed: a file cannot be read, a device is missing.
// Tools map UserError/UnsupportedError/RuntimeError to exit code 1 with the message printed.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace kiln {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  // A short word for the kind of error: "user error", "unsupported", "internal error", ...
  virtual const char* kind() const noexcept = 0;
};

class UserError : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override { return "error"; }
};

class UnsupportedError : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override { return "unsupported"; }
};

class InternalError : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override { return "internal error"; }
};

class RuntimeError : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override { return "runtime error"; }
};

// Concatenates the streamed form of every argument: StrCat("x = ", 3) == "x = 3".
template <class... Args>
std::string StrCat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

}  // namespace kiln

// Checks an invariant of kiln itself; failure is a bug, reported as an InternalError with place.
#define KILN_INTERNAL_CHECK(cond, ...)                                                             \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      throw ::kiln::InternalError(                                                                 \
          ::kiln::StrCat(__FILE__, ":", __LINE__, ": check '" #cond "' failed: ", ##__VA_ARGS__)); \
  } while (0)
