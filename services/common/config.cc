#include "config.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <sstream>

namespace dims {
namespace {

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::optional<long> ParseLong(std::string_view text) {
  long value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

bool IsDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
    if (++label > 63) return false;
  }
  return label > 0;
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::string t = Trim(item);
    if (!t.empty()) out.push_back(t);
  }
  return out;
}

}  // namespace

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> ParseHostPort(std::string_view text) {
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {  // [v6]:port
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
    hp.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  auto port = ParseLong(port_text);
  if (hp.host.empty() || !port || *port < 0 || *port > 65535) return std::nullopt;
  hp.port = static_cast<int>(*port);
  return hp;
}

std::string EnvNameFor(std::string_view option_name) {
  std::string env = "DIMS_";
  for (char c : option_name) {
    env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return env;
}

namespace validate {

ConfigValidator HostPortValue() {
  return [](const std::string& v) -> std::optional<std::string> {
    auto hp = ParseHostPort(v);
    if (!hp || hp->port == 0) return "expected host:port with a port in 1..65535";
    return std::nullopt;
  };
}

ConfigValidator HostPortValueAllowZero() {
  return [](const std::string& v) -> std::optional<std::string> {
    if (!ParseHostPort(v)) return "expected host:port with a port in 0..65535";
    return std::nullopt;
  };
}

ConfigValidator OptionalHostPortValue() {
  return [](const std::string& v) -> std::optional<std::string> {
    if (v.empty()) return std::nullopt;
    if (auto error = HostPortValue()(v)) return "empty, or " + *error;
    return std::nullopt;
  };
}

ConfigValidator IntInRange(long min, long max) {
  return [min, max](const std::string& v) -> std::optional<std::string> {
    auto n = ParseLong(v);
    if (!n || *n < min || *n > max) {
      return "expected an integer in " + std::to_string(min) + ".." + std::to_string(max);
    }
    return std::nullopt;
  };
}

ConfigValidator OneOf(std::vector<std::string> choices) {
  return [choices](const std::string& v) -> std::optional<std::string> {
    for (const auto& c : choices) {
      if (c == v) return std::nullopt;
    }
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
    return "expected one of " + list;
  };
}

ConfigValidator NonEmpty() {
  return [](const std::string& v) -> std::optional<std::string> {
    if (Trim(v).empty()) return "must not be empty";
    return std::nullopt;
  };
}

ConfigValidator DomainList() {
  return [](const std::string& v) -> std::optional<std::string> {
    auto items = SplitList(v);
    if (items.empty()) return "expected at least one domain name";
    for (const auto& d : items) {
      if (!IsDnsName(d)) return "'" + d + "' is not a domain name";
    }
    return std::nullopt;
  };
}

ConfigValidator DomainName() {
  return [](const std::string& v) -> std::optional<std::string> {
    if (!IsDnsName(v)) return "expected one domain name";
    return std::nullopt;
  };
}

}  // namespace validate

Config Config::Load(const std::vector<ConfigOption>& options, const std::vector<std::string>& args,
                    const Environment& env) {
  std::map<std::string, const ConfigOption*> by_name;
  for (const auto& o : options) by_name[o.name] = &o;

  Config config;
  std::map<std::string, std::string> from_flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      config.help_requested_ = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      config.positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (!by_name.count(name)) throw ConfigError("unknown flag --" + name + " (see --help)");
    if (!value) {
      if (i + 1 >= args.size()) throw ConfigError("flag --" + name + " needs a value");
      value = args[++i];
    }
    from_flags[name] = *value;
  }

  for (const auto& o : options) {
    std::string value = o.default_value;
    std::string source = "default";
    if (auto it = from_flags.find(o.name); it != from_flags.end()) {
      value = it->second;
      source = "flag";
    } else if (auto e = env(EnvNameFor(o.name))) {
      value = *e;
      source = "env";
    }
    if (o.validate && !config.help_requested_) {
      if (auto problem = o.validate(value)) {
        std::string where = source == "flag"  ? "flag --" + o.name
                            : source == "env" ? "environment variable " + EnvNameFor(o.name)
                                              : "default of --" + o.name;
        throw ConfigError("invalid value '" + value + "' for " + where + ": " + *problem);
      }
    }
    config.values_[o.name] = value;
    config.sources_[o.name] = source;
  }
  return config;
}

Config::Environment Config::ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

const std::string& Config::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw ConfigError("option '" + name + "' was never declared");
  return it->second;
}

long Config::GetInt(const std::string& name) const {
  auto n = ParseLong(Get(name));
  if (!n) throw ConfigError("option --" + name + " is not an integer: " + Get(name));
  return *n;
}

HostPort Config::GetHostPort(const std::string& name) const {
  auto hp = ParseHostPort(Get(name));
  if (!hp) throw ConfigError("option --" + name + " is not host:port: " + Get(name));
  return *hp;
}

std::vector<std::string> Config::GetList(const std::string& name) const {
  return SplitList(Get(name));
}

std::string Config::Usage(std::string_view program, const std::vector<ConfigOption>& options) {
  std::string out = "usage: " + std::string(program) + " [flags]\n\n";
  out += "Every flag --name may also be given as the environment variable DIMS_NAME.\n\n";
  for (const auto& o : options) {
    out += "  --" + o.name + " (" + EnvNameFor(o.name) + ")\n      " + o.help;
    out += " [default: " + (o.default_value.empty() ? "\"\"" : o.default_value) + "]\n";
  }
  return out;
}

}  // namespace dims
