// libFuzzer target for the MSRP parser (tests/fuzz.sh builds it with clang and sanitizers;
// msrp_fuzz_replay_main.cc replays the seed corpus through it in the normal build).
// Invariants checked on every input:
//   - results do not depend on how the stream is cut: the whole input at once, one byte at a
//     time and pieces of pseudo-random sizes give the same messages and errors;
//   - every parsed message, serialized and parsed again, gives back that message, alone;
//   - after a fatal error the parser stays closed.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "msrp_parser.h"
#include "msrp_serializer.h"

namespace {

// Small limits, so that short inputs reach every limit.
dims::MsrpLimits FuzzLimits() {
  dims::MsrpLimits limits;
  limits.max_start_line_bytes = 96;
  limits.max_header_line_bytes = 160;
  limits.max_header_bytes = 600;
  limits.max_header_count = 10;
  limits.max_path_uris = 3;
  limits.max_body_bytes = 200;
  limits.max_message_bytes = 1000;
  limits.accept_types = {"text/plain", "message/*"};
  return limits;
}

void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "msrp_parser_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

std::vector<dims::MsrpParseResult> ParseInPieces(std::string_view input,
                                                 const std::vector<size_t>& cuts) {
  dims::MsrpParser parser(FuzzLimits());
  std::vector<dims::MsrpParseResult> results;
  size_t at = 0;
  for (size_t cut : cuts) {
    auto piece = parser.Feed(input.substr(at, cut - at));
    results.insert(results.end(), piece.begin(), piece.end());
    at = cut;
  }
  auto rest = parser.Feed(input.substr(at));
  results.insert(results.end(), rest.begin(), rest.end());
  bool fatal = !results.empty() && std::holds_alternative<dims::MsrpParseError>(results.back()) &&
               !std::get<dims::MsrpParseError>(results.back()).stream_usable;
  Require(parser.closed() == fatal, "closed() iff the last result is a fatal error");
  if (parser.closed()) Require(parser.Feed("MSRP ").empty(), "a closed parser yields nothing");
  return results;
}

void CheckRoundTrip(const dims::MsrpMessage& message) {
  // Serializing normalises spacing (": " after a name): allow for that growth alone.
  dims::MsrpLimits limits = FuzzLimits();
  limits.max_header_line_bytes += 1;
  limits.max_header_bytes += limits.max_header_count;
  dims::MsrpParser parser(limits);
  std::string wire = dims::SerializeMsrpMessage(message);
  auto again = parser.Feed(wire);
  Require(again.size() == 1, "a serialized message parses as exactly one result");
  Require(std::holds_alternative<dims::MsrpMessage>(again.front()),
          "a serialized message parses without error");
  Require(std::get<dims::MsrpMessage>(again.front()) == message,
          "parse(serialize(message)) == message");
  Require(parser.at_message_boundary(), "nothing left over after a serialized message");
  Require(dims::SerializeMsrpMessage(std::get<dims::MsrpMessage>(again.front())) == wire,
          "serialization is stable");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto whole = ParseInPieces(input, {});

  std::vector<size_t> every_byte;
  for (size_t i = 1; i < size; ++i) every_byte.push_back(i);
  Require(ParseInPieces(input, every_byte) == whole, "byte-at-a-time == whole");

  // Piece sizes from a generator seeded by the input, so that a crash reproduces.
  uint32_t state = 2166136261u;
  for (char c : input) state = (state ^ static_cast<uint8_t>(c)) * 16777619u;
  std::vector<size_t> random_cuts;
  for (size_t at = 0;;) {
    state = state * 1664525u + 1013904223u;
    at += 1 + (state >> 16) % 97;
    if (at >= size) break;
    random_cuts.push_back(at);
  }
  Require(ParseInPieces(input, random_cuts) == whole, "random pieces == whole");

  for (const auto& result : whole) {
    if (const auto* message = std::get_if<dims::MsrpMessage>(&result)) CheckRoundTrip(*message);
  }
  return 0;
}
