// A read-only memory mapping of a whole file.
//
// The mapping lives as long as any copy of the shared handle; views into it (spans, tensor data)
// must not outlive it. release_pages() tells the kernel a range is no longer needed so the pages
// of a tensor already converted can be dropped from the resident set (used by in-situ
// quantization to keep peak memory near the quantized size).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace insitu {

class MappedFile {
 public:
  // Maps `path` read-only. Throws IoError naming the path and the OS error.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

  // Advises the kernel that [offset, offset + length) will not be read again (MADV_DONTNEED on
  // whole pages inside the range). Safe to call with any range; clamps to the file.
  void release_pages(size_t offset, size_t length) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads the whole of `path` for a small text file (JSON, YAML, a template, a text input). Refuses
// what is not a regular file (a FIFO, /dev/zero, a directory: they could be read forever) and a
// file over `max_bytes`. Throws IoError "PATH: <what> ..." naming the path; `what` says which
// kind of file it should have been ("config", "topology", "text file").
std::string read_regular_file(const std::string& path, size_t max_bytes, std::string_view what);

}  // namespace insitu
