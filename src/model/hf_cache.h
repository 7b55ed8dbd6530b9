// Finding a Hugging Face model id ("org/name") in the local Hugging Face cache, never the network.
//
// Cache root, first that is set: $HF_HUB_CACHE, $HF_HOME/hub, $HOME/.cache/huggingface/hub. A
// model lives in `<root>/models--<org>--<name>/`: refs/main holds the commit of the snapshot
// `snapshots/<commit>/`, a directory of symlinks into blobs/ (or plain files). Without refs/main
// the only snapshot is used.
#pragma once

#include <string>
#include <string_view>

namespace insitu {

// True for "org/name": two non-empty parts of [A-Za-z0-9._-] with one '/', neither starting with
// '.'. Absolute and ./-relative paths are never ids.
bool looks_like_hf_model_id(std::string_view text);

// The snapshot directory of `id` in the cache. Throws IoError naming the paths tried when the id
// is not cached, FormatError when refs/main names a missing snapshot, InvalidArgument listing the
// snapshots when there is no refs/main and more than one.
std::string resolve_hf_cache_id(std::string_view id);

}  // namespace insitu
