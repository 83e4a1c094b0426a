#include "log.h"

#include <gtest/gtest.h>

namespace dims::log {
namespace {

TEST(Log, JsonLineEscapesAndKeepsNumbersUnquoted) {
  std::string line = Render(Format::kJson, "2026-01-01T00:00:00.000Z", Level::kWarn, "storage",
                            "quota \"hit\"", {{"aor", "sip:a@b"}, {"count", 3}, {"ok", false}});
  EXPECT_EQ(line,
            "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"level\":\"warn\",\"service\":\"storage\","
            "\"msg\":\"quota \\\"hit\\\"\",\"aor\":\"sip:a@b\",\"count\":3,\"ok\":false}");
}

TEST(Log, JsonEscapesControlCharacters) {
  std::string line = Render(Format::kJson, "t", Level::kInfo, "s", "a\nb\x01", {});
  EXPECT_NE(line.find("a\\nb\\u0001"), std::string::npos);
}

TEST(Log, TextQuotesOnlyWhatNeedsIt) {
  std::string line = Render(Format::kText, "t", Level::kInfo, "edge", "registered",
                            {{"aor", "sip:a@b"}, {"reason", "two words"}, {"empty", ""}});
  EXPECT_EQ(line, "t info edge: registered aor=sip:a@b reason=\"two words\" empty=\"\"");
}

TEST(Log, LevelNamesParse) {
  EXPECT_EQ(ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(ParseLevel("error"), Level::kError);
  EXPECT_FALSE(ParseLevel("verbose"));
}

}  // namespace
}  // namespace dims::log
