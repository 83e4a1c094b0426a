#include "socket_address.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

namespace dims::relay {
namespace {

TEST(NumericSocketAddress, TakesIpv4AndIpv6LiteralsWithOrWithoutBracketsButNoNames) {
  struct Case {
    const char* host;
    int family;
    socklen_t length;
    const char* described;
  };
  for (const Case& c :
       {Case{"192.0.2.7", AF_INET, sizeof(sockaddr_in), "192.0.2.7:2855"},
        Case{"2001:db8::7", AF_INET6, sizeof(sockaddr_in6), "[2001:db8::7]:2855"},
        Case{"[2001:db8::7]", AF_INET6, sizeof(sockaddr_in6), "[2001:db8::7]:2855"}}) {
    SCOPED_TRACE(c.host);
    auto address = NumericSocketAddress(c.host, 2855);
    ASSERT_TRUE(address);
    EXPECT_EQ(address->family(), c.family);
    EXPECT_EQ(address->length, c.length);
    EXPECT_EQ(address->port(), 2855);
    EXPECT_EQ(DescribeSocketAddress(address->storage), c.described);
  }
  EXPECT_EQ(DescribeSocketAddress(NumericSocketAddress("::", 0)->storage), "[::]:0");

  EXPECT_FALSE(NumericSocketAddress("relay.dims.test", 2855));
  EXPECT_FALSE(NumericSocketAddress("", 2855));
  EXPECT_FALSE(NumericSocketAddress("[]", 2855));
  EXPECT_FALSE(NumericSocketAddress("192.0.2.300", 2855));
}

TEST(DescribeSocketAddress, NamesAnotherFamilyAsUnknown) {
  sockaddr_storage unix_address{};
  unix_address.ss_family = AF_UNIX;
  EXPECT_EQ(DescribeSocketAddress(unix_address), "?");
}

}  // namespace
}  // namespace dims::relay
