// Writing a file atomically: all of it or nothing.
//
// AtomicFile creates a temporary file in the destination's directory (so the final rename stays
// on one file system), buffers writes into it, and on commit() flushes, fsyncs, renames it over
// the destination and fsyncs the directory. If commit() is never reached (an exception, an early
// return) the destructor removes the temporary file, so a failed write leaves nothing behind and
// never a half-written file under the final name. Not thread-safe; one writer per object.
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
};

}  // namespace insitu
