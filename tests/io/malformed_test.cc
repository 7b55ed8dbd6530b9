// Every file in tests/data/malformed is broken in one way; reading it must fail with exactly one
// FormatError naming the file and the problem listed in expected.tsv (make_corpus.py makes both).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "insitu/error.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "test_paths.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

std::string corpus_dir() { return test::data_dir() + "/malformed"; }

void read_file(const std::string& path) {
  const std::string ext = fs::path(path).extension();
  if (ext == ".gguf") {
    gguf::GgufFile::open(path);
  } else if (ext == ".safetensors") {
    safetensors::SafetensorsFile::open(path);
  } else if (ext == ".json") {
    JsonFile::load(path).root();
  } else {
    FAIL() << "no reader for " << path;
  }
}

std::vector<std::pair<std::string, std::string>> table() {
  std::ifstream in(corpus_dir() + "/expected.tsv");
  std::vector<std::pair<std::string, std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    rows.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return rows;
}

TEST(MalformedCorpus, EachFileFailsWithItsExpectedError) {
  const auto rows = table();
  ASSERT_GE(rows.size(), 40u);
  for (const auto& [file, expected] : rows) {
    SCOPED_TRACE(file);
    const std::string path = corpus_dir() + "/" + file;
    ASSERT_TRUE(fs::exists(path));
    int errors = 0;
    try {
      read_file(path);
    } catch (const FormatError& e) {
      ++errors;
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(expected), std::string::npos) << "message: " << msg;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "wrong exception type: " << e.what();
    }
    EXPECT_EQ(errors, 1);
  }
}

TEST(MalformedCorpus, EveryFileIsInTheTable) {
  std::set<std::string> listed;
  for (const auto& row : table()) listed.insert(row.first);
  for (const auto& e : fs::directory_iterator(corpus_dir())) {
    const std::string name = e.path().filename();
    if (name == "make_corpus.py" || name == "expected.tsv") continue;
    EXPECT_TRUE(listed.count(name)) << name << " has no expected error";
  }
}

}  // namespace
}  // namespace insitu
