#pragma once
// Many short lists (a few elements each, one per peer) in one shared pool.
// A std::vector per list costs 24 bytes of header plus a heap block with its
// malloc overhead and growth slack; here a list is 8 bytes of header and
// exactly its elements. A list that grows moves to the end of the pool; the
// space it leaves is reclaimed when the pool is full (compaction, amortized
// O(1) per element added). Lists are numbered 0..count()-1 by the owner.
//
// Element order is kept as a std::vector would keep it: push_back appends,
// swap_erase moves the last element into the hole, erase_ordered shifts.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "gentle_growth.hpp"
#include "warm.hpp"

namespace p2pmesh {

template <class T>
class PooledLists {
 public:
  std::size_t count() const { return heads_.size(); }
  // Elements the pool has room for (live ones, holes and headroom).
  std::size_t pool_capacity() const { return pool_.capacity(); }
  // Grows the number of lists to at least `lists` (new ones are empty).
  void ensure(std::size_t lists) {
    if (heads_.size() >= lists) return;
    reserve_gently(heads_, lists);
    heads_.resize(lists);
  }

  std::span<const T> at(std::size_t list) const {
    const Head& head = heads_[list];
    return {pool_.data() + head.begin, head.size};
  }
  std::span<T> at(std::size_t list) {
    const Head& head = heads_[list];
    return {pool_.data() + head.begin, head.size};
  }

  // Loads (warm.hpp) a list's head; then, once it is loaded, its first elements.
  void warm_head(std::size_t list) const { warm(&heads_[list]); }
  void warm_elements(std::size_t list) const {
    const Head& head = heads_[list];
    if (head.size != 0) warm(pool_.data() + head.begin);
  }

  void push_back(std::size_t list, const T& value) {
    Head& head = heads_[list];
    if (head.size != 0 && head.begin + head.size == pool_.size() && pool_.size() < pool_.capacity()) {
      pool_.push_back(value);  // last in the pool: grows in place
      ++head.size;
      return;
    }
    make_room(head.size + 1);
    // make_room may have moved every list: re-read the head.
    Head& moved = heads_[list];
    const std::uint32_t begin = static_cast<std::uint32_t>(pool_.size());
    pool_.insert(pool_.end(), pool_.begin() + moved.begin, pool_.begin() + moved.begin + moved.size);
    pool_.push_back(value);
    unused_ += moved.size;
    moved.begin = begin;
    ++moved.size;
  }

  // Removes element `position`; the last element takes its place.
  void swap_erase(std::size_t list, std::size_t position) {
    Head& head = heads_[list];
    pool_[head.begin + position] = pool_[head.begin + head.size - 1];
    shrink_by_one(head);
  }

  // Removes element `position`; later elements shift down one place.
  void erase_ordered(std::size_t list, std::size_t position) {
    Head& head = heads_[list];
    const auto first = pool_.begin() + head.begin;
    std::move(first + static_cast<std::ptrdiff_t>(position) + 1, first + head.size,
              first + static_cast<std::ptrdiff_t>(position));
    shrink_by_one(head);
  }

  // Replaces the list's elements.
  void assign(std::size_t list, std::span<const T> values) {
    Head& head = heads_[list];
    if (values.size() <= head.size) {
      std::copy(values.begin(), values.end(), pool_.begin() + head.begin);
      unused_ += head.size - values.size();
      head.size = static_cast<std::uint32_t>(values.size());
      if (head.size == 0) head.begin = 0;
      return;
    }
    make_room(values.size());
    Head& moved = heads_[list];
    unused_ += moved.size;
    moved.begin = static_cast<std::uint32_t>(pool_.size());
    moved.size = static_cast<std::uint32_t>(values.size());
    pool_.insert(pool_.end(), values.begin(), values.end());
  }

  void clear(std::size_t list) {
    Head& head = heads_[list];
    unused_ += head.size;
    head = Head{};
  }

  void clear_all() {
    std::vector<Head>().swap(heads_);
    std::vector<T>().swap(pool_);
    unused_ = 0;
  }

 private:
  struct Head {
    std::uint32_t begin = 0;
    std::uint32_t size = 0;
  };

  void shrink_by_one(Head& head) {
    --head.size;
    ++unused_;
    if (head.size == 0) head.begin = 0;
  }

  // Makes room for `extra` more elements at the end of the pool. When the
  // pool is full, the lists are packed together again: in place when that
  // frees room for a sixteenth of the live elements more, otherwise into a
  // new pool with an eighth of them as headroom. In place means no allocation
  // and no fresh pages: mesh-sim's thousands of views spent ~10% of their
  // time in malloc and the kernel's page clearing for new pools. The
  // footprint stays near the live size, and each packing is paid for by the
  // additions since the last one.
  void make_room(std::size_t extra) {
    if (pool_.size() + extra <= pool_.capacity()) return;
    const std::size_t live = pool_.size() - unused_;
    if (live + extra + live / 16 + 8 <= pool_.capacity()) {
      pack_in_place();
      return;
    }
    std::vector<T> compact;
    compact.reserve(live + extra + live / 8 + 8);
    pack_into(compact);
    pool_.swap(compact);
    unused_ = 0;
  }

  // Appends every list to `to` in list order and points the heads there.
  void pack_into(std::vector<T>& to) {
    for (Head& head : heads_) {
      const auto first = pool_.begin() + head.begin;
      const std::uint32_t begin = static_cast<std::uint32_t>(to.size());
      to.insert(to.end(), first, first + head.size);
      head.begin = head.size == 0 ? 0 : begin;
    }
  }

  // Packs the lists at the start of the pool, through a scratch copy kept
  // per thread (lists are not in pool order, so they cannot slide down).
  void pack_in_place() {
    static thread_local std::vector<T> scratch;
    scratch.clear();
    pack_into(scratch);
    std::copy(scratch.begin(), scratch.end(), pool_.begin());
    pool_.resize(scratch.size());  // smaller: the capacity stays
    unused_ = 0;
  }

  std::vector<Head> heads_;
  std::vector<T> pool_;
  std::size_t unused_ = 0;  // elements of the pool no list uses
};

}  // namespace p2pmesh
