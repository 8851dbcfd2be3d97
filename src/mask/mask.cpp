#include "mask/mask.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "crypto/hmac.hpp"
#include "crypto/sha256.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

using nlohmann::json;

namespace previewdb::mask {

namespace {

struct FunctionName {
  const char* name;
  Function function;
};

const FunctionName k_functions[] = {
    {"fixed", Function::fixed},
    {"null", Function::null},
    {"fake_email", Function::fake_email},
    {"fake_name", Function::fake_name},
    {"fake_phone", Function::fake_phone},
    {"partial", Function::partial},
    {"hash", Function::hash},
    {"shuffle", Function::shuffle},
    {"keep", Function::keep},
};

// Fake names are drawn from these (by bytes of the keyed hash), never from the data.
const char* k_first_names =
    "{Alex,Blake,Casey,Dana,Eli,Frankie,Gray,Harper,Indy,Jesse,Kai,Logan,Morgan,Noa,Oakley,Parker,"
    "Quinn,Riley,Sam,Taylor,Uri,Val,Wren,Yael}";
const char* k_last_names =
    "{Archer,Baker,Carter,Dalton,Ellis,Fisher,Garcia,Hayes,Ivers,Jensen,Keller,Lopez,Mercer,Novak,"
    "Olsen,Price,Quincy,Reyes,Sato,Turner,Umber,Vance,Walsh,Young}";
const int k_first_name_count = 24;
const int k_last_name_count = 24;

Error rule_error(const std::string& origin, size_t index, const std::string& field,
                 const std::string& problem, const std::string& hint = {}) {
  return usage_error(
      util::quoted(origin) + ", rule " + std::to_string(index) + ", \"" + field + "\": " + problem,
      hint);
}

// A name that reaches SQL (quoted) and messages: non-empty, at most 63 bytes, no NUL.
std::string name_field(const json& entry, const char* field, const std::string& origin,
                       size_t index, std::optional<std::string> fallback = std::nullopt) {
  auto it = entry.find(field);
  if (it == entry.end() || it->is_null()) {
    if (fallback) return *fallback;
    throw rule_error(origin, index, field, "missing",
                     "every rule names schema (default public), table, column and function");
  }
  if (!it->is_string()) throw rule_error(origin, index, field, "must be a string");
  std::string v = it->get<std::string>();
  if (v.empty() || v.size() > 63 || v.find('\0') != std::string::npos) {
    throw rule_error(origin, index, field,
                     util::quoted(v) + " is not a PostgreSQL name (1 to 63 bytes, no NUL)");
  }
  return v;
}

// Neon's masking rules spell the fields database_name, schema_name, table_name, column_name and
// masking_function (PostgreSQL Anonymizer's function names, "anon.fake_email()"): accepted too.
const json& field_or_alias(const json& entry, const char* field, const char* alias) {
  static const json null_value;
  if (auto it = entry.find(field); it != entry.end()) return *it;
  if (auto it = entry.find(alias); it != entry.end()) return *it;
  return null_value;
}

long long nonnegative(const json& params, const char* field, const std::string& origin,
                      size_t index) {
  auto it = params.find(field);
  if (it == params.end() || it->is_null()) return 0;
  if (!it->is_number_integer() || it->get<long long>() < 0 || it->get<long long>() > 1000) {
    throw rule_error(origin, index, std::string("params.") + field,
                     "must be a whole number from 0 to 1000");
  }
  return it->get<long long>();
}

Rule parse_rule(const json& entry, const std::string& origin, size_t index) {
  if (!entry.is_object()) {
    throw usage_error(
        util::quoted(origin) + ", rule " + std::to_string(index) + ": must be an object",
        R"(for example {"table": "users", "column": "email", "function": "hash"})");
  }
  static const std::set<std::string> known = {
      "database", "schema",        "table",       "column",     "function",    "params",
      "comment",  "database_name", "schema_name", "table_name", "column_name", "masking_function"};
  for (const auto& [k, _] : entry.items()) {
    if (!known.count(k)) {
      throw rule_error(origin, index, k, "unknown field",
                       "the fields are database, schema, table, column, function, params");
    }
  }
  json e = json::object();
  e["database"] = field_or_alias(entry, "database", "database_name");
  e["schema"] = field_or_alias(entry, "schema", "schema_name");
  e["table"] = field_or_alias(entry, "table", "table_name");
  e["column"] = field_or_alias(entry, "column", "column_name");
  e["function"] = field_or_alias(entry, "function", "masking_function");
  Rule r;
  r.index = index;
  if (!e["database"].is_null()) r.database = name_field(e, "database", origin, index);
  r.schema = name_field(e, "schema", origin, index, std::string("public"));
  r.table = name_field(e, "table", origin, index);
  r.column = name_field(e, "column", origin, index);
  if (!e["function"].is_string()) {
    throw rule_error(origin, index, "function",
                     e["function"].is_null() ? "missing" : "must be a string",
                     "one of fixed, null, fake_email, fake_name, fake_phone, partial, hash, "
                     "shuffle, keep");
  }
  std::string fname = e["function"].get<std::string>();
  if (fname.rfind("anon.", 0) == 0) fname = fname.substr(5);
  if (fname.size() > 2 && fname.compare(fname.size() - 2, 2, "()") == 0) {
    fname = fname.substr(0, fname.size() - 2);
  }
  auto f = std::find_if(std::begin(k_functions), std::end(k_functions),
                        [&](const FunctionName& n) { return fname == n.name; });
  if (f == std::end(k_functions)) {
    throw rule_error(origin, index, "function", "unknown function " + util::quoted(fname),
                     "one of fixed, null, fake_email, fake_name, fake_phone, partial, hash, "
                     "shuffle, keep");
  }
  r.function = f->function;
  json params = json::object();
  if (auto it = entry.find("params"); it != entry.end() && !it->is_null()) {
    if (!it->is_object()) throw rule_error(origin, index, "params", "must be an object");
    params = *it;
  }
  static const std::map<Function, std::set<std::string>> allowed = {
      {Function::fixed, {"value"}}, {Function::partial, {"prefix", "suffix", "padding"}}};
  for (const auto& [k, _] : params.items()) {
    auto a = allowed.find(r.function);
    if (a == allowed.end() || !a->second.count(k)) {
      throw rule_error(origin, index, "params." + k, "not a parameter of " + std::string(f->name),
                       "fixed takes value; partial takes prefix, suffix, padding; the others none");
    }
  }
  if (r.function == Function::fixed) {
    auto it = params.find("value");
    if (it == params.end()) {
      throw rule_error(origin, index, "params.value", "missing",
                       R"(fixed needs the value to write: "params": {"value": "redacted"})");
    }
    if (it->is_string()) {
      r.value = it->get<std::string>();
    } else if (it->is_number() || it->is_boolean()) {
      r.value = it->dump();
    } else if (!it->is_null()) {
      throw rule_error(origin, index, "params.value", "must be a string, number or boolean");
    }
    if (r.value && r.value->find('\0') != std::string::npos) {
      throw rule_error(origin, index, "params.value", "cannot contain a NUL byte");
    }
  }
  if (r.function == Function::partial) {
    r.prefix = nonnegative(params, "prefix", origin, index);
    r.suffix = nonnegative(params, "suffix", origin, index);
    if (auto it = params.find("padding"); it != params.end() && !it->is_null()) {
      if (!it->is_string() || it->get<std::string>().empty() ||
          it->get<std::string>().find('\0') != std::string::npos) {
        throw rule_error(origin, index, "params.padding", "must be a non-empty string");
      }
      r.padding = it->get<std::string>();
    }
  }
  return r;
}

// Tool history tables and previewdb's own: never personal data.
bool tool_table(const std::string& schema, const std::string& table) {
  static const std::set<std::string> tables = {"_prisma_migrations",    "schema_migrations",
                                               "flyway_schema_history", "__drizzle_migrations",
                                               "goose_db_version",      "knex_migrations"};
  return schema == "_previewdb" || schema == "drizzle" || tables.count(table);
}

std::string qualified(const std::string& schema, const std::string& table) {
  return quote_ident(schema) + "." + quote_ident(table);
}

long long affected(const db::Result& r) {
  auto n = util::parse_uint(r.command_tuples());
  return n ? static_cast<long long>(*n) : 0;
}

}  // namespace

std::string to_string(Function f) {
  for (const auto& n : k_functions) {
    if (n.function == f) return n.name;
  }
  return "?";
}

bool deterministic(Function f) {
  return f != Function::shuffle;
}

bool keeps_unique(Function f) {
  return f == Function::hash || f == Function::fake_email || f == Function::keep;
}

bool needs_salt(Function f) {
  return f == Function::hash || f == Function::fake_email || f == Function::fake_name ||
         f == Function::fake_phone;
}

std::string Rule::label() const {
  return schema + "." + table + "." + column;
}

bool Rule::same_masking(const Rule& o) const {
  return function == o.function && value == o.value && prefix == o.prefix && suffix == o.suffix &&
         padding == o.padding;
}

std::vector<Rule> parse_rules(std::string_view text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw usage_error("cannot parse the masking rules " + util::quoted(origin) + ": " + e.what(),
                      "fix the JSON (docs/MASKING.md shows the format)");
  }
  if (j.is_object() && j.contains("rules")) j = j["rules"];
  if (!j.is_array()) {
    throw usage_error("the masking rules " + util::quoted(origin) +
                          " must be a JSON array of rules (or {\"rules\": [...]})",
                      R"(for example [{"table": "users", "column": "email", "function": "hash"}])");
  }
  std::vector<Rule> rules;
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < j.size(); ++i) {
    Rule r = parse_rule(j[i], origin, i);
    std::string key = r.database.value_or("*") + "/" + r.label();
    if (auto it = seen.find(key); it != seen.end()) {
      throw rule_error(origin, i, "column",
                       r.label() + " already has a rule (rule " + std::to_string(it->second) + ")",
                       "keep one rule per column");
    }
    seen[key] = i;
    rules.push_back(std::move(r));
  }
  return rules;
}

TableRef parse_table(std::string_view text, const std::string& origin) {
  std::string t(text);
  TableRef ref;
  auto dot = t.find('.');
  if (dot != std::string::npos) {
    ref.schema = t.substr(0, dot);
    ref.table = t.substr(dot + 1);
  } else {
    ref.table = t;
  }
  auto bad = [](const std::string& s) {
    return s.empty() || s.size() > 63 || s.find('\0') != std::string::npos ||
           s.find('.') != std::string::npos;
  };
  if (bad(ref.schema) || bad(ref.table)) {
    throw usage_error("invalid " + origin + " " + util::quoted(t),
                      "name a table as TABLE (schema public) or SCHEMA.TABLE");
  }
  return ref;
}

std::string spec_hash(const std::vector<Rule>& rules, const std::vector<TableRef>& exclude) {
  json j = {{"rules", json::array()}, {"exclude_data", json::array()}};
  for (const auto& r : rules) {
    j["rules"].push_back({{"database", r.database ? json(*r.database) : json(nullptr)},
                          {"schema", r.schema},
                          {"table", r.table},
                          {"column", r.column},
                          {"function", to_string(r.function)},
                          {"value", r.value ? json(*r.value) : json(nullptr)},
                          {"prefix", r.prefix},
                          {"suffix", r.suffix},
                          {"padding", r.padding}});
  }
  for (const auto& t : exclude) j["exclude_data"].push_back(t.label());
  return crypto::sha256_hex(j.dump());
}

void check_salt(const Spec& spec) {
  if (!spec.salt.empty()) return;
  for (const auto& r : spec.rules) {
    if (needs_salt(r.function)) {
      throw usage_error(
          "PREVIEWDB_MASK_SALT is not set, and rule " + std::to_string(r.index) + " (" +
              util::printable(r.label()) + ": " + to_string(r.function) + ") of " +
              util::quoted(spec.origin) + " needs it",
          "set PREVIEWDB_MASK_SALT to a long random secret ('openssl rand -hex 32') and keep it: "
          "the same salt masks the same value the same way in every snapshot");
    }
  }
}

bool looks_personal(std::string_view column) {
  static const std::set<std::string> words = {
      "email",     "mail",      "phone",    "mobile",    "telephone", "tel",      "fax",
      "name",      "firstname", "lastname", "surname",   "fullname",  "username", "address",
      "street",    "city",      "zip",      "zipcode",   "postcode",  "postal",   "ip",
      "ipaddress", "ssn",       "birth",    "birthday",  "birthdate", "dob",      "passport",
      "iban",      "gender",    "latitude", "longitude", "lat",       "lng"};
  std::string lower = util::to_lower(std::string(column));
  if (words.count(lower)) return true;
  for (auto& token : util::split(lower, '_')) {
    if (words.count(token)) return true;
  }
  return false;
}

std::string quote_ident(std::string_view ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::pair<std::string, std::string> hmac_pads(std::string_view salt) {
  std::string key(salt);
  if (key.size() > 64) key = crypto::sha256_raw(key);
  key.resize(64, '\0');
  std::string inner(64, '\0'), outer(64, '\0');
  for (size_t i = 0; i < 64; ++i) {
    inner[i] = static_cast<char>(key[i] ^ 0x36);
    outer[i] = static_cast<char>(key[i] ^ 0x5c);
  }
  return {crypto::to_hex(inner), crypto::to_hex(outer)};
}

void check_rule(const Rule& r, const ColumnInfo& c, const std::string& origin) {
  auto refuse = [&](const std::string& why, const std::string& hint) {
    return Error(ExitCode::refused,
                 util::quoted(origin) + ", rule " + std::to_string(r.index) + " (" +
                     util::printable(r.label()) + ": " + to_string(r.function) + "): " + why,
                 {hint});
  };
  if (r.function == Function::keep) return;
  if (c.generated) {
    throw refuse("the column is generated; it cannot be written",
                 "mask the columns it is computed from");
  }
  bool text = c.category == 'S';
  switch (r.function) {
    case Function::fake_email:
    case Function::fake_name:
    case Function::fake_phone:
    case Function::partial:
      if (!text) {
        throw refuse("the column's type " + c.type + " is not text",
                     "use hash, fixed, null or shuffle on it");
      }
      break;
    case Function::hash:
      if (!text && c.type_name != "uuid") {
        throw refuse("hash masks text and uuid columns, not " + c.type,
                     "use fixed, null or shuffle on it");
      }
      break;
    default:
      break;
  }
  if (r.function == Function::fake_email && c.max_length >= 0 && c.max_length < 25) {
    throw refuse("the column (" + c.type + ") is too short for a fake email (25 characters)",
                 "use hash or partial");
  }
  if ((r.function == Function::null || (r.function == Function::fixed && !r.value)) && c.not_null) {
    throw refuse("the column is NOT NULL", "use a fixed value or hash");
  }
  if (c.unique && !keeps_unique(r.function) && !(r.function == Function::null && !c.not_null)) {
    throw refuse("the column is part of a unique index or primary key, and " +
                     to_string(r.function) + " can give two rows the same value",
                 "use hash or fake_email, which keep distinct values distinct");
  }
}

std::optional<Statement> build_update(const Rule& r, const ColumnInfo& c, const std::string& salt) {
  if (r.function == Function::keep) return std::nullopt;
  std::string table = qualified(r.schema, r.table);
  std::string col = quote_ident(r.column);
  std::string update = "UPDATE " + table + " SET " + col + " = ";
  std::string where = " WHERE " + col + " IS NOT NULL";
  // The keyed hash of the value's text: HMAC-SHA-256 with the salt, from core functions only.
  auto mac = [&](Statement& s) {
    auto [inner, outer] = hmac_pads(salt);
    s.params.push_back(inner);
    s.params.push_back(outer);
    return "sha256(decode($2, 'hex') || sha256(decode($1, 'hex') || convert_to(" + col +
           "::text, 'UTF8')))";
  };
  auto fit = [&](const std::string& expr) {
    return c.max_length >= 0 ? "left(" + expr + ", " + std::to_string(c.max_length) + ")" : expr;
  };
  Statement s;
  switch (r.function) {
    case Function::null:
      s.sql = update + "NULL" + where;
      return s;
    case Function::fixed:
      s.params.push_back(r.value);
      s.sql = update + "$1" + where;
      return s;
    case Function::hash: {
      std::string h = mac(s);
      if (c.type_name == "uuid") {
        s.sql = update + "encode(substring(" + h + " FROM 1 FOR 16), 'hex')::uuid" + where;
      } else {
        s.sql = update + fit("encode(" + h + ", 'hex')") + where;
      }
      return s;
    }
    case Function::fake_email: {
      std::string h = mac(s);
      long long hex = c.max_length >= 0 ? std::min<long long>(16, c.max_length - 17) : 16;
      s.sql = update + "'user_' || left(encode(" + h + ", 'hex'), " + std::to_string(hex) +
              ") || '@example.com'" + where;
      return s;
    }
    case Function::fake_name: {
      std::string h = mac(s);
      s.params.push_back(std::string(k_first_names));
      s.params.push_back(std::string(k_last_names));
      s.sql = "WITH m AS (SELECT ctid AS id, " + h + " AS h FROM " + table + where + ") " + update +
              fit("($3::text[])[1 + get_byte(m.h, 0) % " + std::to_string(k_first_name_count) +
                  "] || ' ' || ($4::text[])[1 + get_byte(m.h, 1) % " +
                  std::to_string(k_last_name_count) + "]") +
              " FROM m WHERE " + table + ".ctid = m.id";
      return s;
    }
    case Function::fake_phone: {
      std::string h = mac(s);
      s.sql = "WITH m AS (SELECT ctid AS id, " + h + " AS h FROM " + table + where + ") " + update +
              fit("'+1-555-' || lpad(((get_byte(m.h, 0) * 65536 + get_byte(m.h, 1) * 256 + "
                  "get_byte(m.h, 2)) % 10000000)::text, 7, '0')") +
              " FROM m WHERE " + table + ".ctid = m.id";
      return s;
    }
    case Function::partial: {
      s.params = {std::to_string(r.prefix), std::to_string(r.suffix), r.padding};
      std::string v = col + "::text";
      std::string len = "char_length(" + v + ")";
      // Too short to keep both ends: all of it masked.
      s.sql = update +
              fit("CASE WHEN " + len + " <= $1::int + $2::int THEN repeat($3::text, " + len +
                  ") ELSE left(" + v + ", $1::int) || repeat($3::text, " + len +
                  " - $1::int - $2::int) || right(" + v + ", $2::int) END") +
              where;
      return s;
    }
    case Function::shuffle:
      // Two independent random orders of the non-null rows, joined by position.
      s.sql = "WITH v AS (SELECT " + col +
              " AS val, row_number() OVER (ORDER BY random()) AS n FROM " + table + where +
              "), r AS (SELECT ctid AS id, row_number() OVER (ORDER BY random()) "
              "AS n FROM " +
              table + where + ") " + update + "v.val FROM r JOIN v ON v.n = r.n " + "WHERE " +
              table + ".ctid = r.id";
      return s;
    case Function::keep:
      break;
  }
  return std::nullopt;
}

namespace {

const char* k_column_sql = R"SQL(
SELECT c.oid, a.attnum, format_type(a.atttypid, a.atttypmod), bt.typcategory, bt.typname,
       CASE WHEN bt.typname IN ('varchar', 'bpchar') AND coalesce(nullif(t.typtypmod, -1), a.atttypmod) > 4
            THEN coalesce(nullif(t.typtypmod, -1), a.atttypmod) - 4 ELSE -1 END,
       a.attnotnull OR coalesce(t.typnotnull, false), a.attgenerated <> '',
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique
                 AND a.attnum = ANY (i.indkey::int2[]))
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0
                        AND NOT a.attisdropped
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p'))SQL";

// Each column pair of each foreign key (partitions' copies left out): child, then parent.
const char* k_fk_sql = R"SQL(
SELECT con.oid, con.conname, cn.nspname, cr.relname, ca.attname, fn.nspname, fr.relname, fa.attname
FROM pg_constraint con
JOIN pg_class cr ON cr.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cr.relnamespace
JOIN pg_class fr ON fr.oid = con.confrelid JOIN pg_namespace fn ON fn.oid = fr.relnamespace
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(ck, fk, ord)
JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.ck
JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = k.fk
WHERE con.contype = 'f' AND con.conparentid = 0
ORDER BY con.oid, k.ord)SQL";

struct FkPair {
  std::string child_schema, child_table, child_column;
  std::string parent_schema, parent_table, parent_column;
};
struct ForeignKey {
  std::string name;
  std::vector<FkPair> pairs;
};

std::vector<ForeignKey> foreign_keys(db::Connection& conn) {
  auto r = conn.exec(k_fk_sql);
  std::vector<ForeignKey> out;
  std::string last;
  for (int i = 0; i < r.rows(); ++i) {
    if (out.empty() || r.get(i, 0) != last) {
      out.push_back({r.get(i, 1), {}});
      last = r.get(i, 0);
    }
    out.back().pairs.push_back(
        {r.get(i, 2), r.get(i, 3), r.get(i, 4), r.get(i, 5), r.get(i, 6), r.get(i, 7)});
  }
  return out;
}

std::string fk_label(const ForeignKey& fk) {
  const auto& p = fk.pairs.front();
  return util::quoted(fk.name) + " (" + p.child_schema + "." + p.child_table + " -> " +
         p.parent_schema + "." + p.parent_table + ")";
}

}  // namespace

Report apply(db::Connection& conn, const Spec& spec, const std::string& database) {
  std::vector<Rule> rules;
  for (const auto& r : spec.rules) {
    if (!r.database || *r.database == database) rules.push_back(r);
  }
  std::map<std::string, const Rule*> by_column;  // schema.table.column
  for (const auto& r : rules) by_column[r.label()] = &r;
  std::set<std::string> excluded;
  for (const auto& t : spec.exclude_data) excluded.insert(t.label());

  // 1. Every rule's table and column exist, and its function suits the column.
  std::vector<ColumnInfo> columns;
  for (const auto& r : rules) {
    auto c = conn.exec(k_column_sql, {r.schema, r.table, r.column});
    std::string where = util::quoted(spec.origin) + ", rule " + std::to_string(r.index) + ": ";
    if (c.rows() == 0) {
      throw usage_error(where + "no table " + util::quoted(r.schema + "." + r.table) + " in " +
                            util::quoted(database),
                        "check the schema and table names (the rule's \"database\" limits it to "
                        "one database)");
    }
    if (c.is_null(0, 1)) {
      throw usage_error(where + "table " + util::quoted(r.schema + "." + r.table) +
                            " has no column " + util::quoted(r.column),
                        "check the column name, or remove the rule");
    }
    ColumnInfo info;
    info.type = c.get(0, 2);
    info.category = c.get(0, 3).empty() ? 'X' : c.get(0, 3)[0];
    info.type_name = c.get(0, 4);
    info.max_length = c.get_int(0, 5);
    info.not_null = c.get_bool(0, 6);
    info.generated = c.get_bool(0, 7);
    info.unique = c.get_bool(0, 8);
    check_rule(r, info, spec.origin);
    columns.push_back(info);
  }
  for (const auto& t : spec.exclude_data) {
    if (!conn.exec("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                   {t.schema, t.table})
             .rows()) {
      throw usage_error(
          "--exclude-data: no table " + util::quoted(t.label()) + " in " + util::quoted(database),
          "name it as TABLE (schema public) or SCHEMA.TABLE");
    }
  }

  // 2. --require-rules: every column that looks personal has a rule (or is in an emptied table).
  if (spec.require_rules) {
    auto all = conn.exec(
        "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 "
        "AND NOT a.attisdropped AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2, a.attnum");
    std::vector<std::string> missing;
    for (int i = 0; i < all.rows(); ++i) {
      std::string schema = all.get(i, 0), table = all.get(i, 1), column = all.get(i, 2);
      if (tool_table(schema, table) || excluded.count(schema + "." + table)) continue;
      if (looks_personal(column) && !by_column.count(schema + "." + table + "." + column)) {
        missing.push_back(util::printable(schema + "." + table + "." + column));
      }
    }
    if (!missing.empty()) {
      throw Error(ExitCode::refused,
                  "--require-rules: " + std::to_string(missing.size()) +
                      " column(s) that look like personal data have no masking rule: " +
                      util::join(missing, ", "),
                  {"add a rule for each (\"function\": \"keep\" marks one reviewed and not "
                   "personal), or --exclude-data its table"});
    }
  }

  // 3. Foreign keys: both ends masked alike (or the referencing end nulled); an emptied table
  // is referenced by no row that stays.
  auto fks = foreign_keys(conn);
  std::vector<const ForeignKey*> to_check;
  for (const auto& fk : fks) {
    const auto& first = fk.pairs.front();
    std::string child = first.child_schema + "." + first.child_table;
    std::string parent = first.parent_schema + "." + first.parent_table;
    bool touched = excluded.count(parent) > 0;
    for (const auto& p : fk.pairs) {
      auto rc = by_column.find(p.child_schema + "." + p.child_table + "." + p.child_column);
      auto rp = by_column.find(p.parent_schema + "." + p.parent_table + "." + p.parent_column);
      const Rule* c =
          rc == by_column.end() || rc->second->function == Function::keep ? nullptr : rc->second;
      const Rule* r =
          rp == by_column.end() || rp->second->function == Function::keep ? nullptr : rp->second;
      if (!c && !r) continue;
      touched = true;
      if (excluded.count(child)) continue;
      if (c && c->function == Function::null) continue;  // a NULL reference is always valid
      if (r && !c) {
        throw Error(
            ExitCode::refused,
            util::quoted(spec.origin) + ", rule " + std::to_string(r->index) + " (" +
                util::printable(r->label()) + "): it is referenced by " +
                util::printable(p.child_schema + "." + p.child_table + "." + p.child_column) +
                " (foreign key " + fk_label(fk) + "), which has no rule",
            {"mask the referencing column with the same rule, so the references still "
             "match"});
      }
      if (c && (!r || !c->same_masking(*r) || !deterministic(c->function))) {
        throw Error(
            ExitCode::refused,
            util::quoted(spec.origin) + ", rule " + std::to_string(c->index) + " (" +
                util::printable(c->label()) + "): it references " +
                util::printable(p.parent_schema + "." + p.parent_table + "." + p.parent_column) +
                " (foreign key " + fk_label(fk) + "), which " +
                (r ? "is masked differently" : "is not masked"),
            {"mask both columns with the same deterministic rule (hash or fake_email), "
             "or the referencing column with null"});
      }
    }
    if (excluded.count(parent) && !excluded.count(child)) {
      std::string cond;
      for (const auto& p : fk.pairs) {
        cond += (cond.empty() ? "" : " AND ") + quote_ident(p.child_column) + " IS NOT NULL";
      }
      auto rows =
          conn.exec("SELECT EXISTS (SELECT 1 FROM " +
                    qualified(first.child_schema, first.child_table) + " WHERE " + cond + ")");
      if (rows.get_bool(0, 0)) {
        throw Error(ExitCode::refused,
                    "--exclude-data " + util::printable(parent) + ": rows of " +
                        util::printable(child) + " reference it (foreign key " + fk_label(fk) +
                        "), and they would be left dangling",
                    {"exclude " + util::printable(child) + " too, or keep the data of " +
                     util::printable(parent)});
      }
    }
    if (touched) to_check.push_back(&fk);
  }

  // 4. One transaction. session_replication_role = replica: neither the foreign keys' triggers
  // (a cascade would mask the referencing rows a second time; NO ACTION would fail between two
  // UPDATEs) nor the application's triggers (an audit trigger would copy originals) fire; the
  // checks above and below keep every foreign key satisfied, unique indexes stay enforced.
  Report report;
  std::set<std::string> touched_tables;
  conn.exec("BEGIN");
  try {
    if (!conn.try_exec("SET LOCAL session_replication_role = replica", {}, "42501")) {
      throw Error(ExitCode::refused,
                  "masking needs to set session_replication_role, which only a superuser may",
                  {"take masked snapshots as a superuser role (the copy is masked in one "
                   "transaction with triggers and foreign-key checks off)"});
    }
    for (const auto& t : spec.exclude_data) {
      auto r = conn.exec("DELETE FROM " + qualified(t.schema, t.table));
      report.excluded.push_back({t, affected(r)});
      touched_tables.insert(qualified(t.schema, t.table));
    }
    for (size_t i = 0; i < rules.size(); ++i) {
      auto st = build_update(rules[i], columns[i], spec.salt);
      long long rows = 0;
      if (st) {
        rows = affected(conn.exec(st->sql, st->params));
        touched_tables.insert(qualified(rules[i].schema, rules[i].table));
      }
      report.rules.push_back({rules[i], rows});
    }
    for (const ForeignKey* fk : to_check) {
      const auto& first = fk->pairs.front();
      std::string nonnull, match;
      for (const auto& p : fk->pairs) {
        nonnull += " AND c." + quote_ident(p.child_column) + " IS NOT NULL";
        match += std::string(match.empty() ? "" : " AND ") + "p." + quote_ident(p.parent_column) +
                 " = c." + quote_ident(p.child_column);
      }
      auto r =
          conn.exec("SELECT count(*) FROM " + qualified(first.child_schema, first.child_table) +
                    " c WHERE true" + nonnull + " AND NOT EXISTS (SELECT 1 FROM " +
                    qualified(first.parent_schema, first.parent_table) + " p WHERE " + match + ")");
      if (r.get_int(0, 0) > 0) {
        throw Error(ExitCode::refused,
                    "masking would leave " + r.get(0, 0) +
                        " row(s) without their referenced row (foreign key " + fk_label(*fk) +
                        "); nothing was masked",
                    {"mask both ends with the same rule; check that both columns have the same "
                     "type and length"});
      }
    }
    conn.exec("COMMIT");
  } catch (...) {
    try {
      conn.exec("ROLLBACK");
    } catch (const std::exception&) {
      // The session is gone: the server rolled back.
    }
    throw;
  }

  // 5. Rewrite what was changed (dead tuples, old index entries and TOAST chunks go with the old
  // files) and replace its statistics; pg_statistic's own dead rows go with its rewrite.
  for (const auto& t : touched_tables) conn.exec("VACUUM (FULL, ANALYZE) " + t);
  if (!touched_tables.empty()) conn.exec("VACUUM FULL pg_catalog.pg_statistic");
  return report;
}

}  // namespace previewdb::mask
