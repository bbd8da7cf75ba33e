// Objects that serve one caller at a time and are kept for the next (OpenVINO's infer requests):
// a caller takes an idle one, or has a new one made, and gives it back when done. Giving back
// runs in destructors, so it never allocates: room for every object made is reserved when it
// is made.
#pragma once

#include <cstddef>
#include <mutex>
#include <utility>
#include <vector>

namespace smrt::detail {

template <class T>
class IdlePool {
 public:
  // An idle object, or make()'s; an empty T once the pool is closed (make is not called).
  template <class Make>
  T take(Make&& make) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return T();
    if (!idle_.empty()) {
      T item = std::move(idle_.back());
      idle_.pop_back();
      return item;
    }
    idle_.reserve(made_ + 1);  // before making it: its slot for give_back
    T item = make();
    ++made_;
    return item;
  }

  // Back to the idle list, or dropped if the pool was closed meanwhile. T's move must not throw.
  void give_back(T item) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!closed_) idle_.push_back(std::move(item));  // within the capacity reserved in take()
  }

  // Drops the idle objects and makes no more; objects still out are dropped when given back.
  void close() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    idle_.clear();
  }

  // For tests: how many objects were made, and how many the idle list has room for.
  std::size_t made() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return made_;
  }
  std::size_t capacity() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return idle_.capacity();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<T> idle_;
  std::size_t made_ = 0;
  bool closed_ = false;
};

}  // namespace smrt::detail
