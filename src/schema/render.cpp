// The comparison's output shapes: text for people (grouped by object), JSON for programs,
// Markdown for a CI summary or pull request comment, and a best-effort DDL patch.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "schema/schema.hpp"
#include "util/strings.hpp"

namespace previewdb::schema {

namespace {

char sign(Change c) {
  return c == Change::added ? '+' : c == Change::removed ? '-' : '~';
}

// A sub-object's name within its parent ("email" for public.users.email); indexes and
// sequences keep their schema-qualified names.
std::string local_name(const Difference& d) {
  if (!d.parent.empty() && d.name.size() > d.parent.size() + 1 &&
      d.name.compare(0, d.parent.size() + 1, d.parent + ".") == 0)
    return d.name.substr(d.parent.size() + 1);
  return d.name;
}

std::string attr(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

// One line describing an object that exists on one side only.
std::string headline(const std::string& kind, const std::map<std::string, std::string>& a) {
  std::vector<std::string> parts;
  if (kind == "column") {
    parts.push_back(attr(a, "type"));
    if (attr(a, "not_null") == "yes") parts.push_back("not null");
    if (!attr(a, "default").empty()) parts.push_back("default " + attr(a, "default"));
    if (!attr(a, "identity").empty()) parts.push_back("identity " + attr(a, "identity"));
    if (!attr(a, "generated").empty()) parts.push_back("generated " + attr(a, "generated"));
  } else if (kind == "constraint" || kind == "trigger") {
    parts.push_back(attr(a, "definition"));
  } else if (kind == "index") {
    parts.push_back((attr(a, "unique") == "yes" ? "unique " : "") + attr(a, "method") + " " +
                    attr(a, "columns"));
    if (!attr(a, "predicate").empty()) parts.push_back("where " + attr(a, "predicate"));
  } else if (kind == "enum") {
    parts.push_back(attr(a, "values"));
  } else if (kind == "extension") {
    parts.push_back("version " + attr(a, "version"));
  } else if (kind == "domain") {
    parts.push_back(attr(a, "type"));
  } else if (kind == "policy") {
    parts.push_back("for " + attr(a, "command"));
  }
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    out += (out.empty() ? "" : ", ") + p;
  }
  return util::printable(out);
}

std::string shown(const std::string& v) {
  return v.empty() ? "(none)" : util::printable(v);
}

// Lines of a multi-line value that differ (a longest-common-subsequence line diff), each
// prefixed "- " or "+ ", indented.
std::string line_diff(const std::string& a, const std::string& b, const std::string& indent) {
  auto la = util::split(a, '\n'), lb = util::split(b, '\n');
  if (la.size() * lb.size() > 4'000'000) {
    std::string out;
    for (const auto& l : la) out += indent + "- " + util::printable(l) + "\n";
    for (const auto& l : lb) out += indent + "+ " + util::printable(l) + "\n";
    return out;
  }
  std::vector<std::vector<int>> lcs(la.size() + 1, std::vector<int>(lb.size() + 1, 0));
  for (size_t i = la.size(); i-- > 0;)
    for (size_t j = lb.size(); j-- > 0;)
      lcs[i][j] = la[i] == lb[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::string out;
  size_t i = 0, j = 0;
  while (i < la.size() || j < lb.size()) {
    if (i < la.size() && j < lb.size() && la[i] == lb[j]) {
      ++i, ++j;
    } else if (i < la.size() && (j == lb.size() || lcs[i + 1][j] >= lcs[i][j + 1])) {
      out += indent + "- " + util::printable(la[i++]) + "\n";
    } else {
      out += indent + "+ " + util::printable(lb[j++]) + "\n";
    }
  }
  return out;
}

std::string attribute_lines(const Difference& d, const std::string& indent) {
  std::string out;
  for (const auto& c : d.attributes) {
    if (c.key == "grants") {
      // Lists: what each side has that the other has not.
      auto a = util::split(c.from, ';'), b = util::split(c.to, ';');
      for (auto& v : a) v = util::trim(v);
      for (auto& v : b) v = util::trim(v);
      out += indent + c.key + ":\n";
      for (const auto& v : a)
        if (std::find(b.begin(), b.end(), v) == b.end() && !v.empty())
          out += indent + "  - " + util::printable(v) + "\n";
      for (const auto& v : b)
        if (std::find(a.begin(), a.end(), v) == a.end() && !v.empty())
          out += indent + "  + " + util::printable(v) + "\n";
    } else if (c.from.find('\n') != std::string::npos || c.to.find('\n') != std::string::npos) {
      out += indent + c.key + ":\n" + line_diff(c.from, c.to, indent + "  ");
    } else {
      out += indent + c.key + ": " + shown(c.from) + " -> " + shown(c.to) + "\n";
    }
  }
  return out;
}

std::string object_line(const Difference& d, const std::string& name) {
  std::string line = std::string(1, sign(d.change)) + " " + d.kind + " " + util::printable(name);
  if (d.change != Change::changed) {
    auto h = headline(d.kind, d.change == Change::added ? d.to_attributes : d.from_attributes);
    if (!h.empty()) line += ": " + h;
  }
  return line + "\n";
}

std::string where(const UnmodelledEntry& e) {
  if (e.in_from && e.in_to) return "in both";
  return e.in_from ? "only in FROM" : "only in TO";
}

std::string summary_line(const Diff& diff) {
  if (diff.equal()) return "no differences: every object compared";
  std::string out;
  size_t n = diff.differences.size();
  if (n == 0) {
    out = "no differences in what was compared";
  } else {
    out = std::to_string(n) + " difference" + (n == 1 ? "" : "s") + " (" +
          std::to_string(diff.count(Change::added)) + " only in TO, " +
          std::to_string(diff.count(Change::removed)) + " only in FROM, " +
          std::to_string(diff.count(Change::changed)) + " changed)";
  }
  if (!diff.not_compared.empty())
    out += "; " + std::to_string(diff.not_compared.size()) + " object" +
           (diff.not_compared.size() == 1 ? "" : "s") + " not compared";
  return out;
}

// The body of the text rendering: groups, then what was not compared.
std::string text_body(const Diff& diff) {
  std::string out;
  std::string group;  // "kind name" of the current top-level object
  for (const auto& d : diff.differences) {
    bool sub = !d.parent.empty();
    std::string top = sub ? d.parent_kind + " " + d.parent : d.kind + " " + d.name;
    if (top != group) {
      if (!group.empty()) out += "\n";
      group = top;
      if (sub) out += util::printable(top) + "\n";
    }
    if (sub) {
      out += "  " + object_line(d, local_name(d));
      out += attribute_lines(d, "      ");
    } else {
      out += object_line(d, d.name);
      out += attribute_lines(d, "    ");
    }
  }
  if (!diff.not_compared.empty()) {
    if (!out.empty()) out += "\n";
    out += "not compared (previewdb does not model these kinds; check them yourself):\n";
    for (const auto& e : diff.not_compared)
      out += "  ? " + util::printable(e.kind) + " " + util::printable(e.name) + " (" + where(e) +
             ")\n";
  }
  return out;
}

// --- SQL patch ---

std::string literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

// How COMMENT ON / DROP name the object.
std::string sql_object(const Difference& d) {
  const std::string local = local_name(d);
  if (d.kind == "column") return "COLUMN " + d.name;
  if (d.kind == "constraint") return "CONSTRAINT " + local + " ON " + d.parent;
  if (d.kind == "trigger") return "TRIGGER " + local + " ON " + d.parent;
  if (d.kind == "policy") return "POLICY " + local + " ON " + d.parent;
  if (d.kind == "enum" || d.kind == "composite type") return "TYPE " + d.name;
  std::string kind = d.kind;
  for (auto& c : kind) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return kind + " " + d.name;
}

std::string drop_sql(const Difference& d) {
  if (d.kind == "column") return "ALTER TABLE " + d.parent + " DROP COLUMN " + local_name(d) + ";";
  if (d.kind == "constraint")
    return "ALTER TABLE " + d.parent + " DROP CONSTRAINT " + local_name(d) + ";";
  return "DROP " + sql_object(d) + ";";
}

// Phases: creates run in this order, drops in the reverse one.
int phase(const Difference& d) {
  if (d.kind == "schema") return 0;
  if (d.kind == "extension") return 1;
  if (d.kind == "enum" || d.kind == "domain" || d.kind == "composite type") return 2;
  if (d.kind == "sequence") return 3;
  if (d.kind == "table") return 4;
  if (d.kind == "column") return 5;
  if (d.kind == "function" || d.kind == "procedure") return 6;
  if (d.kind == "view") return 7;
  if (d.kind == "materialized view") return 8;
  if (d.kind == "constraint")
    return attr(d.to_attributes, "type") == "foreign key" ||
                   attr(d.from_attributes, "type") == "foreign key"
               ? 10
               : 9;
  if (d.kind == "index") return 11;
  if (d.kind == "trigger") return 13;
  return 14;  // policy
}

struct Patch {
  std::vector<std::pair<int, std::string>> drops, creates;
  void drop(int p, std::string s) { drops.emplace_back(p, std::move(s)); }
  void create(int p, std::string s) { creates.emplace_back(p, std::move(s)); }
  void review(int p, const std::string& what) { creates.emplace_back(p, "-- review: " + what); }
};

std::string one_line(const std::string& s) {
  std::string out = util::printable(s);
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

void change_comment(Patch& patch, const Difference& d, const AttributeChange& c) {
  patch.create(phase(d), "COMMENT ON " + sql_object(d) + " IS " +
                             (c.to.empty() ? std::string("NULL") : literal(c.to)) + ";");
}

// An enum whose FROM values all stay, in order: ADD VALUE for the new ones.
bool enum_additions(Patch& patch, const Difference& d, const AttributeChange& c) {
  auto a = util::split(c.from, ','), b = util::split(c.to, ',');
  for (auto& v : a) v = util::trim(v);
  for (auto& v : b) v = util::trim(v);
  size_t i = 0;
  for (const auto& v : b) {
    if (i < a.size() && a[i] == v) ++i;
  }
  if (i != a.size()) return false;
  for (size_t k = 0; k < b.size(); ++k) {
    if (std::find(a.begin(), a.end(), b[k]) != a.end()) continue;
    std::string pos = k == 0 ? " BEFORE " + b[1] : " AFTER " + b[k - 1];
    if (b.size() == 1) pos.clear();
    patch.create(2, "ALTER TYPE " + d.name + " ADD VALUE " + b[k] + pos + ";");
  }
  return true;
}

// Privileges as read ("grantee: PRIV PRIV*; ..."), one entry per grantee and privilege.
struct Grant {
  std::string grantee, privilege;
  bool grantable = false;
  bool operator<(const Grant& o) const {
    return std::tie(grantee, privilege, grantable) < std::tie(o.grantee, o.privilege, o.grantable);
  }
};

std::set<Grant> parse_grants(const std::string& text) {
  std::set<Grant> out;
  for (const auto& entry : util::split(text, ';')) {
    auto colon = entry.find(": ");
    if (colon == std::string::npos) continue;
    std::string grantee = util::trim(entry.substr(0, colon));
    for (auto p : util::split(entry.substr(colon + 2), ' ')) {
      if (p.empty()) continue;
      bool grantable = p.back() == '*';
      if (grantable) p.pop_back();
      out.insert({grantee, p, grantable});
    }
  }
  return out;
}

// GRANT/REVOKE from one set of privileges to another; the owner's own are left to a person.
void grant_sql(Patch& patch, const Difference& d, const std::set<Grant>& from,
               const std::set<Grant>& to) {
  int p = phase(d) + 1;  // after the object exists
  std::string on;
  std::string column;  // a column's privileges: PRIV (col) ON TABLE t
  if (d.kind == "column") {
    column = " (" + local_name(d) + ")";
    on = "TABLE " + d.parent;
  } else if (d.kind == "table" || d.kind == "view" || d.kind == "materialized view") {
    on = "TABLE " + d.name;
  } else if (d.kind == "enum" || d.kind == "composite type") {
    on = "TYPE " + d.name;
  } else {
    on = sql_object(d);
  }
  auto has = [](const std::set<Grant>& set, const Grant& g) { return set.count(g) > 0; };
  for (const auto& g : from) {
    if (has(to, g)) continue;
    if (g.grantee == "(owner)") {
      patch.review(p, "the owner's privilege " + g.privilege + " on " + on + " is gone in TO");
      continue;
    }
    Grant other = g;
    other.grantable = !g.grantable;
    if (g.grantable && has(to, other)) {
      patch.create(p, "REVOKE GRANT OPTION FOR " + g.privilege + column + " ON " + on + " FROM " +
                          g.grantee + ";");
    } else if (!has(to, other)) {
      patch.create(p, "REVOKE " + g.privilege + column + " ON " + on + " FROM " + g.grantee + ";");
    }
  }
  for (const auto& g : to) {
    if (has(from, g)) continue;
    if (g.grantee == "(owner)") {
      patch.review(p, "the owner has privilege " + g.privilege + " on " + on + " in TO only");
      continue;
    }
    Grant other = g;
    other.grantable = !g.grantable;
    if (!g.grantable && has(from, other)) continue;  // its grant option was revoked above
    patch.create(p, "GRANT " + g.privilege + column + " ON " + on + " TO " + g.grantee +
                        (g.grantable ? " WITH GRANT OPTION;" : ";"));
  }
}

// What a new object's privileges start as: the owner's (as TO has them), and PUBLIC's EXECUTE
// on functions and USAGE on types.
std::set<Grant> default_grants(const Difference& d, const std::set<Grant>& to) {
  std::set<Grant> out;
  for (const auto& g : to) {
    if (g.grantee == "(owner)") out.insert(g);
  }
  if (d.kind == "function" || d.kind == "procedure") out.insert({"PUBLIC", "EXECUTE", false});
  if (d.kind == "enum" || d.kind == "domain" || d.kind == "composite type")
    out.insert({"PUBLIC", "USAGE", false});
  return out;
}

void changed_sql(Patch& patch, const Difference& d) {
  int p = phase(d);
  bool replaced = false;  // dropped and created again: nothing else to do
  auto recreate = [&] {
    patch.drop(p, drop_sql(d));
    patch.create(p, d.to_sql);
    replaced = true;
  };
  for (const auto& c : d.attributes) {
    if (replaced) break;
    const std::string& k = c.key;
    if (k == "comment") {
      change_comment(patch, d, c);
    } else if (k == "grants") {
      grant_sql(patch, d, parse_grants(c.from), parse_grants(c.to));
    } else if (d.kind == "column") {
      std::string alter = "ALTER TABLE " + d.parent + " ALTER COLUMN " + local_name(d);
      if (k == "type" || k == "collation") {
        std::string collation = attr(d.to_attributes, "collation");
        patch.create(p, alter + " TYPE " + attr(d.to_attributes, "type") +
                            (collation.empty() ? "" : " COLLATE " + collation) + ";");
      } else if (k == "default") {
        patch.create(p, alter + (c.to.empty() ? " DROP DEFAULT;" : " SET DEFAULT " + c.to + ";"));
      } else if (k == "not_null") {
        patch.create(p, alter + (c.to == "yes" ? " SET NOT NULL;" : " DROP NOT NULL;"));
      } else {
        patch.review(p, sql_object(d) + ": " + k + " " + shown(c.from) + " -> " + shown(c.to));
      }
    } else if (d.kind == "constraint" || d.kind == "index" || d.kind == "trigger" ||
               d.kind == "policy" || d.kind == "materialized view") {
      recreate();
    } else if (d.kind == "view") {
      std::string sql = d.to_sql;
      if (sql.rfind("CREATE VIEW", 0) == 0) sql = "CREATE OR REPLACE VIEW" + sql.substr(11);
      patch.create(p, sql);
      replaced = true;
    } else if (d.kind == "function" || d.kind == "procedure") {
      if (k == "returns") patch.review(p, sql_object(d) + " returns another type: DROP it first");
      patch.create(p, d.to_sql);
      replaced = true;
    } else if (d.kind == "sequence") {
      std::string sql = d.to_sql.substr(0, d.to_sql.find(';'));
      patch.create(p, "ALTER" + sql.substr(6) + ";");
      replaced = true;
    } else if (d.kind == "enum" && k == "values" && enum_additions(patch, d, c)) {
      // done
    } else if (d.kind == "table" && k == "row_security") {
      patch.create(p, "ALTER TABLE " + d.name + (c.to == "yes" ? " ENABLE" : " DISABLE") +
                          " ROW LEVEL SECURITY;");
    } else if (d.kind == "table" && k == "force_row_security") {
      patch.create(p, "ALTER TABLE " + d.name + (c.to == "yes" ? " FORCE" : " NO FORCE") +
                          " ROW LEVEL SECURITY;");
    } else if (d.kind == "extension" && k == "version") {
      patch.create(p, "ALTER EXTENSION " + d.name + " UPDATE TO " + literal(c.to) + ";");
    } else {
      patch.review(p, sql_object(d) + ": " + k + " " + one_line(shown(c.from)) + " -> " +
                          one_line(shown(c.to)));
    }
  }
}

}  // namespace

std::string render_text(const Diff& diff) {
  std::string out =
      "schema diff: " + util::printable(diff.from) + " -> " + util::printable(diff.to) + "\n";
  std::string body = text_body(diff);
  if (!body.empty()) out += "\n" + body + "\n";
  return out + summary_line(diff) + "\n";
}

nlohmann::json to_json(const Diff& diff) {
  nlohmann::json j;
  j["from"] = diff.from;
  j["to"] = diff.to;
  j["equal"] = diff.equal();
  j["summary"] = {{"added", diff.count(Change::added)},
                  {"removed", diff.count(Change::removed)},
                  {"changed", diff.count(Change::changed)},
                  {"not_compared", diff.not_compared.size()}};
  j["differences"] = nlohmann::json::array();
  for (const auto& d : diff.differences) {
    nlohmann::json e;
    e["kind"] = d.kind;
    e["name"] = d.name;
    e["parent"] = d.parent.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.parent);
    e["parent_kind"] =
        d.parent_kind.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.parent_kind);
    e["change"] = std::string(change_name(d.change));
    e["attributes"] = nlohmann::json::array();
    for (const auto& c : d.attributes)
      e["attributes"].push_back({{"name", c.key}, {"from", c.from}, {"to", c.to}});
    e["from"] =
        d.change == Change::added ? nlohmann::json(nullptr) : nlohmann::json(d.from_attributes);
    e["to"] =
        d.change == Change::removed ? nlohmann::json(nullptr) : nlohmann::json(d.to_attributes);
    j["differences"].push_back(std::move(e));
  }
  j["not_compared"] = nlohmann::json::array();
  for (const auto& u : diff.not_compared)
    j["not_compared"].push_back(
        {{"kind", u.kind}, {"name", u.name}, {"in_from", u.in_from}, {"in_to", u.in_to}});
  return j;
}

std::string render_sql(const Diff& diff) {
  Patch patch;
  std::set<std::string> added_tables, removed_tables;
  for (const auto& d : diff.differences) {
    if (d.kind != "table") continue;
    if (d.change == Change::added) added_tables.insert(d.name);
    if (d.change == Change::removed) removed_tables.insert(d.name);
  }
  for (const auto& d : diff.differences) {
    bool in_added = d.parent_kind == "table" && added_tables.count(d.parent);
    bool in_removed = d.parent_kind == "table" && removed_tables.count(d.parent);
    if (d.change == Change::removed) {
      if (!in_removed) patch.drop(phase(d), drop_sql(d));
    } else if (d.change == Change::added) {
      if (d.kind == "table") {
        // The table with its columns, in the order they were read (attnum).
        std::string sql;
        if (!attr(d.to_attributes, "partition_of").empty()) {
          sql = "CREATE TABLE " + d.name + " PARTITION OF " + attr(d.to_attributes, "partition_of");
        } else {
          std::vector<std::pair<int, std::string>> by_position;
          for (const auto& c : diff.differences) {
            if (c.kind == "column" && c.parent == d.name && c.change == Change::added)
              by_position.emplace_back(c.position, "  " + c.to_sql);
          }
          std::sort(by_position.begin(), by_position.end());
          std::vector<std::string> columns;
          for (auto& entry : by_position) columns.push_back(std::move(entry.second));
          sql = "CREATE " +
                std::string(attr(d.to_attributes, "persistence") == "unlogged" ? "UNLOGGED " : "") +
                "TABLE " + d.name + " (\n" + util::join(columns, ",\n") + "\n)";
          if (!attr(d.to_attributes, "partitioned_by").empty())
            sql += " PARTITION BY " + attr(d.to_attributes, "partitioned_by");
          if (!attr(d.to_attributes, "inherits").empty())
            sql += " INHERITS (" + attr(d.to_attributes, "inherits") + ")";
        }
        patch.create(phase(d), sql + ";" + d.to_sql);
      } else if (d.kind == "column") {
        if (!in_added)
          patch.create(phase(d), "ALTER TABLE " + d.parent + " ADD COLUMN " + d.to_sql + ";");
        if (!attr(d.to_attributes, "comment").empty())
          patch.create(phase(d), "COMMENT ON COLUMN " + d.name + " IS " +
                                     literal(attr(d.to_attributes, "comment")) + ";");
      } else if (d.kind == "sequence" && !d.parent.empty()) {
        // Before the table (its column's default calls nextval), owned once the column exists.
        auto owned = d.to_sql.find("\nALTER SEQUENCE");
        patch.create(3, d.to_sql.substr(0, owned));
        if (owned != std::string::npos) patch.create(12, d.to_sql.substr(owned + 1));
      } else {
        patch.create(phase(d), d.to_sql);
      }
    } else {
      changed_sql(patch, d);
    }
    if (d.change == Change::added) {
      auto to = parse_grants(attr(d.to_attributes, "grants"));
      grant_sql(patch, d, default_grants(d, to), to);
    }
  }
  auto by_phase = [](const auto& l, const auto& r) { return l.first < r.first; };
  std::stable_sort(patch.creates.begin(), patch.creates.end(), by_phase);
  std::stable_sort(patch.drops.begin(), patch.drops.end(),
                   [](const auto& l, const auto& r) { return l.first > r.first; });
  std::string out =
      "-- previewdb diff --sql: a BEST-EFFORT patch from " + one_line(diff.from) + " to " +
      one_line(diff.to) +
      ".\n-- Generated from catalog differences, not by a migration tool: review every statement "
      "before\n-- running it (data is not migrated; drops lose data; '-- review:' lines need a "
      "person).\n";
  if (diff.differences.empty()) out += "-- no differences in the compared objects\n";
  for (const auto& [_, s] : patch.drops) out += s + "\n";
  for (const auto& [_, s] : patch.creates) out += s + "\n";
  for (const auto& u : diff.not_compared)
    out += "-- review: " + one_line(u.kind) + " " + one_line(u.name) + " was not compared (" +
           where(u) + ")\n";
  return out;
}

std::string render_markdown(const Diff& diff) {
  auto cell = [](const std::string& s) {
    std::string out;
    for (char c : one_line(s)) {
      if (c == '|')
        out += "\\|";
      else if (c == '`')
        out += '\'';
      else
        out += c;
    }
    if (out.size() > 120) out = out.substr(0, 117) + "...";
    return out;
  };
  std::string out = "### Schema diff\n\n`" + cell(diff.from) + "` → `" + cell(diff.to) + "`: ";
  if (diff.equal()) return out + "no differences (every object compared).\n";
  out += "**" + summary_line(diff) + "**\n";
  if (!diff.differences.empty()) {
    out += "\n| | object | what |\n|---|---|---|\n";
    size_t shown_rows = 0;
    for (const auto& d : diff.differences) {
      if (++shown_rows > 50) break;
      std::string what;
      if (d.change == Change::changed) {
        std::vector<std::string> keys;
        for (const auto& c : d.attributes) {
          bool multi =
              c.from.find('\n') != std::string::npos || c.to.find('\n') != std::string::npos;
          keys.push_back(multi || c.from.size() + c.to.size() > 80
                             ? c.key + " changed"
                             : c.key + ": `" + cell(shown(c.from)) + "` → `" + cell(shown(c.to)) +
                                   "`");
        }
        what = util::join(keys, "<br>");
      } else {
        std::string h =
            headline(d.kind, d.change == Change::added ? d.to_attributes : d.from_attributes);
        what = std::string(d.change == Change::added ? "only in TO" : "only in FROM") +
               (h.empty() ? "" : ": `" + cell(h) + "`");
      }
      out += std::string("| ") +
             (d.change == Change::added     ? "➕"
              : d.change == Change::removed ? "➖"
                                            : "✏️") +
             " | " + d.kind + " `" + cell(d.name) + "` | " + what + " |\n";
    }
    if (diff.differences.size() > 50)
      out +=
          "\n…and " + std::to_string(diff.differences.size() - 50) + " more (see the details).\n";
    std::string body = text_body(diff);
    // A fence inside the text would end the code block early.
    for (size_t at; (at = body.find("```")) != std::string::npos;) body.replace(at, 3, "'''");
    out += "\n<details><summary>Details</summary>\n\n```diff\n" + body + "```\n\n</details>\n";
  }
  if (!diff.not_compared.empty()) {
    out += "\n> **Not compared** (previewdb does not model these kinds; check them yourself):";
    for (const auto& u : diff.not_compared)
      out += "\n> - " + cell(u.kind) + " `" + cell(u.name) + "` (" + where(u) + ")";
    out += "\n";
  }
  return out;
}

}  // namespace previewdb::schema
