#include "model/hf_cache.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "insitu/error.h"

namespace insitu {
namespace {

namespace fs = std::filesystem;

bool id_part(std::string_view s) {
  return !s.empty() && s.front() != '.' && s.size() <= 96 &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

fs::path cache_root() {
  if (const char* c = std::getenv("HF_HUB_CACHE"); c != nullptr && *c != '\0') return c;
  if (const char* h = std::getenv("HF_HOME"); h != nullptr && *h != '\0') return fs::path(h) / "hub";
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : "") / ".cache" / "huggingface" / "hub";
}

}  // namespace

bool looks_like_hf_model_id(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || text.find('/', slash + 1) != std::string_view::npos)
    return false;
  return id_part(text.substr(0, slash)) && id_part(text.substr(slash + 1));
}

std::string resolve_hf_cache_id(std::string_view id) {
  if (!looks_like_hf_model_id(id))
    throw InvalidArgument(fmt::format("'{}' is not a Hugging Face model id (org/name)", id));
  const size_t slash = id.find('/');
  const fs::path repo = cache_root() / fmt::format("models--{}--{}", id.substr(0, slash),
                                                   id.substr(slash + 1));
  const fs::path snapshots = repo / "snapshots";
  std::error_code ec;
  if (!fs::is_directory(snapshots, ec)) {
    throw IoError(fmt::format("{}: no such local path, and not in the Hugging Face cache (looked for "
                              "{}; the cache is $HF_HUB_CACHE, else $HF_HOME/hub, else "
                              "~/.cache/huggingface/hub; insitu never downloads)",
                              id, snapshots.string()));
  }
  const fs::path ref = repo / "refs" / "main";
  if (fs::is_regular_file(ref, ec)) {
    std::ifstream in(ref);
    std::string commit;
    in >> commit;
    const fs::path snap = snapshots / commit;
    if (commit.empty() || commit.find('/') != std::string::npos || commit.starts_with(".") ||
        !fs::is_directory(snap, ec)) {
      throw FormatError(fmt::format("{}: refs/main names snapshot '{}', which is not in {}",
                                    repo.string(), commit, snapshots.string()));
    }
    return snap.string();
  }
  std::vector<std::string> found;
  for (const fs::directory_entry& e : fs::directory_iterator(snapshots, ec))
    if (e.is_directory(ec)) found.push_back(e.path().filename().string());
  std::sort(found.begin(), found.end());
  if (found.size() == 1) return (snapshots / found.front()).string();
  std::string list;
  for (const std::string& s : found) list += (list.empty() ? "" : " ") + s;
  throw InvalidArgument(fmt::format("{}: no refs/main, and {} snapshots to choose from ({}); give "
                                    "the snapshot directory with -m",
                                    repo.string(), found.size(), found.empty() ? "none" : list));
}

}  // namespace insitu
