// Writing a file atomically: all of it or nothing.
//
// AtomicFile creates a temporary file in the destination's directory (so the final rename stays
// on one file system), buffers writes into it, and on commit() flushes, fsyncs, renames it over
// the destination and fsyncs the directory. If commit() is never reached (an exception, an early
// return) the destructor removes the temporary file, so a failed write leaves nothing behind and
// never a half-written file under the final name. Not thread-safe; one writer per object.
//
// A signal ends the process without running destructors, so staging paths (AtomicFile's
// temporary file, a StagingPath directory) are also kept in a process-wide registry: a front end
// calls install_staging_cleanup() once, and SIGINT, SIGTERM or SIGHUP then removes every
// registered path before the signal takes its default effect.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace insitu {

// Where a file writer streams bytes (an AtomicFile, or a counting wrapper around one).
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void write(std::span<const uint8_t> bytes) = 0;
  void write(const void* data, size_t n) {
    write(std::span<const uint8_t>(static_cast<const uint8_t*>(data), n));
  }
  void write_zeros(size_t n);
};

// Registers `path` (a file, or a directory removed with its contents) for removal on a signal;
// returns a slot for unregister_staging_path(), or -1 when the registry (64 slots) is full or the
// path too long (the path is then only removed by its owner's destructor). Thread-safe.
int register_staging_path(const std::string& path);
void unregister_staging_path(int slot) noexcept;

// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove the registered staging paths and
// re-raise the signal with its default action. Call once, from a front end's main().
void install_staging_cleanup();

// Holds a staging path in the registry for its lifetime.
class StagingRegistration {
 public:
  StagingRegistration() = default;
  explicit StagingRegistration(const std::string& path) : slot_(register_staging_path(path)) {}
  ~StagingRegistration() { release(); }
  StagingRegistration(const StagingRegistration&) = delete;
  StagingRegistration& operator=(const StagingRegistration&) = delete;
  void release() noexcept {
    if (slot_ >= 0) unregister_staging_path(slot_);
    slot_ = -1;
  }

 private:
  int slot_ = -1;
};

class AtomicFile final : public ByteSink {
 public:
  // Creates the temporary file. Throws IoError naming `path` when its directory is not writable.
  explicit AtomicFile(std::string path);
  ~AtomicFile() override;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  using ByteSink::write;
  // Appends bytes. Throws IoError on a failed write (disk full, ...).
  void write(std::span<const uint8_t> bytes) override;
  // Bytes written so far.
  uint64_t size() const { return written_; }
  // Makes the file visible under its final name. Throws IoError; afterwards nothing is left.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void flush();
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  std::vector<uint8_t> buffer_;
  uint64_t written_ = 0;
  bool committed_ = false;
  int staging_slot_ = -1;  // in the signal-cleanup registry while the temporary file exists
};

}  // namespace insitu
