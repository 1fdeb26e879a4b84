// tests runtime/src/ids.cpp: the id rules and the one escaping rule for output.
#include "strata/runtime/ids.hpp"

#include <doctest/doctest.h>

#include <rapidcheck.h>

#include <stdexcept>
#include <string>

using strata::escape_text;
using strata::validate_id;
using strata::persistence::errc;

namespace {

bool ok(std::string_view type, std::string_view id) { return validate_id(type, id).ok(); }

/// The message of a rejected id (checks it is invalid_argument).
std::string why(std::string_view type, std::string_view id) {
  auto st = validate_id(type, id);
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == errc::invalid_argument);
  return st.message();
}

} // namespace

TEST_CASE("ids: printable UTF-8 ids of 1..255 bytes with the type prefix are accepted") {
  CHECK(ok("account", "acct-1"));
  CHECK(ok("account", "a"));
  CHECK(ok("account", "Bob Smith"));           // spaces are printable
  CHECK(ok("account", "a:b"));                 // ':' only splits off the type
  CHECK(ok("account", "z\xC3\xBCrich"));       // ü
  CHECK(ok("account", "\xE2\x82\xAC"));        // €
  CHECK(ok("account", "\xF0\x9F\x98\x80"));    // U+1F600
  CHECK(ok("account", std::string(247, 'x'))); // "account:" + 247 = 255 bytes
}

TEST_CASE("ids: control characters, malformed UTF-8 and overlong ids are rejected, saying why") {
  CHECK(why("account", "").find("empty entity id") != std::string::npos);
  auto m = why("account", "evil\nseq=99");
  CHECK(m.find("byte 4 is a control character (U+000A)") != std::string::npos);
  CHECK(m.find("evil\\nseq=99") != std::string::npos); // the id, escaped
  CHECK(m.find('\n') == std::string::npos);            // the message is one line
  CHECK(why("account", std::string("a\0b", 3)).find("U+0000") != std::string::npos);
  CHECK(why("account", "a\tb").find("U+0009") != std::string::npos);
  CHECK(why("account", "a\x1b[2Jb").find("U+001B") != std::string::npos);
  CHECK(why("account", "a\x7f").find("U+007F") != std::string::npos);
  CHECK(why("account", "a\xC2\x85").find("U+0085") != std::string::npos); // C1 NEL
  CHECK(why("account", "a\xE2\x80\xA8").find("U+2028") != std::string::npos);
  CHECK(why("account", "a\xE2\x80\xAE").find("U+202E") != std::string::npos); // RLO
  CHECK(why("account", "a\xFF").find("byte 1 is not well-formed UTF-8") != std::string::npos);
  CHECK(why("account", "\xC0\xAF").find("not well-formed") != std::string::npos);     // overlong
  CHECK(why("account", "\xED\xA0\x80").find("not well-formed") != std::string::npos); // surrogate
  CHECK(why("account", "\xF4\x90\x80\x80").find("not well-formed") != std::string::npos);
  CHECK(why("account", "\xE2\x82").find("not well-formed") != std::string::npos); // truncated
  CHECK(why("account", std::string(248, 'x')).find("256 bytes, more than 255") !=
        std::string::npos);
  CHECK(why("", "a").find("empty aggregate type name") != std::string::npos);
  CHECK(why("a:b", "a").find("must not contain ':'") != std::string::npos);
  CHECK(why("acc\nount", "a").find("control character") != std::string::npos);
}

TEST_CASE("ids: escape_text keeps a field on one line and leaves printable text alone") {
  CHECK(escape_text("acct-1") == "acct-1");
  CHECK(escape_text("Bob Smith") == "Bob Smith");
  CHECK(escape_text("Bob Smith", true) == "Bob\\x20Smith");
  CHECK(escape_text("z\xC3\xBCrich") == "z\xC3\xBCrich");
  CHECK(escape_text("a\nb\tc\rd\\e") == "a\\nb\\tc\\rd\\\\e");
  CHECK(escape_text(std::string("\0\x1b\x7f", 3)) == "\\x00\\x1B\\x7F");
  CHECK(escape_text("\xC2\x85") == "\\xC2\\x85");
  CHECK(escape_text("\xE2\x80\xA8") == "\\xE2\\x80\\xA8");
  CHECK(escape_text("\xFF\xC3") == "\\xFF\\xC3");
  CHECK(escape_text("x\nseq=99 time=T type=deposited amount=5") ==
        "x\\nseq=99 time=T type=deposited amount=5");
}

namespace {

/// The inverse of escape_text (test oracle).
std::string unescape(std::string_view e) {
  std::string out;
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (e[i] != '\\') {
      out += e[i];
      continue;
    }
    char c = e.at(++i);
    if (c == 'n')
      out += '\n';
    else if (c == 't')
      out += '\t';
    else if (c == 'r')
      out += '\r';
    else if (c == '\\')
      out += '\\';
    else if (c == 'x') {
      out += static_cast<char>(std::stoi(std::string(e.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else
      throw std::runtime_error("bad escape");
  }
  return out;
}

} // namespace

TEST_CASE("ids: property: escaped text has no control bytes and unescapes to the text") {
  auto ok_prop = rc::check("escape_text", [](const std::string& s, bool space) {
    auto e = escape_text(s, space);
    for (unsigned char b : e)
      RC_ASSERT(b >= 0x20 && b != 0x7F);
    if (space) RC_ASSERT(e.find(' ') == std::string::npos);
    RC_ASSERT(unescape(e) == s); // so two different texts never print the same
    if (!s.empty() && s.size() <= 253 && validate_id("t", s).ok() &&
        s.find('\\') == std::string::npos && (!space || s.find(' ') == std::string::npos))
      RC_ASSERT(e == s); // printable text is printed as it is
  });
  CHECK(ok_prop);
}

TEST_CASE("ids: property: validate_entity_id (the region's allocation-free check) agrees "
          "with validate_id for a valid type") {
  auto same = rc::check("validate_entity_id", [](const std::string& id) {
    auto a = validate_id("account", id);
    auto b = strata::validate_entity_id("account", id);
    RC_ASSERT(a.code() == b.code());
    RC_ASSERT(a.message() == b.message());
  });
  CHECK(same);
  CHECK(strata::validate_entity_id("account", std::string(300, 'a')).code() ==
        errc::invalid_argument);
  CHECK(strata::validate_entity_id("account", "a\xC3\xA9").ok());
}

TEST_CASE("ids: the persistence id is built and split by one helper") {
  namespace sp = strata::persistence;
  auto pid = sp::make_persistence_id("account", "a:b");
  CHECK(pid == "account:a:b");
  CHECK(sp::type_of_persistence_id(pid) == "account");
  CHECK(sp::id_of_persistence_id(pid) == "a:b");
  CHECK(sp::is_persistence_id_of(pid, "account"));
  CHECK_FALSE(sp::is_persistence_id_of(pid, "acc"));
  CHECK_FALSE(sp::is_persistence_id_of("account:", "account"));
  CHECK(sp::type_of_persistence_id("account/x", '/') == "account");
}
