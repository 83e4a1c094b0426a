#include "aor.h"

#include <gtest/gtest.h>

#include <ostream>

namespace dims {
namespace {

struct Case {
  const char* input;
  const char* expected;  // nullptr: must be rejected
};

// Names each case after its input in test output.
void PrintTo(const Case& c, std::ostream* os) { *os << '"' << c.input << '"'; }

class AorNormalization : public ::testing::TestWithParam<Case> {};

TEST_P(AorNormalization, MapsEveryFormOfOneUserToOneKey) {
  const Case& c = GetParam();
  auto got = NormalizeAor(c.input);
  if (c.expected == nullptr) {
    EXPECT_FALSE(got.has_value()) << c.input << " -> " << got.value_or("");
  } else {
    ASSERT_TRUE(got.has_value()) << c.input << ": " << ParseAor(c.input).error;
    EXPECT_EQ(*got, c.expected) << c.input;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Forms, AorNormalization,
    ::testing::Values(
        Case{"sip:alice@example.org", "sip:alice@example.org"},
        Case{"SIP:alice@Example.ORG", "sip:alice@example.org"},
        Case{"sips:alice@example.org", "sip:alice@example.org"},
        Case{"sip:alice@example.org:5060", "sip:alice@example.org"},
        Case{"sips:alice@example.org:5061", "sip:alice@example.org"},
        Case{"sip:alice@example.org:5070", "sip:alice@example.org:5070"},
        Case{"sip:alice@example.org;transport=tcp", "sip:alice@example.org"},
        Case{"sip:alice@example.org?subject=hi", "sip:alice@example.org"},
        Case{"sip:alice:secret@example.org", "sip:alice@example.org"},
        Case{"<sip:alice@example.org>;tag=1234", "sip:alice@example.org"},
        Case{"\"Alice <A>\" <sip:alice@example.org;user=phone>", "sip:alice@example.org"},
        Case{"Alice <sip:alice@example.org>", "sip:alice@example.org"},
        Case{"sip:%61lice@example.org", "sip:alice@example.org"},
        Case{"sip:a%2fb@example.org", "sip:a%2Fb@example.org"},
        Case{"sip:Alice@example.org", "sip:Alice@example.org"},  // user part keeps its case
        Case{"sip:+46701234567@example.org", "sip:+46701234567@example.org"},
        Case{"sip:alice@[2001:db8::1]:5060", "sip:alice@[2001:db8::1]"},
        Case{"sip:example.org", "sip:example.org"},
        Case{"tel:+46-70-123(45)67", "tel:+46701234567"},
        Case{"tel:+46701234567;phone-context=example.org", "tel:+46701234567"},
        Case{"  sip:alice@example.org  ", "sip:alice@example.org"},
        Case{"mailto:alice@example.org", nullptr}, Case{"alice@example.org", nullptr},
        Case{"sip:@example.org", nullptr}, Case{"sip:alice@", nullptr},
        Case{"sip:alice@exa mple.org", nullptr}, Case{"sip:al ice@example.org", nullptr},
        Case{"sip:alice%4@example.org", nullptr}, Case{"sip:alice@example.org:99999", nullptr},
        Case{"sip:alice@example.org:0", nullptr}, Case{"<sip:alice@example.org", nullptr},
        Case{"\"Alice <sip:alice@example.org>", nullptr}, Case{"tel:", nullptr},
        Case{"tel:+46x", nullptr}, Case{"", nullptr}));

TEST(Aor, DomainDropsThePort) {
  auto r = ParseAor("sip:alice@Example.org:5070");
  ASSERT_TRUE(r.aor);
  EXPECT_EQ(r.aor->Domain(), "example.org");
  EXPECT_EQ(r.aor->user, "alice");
}

TEST(Aor, RejectionSaysWhy) {
  auto r = ParseAor("mailto:alice@example.org");
  EXPECT_FALSE(r.aor);
  EXPECT_EQ(r.error, "unsupported URI scheme 'mailto'");
}

}  // namespace
}  // namespace dims
