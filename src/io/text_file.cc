#include "io/text_file.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "insitu/error.h"

namespace insitu {

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw IoError(path + ": no such text file");
  if (!std::filesystem::is_regular_file(status))
    throw IoError(path + ": not a regular file (a text file is expected)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open the text file");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError(path + ": cannot read the text file");
  return text;
}

}  // namespace insitu
