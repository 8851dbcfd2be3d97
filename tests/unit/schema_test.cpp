// The schema comparison and its renderers on plain structs (no server): matching by kind and
// name, attribute changes, ordering by object, what was not compared, the tool tables left out,
// and the text, JSON, SQL and Markdown shapes.
#include <gtest/gtest.h>

#include "schema/schema.hpp"

using namespace previewdb;
using schema::Catalog;
using schema::Change;
using schema::Object;

namespace {

Object table(const std::string& name, std::map<std::string, std::string> attrs = {}) {
  Object o{.kind = "table", .name = name};
  o.attributes = {{"row_security", "no"}, {"grants", ""}, {"comment", ""}};
  for (auto& [k, v] : attrs) o.attributes[k] = v;
  return o;
}

Object column(const std::string& table, const std::string& col, const std::string& type,
              std::map<std::string, std::string> attrs = {}) {
  Object o{.kind = "column", .name = table + "." + col, .parent = table, .parent_kind = "table"};
  o.attributes = {{"type", type}, {"not_null", "no"}, {"default", ""}};
  for (auto& [k, v] : attrs) o.attributes[k] = v;
  o.create_sql = col + " " + type;
  return o;
}

Object index(const std::string& name, const std::string& table, const std::string& columns) {
  Object o{.kind = "index", .name = name, .parent = table, .parent_kind = "table"};
  o.attributes = {{"method", "btree"}, {"unique", "no"}, {"columns", columns}, {"predicate", ""}};
  o.create_sql = "CREATE INDEX " + name + " ON " + table + " USING btree " + columns + ";";
  return o;
}

Object enumeration(const std::string& name, const std::string& values) {
  Object o{.kind = "enum", .name = name};
  o.attributes = {{"values", values}};
  o.create_sql = "CREATE TYPE " + name + " AS ENUM (" + values + ");";
  return o;
}

Catalog catalog(std::vector<Object> objects, std::string source = "database \"a\"") {
  Catalog c;
  c.source = std::move(source);
  c.objects = std::move(objects);
  return c;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST(SchemaCompare, IdenticalCatalogsAreEqualWhateverTheOrder) {
  auto a = catalog({table("public.t"), column("public.t", "a", "integer")});
  auto b = catalog({column("public.t", "a", "integer"), table("public.t")});
  auto d = schema::compare(a, b);
  EXPECT_TRUE(d.equal());
  EXPECT_TRUE(d.differences.empty());
  EXPECT_EQ(schema::render_text(d).find("no differences: every object compared"),
            schema::render_text(d).rfind("no differences"));
}

TEST(SchemaCompare, AddedRemovedAndChangedInBothDirections) {
  auto a = catalog({table("public.t"), column("public.t", "a", "integer"),
                    index("public.t_a_idx", "public.t", "(a)")});
  auto b = catalog({table("public.t"), column("public.t", "a", "bigint"),
                    column("public.t", "b", "text", {{"not_null", "yes"}})});
  auto d = schema::compare(a, b);
  ASSERT_EQ(d.differences.size(), 3u);
  EXPECT_EQ(d.count(Change::added), 1u);
  EXPECT_EQ(d.count(Change::removed), 1u);
  EXPECT_EQ(d.count(Change::changed), 1u);
  // Ordered by object: the table's columns, then its index.
  EXPECT_EQ(d.differences[0].name, "public.t.a");
  EXPECT_EQ(d.differences[0].change, Change::changed);
  ASSERT_EQ(d.differences[0].attributes.size(), 1u);
  EXPECT_EQ(d.differences[0].attributes[0].key, "type");
  EXPECT_EQ(d.differences[0].attributes[0].from, "integer");
  EXPECT_EQ(d.differences[0].attributes[0].to, "bigint");
  EXPECT_EQ(d.differences[1].name, "public.t.b");
  EXPECT_EQ(d.differences[1].change, Change::added);
  EXPECT_EQ(d.differences[2].kind, "index");
  EXPECT_EQ(d.differences[2].change, Change::removed);

  // The other way round, the signs swap.
  auto back = schema::compare(b, a);
  EXPECT_EQ(back.count(Change::added), 1u);
  EXPECT_EQ(back.count(Change::removed), 1u);
  EXPECT_EQ(back.differences[1].change, Change::removed);
  EXPECT_EQ(back.differences[2].change, Change::added);
}

TEST(SchemaCompare, ObjectsOfDifferentKindsWithOneNameAreDifferentObjects) {
  auto a = catalog({table("public.x")});
  Object view{.kind = "view", .name = "public.x"};
  auto b = catalog({view});
  auto d = schema::compare(a, b);
  ASSERT_EQ(d.differences.size(), 2u);
  EXPECT_EQ(d.differences[0].kind, "table");
  EXPECT_EQ(d.differences[0].change, Change::removed);
  EXPECT_EQ(d.differences[1].kind, "view");
  EXPECT_EQ(d.differences[1].change, Change::added);
}

TEST(SchemaCompare, UnmodelledObjectsAreNeverEqual) {
  auto a = catalog({table("public.t")});
  auto b = catalog({table("public.t")});
  a.unmodelled = {{"statistics object", "public.s1"}, {"rule", "r on public.t"}};
  b.unmodelled = {{"statistics object", "public.s1"}, {"publication", "p"}};
  auto d = schema::compare(a, b);
  EXPECT_TRUE(d.differences.empty());
  EXPECT_FALSE(d.equal());
  ASSERT_EQ(d.not_compared.size(), 3u);
  EXPECT_EQ(d.not_compared[0].kind, "publication");
  EXPECT_FALSE(d.not_compared[0].in_from);
  EXPECT_TRUE(d.not_compared[0].in_to);
  EXPECT_EQ(d.not_compared[1].kind, "rule");
  EXPECT_TRUE(d.not_compared[1].in_from);
  EXPECT_FALSE(d.not_compared[1].in_to);
  EXPECT_TRUE(d.not_compared[2].in_from && d.not_compared[2].in_to);
  auto text = schema::render_text(d);
  EXPECT_TRUE(contains(text, "? statistics object public.s1 (in both)")) << text;
  EXPECT_TRUE(contains(text, "no differences in what was compared; 3 objects not compared"))
      << text;
  EXPECT_FALSE(schema::to_json(d)["equal"].get<bool>());
}

TEST(SchemaCompare, ToolHistoryTablesAndPreviewdbsSchemaAreRecognised) {
  EXPECT_TRUE(schema::is_tool_object(table("public._prisma_migrations")));
  EXPECT_TRUE(schema::is_tool_object(table("public.schema_migrations")));
  EXPECT_TRUE(schema::is_tool_object(table("app.flyway_schema_history")));
  EXPECT_TRUE(schema::is_tool_object(table("drizzle.__drizzle_migrations")));
  EXPECT_TRUE(schema::is_tool_object(column("public._prisma_migrations", "id", "text")));
  EXPECT_TRUE(schema::is_tool_object(index("public.x_idx", "public.schema_migrations", "(v)")));
  EXPECT_TRUE(schema::is_tool_object(Object{.kind = "schema", .name = "_previewdb"}));
  EXPECT_TRUE(schema::is_tool_object(table("_previewdb.schema_migrations")));
  EXPECT_FALSE(schema::is_tool_object(table("public.migrations")));
  EXPECT_FALSE(schema::is_tool_object(table("public.my_schema_migrations_log")));
  EXPECT_FALSE(schema::is_tool_object(Object{.kind = "schema", .name = "public"}));
}

TEST(SchemaRender, TextIsGroupedByObject) {
  auto a = catalog({table("public.t"), column("public.t", "a", "integer"),
                    enumeration("public.mood", "'sad', 'ok'")},
                   "folder \"migrations\"");
  auto b = catalog({table("public.t", {{"grants", "(owner): SELECT; reader: SELECT"}}),
                    column("public.t", "a", "integer", {{"default", "0"}}),
                    enumeration("public.mood", "'sad', 'ok', 'happy'"), table("public.u"),
                    column("public.u", "id", "bigint", {{"not_null", "yes"}})},
                   "database \"dev\"");
  a.objects[0].attributes["grants"] = "(owner): SELECT";
  auto text = schema::render_text(schema::compare(a, b));
  EXPECT_TRUE(contains(text, "schema diff: folder \"migrations\" -> database \"dev\"\n")) << text;
  EXPECT_TRUE(contains(text,
                       "~ enum public.mood\n"
                       "    values: 'sad', 'ok' -> 'sad', 'ok', 'happy'\n"))
      << text;
  EXPECT_TRUE(contains(text,
                       "~ table public.t\n"
                       "    grants:\n"
                       "      + reader: SELECT\n"
                       "  ~ column a\n"
                       "      default: (none) -> 0\n"))
      << text;
  EXPECT_TRUE(contains(text,
                       "+ table public.u\n"
                       "  + column id: bigint, not null\n"))
      << text;
  EXPECT_TRUE(contains(text, "5 differences (2 only in TO, 0 only in FROM, 3 changed)")) << text;
}

TEST(SchemaRender, MultiLineValuesShowTheLinesThatDiffer) {
  Object f{.kind = "function", .name = "public.f(integer)"};
  f.attributes = {{"body", "BEGIN\n  RETURN 1;\nEND"}};
  Object g = f;
  g.attributes["body"] = "BEGIN\n  RETURN 2;\nEND";
  auto text = schema::render_text(schema::compare(catalog({f}), catalog({g})));
  EXPECT_TRUE(contains(text,
                       "~ function public.f(integer)\n"
                       "    body:\n"
                       "      -   RETURN 1;\n"
                       "      +   RETURN 2;\n"))
      << text;
}

TEST(SchemaRender, JsonHasStableKeys) {
  auto a = catalog({table("public.t"), column("public.t", "a", "integer")});
  auto b = catalog({table("public.t"), column("public.t", "a", "bigint")}, "database \"b\"");
  auto j = schema::to_json(schema::compare(a, b));
  EXPECT_EQ(j["from"], "database \"a\"");
  EXPECT_EQ(j["to"], "database \"b\"");
  EXPECT_EQ(j["equal"], false);
  EXPECT_EQ(j["summary"]["changed"], 1);
  EXPECT_EQ(j["summary"]["added"], 0);
  EXPECT_EQ(j["summary"]["not_compared"], 0);
  ASSERT_EQ(j["differences"].size(), 1u);
  const auto& d = j["differences"][0];
  EXPECT_EQ(d["kind"], "column");
  EXPECT_EQ(d["name"], "public.t.a");
  EXPECT_EQ(d["parent"], "public.t");
  EXPECT_EQ(d["parent_kind"], "table");
  EXPECT_EQ(d["change"], "changed");
  EXPECT_EQ(d["attributes"][0]["name"], "type");
  EXPECT_EQ(d["attributes"][0]["from"], "integer");
  EXPECT_EQ(d["attributes"][0]["to"], "bigint");
  EXPECT_EQ(d["from"]["type"], "integer");
  EXPECT_EQ(d["to"]["type"], "bigint");
  EXPECT_TRUE(j["not_compared"].is_array());
}

TEST(SchemaRender, SqlPatchIsMarkedBestEffortAndOrdered) {
  auto a = catalog({table("public.t"), column("public.t", "a", "integer"),
                    index("public.t_a_idx", "public.t", "(a)"),
                    enumeration("public.mood", "'sad', 'ok'"), table("public.old"),
                    column("public.old", "x", "text")});
  auto b = catalog({table("public.t"), column("public.t", "a", "bigint", {{"not_null", "yes"}}),
                    enumeration("public.mood", "'sad', 'ok', 'happy'"), table("public.u"),
                    column("public.u", "id", "bigint"), column("public.u", "name", "text")});
  auto sql = schema::render_sql(schema::compare(a, b));
  EXPECT_TRUE(contains(sql, "BEST-EFFORT")) << sql;
  EXPECT_TRUE(contains(sql, "DROP INDEX public.t_a_idx;")) << sql;
  EXPECT_TRUE(contains(sql, "DROP TABLE public.old;")) << sql;
  // A dropped table's columns go with it.
  EXPECT_FALSE(contains(sql, "DROP COLUMN x")) << sql;
  EXPECT_TRUE(contains(sql, "ALTER TABLE public.t ALTER COLUMN a TYPE bigint;")) << sql;
  EXPECT_TRUE(contains(sql, "ALTER TABLE public.t ALTER COLUMN a SET NOT NULL;")) << sql;
  EXPECT_TRUE(contains(sql, "ALTER TYPE public.mood ADD VALUE 'happy' AFTER 'ok';")) << sql;
  EXPECT_TRUE(contains(sql, "CREATE TABLE public.u (\n  id bigint,\n  name text\n);")) << sql;
  // Drops first, creates after, types before tables.
  EXPECT_LT(sql.find("DROP TABLE"), sql.find("CREATE TABLE"));
  EXPECT_LT(sql.find("ADD VALUE"), sql.find("CREATE TABLE"));
}

TEST(SchemaRender, SqlPatchMarksWhatItCannotExpress) {
  Object d{.kind = "domain", .name = "public.d"};
  d.attributes = {{"type", "integer"}, {"constraints", ""}};
  Object e = d;
  e.attributes["constraints"] = "CONSTRAINT positive CHECK (VALUE > 0)";
  auto sql = schema::render_sql(schema::compare(catalog({d}), catalog({e})));
  EXPECT_TRUE(contains(sql, "-- review: DOMAIN public.d: constraints (none) -> CONSTRAINT")) << sql;
}

TEST(SchemaRender, MarkdownSummarisesAndEscapes) {
  auto a = catalog({table("public.t"), column("public.t", "a", "integer")});
  auto b = catalog({table("public.t"), column("public.t", "a", "integer", {{"default", "'a|b'"}}),
                    column("public.t", "b", "text")});
  b.unmodelled = {{"statistics object", "public.s"}};
  auto md = schema::render_markdown(schema::compare(a, b));
  EXPECT_TRUE(contains(md, "### Schema diff")) << md;
  EXPECT_TRUE(contains(md, "| ✏️ | column `public.t.a` | default: `(none)` → `'a\\|b'` |"))
      << md;
  EXPECT_TRUE(contains(md, "| ➕ | column `public.t.b` | only in TO: `text` |")) << md;
  EXPECT_TRUE(contains(md, "<details><summary>Details</summary>")) << md;
  EXPECT_TRUE(contains(md, "**Not compared**")) << md;
  EXPECT_TRUE(contains(md, "statistics object `public.s` (only in TO)")) << md;

  auto same = schema::render_markdown(schema::compare(a, a));
  EXPECT_TRUE(contains(same, "no differences (every object compared)")) << same;
}

TEST(SchemaRender, SqlPatchGrantsAndRevokesPrivileges) {
  auto a = catalog({table("public.t", {{"grants",
                                        "(owner): SELECT UPDATE; PUBLIC: SELECT; "
                                        "reader: SELECT* UPDATE"}})});
  auto b = catalog({table("public.t", {{"grants",
                                        "(owner): SELECT UPDATE; reader: SELECT; "
                                        "writer: INSERT*"}})});
  auto sql = schema::render_sql(schema::compare(a, b));
  EXPECT_TRUE(contains(sql, "REVOKE SELECT ON TABLE public.t FROM PUBLIC;")) << sql;
  EXPECT_TRUE(contains(sql, "REVOKE GRANT OPTION FOR SELECT ON TABLE public.t FROM reader;"))
      << sql;
  EXPECT_TRUE(contains(sql, "REVOKE UPDATE ON TABLE public.t FROM reader;")) << sql;
  EXPECT_TRUE(contains(sql, "GRANT INSERT ON TABLE public.t TO writer WITH GRANT OPTION;")) << sql;
  EXPECT_FALSE(contains(sql, "GRANT SELECT ON TABLE public.t TO reader")) << sql;
  EXPECT_FALSE(contains(sql, "(owner)")) << sql;
}

TEST(SchemaRender, SqlPatchCreatesATableWithItsColumnsInTheirOrder) {
  auto z = column("public.u", "zeta", "text");
  z.position = 1;
  auto a = column("public.u", "alpha", "bigint");
  a.position = 2;
  auto u = table("public.u", {{"grants", "(owner): SELECT; PUBLIC: SELECT"}});
  auto sql = schema::render_sql(schema::compare(catalog({}), catalog({u, a, z})));
  EXPECT_TRUE(contains(sql, "CREATE TABLE public.u (\n  zeta text,\n  alpha bigint\n);")) << sql;
  EXPECT_TRUE(contains(sql, "GRANT SELECT ON TABLE public.u TO PUBLIC;")) << sql;
}
