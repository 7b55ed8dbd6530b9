#include "io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
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

// The staging registry. The signal handler may only use async-signal-safe calls, so the paths
// live in fixed buffers (no allocation) and a slot's state says whether its path is complete.
constexpr int kSlots = 64;
constexpr size_t kMaxPath = 1024;
enum SlotState : int { kFree = 0, kFilling = 1, kActive = 2 };
std::atomic<int> g_state[kSlots];
char g_path[kSlots][kMaxPath];

// Removes `dir`'s contents and then `dir`, with raw syscalls only (getdents64, unlinkat), down to
// a few levels: staging directories are shallow.
void remove_tree_at(int parent, const char* name, int depth) noexcept {
  if (::unlinkat(parent, name, 0) == 0 || errno != EISDIR) return;
  if (depth > 0) {
    const int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      alignas(8) char buf[4096];
      for (;;) {
        const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0) break;
        for (long at = 0; at < n;) {
          struct Dirent64 {
            uint64_t ino;
            int64_t off;
            unsigned short reclen;
            unsigned char type;
            char name[1];
          };
          const auto* d = reinterpret_cast<const Dirent64*>(buf + at);
          at += d->reclen;
          if (std::strcmp(d->name, ".") == 0 || std::strcmp(d->name, "..") == 0) continue;
          remove_tree_at(fd, d->name, depth - 1);
        }
      }
      ::close(fd);
    }
  }
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

void remove_staging_paths() noexcept {
  for (int i = 0; i < kSlots; ++i) {
    if (g_state[i].load(std::memory_order_acquire) == kActive) remove_tree_at(AT_FDCWD, g_path[i], 4);
  }
}

extern "C" void on_fatal_signal(int sig) {
  const int saved = errno;
  remove_staging_paths();
  errno = saved;
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

int register_staging_path(const std::string& path) {
  if (path.empty() || path.size() >= kMaxPath) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (g_state[i].compare_exchange_strong(expected, kFilling, std::memory_order_acq_rel)) {
      std::memcpy(g_path[i], path.c_str(), path.size() + 1);
      g_state[i].store(kActive, std::memory_order_release);
      return i;
    }
  }
  return -1;
}

void unregister_staging_path(int slot) noexcept {
  if (slot >= 0 && slot < kSlots) g_state[slot].store(kFree, std::memory_order_release);
}

void install_staging_cleanup() {
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    // A signal the process was started ignoring (nohup) stays ignored.
    if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    ::sigaction(sig, &sa, nullptr);
  }
}

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
  staging_slot_ = register_staging_path(temp_path_);
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
  unregister_staging_path(staging_slot_);
  staging_slot_ = -1;
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
  unregister_staging_path(staging_slot_);
  staging_slot_ = -1;
  // Make the rename itself durable. A failure here leaves a complete file in place, so it is not
  // worth an error.
  const int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace insitu
