#include "core/metadata.hpp"

#include <nlohmann/json.hpp>

using nlohmann::json;

namespace previewdb::core {

std::string to_string(Kind kind) {
  switch (kind) {
    case Kind::pr:
      return "pr";
    case Kind::personal:
      return "personal";
    case Kind::snapshot:
      return "snapshot";
    case Kind::build:
      return "build";
    case Kind::pool:
      return "pool";
  }
  return "personal";
}

namespace {
json opt(const std::optional<std::string>& v) {
  return v ? json(*v) : json(nullptr);
}
}  // namespace

std::string to_comment(const Metadata& m) {
  json j = {{"tool", "previewdb"},
            {"kind", to_string(m.kind)},
            {"created_at", m.created_at},
            {"created_by", m.created_by},
            {"pr_number", m.pr_number ? json(*m.pr_number) : json(nullptr)},
            {"branch", opt(m.branch)},
            {"snapshot", opt(m.snapshot)}};
  if (m.source) j["source"] = *m.source;
  if (m.repository) j["repository"] = *m.repository;
  if (m.mask_rules_sha256) {
    j["masked"] = true;
    j["mask_rules_sha256"] = *m.mask_rules_sha256;
  }
  return j.dump();
}

std::optional<Metadata> parse_comment(std::string_view comment) {
  json j = json::parse(comment, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto str = [&](const char* key) -> std::optional<std::string> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  if (str("tool") != "previewdb") return std::nullopt;
  Metadata m;
  auto kind = str("kind");
  if (kind == "pr")
    m.kind = Kind::pr;
  else if (kind == "personal")
    m.kind = Kind::personal;
  else if (kind == "snapshot")
    m.kind = Kind::snapshot;
  else
    return std::nullopt;
  m.created_at = str("created_at").value_or("");
  m.created_by = str("created_by").value_or("");
  if (auto it = j.find("pr_number"); it != j.end() && it->is_number_integer()) {
    m.pr_number = it->get<long long>();
  }
  m.branch = str("branch");
  m.snapshot = str("snapshot");
  m.source = str("source");
  if (auto it = j.find("masked"); it != j.end() && it->is_boolean() && it->get<bool>()) {
    m.mask_rules_sha256 = str("mask_rules_sha256").value_or("");
  }
  return m;
}

}  // namespace previewdb::core
