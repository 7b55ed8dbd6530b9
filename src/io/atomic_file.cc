#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "insitu/error.h"

namespace insitu {
namespace {

constexpr size_t kBufferSize = 4u << 20;

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

[[noreturn]] void os_error(const std::string& path, const char* what, int err) {
  throw IoError(path + ": cannot " + what + ": " + std::strerror(err));
}

}  // namespace

void ByteSink::write_zeros(size_t n) {
  static constexpr uint8_t kZeros[4096] = {};
  while (n > 0) {
    const size_t k = n < sizeof(kZeros) ? n : sizeof(kZeros);
    write(kZeros, k);
    n -= k;
  }
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw IoError("cannot write a file with an empty path");
  std::string tmpl = path_ + ".tmp.XXXXXX";
  fd_ = ::mkstemp(tmpl.data());
  if (fd_ < 0) os_error(path_, "create a temporary file beside it", errno);
  temp_path_ = tmpl;
  // mkstemp creates 0600; a finished model file should get the usual umask-derived mode.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_, 0666 & ~mask);
  buffer_.reserve(kBufferSize);
}

AtomicFile::~AtomicFile() {
  if (!committed_) discard();
}

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(std::span<const uint8_t> bytes) {
  if (fd_ < 0) throw IoError(path_ + ": write after commit or failure");
  written_ += bytes.size();
  if (buffer_.size() + bytes.size() <= kBufferSize) {
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    return;
  }
  flush();
  if (bytes.size() >= kBufferSize) {
    // Large spans go straight to the file without a copy.
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        os_error(temp_path_, "write", errno);
      }
      done += static_cast<size_t>(n);
    }
    return;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

void AtomicFile::flush() {
  size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      os_error(temp_path_, "write", errno);
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

void AtomicFile::commit() {
  if (fd_ < 0) throw IoError(path_ + ": commit after commit or failure");
  flush();
  if (::fsync(fd_) != 0) os_error(temp_path_, "fsync", errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    os_error(temp_path_, "close", errno);
  }
  fd_ = -1;
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    os_error(temp_path_, ("rename to " + path_).c_str(), errno);
  }
  committed_ = true;
  // Make the rename itself durable. A failure here leaves a complete file in place, so it is not
  // worth an error.
  const int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace insitu
