// Comparing two catalogs: by kind and name, attribute by attribute; nothing about how either was
// built (oids, creation order, column positions) takes part.
#include <algorithm>
#include <future>
#include <map>
#include <set>
#include <tuple>

#include "schema/schema.hpp"

namespace previewdb::schema {

namespace {

// The order objects are reported in: what others depend on first.
int top_rank(const std::string& kind) {
  static const std::vector<std::string> order = {
      "schema", "extension",         "enum",     "domain",   "composite type", "sequence", "table",
      "view",   "materialized view", "function", "procedure"};
  auto it = std::find(order.begin(), order.end(), kind);
  return static_cast<int>(it - order.begin());
}

int sub_rank(const std::string& kind) {
  static const std::vector<std::string> order = {"column",  "constraint", "index",
                                                 "trigger", "policy",     "sequence"};
  auto it = std::find(order.begin(), order.end(), kind);
  return static_cast<int>(it - order.begin());
}

using Key = std::pair<std::string, std::string>;  // kind, name

std::map<Key, const Object*> by_key(const Catalog& c) {
  std::map<Key, const Object*> out;
  for (const auto& o : c.objects) out[{o.kind, o.name}] = &o;
  return out;
}

auto sort_key(const Difference& d) {
  bool sub = !d.parent.empty();
  const std::string& top_kind = sub ? d.parent_kind : d.kind;
  const std::string& top_name = sub ? d.parent : d.name;
  return std::make_tuple(top_rank(top_kind), top_name, sub ? 1 : 0, sub_rank(d.kind), d.name);
}

}  // namespace

std::string_view change_name(Change change) {
  switch (change) {
    case Change::added:
      return "added";
    case Change::removed:
      return "removed";
    case Change::changed:
      return "changed";
  }
  return "changed";
}

size_t Diff::count(Change change) const {
  return static_cast<size_t>(
      std::count_if(differences.begin(), differences.end(),
                    [&](const Difference& d) { return d.change == change; }));
}

Diff compare(const Catalog& from, const Catalog& to) {
  Diff diff;
  diff.from = from.source;
  diff.to = to.source;
  auto a = by_key(from), b = by_key(to);
  std::set<Key> keys;
  for (const auto& [k, _] : a) keys.insert(k);
  for (const auto& [k, _] : b) keys.insert(k);
  for (const auto& key : keys) {
    auto ia = a.find(key), ib = b.find(key);
    const Object* x = ia == a.end() ? nullptr : ia->second;
    const Object* y = ib == b.end() ? nullptr : ib->second;
    const Object& any = x ? *x : *y;
    Difference d{
        .kind = any.kind, .name = any.name, .parent = any.parent, .parent_kind = any.parent_kind};
    if (x) d.from_attributes = x->attributes, d.from_sql = x->create_sql, d.position = x->position;
    if (y) d.to_attributes = y->attributes, d.to_sql = y->create_sql, d.position = y->position;
    if (!x) {
      d.change = Change::added;
    } else if (!y) {
      d.change = Change::removed;
    } else {
      std::set<std::string> names;
      for (const auto& [k, _] : x->attributes) names.insert(k);
      for (const auto& [k, _] : y->attributes) names.insert(k);
      for (const auto& n : names) {
        auto fa = x->attributes.find(n), fb = y->attributes.find(n);
        std::string va = fa == x->attributes.end() ? "" : fa->second;
        std::string vb = fb == y->attributes.end() ? "" : fb->second;
        if (va != vb) d.attributes.push_back({n, va, vb});
      }
      if (d.attributes.empty()) continue;
      d.change = Change::changed;
      // The parent may be known on one side only (a sequence owned in TO, not in FROM).
      if (d.parent.empty() && !y->parent.empty())
        d.parent = y->parent, d.parent_kind = y->parent_kind;
    }
    diff.differences.push_back(std::move(d));
  }
  std::stable_sort(
      diff.differences.begin(), diff.differences.end(),
      [](const Difference& l, const Difference& r) { return sort_key(l) < sort_key(r); });

  std::map<Unmodelled, UnmodelledEntry> uncompared;
  for (const auto& u : from.unmodelled) {
    auto& e = uncompared[u];
    e.kind = u.kind, e.name = u.name, e.in_from = true;
  }
  for (const auto& u : to.unmodelled) {
    auto& e = uncompared[u];
    e.kind = u.kind, e.name = u.name, e.in_to = true;
  }
  for (auto& [_, e] : uncompared) diff.not_compared.push_back(std::move(e));
  return diff;
}

Diff compare_databases(db::Connection& from, db::Connection& to, const ReadOptions& options) {
  // Both at once, each on its own connection.
  auto later = std::async(std::launch::async, [&] { return read_catalog(to, options); });
  auto a = read_catalog(from, options);
  return compare(a, later.get());
}

}  // namespace previewdb::schema
