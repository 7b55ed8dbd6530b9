#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "insitu/error.h"

namespace insitu {

namespace {

// Opens `path` for reading without blocking (opening a FIFO would wait for a writer) and checks
// that it is a regular file. Returns the descriptor and its size.
int open_regular(const std::string& path, std::string_view what, size_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    throw IoError(path + ": cannot open" + (what.empty() ? "" : " the " + std::string(what)) +
                  ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw IoError(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    throw IoError(path + ": " + (what.empty() ? "" : std::string(what) + " ") +
                  "is not a regular file (" + kind + ")");
  }
  *size = static_cast<size_t>(st.st_size);
  return fd;
}

}  // namespace

std::string read_regular_file(const std::string& path, size_t max_bytes, std::string_view what) {
  size_t size = 0;
  const int fd = open_regular(path, what, &size);
  if (size > max_bytes) {
    ::close(fd);
    throw IoError(path + ": " + std::string(what) + " of " + std::to_string(size) +
                  " bytes exceeds the limit of " + std::to_string(max_bytes) + " bytes");
  }
  std::string text(size, '\0');
  size_t done = 0;
  // Reads what fstat promised and no more: a file growing meanwhile cannot make this unbounded.
  while (done < size) {
    const ssize_t n = ::read(fd, text.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw IoError(path + ": cannot read: " + std::strerror(err));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(done);
  return text;
}

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  size_t size = 0;
  const int fd = open_regular(path, "", &size);
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = size;
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw IoError(path + ": cannot map " + std::to_string(f->size_) + " bytes: " +
                    std::strerror(err));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::release_pages(size_t offset, size_t length) const {
  if (data_ == nullptr || offset >= size_) return;
  if (length > size_ - offset) length = size_ - offset;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  // Only whole pages inside the range: neighbours may still be needed.
  const size_t begin = (offset + page - 1) / page * page;
  const size_t end = (offset + length) / page * page;
  if (end > begin) {
    ::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
  }
}

}  // namespace insitu
