#include "io/text_file.h"

#include "io/mapped_file.h"

namespace insitu {

std::string read_text_file(const std::string& path) {
  return read_regular_file(path, kMaxTextBytes, "text file");
}

}  // namespace insitu
