// spool/block_codec.h — a Block as a spool record payload, readable after a restart.
//
//   encode: version · table config name · the COPY column names (the block's mask, in order) ·
//           rows · min/max time · the binary COPY tuples as they are · [Idempotency-Key · block index]
//   decode: table by config name in today's catalog; the stored column names → today's mask. When
//           the columns are listed in another order today, or a nullable column was added, every
//           tuple is rewritten into today's COPY order (a new column without a default gets NULL).
//           A table or column that no longer exists is an error naming it (the record cannot be
//           replayed).
// Only the spool path calls these (one allocation per block, never per row).
#pragma once

#include <string>
#include <string_view>

#include "catalog/catalog.h"
#include "core/block.h"

namespace sluice::spool {

void encode_block(const TableSchema& table, const Block& block, std::string& out);

// False with `error` set when the payload is malformed or does not fit the catalog.
bool decode_block(const Catalog& catalog, std::string_view payload, Block& out, std::string& error);

}  // namespace sluice::spool
