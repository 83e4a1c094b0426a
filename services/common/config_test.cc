#include "config.h"

#include <gtest/gtest.h>

#include <map>

namespace dims {
namespace {

std::vector<ConfigOption> Options() {
  return {
      {"grpc-listen", "127.0.0.1:50053", "gRPC address", validate::HostPortValue()},
      {"pool-size", "8", "pool", validate::IntInRange(1, 64)},
      {"domains", "dims.test", "domains", validate::DomainList()},
      {"log-level", "info", "level", validate::OneOf({"debug", "info"})},
  };
}

Config::Environment Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Config, DefaultsApplyWhenNothingIsGiven) {
  auto c = Config::Load(Options(), {}, Env({}));
  EXPECT_EQ(c.Get("grpc-listen"), "127.0.0.1:50053");
  EXPECT_EQ(c.GetInt("pool-size"), 8);
  EXPECT_EQ(c.sources().at("pool-size"), "default");
}

TEST(Config, FlagBeatsEnvironmentBeatsDefault) {
  auto c = Config::Load(Options(), {"--pool-size=16"},
                        Env({{"DIMS_POOL_SIZE", "32"}, {"DIMS_DOMAINS", "a.test, b.test"}}));
  EXPECT_EQ(c.GetInt("pool-size"), 16);
  EXPECT_EQ(c.sources().at("pool-size"), "flag");
  EXPECT_EQ(c.GetList("domains"), (std::vector<std::string>{"a.test", "b.test"}));
  EXPECT_EQ(c.sources().at("domains"), "env");
}

TEST(Config, FlagValueMayFollowAsNextArgument) {
  auto c = Config::Load(Options(), {"--grpc-listen", "0.0.0.0:1", "migrate"}, Env({}));
  EXPECT_EQ(c.GetHostPort("grpc-listen").host, "0.0.0.0");
  EXPECT_EQ(c.GetHostPort("grpc-listen").port, 1);
  EXPECT_EQ(c.positional(), (std::vector<std::string>{"migrate"}));
}

TEST(Config, BadEnvironmentValueNamesVariableValueAndExpectation) {
  try {
    Config::Load(Options(), {}, Env({{"DIMS_POOL_SIZE", "lots"}}));
    FAIL() << "accepted a non-integer";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "invalid value 'lots' for environment variable DIMS_POOL_SIZE: expected an "
                 "integer in 1..64");
  }
}

TEST(Config, RejectsUnknownFlagsMissingValuesAndBadShapes) {
  EXPECT_THROW(Config::Load(Options(), {"--no-such-flag=1"}, Env({})), ConfigError);
  EXPECT_THROW(Config::Load(Options(), {"--pool-size"}, Env({})), ConfigError);
  EXPECT_THROW(Config::Load(Options(), {"--pool-size=0"}, Env({})), ConfigError);
  EXPECT_THROW(Config::Load(Options(), {"--grpc-listen=nohost"}, Env({})), ConfigError);
  EXPECT_THROW(Config::Load(Options(), {"--grpc-listen=h:70000"}, Env({})), ConfigError);
  EXPECT_THROW(Config::Load(Options(), {"--domains=bad_domain"}, Env({})), ConfigError);
  EXPECT_THROW(Config::Load(Options(), {"--domains= , "}, Env({})), ConfigError);
  EXPECT_THROW(Config::Load(Options(), {"--log-level=loud"}, Env({})), ConfigError);
  EXPECT_EQ(validate::DomainName()("a.test,b.test"), "expected one domain name");
  EXPECT_EQ(validate::OptionalHostPortValue()(""), std::nullopt);
  EXPECT_EQ(validate::OptionalHostPortValue()("10.1.2.3:7401"), std::nullopt);
  EXPECT_EQ(validate::OptionalHostPortValue()("10.1.2.3"),
            "empty, or expected host:port with a port in 1..65535");
  EXPECT_EQ(validate::DomainName()("store.dims.test"), std::nullopt);
}

TEST(Config, HelpSkipsValidation) {
  auto c = Config::Load(Options(), {"--help"}, Env({{"DIMS_POOL_SIZE", "lots"}}));
  EXPECT_TRUE(c.help_requested());
  EXPECT_NE(Config::Usage("dims-x", Options()).find("--pool-size (DIMS_POOL_SIZE)"),
            std::string::npos);
}

TEST(Config, HostPortParsing) {
  EXPECT_EQ(ParseHostPort("[::1]:5060")->host, "::1");
  EXPECT_EQ(ParseHostPort("[::1]:5060")->ToString(), "[::1]:5060");
  EXPECT_FALSE(ParseHostPort("::1:5060"));
  EXPECT_FALSE(ParseHostPort(":5060"));
  EXPECT_EQ(EnvNameFor("sip-listen"), "DIMS_SIP_LISTEN");
}

}  // namespace
}  // namespace dims
