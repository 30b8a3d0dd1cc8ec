// catalog/table_schema.cpp — type names and the COPY column list of a table.
#include "catalog/table_schema.h"

#include <algorithm>

namespace sluice {

const char* pg_type_name(PgType t) {
  switch (t) {
    case PgType::timestamptz: return "timestamptz";
    case PgType::timestamp: return "timestamp";
    case PgType::date: return "date";
    case PgType::float8: return "float8";
    case PgType::float4: return "float4";
    case PgType::int2: return "int2";
    case PgType::int4: return "int4";
    case PgType::int8: return "int8";
    case PgType::numeric: return "numeric";
    case PgType::boolean: return "bool";
    case PgType::text: return "text";
    case PgType::varchar: return "varchar";
    case PgType::bpchar: return "bpchar";
    case PgType::uuid: return "uuid";
    case PgType::jsonb: return "jsonb";
    case PgType::json: return "json";
  }
  return "unknown";
}

std::vector<int> TableSchema::order_key_fields(uint64_t column_mask) const {
  std::vector<int> fields;
  int position = 0;
  for (size_t i = 0; i < columns.size(); ++i) {
    const Column& c = columns[i];
    if (c.omit_bit >= 0 && (column_mask & (uint64_t{1} << c.omit_bit)) == 0) continue;
    if (std::find(order_key.begin(), order_key.end(), static_cast<int>(i)) != order_key.end()) fields.push_back(position);
    ++position;
  }
  return fields;
}

std::string TableSchema::copy_column_list(uint64_t column_mask) const {
  std::string out;
  out.push_back('(');
  bool first = true;
  for (const Column& c : columns) {
    if (c.omit_bit >= 0 && (column_mask & (uint64_t{1} << c.omit_bit)) == 0) continue;
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    for (char ch : c.name) {
      if (ch == '"') out.push_back('"');
      out.push_back(ch);
    }
    out.push_back('"');
  }
  out.push_back(')');
  return out;
}

}  // namespace sluice
