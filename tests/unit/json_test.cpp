// json_test.cpp - kiln's JSON library: values, escapes, numbers, printing and hostile input.
#include "kiln/ir/json.h"

#include <random>

#include "test_util.h"

namespace kiln {
namespace {

// Expects json::Parse(text) to fail with a message starting with `position` ("j:1:5: ") and
// containing `part`.
void ExpectJsonError(std::string_view text, const std::string& position, const std::string& part) {
  try {
    json::Parse(text, "j");
    ADD_FAILURE() << "expected a JSON error for: " << text;
  } catch (const UserError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.substr(0, position.size()), position) << "message: " << msg;
    EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg;
  }
}

TEST(Json, ScalarsAndExactIntegers) {
  EXPECT_TRUE(json::Parse("null").is_null());
  EXPECT_TRUE(json::Parse(" true ").as_bool());
  EXPECT_FALSE(json::Parse("false").as_bool());
  json::Value big = json::Parse("9007199254740993");  // 2^53 + 1: not exact as a double
  ASSERT_TRUE(big.is_int());
  EXPECT_EQ(big.as_int(), 9007199254740993LL);
  EXPECT_EQ(json::Parse("-9223372036854775808").as_int(), INT64_MIN);
  EXPECT_EQ(json::Parse("9223372036854775807").as_int(), INT64_MAX);
  json::Value over = json::Parse("9223372036854775808");  // beyond int64: a double
  ASSERT_TRUE(over.is_double());
  EXPECT_EQ(over.as_double(), 9223372036854775808.0);
  EXPECT_TRUE(json::Parse("1.0").is_double());
  EXPECT_TRUE(json::Parse("1e2").is_double());
  EXPECT_EQ(json::Parse("1e2").as_double(), 100.0);
  EXPECT_EQ(json::Parse("-0.5E-3").as_double(), -0.0005);
  EXPECT_EQ(json::Parse("0").as_int(), 0);
  EXPECT_EQ(json::Parse("-0").as_int(), 0);
  EXPECT_EQ(json::Parse("1e-400").as_double(), 0.0);  // underflow is harmless
  EXPECT_EQ(json::Parse("7").as_double(), 7.0);       // integers read as doubles too
}

TEST(Json, NumbersPrintSoTheyReadBackTheSame) {
  for (double d : {0.1, 1.0, -2.5, 1e300, 5e-324, 123456789.125, -0.0}) {
    json::Value v(d);
    json::Value back = json::Parse(json::Print(v));
    ASSERT_TRUE(back.is_double()) << json::Print(v);
    EXPECT_EQ(back.as_double(), d);
    EXPECT_EQ(std::signbit(back.as_double()), std::signbit(d));
  }
  EXPECT_EQ(json::Print(json::Value(1.0)), "1.0");
  EXPECT_EQ(json::Print(json::Value(0.1)), "0.1");
  EXPECT_EQ(json::Print(json::Value(int64_t(-42))), "-42");
  EXPECT_EQ(json::Print(json::Value(NAN)), "null");
  EXPECT_EQ(json::Print(json::Value(INFINITY)), "null");
}

TEST(Json, StringEscapesDecodeToUtf8) {
  json::Value v =
      json::Parse(R"("q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20ac \ud83d\ude00 \u0000!")");
  const std::string want =
      std::string("q\" b\\ s/ \b\f\n\r\t A\xC3\xA9\xE2\x82\xAC \xF0\x9F\x98\x80 ") +
      std::string(1, '\0') + "!";
  EXPECT_EQ(v.as_string(), want);
  // Printing escapes what must be escaped and keeps UTF-8; it reads back unchanged.
  std::string printed = json::Print(v);
  EXPECT_EQ(printed,
            "\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t A\xC3\xA9\xE2\x82\xAC \xF0\x9F\x98\x80 "
            "\\u0000!\"");
  EXPECT_EQ(json::Parse(printed).as_string(), want);
  // Raw UTF-8 passes through.
  EXPECT_EQ(json::Parse("\"\xE2\x82\xAC\"").as_string(), "\xE2\x82\xAC");
  // Invalid UTF-8 has no JSON form: Quote writes U+FFFD for each bad byte.
  EXPECT_EQ(json::Quote("a\xff\xE2\x82\xAC"
                        "b\xc3"),
            "\"a\xEF\xBF\xBD\xE2\x82\xAC"
            "b\xEF\xBF\xBD\"");
}

TEST(Json, ObjectsKeepOrderAndArraysNest) {
  json::Value v = json::Parse(R"({"z": 1, "a": [true, null, [[]], {}], "m": {"k": "v"}})");
  ASSERT_TRUE(v.is_object());
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v.as_object()[0].first, "z");
  EXPECT_EQ(v.as_object()[1].first, "a");
  EXPECT_EQ(v.as_object()[2].first, "m");
  EXPECT_EQ(v.Find("a")->size(), 4u);
  EXPECT_TRUE(v.Find("a")->at(2).at(0).is_array());
  EXPECT_EQ(v.Find("m")->Find("k")->as_string(), "v");
  EXPECT_EQ(v.Find("nope"), nullptr);
  EXPECT_EQ(json::Print(v), R"({"z":1,"a":[true,null,[[]],{}],"m":{"k":"v"}})");
  // "a" holds an object ({}), so it goes one element per line; [[]] holds none.
  EXPECT_EQ(json::Print(v, 2), R"({
  "z": 1,
  "a": [
    true,
    null,
    [[]],
    {}
  ],
  "m": {
    "k": "v"
  }
})");
  // Arrays holding objects go one element per line.
  json::Value nodes = json::Parse(R"({"nodes": [{"a": [[0, 0, 0]]}, {}]})");
  EXPECT_EQ(json::Print(nodes, 2), R"({
  "nodes": [
    {
      "a": [[0, 0, 0]]
    },
    {}
  ]
})");
  EXPECT_EQ(json::Parse(json::Print(v, 2)), v);
  // Set replaces in place or appends.
  v.Set("a", json::Value(3));
  v.Set("new", json::Value("x"));
  EXPECT_EQ(json::Print(v), R"({"z":1,"a":3,"m":{"k":"v"},"new":"x"})");
}

TEST(Json, WrongTypeAccessIsAnInternalError) {
  json::Value v = json::Parse("[1]");
  EXPECT_THROW(v.as_string(), InternalError);
  EXPECT_THROW(v.at(1), InternalError);
  EXPECT_THROW(json::Value("s").as_int(), InternalError);
}

TEST(Json, ErrorsHaveLineAndColumn) {
  ExpectJsonError("", "j:1:1: ", "expected a JSON value, got the end of the input");
  ExpectJsonError("{\"a\": 1,}", "j:1:9: ", "expected a string key, got '}'");
  ExpectJsonError("[1 2]", "j:1:4: ", "expected ',' or ']' after an array element, got '2'");
  ExpectJsonError("{\n  \"a\": 1,\n  \"b\" 2\n}", "j:3:7: ", "expected ':' after a key, got '2'");
  ExpectJsonError("{\"a\": 1 \"b\": 2}", "j:1:9: ", "expected ',' or '}'");
  ExpectJsonError("[1] x", "j:1:5: ", "unexpected text after the JSON value");
  ExpectJsonError("{\"a\": 1, \"a\": 2}", "j:1:10: ", "duplicate key \"a\"");
  ExpectJsonError("[tru]", "j:1:2: ", "expected a JSON value, got 't'");
  ExpectJsonError("NaN", "j:1:1: ", "expected a JSON value, got 'N'");
  ExpectJsonError("-Infinity", "j:1:2: ", "expected a digit in a number");
  ExpectJsonError("01", "j:1:1: ", "may not start with 0");
  ExpectJsonError("1.", "j:1:3: ", "expected a digit after '.'");
  ExpectJsonError(".5", "j:1:1: ", "expected a JSON value, got '.'");
  ExpectJsonError("1e+", "j:1:4: ", "expected a digit in the exponent");
  ExpectJsonError("1e999", "j:1:1: ", "number out of range");
  ExpectJsonError("[\n\"é\", \"\\x\"]", "j:2:7: ", "invalid escape \\x");
  ExpectJsonError("\"abc", "j:1:1: ", "unterminated string");
  ExpectJsonError("\"a\nb\"", "j:1:3: ", "raw control character");
  ExpectJsonError("\"\\u12\"", "j:1:2: ", "a \\u escape needs 4 hex digits");
  ExpectJsonError("\"\\ud800\"", "j:1:2: ", "without a low surrogate");
  ExpectJsonError("\"\\ud800\\u0041\"", "j:1:8: ", "without a low surrogate");
  ExpectJsonError("\"\\udc00\"", "j:1:2: ", "without a high surrogate");
  ExpectJsonError("\"\xff\"", "j:1:2: ", "invalid UTF-8");
  ExpectJsonError("\"\xc0\xaf\"", "j:1:2: ", "overlong");              // overlong '/'
  ExpectJsonError("\"\xed\xa0\x80\"", "j:1:2: ", "surrogate");         // UTF-8 surrogate
  ExpectJsonError("\"\xf4\x90\x80\x80\"", "j:1:2: ", "out-of-range");  // above U+10FFFF
  ExpectJsonError("\"\xe2\x82\"", "j:1:2: ", "invalid UTF-8");         // truncated sequence
}

TEST(Json, DeepNestingIsAnErrorNotAStackOverflow) {
  std::string deep(100000, '[');
  ExpectJsonError(deep, "j:1:257: ", "nested deeper than 256 levels");
  std::string objects;
  for (int i = 0; i < 50000; ++i) objects += "{\"a\":";
  ExpectJsonError(objects, "j:1:", "nested deeper than 256 levels");
  // Exactly the limit is fine.
  std::string ok = std::string(256, '[') + std::string(256, ']');
  EXPECT_NO_THROW(json::Parse(ok));
  json::ParseOptions strict;
  strict.max_depth = 2;
  EXPECT_THROW(json::Parse("[[[]]]", "j", strict), UserError);
}

TEST(Json, EveryTruncationAndMutationIsAUserErrorOrAValue) {
  const std::string doc =
      R"({"nodes": [{"op": "null", "name": "d\u00e9\ud83d\ude00", "inputs": []}, )"
      R"({"op": "FullyConnected", "attrs": {"num_hidden": "128"}, "inputs": [[0, 0, 0]]}],)"
      R"( "heads": [[1, 0, 0]], "x": [-1.5e3, true, false, null]})";
  ASSERT_NO_THROW(json::Parse(doc));
  for (size_t n = 0; n < doc.size(); ++n) {
    EXPECT_THROW(json::Parse(doc.substr(0, n)), UserError) << "prefix of " << n;
  }
  std::mt19937 rng(7);
  const char bytes[] = "{}[]\",:\\u0e-+.9 \n\x80\xff\xc3tfn";
  int errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s = doc;
    int edits = 1 + int(rng() % 4);
    for (int k = 0; k < edits; ++k) s[rng() % s.size()] = bytes[rng() % (sizeof(bytes) - 1)];
    try {
      json::Parse(s);
    } catch (const UserError&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 1000);  // most mutations break the document; none may crash or throw else
}

}  // namespace
}  // namespace kiln
