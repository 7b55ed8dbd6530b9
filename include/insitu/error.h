// Errors thrown by the insitu library.
//
// The library never exits the process. Every failure is an insitu::Error (or a subclass) whose
// message names the thing at fault, the bad value and, where it helps, the valid values, e.g.
//   gguf: model.gguf: tensor 'blk.0.attn_q.weight': type 41 unsupported; supported: f32 f16 ...
// Front ends map them: the CLI prints one line and exits non-zero, the server answers 4xx/5xx JSON,
// Python raises an exception.
#pragma once

#include <stdexcept>
#include <string>

namespace insitu {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file or stream is malformed, truncated or hostile (bad magic, out-of-range offset, ...).
class FormatError : public Error {
 public:
  using Error::Error;
};

// A caller passed an invalid argument or option (unknown type name, conflicting flags, ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A requested feature or combination is not supported (unknown architecture, type for a tensor).
class Unsupported : public Error {
 public:
  using Error::Error;
};

// An operating-system call failed (open, mmap, write, rename).
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace insitu
