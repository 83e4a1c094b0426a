// Configuration of a DIMS service: every option comes from a command-line flag
// (--foo-bar=value or --foo-bar value) or the environment (DIMS_FOO_BAR), in that order of
// precedence, else its default. Every value is validated at start; a bad value stops the
// service with a message that names the option, the value and what was expected.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dims {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Returns an explanation when the value is not acceptable, nothing when it is.
using ConfigValidator = std::function<std::optional<std::string>(const std::string&)>;

struct ConfigOption {
  std::string name;  // flag name without dashes, e.g. "grpc-listen"
  std::string default_value;
  std::string help;
  ConfigValidator validate;  // may be empty
};

struct HostPort {
  std::string host;
  int port = 0;
  std::string ToString() const;
};

// Validators for the usual shapes of values.
namespace validate {
ConfigValidator HostPortValue();  // "host:port", port 1..65535 (0 allowed when allow_zero)
ConfigValidator HostPortValueAllowZero();
ConfigValidator OptionalHostPortValue();  // "" or as HostPortValue
ConfigValidator IntInRange(long min, long max);
ConfigValidator OneOf(std::vector<std::string> choices);
ConfigValidator NonEmpty();
ConfigValidator DomainList();  // comma-separated DNS names
ConfigValidator DomainName();  // one DNS name
}  // namespace validate

std::optional<HostPort> ParseHostPort(std::string_view text);

// "grpc-listen" -> "DIMS_GRPC_LISTEN"
std::string EnvNameFor(std::string_view option_name);

class Config {
 public:
  using Environment = std::function<std::optional<std::string>(const std::string&)>;

  // Parses argv (argv[0] skipped) and the environment against the declared options.
  // Throws ConfigError on an unknown flag, a missing value or a value that fails validation.
  // "--help" sets help_requested(); arguments not starting with "--" are positional.
  static Config Load(const std::vector<ConfigOption>& options, const std::vector<std::string>& args,
                     const Environment& env);
  static Environment ProcessEnvironment();

  const std::string& Get(const std::string& name) const;
  long GetInt(const std::string& name) const;
  HostPort GetHostPort(const std::string& name) const;
  std::vector<std::string> GetList(const std::string& name) const;  // comma-separated

  const std::vector<std::string>& positional() const { return positional_; }
  bool help_requested() const { return help_requested_; }
  // Where each value came from ("flag", "env", "default"), for the start-up log line.
  const std::map<std::string, std::string>& sources() const { return sources_; }
  const std::map<std::string, std::string>& values() const { return values_; }

  static std::string Usage(std::string_view program, const std::vector<ConfigOption>& options);

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> sources_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

}  // namespace dims
