#pragma once
// Per-peer tables (one entry per known peer) grow one entry at a time up to
// the size of the mesh. std::vector doubles its capacity, which leaves up to
// half of a table unused; every peer holds several such tables for the whole
// mesh, so they grow by a quarter instead (still amortized O(1) per entry).

#include <algorithm>
#include <cstddef>
#include <vector>

namespace p2pmesh {

// Makes room for `size` elements, growing the capacity by a quarter at a time.
template <class T>
void reserve_gently(std::vector<T>& table, std::size_t size) {
  if (size <= table.capacity()) return;
  table.reserve(std::max(size, table.capacity() + table.capacity() / 4 + 8));
}

}  // namespace p2pmesh
