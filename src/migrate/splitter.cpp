#include "migrate/splitter.hpp"

#include <pg_query.h>

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "util/strings.hpp"

namespace previewdb::migrate {

namespace {

// Skips whitespace and comments (nested /* */ as PostgreSQL allows) from pos.
size_t skip_blank(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    unsigned char c = s[pos];
    if (std::isspace(c)) {
      ++pos;
    } else if (s.compare(pos, 2, "--") == 0) {
      size_t nl = s.find('\n', pos);
      pos = nl == std::string_view::npos ? s.size() : nl + 1;
    } else if (s.compare(pos, 2, "/*") == 0) {
      int depth = 0;
      while (pos < s.size()) {
        if (s.compare(pos, 2, "/*") == 0) {
          ++depth;
          pos += 2;
        } else if (s.compare(pos, 2, "*/") == 0) {
          pos += 2;
          if (--depth == 0) break;
        } else {
          ++pos;
        }
      }
    } else {
      break;
    }
  }
  return pos;
}

std::string first_word(std::string_view s) {
  size_t end = 0;
  while (end < s.size() && (std::isalpha(static_cast<unsigned char>(s[end])) || s[end] == '_')) {
    ++end;
  }
  return util::to_lower(s.substr(0, end));
}

// Only statements that might need special handling are parsed a second time (to JSON); the
// rest of a 10,000-migration folder goes through the splitter alone.
bool worth_classifying(const std::string& lower_sql, const std::string& word) {
  static const char* words[] = {"begin",   "start",     "commit",  "end",     "rollback",
                                "abort",   "savepoint", "release", "prepare", "vacuum",
                                "reindex", "cluster",   "copy"};
  for (const char* w : words) {
    if (word == w) return true;
  }
  static const char* needles[] = {"concurrently", "system", "database", "tablespace",
                                  "subscription"};
  for (const char* n : needles) {
    if (lower_sql.find(n) != std::string::npos) return true;
  }
  return false;
}

struct Classification {
  bool no_transaction = false;
  Statement::Control control = Statement::Control::none;
  bool copy_stdio = false;
};

Classification classify(const std::string& sql) {
  Classification out;
  std::string lower = util::to_lower(sql);
  std::string word = first_word(lower);
  if (!worth_classifying(lower, word)) return out;
  PgQueryParseResult r = pg_query_parse(sql.c_str());
  std::unique_ptr<PgQueryParseResult, void (*)(PgQueryParseResult*)> guard(
      &r, [](PgQueryParseResult* p) { pg_query_free_parse_result(*p); });
  if (r.error || !r.parse_tree) return out;
  auto tree = nlohmann::json::parse(r.parse_tree, nullptr, false);
  if (!tree.is_object() || !tree.contains("stmts") || tree["stmts"].empty()) return out;
  const auto& stmt = tree["stmts"][0]["stmt"];
  if (!stmt.is_object() || stmt.empty()) return out;
  const std::string type = stmt.begin().key();
  const auto& node = stmt.begin().value();
  if (type == "TransactionStmt") {
    std::string kind = node.value("kind", "");
    if (kind == "TRANS_STMT_BEGIN" || kind == "TRANS_STMT_START") {
      out.control = Statement::Control::begin;
    } else if (kind == "TRANS_STMT_COMMIT") {
      out.control = Statement::Control::commit;
    } else if (kind == "TRANS_STMT_ROLLBACK") {
      out.control = Statement::Control::rollback;
    } else if (kind == "TRANS_STMT_SAVEPOINT" || kind == "TRANS_STMT_RELEASE" ||
               kind == "TRANS_STMT_ROLLBACK_TO") {
      out.control = Statement::Control::savepoint;
    } else {
      out.control = Statement::Control::other;  // PREPARE TRANSACTION and friends
    }
    return out;
  }
  static const char* never_in_transaction[] = {"AlterSystemStmt",      "CreatedbStmt",
                                               "DropdbStmt",           "CreateTableSpaceStmt",
                                               "DropTableSpaceStmt",   "CreateSubscriptionStmt",
                                               "DropSubscriptionStmt", "AlterSubscriptionStmt"};
  for (const char* t : never_in_transaction) {
    if (type == t) out.no_transaction = true;
  }
  // No filename and no PROGRAM: the data comes from (or goes to) the client.
  if (type == "CopyStmt" && !node.contains("filename")) out.copy_stdio = true;
  if (type == "VacuumStmt" && node.value("is_vacuumcmd", false)) out.no_transaction = true;
  if (type == "ClusterStmt" && !node.contains("relation")) out.no_transaction = true;
  if (type == "ReindexStmt") {
    std::string kind = node.value("kind", "");
    if (kind == "REINDEX_OBJECT_SYSTEM" || kind == "REINDEX_OBJECT_DATABASE") {
      out.no_transaction = true;
    }
    if (node.contains("params") &&
        node["params"].dump().find("\"concurrently\"") != std::string::npos) {
      out.no_transaction = true;
    }
  }
  // CREATE INDEX / DROP INDEX / DETACH PARTITION ... CONCURRENTLY all carry "concurrent": true.
  if (node.dump().find("\"concurrent\":true") != std::string::npos) out.no_transaction = true;
  return out;
}

using Split = std::unique_ptr<PgQuerySplitResult, void (*)(PgQuerySplitResult*)>;

Split make_split(PgQuerySplitResult r) {
  return Split(new PgQuerySplitResult(r), [](PgQuerySplitResult* p) {
    pg_query_free_split_result(*p);
    delete p;
  });
}

// The first n words of a statement, upper-cased, for messages: "CREATE INDEX CONCURRENTLY".
std::string head_words(std::string_view sql, size_t n) {
  std::vector<std::string> words;
  std::string cur;
  for (char ch : sql) {
    if (std::isspace(static_cast<unsigned char>(ch)) || ch == '(' || ch == ';') {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
      if (words.size() >= n) break;
    } else {
      cur += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
  }
  if (!cur.empty() && words.size() < n) words.push_back(cur);
  return util::join(words, " ");
}

std::string describe(const std::string& sql) {
  std::string lower = util::to_lower(sql);
  if (lower.find("concurrently") != std::string::npos) {
    std::string head = head_words(sql, 6);
    size_t at = head.find("CONCURRENTLY");
    if (at != std::string::npos) return head.substr(0, at + 12);
    return head_words(sql, 2) + " ... CONCURRENTLY";
  }
  return head_words(sql, 2);
}

}  // namespace

int line_of_offset(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + offset, '\n'));
}

size_t byte_offset_of_char(std::string_view text, size_t char_position) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (++chars == char_position) return i;
  }
  return text.size();
}

SplitResult split_statements(std::string_view sql_view, int first_line) {
  SplitResult out;
  std::string sql(sql_view);  // libpg_query wants a NUL-terminated string
  Split split = make_split(pg_query_split_with_parser(sql.c_str()));
  if (split->error) {
    std::string message = split->error->message ? split->error->message : "syntax error";
    size_t at = split->error->cursorpos > 0
                    ? byte_offset_of_char(sql, static_cast<size_t>(split->error->cursorpos))
                    : 0;
    out.error = SyntaxError{first_line - 1 + line_of_offset(sql, at), message};
    split = make_split(pg_query_split_with_scanner(sql.c_str()));
    if (split->error) {
      // Not even the scanner can tokenise it (an unterminated quote): one statement, the server
      // will say the rest.
      size_t start = skip_blank(sql, 0);
      if (start < sql.size()) {
        out.statements.push_back(
            {util::trim(sql.substr(start)), first_line - 1 + line_of_offset(sql, start)});
      }
      return out;
    }
  }
  // Lines are counted incrementally: statements come in order.
  size_t counted_to = 0;
  int line = 1;
  for (int i = 0; i < split->n_stmts; ++i) {
    size_t loc = static_cast<size_t>(split->stmts[i]->stmt_location);
    size_t len = static_cast<size_t>(split->stmts[i]->stmt_len);
    if (loc > sql.size()) continue;
    if (len == 0 || loc + len > sql.size()) len = sql.size() - loc;
    std::string_view piece(sql.data() + loc, len);
    size_t start = skip_blank(piece, 0);
    if (start >= piece.size()) continue;
    size_t abs = loc + start;
    line += static_cast<int>(std::count(sql.begin() + counted_to, sql.begin() + abs, '\n'));
    counted_to = abs;
    std::string text(piece.substr(start));
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    Statement st;
    st.line = first_line - 1 + line;
    auto c = classify(text);
    st.no_transaction = c.no_transaction;
    st.control = c.control;
    st.copy_stdio = c.copy_stdio;
    st.sql = std::move(text);
    out.statements.push_back(std::move(st));
  }
  return out;
}

void choose_mode(Migration& m, const std::string& forced_reason) {
  using Control = Statement::Control;
  m.mode = Mode::transaction;
  m.mode_reason.clear();
  if (!forced_reason.empty()) {
    m.mode = Mode::autocommit;
    m.mode_reason = forced_reason;
    return;
  }
  for (const auto& st : m.statements) {
    if (st.no_transaction) {
      m.mode = Mode::autocommit;
      m.mode_reason = describe(st.sql) + " at line " + std::to_string(st.line) +
                      " cannot run inside a transaction";
      return;
    }
  }
  const Statement* first_control = nullptr;
  int begins = 0, ends = 0;
  for (const auto& st : m.statements) {
    if (st.control == Control::none || st.control == Control::savepoint) continue;
    if (!first_control) first_control = &st;
    if (st.control == Control::begin)
      ++begins;
    else
      ++ends;
  }
  if (!first_control) return;
  // The common case, a whole file wrapped in BEGIN ... COMMIT, stays atomic with its history row.
  if (begins == 1 && ends == 1 && m.statements.front().control == Control::begin &&
      m.statements.back().control == Control::commit) {
    m.mode = Mode::own_transaction;
    m.mode_reason = "the file is one BEGIN ... COMMIT block";
    return;
  }
  m.mode = Mode::autocommit;
  m.mode_reason = "the file manages its own transactions (" + head_words(first_control->sql, 1) +
                  " at line " + std::to_string(first_control->line) + ")";
}

}  // namespace previewdb::migrate
