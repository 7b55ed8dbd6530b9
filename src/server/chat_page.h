// The chat page served at / by `insitu serve`: one self-contained HTML document (inline CSS and
// JavaScript, nothing fetched from elsewhere) that talks to the server's own routes: it streams
// answers from /v1/chat/completions, keeps the conversation, shows tokens/s, lets the user set the
// sampling options, and re-quantizes through /re_isq.
#pragma once

namespace insitu::server {

// The page, NUL-terminated, with static storage duration.
const char* chat_page_html();

}  // namespace insitu::server
