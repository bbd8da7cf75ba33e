// A minimal protobuf wire-format reader: enough to walk the few SavedModel messages smrt
// needs without linking a protobuf runtime (libtensorflow carries its own; two in one process
// clash). Bounds-checked everywhere; malformed input throws WireError, never reads past `end`.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace smrt::wire {

struct WireError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Reader;

// A typed read of a field that came with another wire type than the read's. Thrown before any
// of the value is read, so for_each_field can skip the field, as protobuf does.
struct WireTypeMismatch : WireError {
  WireTypeMismatch(const std::string& what, const Reader* from) : WireError(what), reader(from) {}
  const Reader* reader;  // whose current field it is
};

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

class Reader {
 public:
  explicit Reader(std::string_view bytes) : p_(bytes.data()), begin_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  // Reads the next field's tag; false at the end of the message.
  bool next() {
    if (p_ == end_) return false;
    const uint64_t tag = varint();
    field_ = static_cast<uint32_t>(tag >> 3);
    type_ = static_cast<WireType>(tag & 7);
    if (field_ == 0 || (tag >> 3) > 0x1fffffff) fail("invalid field number");
    return true;
  }
  bool at_end() const { return p_ == end_; }
  uint32_t field() const { return field_; }
  WireType type() const { return type_; }
  // Whether the current field came with wire type `type`. Protobuf treats a known field that
  // comes with another wire type than its declared type's as an unknown field: skip() it (as
  // for_each_field does when a typed read finds another wire type).
  bool is(WireType type) const { return type_ == type; }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) fail("truncated varint");
      const auto byte = static_cast<uint8_t>(*p_++);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("varint longer than 10 bytes");
  }
  // The payload of a length-delimited field (a string, bytes, or a sub-message).
  std::string_view bytes() {
    expect(kLengthDelimited);
    const uint64_t size = varint();
    if (size > static_cast<uint64_t>(end_ - p_)) fail("length runs past the end of the data");
    std::string_view out(p_, static_cast<std::size_t>(size));
    p_ += size;
    return out;
  }
  // A proto3 `string` field: bytes() that must be valid UTF-8.
  std::string_view utf8() {
    const std::string_view s = bytes();
    if (!valid_utf8(s)) fail("string field is not valid UTF-8");
    return s;
  }
  // A `double` field (wire type fixed64, little-endian).
  double float64() {
    expect(kFixed64);
    if (end_ - p_ < 8) fail("truncated fixed-size field");
    uint64_t bits = 0;
    for (int i = 7; i >= 0; --i) bits = bits << 8 | static_cast<uint8_t>(p_[i]);
    p_ += 8;
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }
  // A fixed32 or fixed64 field's little-endian bits (`width` 4 or 8, matching its wire type).
  uint64_t fixed_bits(int width) {
    expect(width == 4 ? kFixed32 : kFixed64);
    advance(static_cast<std::size_t>(width));
    uint64_t bits = 0;
    for (int i = width - 1; i >= 0; --i) bits = bits << 8 | static_cast<uint8_t>(p_[i - width]);
    return bits;
  }
  int64_t int64() {
    expect(kVarint);
    return static_cast<int64_t>(varint());
  }
  bool boolean() { return int64() != 0; }

  // Skips the current field's value, whatever its type.
  void skip(int depth = 0) {
    switch (type_) {
      case kVarint: varint(); return;
      case kFixed64: advance(8); return;
      case kFixed32: advance(4); return;
      case kLengthDelimited: bytes(); return;
      case kStartGroup: {
        if (depth > 64) fail("groups nested too deeply");
        const uint32_t group = field_;
        while (next()) {
          if (type_ == kEndGroup) {
            if (field_ != group) fail("mismatched end of group");
            return;
          }
          skip(depth + 1);
        }
        fail("truncated group");
      }
      default: fail("invalid wire type");
    }
  }

  static bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      std::size_t extra = 0;
      uint32_t cp = 0, min = 0;
      if (c < 0x80) { ++i; continue; }
      if ((c & 0xe0) == 0xc0) { extra = 1; cp = c & 0x1f; min = 0x80; }
      else if ((c & 0xf0) == 0xe0) { extra = 2; cp = c & 0x0f; min = 0x800; }
      else if ((c & 0xf8) == 0xf0) { extra = 3; cp = c & 0x07; min = 0x10000; }
      else return false;
      if (extra >= s.size() - i) return false;
      for (std::size_t k = 1; k <= extra; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xc0) != 0x80) return false;
        cp = cp << 6 | (cc & 0x3f);
      }
      if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
      i += extra + 1;
    }
    return true;
  }
 private:
  void expect(WireType wanted) {
    if (type_ != wanted) {
      throw WireTypeMismatch("field " + std::to_string(field_) + " has an unexpected wire type at byte " +
                                 std::to_string(p_ - begin_),
                             this);
    }
  }
  void advance(std::size_t n) {
    if (n > static_cast<std::size_t>(end_ - p_)) fail("truncated fixed-size field");
    p_ += n;
  }
  [[noreturn]] void fail(const char* what) const {
    throw WireError(std::string(what) + " at byte " + std::to_string(p_ - begin_));
  }

  const char* p_;
  const char* begin_;
  const char* end_;
  uint32_t field_ = 0;
  WireType type_ = kVarint;
};

// Calls on_field(reader) for each field of `message`; on_field must consume or skip the value.
// A typed read of a field that came with another wire type skips the field instead: protobuf
// parses a known field with another wire type than its declared type's as an unknown field.
template <class F>
void for_each_field(std::string_view message, F&& on_field) {
  Reader r(message);
  while (r.next()) {
    try {
      on_field(r);
    } catch (const WireTypeMismatch& e) {
      if (e.reader != &r) throw;  // a nested reader's, which a loop of its own did not skip
      r.skip();
    }
  }
}

// The bytes of a singular embedded-message field that may occur several times. Protobuf parses
// such a field as if its occurrences' payloads were concatenated (repeated fields inside them
// concatenate, the last scalar wins, nested messages merge the same way), so a reader add()s
// every occurrence and parses view() once, after the loop. One occurrence stays a zero-copy
// view; several are copied into owned storage once each, so the cost stays linear.
class Merged {
 public:
  void add(std::string_view occurrence) {
    if (count_ == 0) {
      view_ = occurrence;
    } else {
      if (count_ == 1) owned_.assign(view_.data(), view_.size());
      owned_.append(occurrence.data(), occurrence.size());
    }
    ++count_;
  }
  bool present() const { return count_ > 0; }
  std::string_view view() const { return count_ > 1 ? std::string_view(owned_) : view_; }
  void clear() { *this = Merged(); }

 private:
  std::string_view view_;
  std::string owned_;
  std::size_t count_ = 0;
};

// Adds one entry {key = 1 string, value = 2 message} of a map<string, message> field to `into`,
// with protobuf's map semantics: entries are independent, so the last entry for a key wins
// whole; a value that occurs twice within one entry merges. Parse each value's view() once
// every entry is in.
inline void add_map_entry(std::string_view entry, std::map<std::string, Merged>& into) {
  std::string key;
  Merged value;
  for_each_field(entry, [&](Reader& r) {
    if (r.field() == 1 && r.is(kLengthDelimited)) key = std::string(r.utf8());
    else if (r.field() == 2 && r.is(kLengthDelimited)) value.add(r.bytes());
    else r.skip();
  });
  into[key] = std::move(value);
}

// Merges a TensorShapeProto{dim = 2 {size = 1}, unknown_rank = 3} into `dims` / `unknown_rank`
// as protobuf's MergeFrom would: dims append, unknown_rank is overwritten when present.
inline void merge_tensor_shape(std::string_view message, std::vector<int64_t>& dims, bool& unknown_rank) {
  for_each_field(message, [&](Reader& r) {
    if (r.field() == 2 && r.is(kLengthDelimited)) {
      int64_t size = 0;
      for_each_field(r.bytes(), [&](Reader& d) {
        if (d.field() == 1 && d.is(kVarint)) size = d.int64();
        else d.skip();
      });
      dims.push_back(size);
    } else if (r.field() == 3 && r.is(kVarint)) {
      unknown_rank = r.boolean();
    } else {
      r.skip();
    }
  });
}

// A whole TensorShapeProto: the sizes (-1 unknown), or none with `unknown_rank` set.
inline void read_tensor_shape(std::string_view message, std::vector<int64_t>& dims, bool& unknown_rank) {
  dims.clear();
  unknown_rank = false;
  merge_tensor_shape(message, dims, unknown_rank);
  if (unknown_rank) dims.clear();
}

}  // namespace smrt::wire
